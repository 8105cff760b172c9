// Package api is Torii's JSON door into login/account for single-page and
// mobile apps and scripts: the self-service account API under /api/v1.
// It implements no rule of its own: every check (passwords, lockout, codes,
// send limits, registration without enumeration) is login/account's, as on
// the pages.
//
// Routes (see Routes):
//
//	POST   /api/v1/register               {email, password, username?, name?} → 202 {ticket}
//	POST   /api/v1/register/verify        {ticket, code} → 200
//	POST   /api/v1/register/resend        {ticket} → 202 {ticket}
//	POST   /api/v1/password/forgot        {email} → 202
//	POST   /api/v1/password/reset         {token, new_password} → 204
//	GET    /api/v1/account                the caller's account
//	PATCH  /api/v1/account                {name?, username?, bio?}
//	POST   /api/v1/account/password       {current_password, new_password} → 204
//	GET    /api/v1/account/sessions       signed-in browsers
//	DELETE /api/v1/account/sessions/{id}  → 204
//	GET    /api/v1/account/devices        remembered devices (no code asked)
//	DELETE /api/v1/account/devices/{id}   → 204 (forget the device)
//	GET    /api/v1/account/applications   applications the user allowed
//	DELETE /api/v1/account/applications/{client_id} → 204
//	POST   /api/v1/account/logout         {refresh_token?, all?} → 204
//	PUT    /api/v1/account/picture        the image, or multipart field file
//	DELETE /api/v1/account/picture        → 204
//	POST   /api/v1/account/phone          {phone_number} → 202, a code is texted
//	POST   /api/v1/account/phone/verify   {code} → 200
//	POST   /api/v1/account/email          {email} → 202, a code is mailed
//	POST   /api/v1/account/email/verify   {code} → 200
//	DELETE /api/v1/account                {password} → 204 (deactivates)
//
// The /account routes need a bearer access token of the user with scope
// "account". Errors are RFC 9457 problem details.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/torii-idp/torii/login/account"
	"github.com/torii-idp/torii/login/iplimit"
	"github.com/torii-idp/torii/provider"
	"github.com/torii-idp/torii/storage"
)

// Prefix is where the API lives.
const Prefix = "/api/v1"

// ScopeAccount is the scope an access token needs for the account routes.
const ScopeAccount = "account"

// Config configures the API. Zero limits pick the pages' defaults.
type Config struct {
	// Issuer is Torii's public base URL (pictures' URLs are built on it).
	Issuer string
	// IPRateLimit bounds the requests of one client IP to the public
	// routes; zero means 60 per minute. Per node unless Deps.Limits is set.
	IPRateLimit iplimit.Limit
	// IPFailureLimit bounds the failed attempts (wrong code or password,
	// bad link) of one client IP; zero means 50 per 15 minutes. Per node
	// unless Deps.Limits is set.
	IPFailureLimit iplimit.Limit
	// TrustedProxies are the reverse proxies whose X-Forwarded-For header
	// names the client.
	TrustedProxies []netip.Prefix
	// CursorKey signs the admin user listing's cursors (HMAC-SHA256), so
	// that a client can neither forge nor alter one. Every node serving
	// the admin API must share it; at least 32 bytes when the admin API
	// is served.
	CursorKey []byte
}

// Tokens is what the API needs of the provider: checking the caller's
// access token, and revoking grants. *provider.Provider implements it.
type Tokens interface {
	VerifyAccessToken(ctx context.Context, token string) (*provider.AccessToken, error)
	// OriginRegistered reports whether some client registered a browser
	// origin (CORS).
	OriginRegistered(ctx context.Context, origin string) bool
	RevokeGrant(ctx context.Context, grantID string) error
	RevokeGrantOf(ctx context.Context, subject, refreshToken string) error
}

// Deps are the API's collaborators.
type Deps struct {
	Accounts *account.Service
	Tokens   Tokens
	// Admin is the provider's admin side, for AdminRoutes; nil when the
	// admin API is off.
	Admin Admin
	// Logger gets one line per refused or failed request; nil discards.
	// Tokens, passwords and codes are never logged.
	Logger *slog.Logger
	// Limits, when set, keeps the per-IP request and failure budgets,
	// shared by every node on it; nil keeps them in this node's memory.
	Limits iplimit.Shared
}

// Handler serves the API. It is safe for concurrent use.
type Handler struct {
	cfg      Config
	accounts *account.Service
	tokens   Tokens
	// adminDeps and cursorKey serve the admin API.
	adminDeps Admin
	cursorKey []byte
	log       *slog.Logger
	requests  *iplimit.Limiter
	failures  *iplimit.Failures
	proxies   iplimit.Proxies
}

