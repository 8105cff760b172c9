package provider

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite/token/jwt"

	"github.com/torii-idp/torii/storage/storagetest"
)

func newTestSigner(t *testing.T) *signer {
	t.Helper()
	k := NewKeys(storagetest.NewSQLite(t), KeysConfig{})
	if err := k.Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	return &signer{keys: k}
}

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestSignerRoundTrip(t *testing.T) {
	s := newTestSigner(t)
	for _, alg := range Algorithms {
		t.Run(alg, func(t *testing.T) {
			h := &jwt.Headers{}
			h.Add("alg", alg)
			claims := jwt.MapClaims{"sub": "user-1", "exp": time.Now().Add(time.Hour).Unix()}
			token, sig, err := s.Generate(t.Context(), claims, h)
			if err != nil {
				t.Fatalf("Generate(%s) = %v", alg, err)
			}
			if !strings.HasSuffix(token, "."+sig) {
				t.Errorf("signature %q is not the last part of the token", sig)
			}
			parsed, err := jose.ParseSigned(token, allowedAlgs)
			if err != nil {
				t.Fatal(err)
			}
			hdr := parsed.Signatures[0].Protected
			want, _ := s.keys.signingKey(t.Context(), alg)
			if hdr.Algorithm != alg || hdr.KeyID != want.KeyID {
				t.Errorf("header alg=%s kid=%s, want %s %s", hdr.Algorithm, hdr.KeyID, alg, want.KeyID)
			}
			tok, err := s.Decode(t.Context(), token)
			if err != nil || tok.Claims["sub"] != "user-1" {
				t.Errorf("Decode = %v, %v", tok, err)
			}
		})
	}
}

func TestSignerRejectsForgeries(t *testing.T) {
	s := newTestSigner(t)
	ctx := t.Context()
	good, _, err := s.Generate(ctx, jwt.MapClaims{"sub": "u", "exp": time.Now().Add(time.Hour).Unix()}, &jwt.Headers{})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	rsKey, _ := s.keys.signingKey(ctx, AlgRS256)
	payload := b64(map[string]any{"sub": "attacker", "exp": time.Now().Add(time.Hour).Unix()})

	// HS256 keyed with the public RSA key (the classic confusion attack).
	pubJSON, _ := rsKey.Public().MarshalJSON()
	hsSigner, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: pubJSON},
		(&jose.SignerOptions{}).WithHeader("kid", rsKey.KeyID))
	if err != nil {
		t.Fatal(err)
	}
	hsObj, _ := hsSigner.Sign([]byte(`{"sub":"attacker"}`))
	hsToken, _ := hsObj.CompactSerialize()

	// A well-formed ES256 token by a key that is not ours, under our kid,
	// and with the attacker's key embedded.
	foreign, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	esKey, _ := s.keys.signingKey(ctx, AlgES256)
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithHeader("kid", esKey.KeyID)
	fSigner, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: foreign}, opts)
	fObj, _ := fSigner.Sign([]byte(`{"sub":"attacker"}`))
	foreignToken, _ := fObj.CompactSerialize()

	unknownKid := b64(map[string]string{"alg": "RS256", "kid": "not-a-key"}) + "." + parts[1] + "." + parts[2]
	jku := b64(map[string]string{"alg": "RS256", "jku": "https://evil.example/jwks"}) + "." + parts[1] + "." + parts[2]

	tests := []struct {
		name, token string
	}{
		{"alg none", b64(map[string]string{"alg": "none", "kid": rsKey.KeyID}) + "." + payload + "."},
		{"HS256 with the public key", hsToken},
		{"foreign key with our kid and embedded jwk", foreignToken},
		{"unknown kid", unknownKid},
		{"jku without kid", jku},
		{"tampered payload", parts[0] + "." + payload + "." + parts[2]},
		{"alg swapped to ES256", b64(map[string]string{"alg": "ES256", "kid": rsKey.KeyID}) + "." + parts[1] + "." + parts[2]},
		{"garbage", "not.a.jwt"},
		{"two parts", parts[0] + "." + parts[1]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Decode(ctx, tc.token); err == nil {
				t.Errorf("Decode(%s) accepted a forged token", tc.name)
			}
		})
	}
}

func TestSignerExpiredTokenFlagged(t *testing.T) {
	s := newTestSigner(t)
	token, _, err := s.Generate(t.Context(), jwt.MapClaims{"sub": "u", "exp": time.Now().Add(-time.Minute).Unix()}, &jwt.Headers{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Decode(t.Context(), token)
	ve, ok := err.(*jwt.ValidationError)
	if !ok || !ve.Has(jwt.ValidationErrorExpired) || tok == nil || tok.Claims["sub"] != "u" {
		t.Errorf("Decode(expired) = %v, %v; want the claims and ValidationErrorExpired", tok, err)
	}
}
