package provider

// Observer hears what the provider does, for metrics. Every argument is
// from a small fixed set (grant types, token formats, algorithms): never a
// user, client, token or secret. cmd/torii implements it with Prometheus
// counters; nil observes nothing.
type Observer interface {
	// TokenIssued counts a successful token response by grant type
	// (authorization_code, refresh_token, password, client_credentials, or
	// the password grant's code step GrantTypeMFAOTP) and the access
	// token's format (opaque or jwt).
	TokenIssued(grantType, format string)
	// RefreshReuse counts a refresh token presented again after it was
	// rotated: its whole family was revoked.
	RefreshReuse()
	// Signed counts a JWS made (ID tokens, JWT access tokens) by algorithm.
	Signed(alg string)
}

// noObserver observes nothing.
type noObserver struct{}

func (noObserver) TokenIssued(string, string) {}
func (noObserver) RefreshReuse()              {}
func (noObserver) Signed(string)              {}
