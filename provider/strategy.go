package provider

import (
	"context"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"

	"github.com/torii-idp/torii/storage"
)

// Token prefixes make Torii's tokens recognisable (for secret scanners and
// for people reading logs of their own apps).
const (
	prefixAccess  = "torii_at_"
	prefixRefresh = "torii_rt_"
	prefixCode    = "torii_ac_"
)

// Access token formats a client may choose.
const (
	FormatOpaque = "opaque"
	FormatJWT    = "jwt"
)

// tokenStrategy makes codes, refresh tokens and opaque access tokens with
// fosite's HMAC strategy (random key + HMAC; only the HMAC, the signature, is
// stored), and RFC 9068 JWT access tokens for clients that ask for them. JWT
// access tokens are stored by their signature too, so they stay revocable and
// introspectable.
type tokenStrategy struct {
	hmac   *oauth2.HMACSHAStrategyUnPrefixed
	signer *signer
	issuer string
}

var _ oauth2.CoreStrategy = (*tokenStrategy)(nil)

func isJWT(token string) bool { return strings.Count(token, ".") == 2 }

func (s *tokenStrategy) AccessTokenSignature(ctx context.Context, token string) string {
	if isJWT(token) {
		return token[strings.LastIndexByte(token, '.')+1:]
	}
	return s.hmac.AccessTokenSignature(ctx, token)
}

func (s *tokenStrategy) GenerateAccessToken(ctx context.Context, r fosite.Requester) (string, string, error) {
	var token, sig string
	var err error
	if c, ok := r.GetClient().(*storage.Client); ok && c.TokenFormat == FormatJWT {
		token, sig, err = s.generateJWT(ctx, r, c)
	} else {
		token, sig, err = s.hmac.GenerateAccessToken(ctx, r)
		token = prefixAccess + token
	}
	if err != nil {
		return "", "", err
	}
	if iss, ok := ctx.Value(issuedKey{}).(*issued); ok {
		iss.accessToken = token
	}
	return token, sig, nil
}

// atClaims are the claims of an RFC 9068 access token.
type atClaims struct {
	Issuer   string   `json:"iss"`
	Subject  string   `json:"sub"`
	Audience []string `json:"aud"`
	Expiry   int64    `json:"exp"`
	IssuedAt int64    `json:"iat"`
	JTI      string   `json:"jti"`
	ClientID string   `json:"client_id"`
	Scope    string   `json:"scope,omitempty"`
	AuthTime int64    `json:"auth_time,omitempty"`
	// Roles are the user's roles with scope roles ([] for none); absent
	// otherwise and in a client's own token.
	Roles []string `json:"roles,omitzero"`
}

func (s *tokenStrategy) generateJWT(ctx context.Context, r fosite.Requester, c *storage.Client) (string, string, error) {
	sess, _ := r.GetSession().(*Session)
	now := time.Now().UTC()
	claims := atClaims{
		Issuer:   s.issuer,
		Subject:  r.GetSession().GetSubject(),
		Audience: r.GetGrantedAudience(),
		Expiry:   r.GetSession().GetExpiresAt(fosite.AccessToken).Unix(),
		IssuedAt: now.Unix(),
		JTI:      uuid.NewString(),
		ClientID: c.ID,
		Scope:    strings.Join(r.GetGrantedScopes(), " "),
	}
	if len(claims.Audience) == 0 {
		// RFC 9068 requires an audience; without a resource indicator the
		// token is for the client's own use of Torii's APIs.
		claims.Audience = []string{c.ID}
	}
	if claims.Subject == "" {
		claims.Subject = c.ID
	}
	if sess != nil && sess.Claims != nil && !sess.Claims.AuthTime.IsZero() {
		claims.AuthTime = sess.Claims.AuthTime.Unix()
	}
	if r.GetGrantedScopes().Has(ScopeRoles) {
		if roles, ok := rolesClaim(sess); ok {
			claims.Roles = roles
		}
	}
	token, err := s.signer.sign(ctx, c.IDTokenAlg, claims, map[string]any{"typ": "at+jwt"})
	if err != nil {
		return "", "", err
	}
	return token, token[strings.LastIndexByte(token, '.')+1:], nil
}

