// Package provider is Torii's OAuth 2.0 and OpenID Connect protocol layer:
// fosite composed with Torii's storage, signing keys and token formats, and
// the HTTP endpoints /oauth2/auth, /oauth2/token, /oauth2/introspect,
// /oauth2/revoke, /userinfo, discovery and JWKS.
//
// The provider knows nothing of login pages: it asks a Browser who is signed
// in, and sends the browser to the login or consent page (by URL) when it
// needs a person.
package provider

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/hmac"

	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/templates"
)

// Config is the provider's part of Torii's configuration. Zero durations
// pick the documented defaults.
type Config struct {
	// Issuer is the public base URL, e.g. https://id.example.com. Every
	// endpoint lives under it and it is the "iss" of every token.
	Issuer string
	// Brand is the operator's branding of the error pages (the login
	// pages' own); the zero value is Torii's look.
	Brand templates.Brand
	// DefaultLanguage is the error pages' language when neither the
	// request's ui_locales, the pages' language cookie nor
	// Accept-Language names one of templates.Languages; "" means "en".
	DefaultLanguage string
	// AccessTokenLifetime defaults to 1 hour.
	AccessTokenLifetime time.Duration
	// RefreshTokenLifetime is the absolute lifetime of a refresh token
	// family, counted from the grant; rotation does not extend it. Default
	// 30 days.
	RefreshTokenLifetime time.Duration
	// IDTokenLifetime defaults to 1 hour.
	IDTokenLifetime time.Duration
	// CodeLifetime is the authorization code lifetime: default and maximum
	// 10 minutes.
	CodeLifetime time.Duration
	// LoginLifetime bounds how long a pending authorization request waits
	// for the user to sign in and consent. Default 30 minutes.
	LoginLifetime time.Duration
	// SecondFactor is true when every sign-in needs the one-time-code step
	// (TORII_OTP=always). A right password at the password grant then
	// answers mfa_required, and the tokens come only with the code
	// (GrantTypeMFAOTP); so does a password grant with acr_values=mfa.
	SecondFactor bool
	// CodeStepLifetime bounds the password grant's pending code step (its
	// mfa_token): the one-time codes' lifetime, default 10 minutes.
	CodeStepLifetime time.Duration
	// Keys tunes signing-key handling.
	Keys KeysConfig
}

func (c *Config) setDefaults() error {
	u, err := url.Parse(c.Issuer)
	if err != nil || !u.IsAbs() || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("provider: issuer %q must be an absolute http(s) URL without query or fragment", c.Issuer)
	}
	c.Issuer = strings.TrimSuffix(c.Issuer, "/")
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.AccessTokenLifetime, time.Hour)
	def(&c.CodeStepLifetime, 10*time.Minute)
	def(&c.RefreshTokenLifetime, 30*24*time.Hour)
	def(&c.IDTokenLifetime, time.Hour)
	def(&c.CodeLifetime, 10*time.Minute)
	def(&c.LoginLifetime, 30*time.Minute)
	if c.CodeLifetime > 10*time.Minute {
		return errors.New("provider: authorization codes may live at most 10 minutes")
	}
	for name, d := range map[string]time.Duration{"access token": c.AccessTokenLifetime, "refresh token": c.RefreshTokenLifetime,
		"ID token": c.IDTokenLifetime, "code": c.CodeLifetime, "login": c.LoginLifetime} {
		if d < 0 {
			return fmt.Errorf("provider: %s lifetime must be positive", name)
		}
	}
	if c.Keys.Retain == 0 {
		// Old keys verify the longest-lived token they signed, plus a day
		// for relying parties' JWKS caches.
		c.Keys.Retain = max(c.IDTokenLifetime, c.AccessTokenLifetime) + 24*time.Hour
	}
	return nil
}

// Accounts checks resource owners' credentials for the password grant and
// looks users up for ID token and userinfo claims. login/account implements
// it.
type Accounts interface {
	// Authenticate returns the user with these credentials, applying the same
	// lockout and limits as the login page. Errors for which
	// IsCredentialError is true are wrong credentials; others are faults.
	Authenticate(ctx context.Context, login, password string) (*storage.User, error)
}