// New returns the API handler.
func New(cfg Config, deps Deps) (*Handler, error) {
	if deps.Accounts == nil || deps.Tokens == nil {
		return nil, errors.New("api: Deps.Accounts and Deps.Tokens are required")
	}
	if cfg.IPRateLimit.N <= 0 || cfg.IPRateLimit.Per <= 0 {
		cfg.IPRateLimit = iplimit.Limit{N: 60, Per: time.Minute}
	}
	if cfg.IPFailureLimit.N <= 0 || cfg.IPFailureLimit.Per <= 0 {
		cfg.IPFailureLimit = iplimit.Limit{N: 50, Per: 15 * time.Minute}
	}
	cfg.Issuer = strings.TrimSuffix(cfg.Issuer, "/")
	h := &Handler{
		cfg: cfg, accounts: deps.Accounts, tokens: deps.Tokens, adminDeps: deps.Admin, cursorKey: cfg.CursorKey, log: deps.Logger,
		requests: iplimit.New(cfg.IPRateLimit, nil),
		failures: iplimit.NewFailures(cfg.IPFailureLimit, cfg.TrustedProxies, nil),
		proxies:  cfg.TrustedProxies,
	}
	if deps.Limits != nil {
		h.requests = iplimit.NewShared("api.requests", cfg.IPRateLimit, deps.Limits, nil)
		h.failures = iplimit.NewSharedFailures("api.failures", cfg.IPFailureLimit, cfg.TrustedProxies, deps.Limits, nil)
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h, nil
}

// Routes mounts the API on r. Browser scripts of an origin some client
// registered (CORS) may call every route: preflights are answered, and
// answers carry Access-Control-Allow-Origin for that origin (never "*",
// never with credentials: the API takes bearer tokens, not cookies).
func (h *Handler) Routes(r *mux.Router) {
	preflight := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		provider.WritePreflight(w, r, h.tokens.OriginRegistered(r.Context(), r.Header.Get("Origin")), "GET, POST, PUT, PATCH, DELETE")
	})
	// Each route's path answers preflights, once; an unknown path stays
	// 404.
	preflighted := map[string]bool{}
	route := func(path, method string, handler http.Handler) {
		r.Handle(path, handler).Methods(method)
		if !preflighted[path] {
			preflighted[path] = true
			r.Handle(path, preflight).Methods(http.MethodOptions)
		}
	}
	pub := func(path, method string, fn handlerFunc) {
		route(Prefix+path, method, h.handle(h.limited(fn)))
	}
	pub("/register", http.MethodPost, h.register)
	pub("/register/verify", http.MethodPost, h.verifyRegistration)
	pub("/register/resend", http.MethodPost, h.resendVerification)
	pub("/password/forgot", http.MethodPost, h.forgotPassword)
	pub("/password/reset", http.MethodPost, h.resetPassword)

	acc := func(path, method string, fn accountFunc) {
		route(Prefix+"/account"+path, method, h.handle(h.withAccount(fn)))
	}
	acc("", http.MethodGet, h.getAccount)
	acc("", http.MethodPatch, h.patchAccount)
	acc("", http.MethodDelete, h.deleteAccount)
	acc("/password", http.MethodPost, h.changePassword)
	acc("/sessions", http.MethodGet, h.listSessions)
	acc("/sessions/{id}", http.MethodDelete, h.endSession)
	acc("/devices", http.MethodGet, h.listDevices)
	acc("/devices/{id}", http.MethodDelete, h.forgetDevice)
	acc("/applications", http.MethodGet, h.listApplications)
	acc("/applications/{client_id}", http.MethodDelete, h.revokeApplication)
	acc("/logout", http.MethodPost, h.logout)
	acc("/picture", http.MethodPut, h.putPicture)
	acc("/picture", http.MethodDelete, h.deletePicture)
	acc("/phone", http.MethodPost, h.startPhone)
	acc("/phone/verify", http.MethodPost, h.verifyPhone)
	acc("/email", http.MethodPost, h.startEmail)
	acc("/email/verify", http.MethodPost, h.verifyEmail)
	acc("/identities", http.MethodGet, h.listIdentities)
	acc("/identities/{provider}/{subject}", http.MethodDelete, h.unlinkIdentity)
}

