package provider

import (
	"maps"
	"slices"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
)

// Session is what Torii stores with every code and token: who it is for,
// the ID token claims, when the grant began and when each token expires. It
// implements fosite's openid.Session and is stored as JSON.
type Session struct {
	Claims    *jwt.IDTokenClaims             `json:"id_token_claims"`
	Headers   *jwt.Headers                   `json:"headers"`
	ExpiresAt map[fosite.TokenType]time.Time `json:"expires_at"`
	Subject   string                         `json:"subject"`
	Username  string                         `json:"username,omitempty"`
	// ClientID is the client the grant was made to.
	ClientID string `json:"client_id"`
	// GrantedAt is when the grant (the first token of a refresh family)
	// was made; refresh tokens never outlive GrantedAt + the refresh lifetime.
	GrantedAt time.Time `json:"granted_at"`
}

var _ openid.Session = (*Session)(nil)

// newSession returns an empty session for fosite to fill.
func newSession() *Session {
	return &Session{Claims: &jwt.IDTokenClaims{}, Headers: &jwt.Headers{Extra: map[string]any{}}}
}

// IDTokenClaims implements openid.Session.
func (s *Session) IDTokenClaims() *jwt.IDTokenClaims {
	if s.Claims == nil {
		s.Claims = &jwt.IDTokenClaims{}
	}
	return s.Claims
}

// IDTokenHeaders implements openid.Session. The "alg" entry chooses the ID
// token signing algorithm; fosite also reads it to pick the at_hash function.
func (s *Session) IDTokenHeaders() *jwt.Headers {
	if s.Headers == nil {
		s.Headers = &jwt.Headers{Extra: map[string]any{}}
	}
	return s.Headers
}

// SetExpiresAt implements fosite.Session.
func (s *Session) SetExpiresAt(key fosite.TokenType, exp time.Time) {
	if s.ExpiresAt == nil {
		s.ExpiresAt = make(map[fosite.TokenType]time.Time)
	}
	s.ExpiresAt[key] = exp
}

// GetExpiresAt implements fosite.Session.
func (s *Session) GetExpiresAt(key fosite.TokenType) time.Time {
	return s.ExpiresAt[key]
}

// GetUsername implements fosite.Session.
func (s *Session) GetUsername() string { return s.Username }

// GetSubject implements fosite.Session.
func (s *Session) GetSubject() string { return s.Subject }

// SetSubject lets fosite's password grant record the authenticated user.
func (s *Session) SetSubject(subject string) {
	s.Subject = subject
	s.IDTokenClaims().Subject = subject
}

// Clone implements fosite.Session with a deep copy.
func (s *Session) Clone() fosite.Session {
	if s == nil {
		return nil
	}
	c := *s
	if s.Claims != nil {
		claims := *s.Claims
		claims.Audience = slices.Clone(s.Claims.Audience)
		claims.AuthenticationMethodsReferences = slices.Clone(s.Claims.AuthenticationMethodsReferences)
		claims.Extra = maps.Clone(s.Claims.Extra)
		c.Claims = &claims
	}
	if s.Headers != nil {
		c.Headers = &jwt.Headers{Extra: maps.Clone(s.Headers.Extra)}
	}
	c.ExpiresAt = maps.Clone(s.ExpiresAt)
	return &c
}

// signingAlg returns the algorithm chosen for this session's ID tokens.
func (s *Session) signingAlg() string {
	if alg, ok := s.IDTokenHeaders().Get("alg").(string); ok && alg != "" {
		return alg
	}
	return AlgRS256
}