// FailureLimiter bounds the failed token requests of one client, so that
// codes, refresh tokens and passwords cannot be guessed at the token
// endpoint at will. cmd/torii wires a per-IP login/iplimit.Failures.
type FailureLimiter interface {
	// Wait reports how long r's client must wait before its next token
	// request: zero while it may make one. It runs first on every token
	// request, successful ones included, so it must be cheap.
	Wait(r *http.Request) time.Duration
	// Failed counts one failed token request (invalid_grant) of r's client.
	Failed(r *http.Request)
}

// Deps are the provider's collaborators.
type Deps struct {
	Store    *storage.Store
	Browser  Browser
	Accounts Accounts
	// IsCredentialError tells credential failures from faults in errors
	// returned by Accounts.Authenticate.
	IsCredentialError func(error) bool
	// TokenFailures limits the token requests of a client that failed
	// with invalid_grant too often: it gets 429 with Retry-After.
	TokenFailures FailureLimiter
	// CodeStep sends and checks the password grant's one-time codes.
	CodeStep CodeStep
	// Observer counts tokens, reuse and signatures (metrics); nil for none.
	Observer Observer
	Logger   *slog.Logger
}

// Provider serves the OAuth 2.0 and OpenID Connect endpoints.
type Provider struct {
	cfg     Config
	store   *storage.Store
	browser Browser
	log     *slog.Logger
	keys    *Keys
	signer  *signer
	oauth2  fosite.OAuth2Provider
	tokens  *tokenStrategy
	clients *Clients
	pages   *templates.Localized

	observer      Observer
	tokenFailures FailureLimiter
	codes         CodeStep

	discovery        []byte
	discoveryETag    []string
	jwksCacheControl []string
	cookieSecure     bool
}

