package provider

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/token/hmac"
	"github.com/ory/fosite/token/jwt"

	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

// Micro-benchmarks of the token path's pieces: run with
//
//	go test -run '^$' -bench . -benchmem ./provider

func BenchmarkClientAuthentication(b *testing.B) {
	s := storagetest.NewSQLite(b)
	cs, err := NewClients(b.Context(), s)
	if err != nil {
		b.Fatal(err)
	}
	_, secret, err := cs.Register(b.Context(), ClientSpec{ID: "svc", GrantTypes: []string{"client_credentials"}, Scopes: []string{}})
	if err != nil {
		b.Fatal(err)
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", "/oauth2/token", strings.NewReader(form.Encode()))
		r.SetBasicAuth("svc", secret)
		if _, err := cs.authenticate(b.Context(), r, form); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIDTokenSigning(b *testing.B) {
	k := NewKeys(storagetest.NewSQLite(b), KeysConfig{})
	if err := k.Ensure(b.Context()); err != nil {
		b.Fatal(err)
	}
	s := &signer{keys: k}
	claims := jwt.IDTokenClaims{Issuer: "https://id.example", Subject: "b1e4c1d2-8a3f-4f4e-9c1a-2b7d5e6f7a8b", Audience: []string{"app"},
		ExpiresAt: time.Now().Add(time.Hour), IssuedAt: time.Now(), AuthTime: time.Now(), Nonce: "n-0S6_WzA2Mj"}
	for _, alg := range Algorithms {
		b.Run(alg, func(b *testing.B) {
			h := &jwt.Headers{}
			h.Add("alg", alg)
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := s.Generate(b.Context(), claims.ToMapClaims(), h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAccessTokenGeneration(b *testing.B) {
	st := storagetest.NewSQLite(b)
	k := NewKeys(st, KeysConfig{})
	if err := k.Ensure(b.Context()); err != nil {
		b.Fatal(err)
	}
	secret, _ := st.Secret(b.Context(), "fosite-global")
	fcfg := &fosite.Config{GlobalSecret: secret, AccessTokenLifespan: time.Hour}
	ts := &tokenStrategy{hmac: oauth2.NewHMACSHAStrategyUnPrefixed(&hmac.HMACStrategy{Config: fcfg}, fcfg), signer: &signer{keys: k}, issuer: "https://id.example"}
	for _, format := range []string{FormatOpaque, FormatJWT} {
		b.Run(format, func(b *testing.B) {
			req := fosite.NewRequest()
			req.Client = &storage.Client{ID: "svc", TokenFormat: format, IDTokenAlg: AlgES256}
			sess := newSession()
			sess.Subject = "svc"
			sess.SetExpiresAt(fosite.AccessToken, time.Now().Add(time.Hour))
			req.Session = sess
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := ts.GenerateAccessToken(b.Context(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
