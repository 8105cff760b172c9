package provider

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	jose3 "github.com/go-jose/go-jose/v3"
	"github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite/token/jwt"
)

// signer implements fosite's jwt.Signer on go-jose v4 with Torii's keys:
// RS256, ES256 or EdDSA, chosen per token by the "alg" entry of the header
// (the client's choice), every token naming its kid. fosite's own signer
// uses go-jose v3 and knows neither Ed25519 nor several keys.
type signer struct {
	keys *Keys
	// observer counts signatures; nil for none.
	observer Observer
}

var _ jwt.Signer = (*signer)(nil)

// allowedAlgs are the only algorithms a token may name to be verified: never
// "none", never an HMAC keyed by a public key.
var allowedAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}

// Generate signs claims. The algorithm comes from header's "alg" entry
// (fosite's jwt.Headers keeps it out of ToMap), RS256 by default.
func (s *signer) Generate(ctx context.Context, claims jwt.MapClaims, header jwt.Mapper) (string, string, error) {
	alg := AlgRS256
	extra := map[string]any{}
	if header != nil {
		if h, ok := header.(*jwt.Headers); ok {
			if a, ok := h.Get("alg").(string); ok && a != "" {
				alg = a
			}
		}
		extra = header.ToMap()
	}
	token, err := s.sign(ctx, alg, claims, extra)
	if err != nil {
		return "", "", err
	}
	return token, token[strings.LastIndexByte(token, '.')+1:], nil
}

// sign serialises payload (JSON-encoded) as a compact JWS with the signing
// key of alg and the given extra header members.
func (s *signer) sign(ctx context.Context, alg string, payload any, header map[string]any) (string, error) {
	jwk, err := s.keys.signingKey(ctx, alg)
	if err != nil {
		return "", err
	}
	opts := new(jose.SignerOptions)
	typ := "JWT"
	for k, v := range header {
		switch k {
		case "alg", "kid", "jku", "x5u", "jwk", "crit":
			// Ours to set, or never set.
		case "typ":
			if t, ok := v.(string); ok && t != "" {
				typ = t
			}
		default:
			opts.WithHeader(jose.HeaderKey(k), v)
		}
	}
	opts.WithType(jose.ContentType(typ))
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: jwk}, opts)
	if err != nil {
		return "", fmt.Errorf("provider: signer: %w", err)
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return "", fmt.Errorf("provider: encode claims: %w", err)
	}
	obj, err := sig.Sign(body)
	if err != nil {
		return "", fmt.Errorf("provider: sign: %w", err)
	}
	if s.observer != nil {
		s.observer.Signed(alg)
	}
	return obj.CompactSerialize()
}

// verify checks a compact JWS against Torii's published keys and returns its
// header and payload. The header must name a known kid whose key is of the
// header's algorithm.
func (s *signer) verify(ctx context.Context, token string) (jose.Header, []byte, error) {
	obj, err := jose.ParseSigned(token, allowedAlgs)
	if err != nil {
		return jose.Header{}, nil, fmt.Errorf("malformed token: %w", err)
	}
	if len(obj.Signatures) != 1 {
		return jose.Header{}, nil, errors.New("token must carry exactly one signature")
	}
	h := obj.Signatures[0].Protected
	if h.KeyID == "" {
		return h, nil, errors.New("token names no key id")
	}
	jwk, err := s.keys.verificationKey(ctx, h.KeyID)
	if errors.Is(err, errUnknownKey) {
		// Another node may have added the key since our last reload.
		if rerr := s.keys.Reload(ctx); rerr == nil {
			jwk, err = s.keys.verificationKey(ctx, h.KeyID)
		}
	}
	if err != nil {
		return h, nil, err
	}
	if jwk.Algorithm != h.Algorithm {
		return h, nil, fmt.Errorf("key %s is for %s, token says %s", h.KeyID, jwk.Algorithm, h.Algorithm)
	}
	payload, err := obj.Verify(jwk.Public())
	if err != nil {
		return h, nil, fmt.Errorf("bad signature: %w", err)
	}
	return h, payload, nil
}

// Decode verifies token and returns its claims. An expired token comes back
// with a *jwt.ValidationError flagged ValidationErrorExpired, which fosite
// accepts for id_token_hint.
func (s *signer) Decode(ctx context.Context, token string) (*jwt.Token, error) {
	h, payload, err := s.verify(ctx, token)
	if err != nil {
		return nil, &jwt.ValidationError{Inner: err, Errors: jwt.ValidationErrorSignatureInvalid}
	}
	claims := jwt.MapClaims{}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil {
		return nil, &jwt.ValidationError{Inner: err, Errors: jwt.ValidationErrorMalformed}
	}
	header := map[string]any{"alg": h.Algorithm, "kid": h.KeyID}
	for k, v := range h.ExtraHeaders {
		header[string(k)] = v
	}
	t := &jwt.Token{Header: header, Claims: claims, Method: jose3Alg(h.Algorithm)}
	if err := claims.Valid(); err != nil {
		return t, err
	}
	return t, nil
}

// Validate verifies token and returns its signature part.
func (s *signer) Validate(ctx context.Context, token string) (string, error) {
	if _, err := s.Decode(ctx, token); err != nil {
		return "", err
	}
	return s.GetSignature(ctx, token)
}

// GetSignature returns the signature part of a compact JWS.
func (s *signer) GetSignature(_ context.Context, token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("header, body and signature must all be set")
	}
	return parts[2], nil
}

// Hash returns SHA-256 of in.
func (s *signer) Hash(_ context.Context, in []byte) ([]byte, error) {
	sum := sha256.Sum256(in)
	return sum[:], nil
}

// GetSigningMethodLength returns the SHA-256 size.
func (s *signer) GetSigningMethodLength(context.Context) int { return sha256.Size }

// jose3Alg converts an algorithm name to the go-jose v3 type fosite's
// jwt.Token carries.
func jose3Alg(alg string) jose3.SignatureAlgorithm { return jose3.SignatureAlgorithm(alg) }