func (s *tokenStrategy) ValidateAccessToken(ctx context.Context, r fosite.Requester, token string) error {
	if isJWT(token) {
		h, payload, err := s.signer.verify(ctx, token)
		if err != nil {
			return fosite.ErrTokenSignatureMismatch.WithWrap(err)
		}
		if typ, _ := h.ExtraHeaders["typ"].(string); typ != "at+jwt" {
			return fosite.ErrTokenSignatureMismatch.WithHint("The token is not an access token.")
		}
		var claims atClaims
		if err := json.Unmarshal(payload, &claims); err != nil {
			return fosite.ErrTokenSignatureMismatch.WithWrap(err)
		}
		if time.Now().Unix() >= claims.Expiry {
			return fosite.ErrTokenExpired.WithHint("The access token expired.")
		}
		// The stored session decides too (revocation, expiry).
		if exp := r.GetSession().GetExpiresAt(fosite.AccessToken); !exp.IsZero() && exp.Before(time.Now()) {
			return fosite.ErrTokenExpired.WithHint("The access token expired.")
		}
		return nil
	}
	if !strings.HasPrefix(token, prefixAccess) {
		return fosite.ErrTokenSignatureMismatch.WithHint("The token is not an access token.")
	}
	return s.hmac.ValidateAccessToken(ctx, r, strings.TrimPrefix(token, prefixAccess))
}

func (s *tokenStrategy) RefreshTokenSignature(ctx context.Context, token string) string {
	return s.hmac.RefreshTokenSignature(ctx, token)
}

func (s *tokenStrategy) GenerateRefreshToken(ctx context.Context, r fosite.Requester) (string, string, error) {
	token, sig, err := s.hmac.GenerateRefreshToken(ctx, r)
	return prefixRefresh + token, sig, err
}

func (s *tokenStrategy) ValidateRefreshToken(ctx context.Context, r fosite.Requester, token string) error {
	if !strings.HasPrefix(token, prefixRefresh) {
		return fosite.ErrTokenSignatureMismatch.WithHint("The token is not a refresh token.")
	}
	return s.hmac.ValidateRefreshToken(ctx, r, strings.TrimPrefix(token, prefixRefresh))
}

func (s *tokenStrategy) AuthorizeCodeSignature(ctx context.Context, token string) string {
	return s.hmac.AuthorizeCodeSignature(ctx, token)
}

func (s *tokenStrategy) GenerateAuthorizeCode(ctx context.Context, r fosite.Requester) (string, string, error) {
	token, sig, err := s.hmac.GenerateAuthorizeCode(ctx, r)
	return prefixCode + token, sig, err
}

func (s *tokenStrategy) ValidateAuthorizeCode(ctx context.Context, r fosite.Requester, token string) error {
	if !strings.HasPrefix(token, prefixCode) {
		return fosite.ErrTokenSignatureMismatch.WithHint("The code is not an authorization code.")
	}
	return s.hmac.ValidateAuthorizeCode(ctx, r, strings.TrimPrefix(token, prefixCode))
}

// issued carries, through one token request, the access token just made,
// so that an EdDSA ID token's at_hash can be computed with SHA-512 (fosite
// only knows SHA-256/384/512 by the RS/ES/PS name suffix).
type issued struct{ accessToken string }

type issuedKey struct{}

// idTokenStrategy signs ID tokens with the algorithm the session names, and
// fixes at_hash for EdDSA.
type idTokenStrategy struct {
	openid.DefaultStrategy
}

func (s *idTokenStrategy) GenerateIDToken(ctx context.Context, lifespan time.Duration, r fosite.Requester) (string, error) {
	sess, ok := r.GetSession().(*Session)
	if !ok {
		return "", fosite.ErrServerError.WithDebug("unexpected session type")
	}
	if sess.signingAlg() == AlgEdDSA && sess.IDTokenClaims().AccessTokenHash != "" {
		iss, _ := ctx.Value(issuedKey{}).(*issued)
		if iss == nil || iss.accessToken == "" {
			return "", fosite.ErrServerError.WithDebug("at_hash requested without the access token")
		}
		sum := sha512.Sum512([]byte(iss.accessToken))
		sess.IDTokenClaims().AccessTokenHash = base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
	}
	return s.DefaultStrategy.GenerateIDToken(ctx, lifespan, r)
}

var _ openid.OpenIDConnectTokenStrategy = (*idTokenStrategy)(nil)