// New builds the provider. It loads (and on first start creates) the server
// secrets and signing keys from the database.
func New(ctx context.Context, cfg Config, deps Deps) (*Provider, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if deps.Store == nil || deps.Browser == nil || deps.Accounts == nil || deps.IsCredentialError == nil || deps.TokenFailures == nil ||
		deps.CodeStep == nil {
		return nil, errors.New("provider: Store, Browser, Accounts, IsCredentialError, TokenFailures and CodeStep are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	var observer Observer = noObserver{}
	if deps.Observer != nil {
		observer = deps.Observer
	}
	globalSecret, err := deps.Store.Secret(ctx, "fosite-global")
	if err != nil {
		return nil, err
	}
	clients, err := NewClients(ctx, deps.Store)
	if err != nil {
		return nil, err
	}
	pages, err := templates.LocalizedPages(cfg.Brand)
	if err != nil {
		return nil, fmt.Errorf("provider: %w", err)
	}
	keys := NewKeys(deps.Store, cfg.Keys)
	if err := keys.Ensure(ctx); err != nil {
		return nil, err
	}
	p := &Provider{
		cfg:          cfg,
		store:        deps.Store,
		browser:      deps.Browser,
		log:          deps.Logger,
		keys:         keys,
		signer:       &signer{keys: keys, observer: observer},
		observer:     observer,
		clients:      clients,
		pages:        pages,
		cookieSecure: strings.HasPrefix(cfg.Issuer, "https://"),

		tokenFailures: deps.TokenFailures,
		codes:         deps.CodeStep,
	}

	fcfg := &fosite.Config{
		AccessTokenLifespan:            cfg.AccessTokenLifetime,
		RefreshTokenLifespan:           cfg.RefreshTokenLifetime,
		IDTokenLifespan:                cfg.IDTokenLifetime,
		AuthorizeCodeLifespan:          cfg.CodeLifetime,
		IDTokenIssuer:                  cfg.Issuer,
		AccessTokenIssuer:              cfg.Issuer,
		TokenURL:                       cfg.Issuer + "/oauth2/token",
		GlobalSecret:                   globalSecret,
		ScopeStrategy:                  fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:       fosite.DefaultAudienceMatchingStrategy,
		EnforcePKCE:                    false, // decided per client in authorize
		EnforcePKCEForPublicClients:    true,
		EnablePKCEPlainChallengeMethod: false,
		SendDebugMessagesToClients:     false,
		MinParameterEntropy:            fosite.MinParameterEntropy,
		RefreshTokenScopes:             []string{"offline_access"},
		AllowedPromptValues:            []string{"login", "none", "consent", "select_account"},
		ClientSecretsHasher:            clients.hasher,
		ClientAuthenticationStrategy:   clients.authenticate,
		OmitRedirectScopeParam:         true,
	}
	p.tokens = &tokenStrategy{
		hmac:   oauth2.NewHMACSHAStrategyUnPrefixed(&hmac.HMACStrategy{Config: fcfg}, fcfg),
		signer: p.signer,
		issuer: cfg.Issuer,
	}
	strategy := compose.CommonStrategy{
		CoreStrategy:               p.tokens,
		OpenIDConnectTokenStrategy: &idTokenStrategy{DefaultStrategy: openid.DefaultStrategy{Signer: p.signer, Config: fcfg}},
		Signer:                     p.signer,
	}
	fstore := &fositeStore{Store: deps.Store, accounts: deps.Accounts, isCredentialError: deps.IsCredentialError, secondFactor: cfg.SecondFactor}
	p.oauth2 = compose.Compose(fcfg, fstore, strategy,
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2ClientCredentialsGrantFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OAuth2ResourceOwnerPasswordCredentialsFactory,
		compose.OAuth2TokenRevocationFactory,
		compose.OAuth2TokenIntrospectionFactory,
		compose.OAuth2PKCEFactory,
		compose.OpenIDConnectExplicitFactory,
		compose.OpenIDConnectRefreshFactory,
	)
	var mfa *mfaGrant
	for i, h := range fcfg.TokenEndpointHandlers {
		switch h := h.(type) {
		case *oauth2.ResourceOwnerPasswordCredentialsGrantHandler:
			// The password grant's second step issues tokens as it does.
			mfa = &mfaGrant{p: p, helper: h.HandleHelper, refresh: h.RefreshTokenStrategy, store: fstore,
				idTokens: strategy.OpenIDConnectTokenStrategy, scopes: fcfg.ScopeStrategy}
		}
		if _, ok := h.(*oauth2.ClientCredentialsGrantHandler); ok {
			h = clientCredentialsClients{h}
		}
		fcfg.TokenEndpointHandlers[i] = skipForeign{h}
	}
	if mfa == nil {
		return nil, errors.New("provider: fosite composed no password grant handler")
	}
	fcfg.TokenEndpointHandlers = append(fcfg.TokenEndpointHandlers, skipForeign{mfa})
	if p.discovery, err = p.discoveryDocument(); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(p.discovery)
	p.discoveryETag = []string{`"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`}
	p.jwksCacheControl = []string{"no-cache"}
	if d := keys.CacheLifetime(); d > 0 {
		p.jwksCacheControl = []string{fmt.Sprintf("public, max-age=%d", int(d/time.Second))}
	}
	return p, nil
}

// Clients returns the provider's client registry.
func (p *Provider) Clients() *Clients { return p.clients }

// Keys returns the provider's signing keys.
func (p *Provider) Keys() *Keys { return p.keys }

// Routes mounts the protocol endpoints on r.
func (p *Provider) Routes(r *mux.Router) {
	r.HandleFunc("/oauth2/auth", cacheReads(p.authorize)).Methods("GET", "POST")
	r.HandleFunc(ResumePath, cacheReads(p.resume)).Methods("GET")
	r.HandleFunc("/oauth2/token", cacheReads(p.token)).Methods("POST")
	r.HandleFunc("/oauth2/token", p.preflight("POST")).Methods("OPTIONS")
	r.HandleFunc(MFAChallengePath, cacheReads(p.mfaChallenge)).Methods("POST")
	r.HandleFunc("/oauth2/introspect", cacheReads(p.introspect)).Methods("POST")
	r.HandleFunc("/oauth2/revoke", p.corsAnyClient(cacheReads(p.revoke))).Methods("POST")
	r.HandleFunc("/oauth2/revoke", p.preflight("POST")).Methods("OPTIONS")
	r.HandleFunc("/userinfo", p.corsAnyClient(cacheReads(p.userinfo))).Methods("GET", "POST")
	r.HandleFunc("/userinfo", p.preflight("GET, POST")).Methods("OPTIONS")
	r.HandleFunc(EndSessionPath, p.endSession).Methods("GET", "POST")
	r.HandleFunc("/.well-known/openid-configuration", p.serveDiscovery).Methods("GET", "HEAD")
	r.HandleFunc("/.well-known/jwks.json", p.serveJWKS).Methods("GET", "HEAD")
}

// fositeStore is the storage fosite sees: Torii's store plus the password
// grant's Authenticate.
type fositeStore struct {
	*storage.Store
	accounts          Accounts
	isCredentialError func(error) bool
	secondFactor      bool
}

var _ oauth2.ResourceOwnerPasswordCredentialsGrantStorage = (*fositeStore)(nil)

// codeStepAskedKey marks the context of a password grant whose request
// asked for the code step (acr_values=mfa).
type codeStepAskedKey struct{}

// Authenticate implements the password grant's credential check. Every
// credential failure (unknown user, wrong password, locked account) looks
// the same to the client: invalid_grant. The password is checked through
// the same admission as the sign-in page's (Accounts.Authenticate).
func (s *fositeStore) Authenticate(ctx context.Context, login, password string) (string, error) {
	u, err := s.accounts.Authenticate(ctx, login, password)
	if err != nil {
		if s.isCredentialError(err) {
			return "", fosite.ErrNotFound
		}
		return "", err
	}
	if !u.EmailVerified {
		// An unverified account gets no tokens: the same answer as a
		// wrong password.
		return "", fosite.ErrNotFound
	}
	if asked, _ := ctx.Value(codeStepAskedKey{}).(bool); s.secondFactor || asked {
		// While the code step applies (TORII_OTP=always, or acr_values=mfa
		// on the request) a right password never issues tokens: the token
		// endpoint answers mfa_required and sends a code.
		return "", &codeStepNeeded{user: u}
	}
	return u.ID, nil
}

// skipForeign keeps fosite from asking a token endpoint handler to
// populate the response of a grant it does not handle. fosite asks every
// handler, and each one that declines answers with an error carrying a
// stack trace: on the token path that cost more than the client lookup.
// The handlers check the same CanHandleTokenEndpointRequest first
// themselves, so the answer is the same.
type skipForeign struct{ fosite.TokenEndpointHandler }

func (h skipForeign) PopulateTokenEndpointResponse(ctx context.Context, req fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, req) {
		return fosite.ErrUnknownRequest
	}
	return h.TokenEndpointHandler.PopulateTokenEndpointResponse(ctx, req, resp)
}

// clientCredentialsClients refuses the client_credentials grant, with
// unauthorized_client (RFC 6749 §5.2), to a client that may not use it: a
// public client, whatever its stored grant types say, and a client without
// the grant. fosite's handler says invalid_grant to a public client, and
// unauthorized_client to a confidential one only when it populates the
// response.
type clientCredentialsClients struct{ fosite.TokenEndpointHandler }

func (h clientCredentialsClients) HandleTokenEndpointRequest(ctx context.Context, req fosite.AccessRequester) error {
	if c := req.GetClient(); c != nil && h.CanHandleTokenEndpointRequest(ctx, req) {
		switch {
		case c.IsPublic():
			return fosite.ErrUnauthorizedClient.WithHint("A public client cannot use the client_credentials grant.")
		case !c.GetGrantTypes().Has("client_credentials"):
			return fosite.ErrUnauthorizedClient.WithHint("The OAuth 2.0 Client is not allowed to use authorization grant 'client_credentials'.")
		}
	}
	return h.TokenEndpointHandler.HandleTokenEndpointRequest(ctx, req)
}

// cacheReads gives each protocol request its read cache: fosite reads a
// request's client many times and an authorization code twice; the
// database answers once.
func cacheReads(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h(w, r.WithContext(storage.WithRequestCache(r.Context())))
	}
}