// handlerFunc serves a request and returns what went wrong, if anything.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle adapts fn: its error becomes a problem answer, and is logged once.
func (h *Handler) handle(fn handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" {
			w.Header().Add("Vary", "Origin")
			if h.tokens.OriginRegistered(r.Context(), origin) {
				provider.AllowOrigin(w.Header(), origin)
			}
		}
		err := fn(w, r)
		if err == nil {
			return
		}
		ctx := r.Context()
		p := h.toProblem(err)
		switch {
		case ctx.Err() != nil && errors.Is(err, ctx.Err()):
			return
		case p.Status >= 500:
			h.log.ErrorContext(ctx, "api: request failed", "path", r.URL.Path, "status", p.Status, "err", err)
		default:
			h.log.InfoContext(ctx, "api: request refused", "path", r.URL.Path, "status", p.Status, "type", p.Type)
		}
		writeProblem(w, p)
	})
}

// toProblem maps an error to what the caller sees; anything unexpected is
// a generic 500 that says nothing of its cause.
func (h *Handler) toProblem(err error) *Problem {
	var (
		p  *Problem
		ve *account.ValidationError
		rl *account.RateLimitError
	)
	switch {
	case errors.As(err, &p):
		return p
	case errors.As(err, &ve):
		return invalid(FieldError{Field: apiField(ve.Field), Message: ve.Message})
	case errors.As(err, &rl):
		return tooMany(rl.RetryAfter, "Too many codes were sent; wait before asking for another.")
	case account.IsCodeFailure(err):
		return problem(http.StatusBadRequest, "invalid-code", "The code is wrong, expired or used; ask for a new one if needed.")
	case errors.Is(err, account.ErrLinkInvalid):
		return problem(http.StatusBadRequest, "invalid-link", "The link is invalid, expired or used; ask for a new one.")
	case errors.Is(err, account.ErrNotFound):
		return problem(http.StatusNotFound, "not-found", "")
	case storage.IsUnavailable(err), errors.Is(err, storage.ErrConflict):
		// The database away (however wrapped) or a lost race: a fault of
		// the moment.
		p := problem(http.StatusServiceUnavailable, "unavailable", "Try again in a moment.")
		p.retryAfter = time.Second
		return p
	}
	return problem(http.StatusInternalServerError, "internal", "")
}

// apiField names account's fields as the API's JSON does.
func apiField(f string) string {
	if f == "phone" {
		return "phone_number"
	}
	return f
}

// limited spends from the client IP's request budget, and refuses a client
// out of its failure budget: 429 with Retry-After.
func (h *Handler) limited(fn handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if wait, ok := h.requests.Take(r.Context(), h.proxies.ClientIP(r)); !ok {
			return tooMany(wait, "Too many requests from your network.")
		}
		if wait := h.failures.Wait(r); wait > 0 {
			return tooMany(wait, "Too many failed attempts from your network.")
		}
		return fn(w, r)
	}
}

// attempt admits a check that may fail (a code, a link, a password)
// against the client IP's failure budget before it runs (see
// iplimit.Limiter.Begin); done reports whether it failed.
func (h *Handler) attempt(r *http.Request) (done func(failed bool), err error) {
	done, wait, ok := h.failures.Begin(r)
	if !ok {
		return nil, tooMany(wait, "Too many failed attempts from your network.")
	}
	return done, nil
}

// caller is a request's verified access token and its user.
type caller struct {
	token *provider.AccessToken
	user  *storage.User
}

// accountFunc serves an account route for a verified caller.
type accountFunc func(w http.ResponseWriter, r *http.Request, c *caller) error

// withAccount requires a bearer access token of a user, with scope
// "account": none or an invalid one is 401, a client's own token or one
// without the scope 403 (RFC 6750 §3.1 error codes in WWW-Authenticate).
func (h *Handler) withAccount(fn accountFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		ctx := r.Context()
		tok, err := h.bearer(r)
		if err != nil {
			return err
		}
		if tok.ClientCredentials || !tok.HasScope(ScopeAccount) {
			p := problem(http.StatusForbidden, "insufficient-scope", "The access token must be a user's, with scope "+ScopeAccount+".")
			p.bearer = `Bearer realm="torii", error="insufficient_scope", scope="` + ScopeAccount + `"`
			return p
		}
		u, err := h.tokenUser(ctx, tok)
		if err != nil {
			return err
		}
		return fn(w, r, &caller{token: tok, user: u})
	}
}

// bearerToken returns the token of an "Authorization: Bearer" header.
func bearerToken(r *http.Request) (string, bool) {
	auth := r.Header.Values("Authorization")
	if len(auth) != 1 {
		return "", false
	}
	scheme, tok, ok := strings.Cut(auth[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" || len(tok) > 4096 {
		return "", false
	}
	return strings.TrimSpace(tok), true
}
