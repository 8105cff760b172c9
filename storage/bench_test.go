package storage_test

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

// Storage micro-benchmarks on SQLite and, with TORII_TEST_POSTGRES_URL,
// PostgreSQL:
//
//	go test -run '^$' -bench . -benchmem ./storage

func benchBackends(b *testing.B, fn func(b *testing.B, s *storage.Store, c *storage.Client)) {
	for _, be := range storagetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			s := be.Open(b)
			c := &storage.Client{ID: "app", RedirectURIs: []string{}, GrantTypes: []string{}, ResponseTypes: []string{}, Scopes: []string{}, Audience: []string{}, TokenFormat: "opaque", IDTokenAlg: "RS256"}
			if err := s.CreateClient(b.Context(), c); err != nil {
				b.Fatal(err)
			}
			fn(b, s, c)
		})
	}
}

func benchRequest(c fosite.Client, i int) *fosite.Request {
	r := fosite.NewRequest()
	r.ID = fmt.Sprintf("req-%d", i)
	r.Client = c
	r.RequestedAt = time.Now().UTC()
	r.GrantedScope = fosite.Arguments{"openid"}
	r.Form = url.Values{}
	r.Session = &openid.DefaultSession{Claims: &jwt.IDTokenClaims{Subject: "u"}, Headers: &jwt.Headers{}, Subject: "u",
		ExpiresAt: map[fosite.TokenType]time.Time{fosite.AccessToken: time.Now().Add(time.Hour)}}
	return r
}

// BenchmarkAccessTokenStore is what issuing a token costs the database.
func BenchmarkAccessTokenStore(b *testing.B) {
	benchBackends(b, func(b *testing.B, s *storage.Store, c *storage.Client) {
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			i++
			if err := s.CreateAccessTokenSession(b.Context(), fmt.Sprintf("sig-%d", i), benchRequest(c, i)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkIntrospectionLookup is the database side of introspecting an
// access token: the row by signature, and its client.
func BenchmarkIntrospectionLookup(b *testing.B) {
	benchBackends(b, func(b *testing.B, s *storage.Store, c *storage.Client) {
		for i := range 100 {
			if err := s.CreateAccessTokenSession(b.Context(), fmt.Sprintf("sig-%d", i), benchRequest(c, i)); err != nil {
				b.Fatal(err)
			}
		}
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			i++
			if _, err := s.GetAccessTokenSession(b.Context(), fmt.Sprintf("sig-%d", i%100), &openid.DefaultSession{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
