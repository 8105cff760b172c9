// Package federation signs people in through upstream identity providers:
// Google, GitHub, Facebook (goth's providers) and one generic OpenID
// Connect provider (goth's openidConnect, found by discovery).
//
// It uses goth's providers directly (BeginAuth for the authorization URL,
// FetchUser for the profile), never gothic: Torii makes the upstream state
// itself (256 bits), keeps the flow server-side (storage.FederationFlow,
// single use, any node can finish it), and binds it to the browser with a
// cookie holding an HMAC of the state under the server secret
// "federation". It adds PKCE (S256) to every provider and a nonce to the
// OpenID Connect ones, and verifies their ID tokens with go-oidc
// (signature against the upstream JWKS, iss, aud, exp, nonce): goth v1.82's
// openidConnect provider does neither. GitHub's email is the primary
// verified address of /user/emails, never the public profile's.
//
// The package knows no pages: login mounts the routes and turns a Result
// or an error (see Kind) into a sign-in or a page.
package federation

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/markbates/goth"
	"golang.org/x/oauth2"

	"github.com/torii-idp/torii/storage"
)

// Provider names: the path segment of /login/federated/{name} and the
// value of the ID token's idp claim.
const (
	Google   = "google"
	GitHub   = "github"
	Facebook = "facebook"
	OIDC     = "oidc"
)

// Names lists the providers in the order their buttons are shown.
var Names = []string{Google, GitHub, Facebook, OIDC}

// Credentials are an OAuth client registered at a provider. A provider is
// configured when ClientID is set.
type Credentials struct {
	ClientID     string
	ClientSecret string
}

// Config configures the providers. The zero value of each optional field is
// documented on it.
type Config struct {
	// Issuer is Torii's public base URL; callbacks are
	// Issuer + "/login/federated/{name}/callback".
	Issuer   string
	Google   Credentials
	Facebook Credentials
	GitHub   Credentials
	// GitHubURL is GitHub's base URL; "" means https://github.com. Any
	// other URL is a GitHub Enterprise Server: {url}/login/oauth/… and the
	// API at {url}/api/v3.
	GitHubURL string
	// OIDC is the generic provider, found by discovery at OIDCIssuer.
	OIDC       Credentials
	OIDCIssuer string
	// OIDCName labels the generic provider's button; "" means "Single
	// sign-on".
	OIDCName string
	// HTTPClient makes every upstream call; nil means a client with
	// Timeout. Tests route it to fake providers.
	HTTPClient *http.Client
	// PictureClient fetches profile pictures; nil means a client that
	// reaches public addresses only (a profile names the URL). Tests route
	// it to fakes.
	PictureClient *http.Client
	// Timeout bounds each upstream call; 0 means 10 seconds.
	Timeout time.Duration
	// FlowLifetime bounds a trip to the provider and a pending link; 0
	// means 10 minutes.
	FlowLifetime time.Duration
	// Now returns the current time (ID token expiry); nil means time.Now.
	Now func() time.Time
}

// Configured reports whether any provider is configured.
func (c Config) Configured() bool {
	return c.Google.ClientID != "" || c.GitHub.ClientID != "" || c.Facebook.ClientID != "" || c.OIDC.ClientID != ""
}

// CallbackPath is the path of provider name's callback.
func CallbackPath(name string) string { return "/login/federated/" + name + "/callback" }

// StartPath is the path that starts a sign-in through provider name.
func StartPath(name string) string { return "/login/federated/" + name }

// Identity is who the provider says the person is.
type Identity struct {
	// Provider is the provider's name (Google, GitHub, …); Subject its
	// stable ID for the person (never the email).
	Provider, Subject string
	// Email is the address the provider gave ("" for none);
	// EmailVerified is true only when the provider vouches for it (see
	// the package doc).
	Email         string
	EmailVerified bool
	Name          string
	Picture       string
}

// Result is a finished trip: the flow Torii began and the identity.
type Result struct {
	Flow     *storage.FederationFlow
	Identity Identity
}

// Kind tells why a flow failed; login shows a page per kind.
type Kind int

// Failure kinds.
const (
	// KindState: the state is missing, unknown, used, expired, from
	// another browser or for another provider.
	KindState Kind = iota + 1
	// KindCancelled: the person said no (error=access_denied).
	KindCancelled
	// KindProvider: the provider answered an error.
	KindProvider
	// KindUnreachable: the provider did not answer (in time).
	KindUnreachable
	// KindExchange: the code exchange failed.
	KindExchange
	// KindProfile: the profile could not be read (or lacks a subject).
	KindProfile
	// KindIDToken: the ID token is invalid (signature, iss, aud, exp,
	// nonce).
	KindIDToken
)

// Error is a failed flow. Its message names the kind and the cause for the
// logs; never a token, code or secret.
type Error struct {
	Kind Kind
	Err  error
}

func (e *Error) Error() string {
	names := map[Kind]string{KindState: "bad state", KindCancelled: "cancelled", KindProvider: "provider error",
		KindUnreachable: "provider unreachable", KindExchange: "code exchange failed", KindProfile: "profile failed",
		KindIDToken: "invalid id token"}
	if e.Err == nil {
		return "federation: " + names[e.Kind]
	}
	return "federation: " + names[e.Kind] + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

func fail(k Kind, err error) error { return &Error{Kind: k, Err: err} }

// KindOf returns err's Kind, or 0 when err is no *Error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// ErrUnknownProvider is returned for a provider that is not configured.
var ErrUnknownProvider = errors.New("federation: unknown provider")

// Service runs the flows. It is safe for concurrent use.
type Service struct {
	cfg    Config
	store  *storage.Store
	key    []byte
	client *http.Client
	// pictures fetches profile pictures (Picture).
	pictures *http.Client
	ups      map[string]*upstream
}

// New builds the configured providers. The generic provider's discovery
// runs at its first use (and again until it succeeds), so that Torii
// starts while the provider is away.
func New(ctx context.Context, cfg Config, store *storage.Store) (*Service, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.FlowLifetime <= 0 {
		cfg.FlowLifetime = 10 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.OIDCName == "" {
		cfg.OIDCName = "Single sign-on"
	}
	s := &Service{cfg: cfg, store: store, ups: map[string]*upstream{}}
	s.client = cfg.HTTPClient
	if s.client == nil {
		s.client = &http.Client{Timeout: cfg.Timeout}
	} else if s.client.Timeout == 0 || s.client.Timeout > cfg.Timeout {
		c := *s.client
		c.Timeout = cfg.Timeout
		s.client = &c
	}
	s.pictures = cfg.PictureClient
	if s.pictures == nil {
		s.pictures = pictureClient(cfg.Timeout)
	}
	if cfg.Google.ClientID != "" {
		s.ups[Google] = s.google()
	}
	if cfg.GitHub.ClientID != "" {
		u, err := s.github()
		if err != nil {
			return nil, err
		}
		s.ups[GitHub] = u
	}
	if cfg.Facebook.ClientID != "" {
		s.ups[Facebook] = s.facebook()
	}
	if cfg.OIDC.ClientID != "" {
		s.ups[OIDC] = s.generic()
	}
	if len(s.ups) > 0 {
		var err error
		if s.key, err = store.Secret(ctx, "federation"); err != nil {
			return nil, fmt.Errorf("federation: load key: %w", err)
		}
	}
	return s, nil
}

// Button is a configured provider as its sign-in button shows it.
type Button struct {
	Name  string // google, github, facebook, oidc
	Label string // "Google", …, or Config.OIDCName
}

// Buttons lists the configured providers in a fixed order.
func (s *Service) Buttons() []Button {
	if s == nil {
		return nil
	}
	var bs []Button
	for _, n := range Names {
		if u, ok := s.ups[n]; ok {
			bs = append(bs, Button{Name: n, Label: u.label})
		}
	}
	return bs
}

// Label returns provider name's display name ("" when not configured).
func (s *Service) Label(name string) string {
	if s == nil {
		return ""
	}
	if u, ok := s.ups[name]; ok {
		return u.label
	}
	return ""
}

// Configured reports whether provider name is configured.
func (s *Service) Configured(name string) bool {
	if s == nil {
		return false
	}
	_, ok := s.ups[name]
	return ok
}

// upstream is one configured provider.
type upstream struct {
	name, label string
	// setup returns goth's provider and the token endpoint (for the PKCE
	// exchange), running discovery first when needed.
	setup func(ctx context.Context) (*ready, error)
	// oidc: the provider issues ID tokens; a nonce is sent and the ID
	// token verified.
	oidc bool
}

// ready is a provider set up for a flow.
type ready struct {
	goth     goth.Provider
	oauth    *oauth2.Config
	verifier *oidc.IDTokenVerifier // nil unless oidc
	// profile reads the identity after the exchange.
	profile func(ctx context.Context, tok *oauth2.Token, idt *oidc.IDToken) (Identity, error)
}

// stateBytes is the entropy of the state, the nonce and the PKCE verifier.
const stateBytes = 32

func random() string {
	b := make([]byte, stateBytes)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashState(state string) string {
	sum := sha256.Sum256([]byte(state))
	return hex.EncodeToString(sum[:])
}

// binding is the browser cookie's value for state: HMAC-SHA256 under the
// server key, so only the browser that began the flow holds it.
func (s *Service) binding(state string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("federation-state\x00" + state))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Start is a flow begun: send the browser to URL with the cookie value
// Binding (login sets it as the federation cookie).
type Start struct {
	URL     string
	Binding string
}

// Begin starts a trip to provider name for purpose (storage.FlowLogin,
// or storage.FlowLink with userID), remembering the pending authorization
// request requestID ("" for none). The state is Torii's own, never taken
// from the request.
func (s *Service) Begin(ctx context.Context, name, purpose, requestID, userID string) (*Start, error) {
	u, ok := s.ups[name]
	if !ok {
		return nil, ErrUnknownProvider
	}
	rd, err := u.setup(ctx)
	if err != nil {
		return nil, err
	}
	state, verifier := random(), oauth2.GenerateVerifier()
	sess, err := rd.goth.BeginAuth(state)
	if err != nil {
		return nil, fail(KindProvider, err)
	}
	authURL, err := sess.GetAuthURL()
	if err != nil {
		return nil, fail(KindProvider, err)
	}
	au, err := url.Parse(authURL)
	if err != nil {
		return nil, fail(KindProvider, err)
	}
	q := au.Query()
	q.Set("state", state)
	q.Set("code_challenge", oauth2.S256ChallengeFromVerifier(verifier))
	q.Set("code_challenge_method", "S256")
	flow := &storage.FederationFlow{StateHash: hashState(state), Provider: name, Purpose: purpose, RequestID: requestID,
		UserID: userID, Verifier: verifier, ExpiresAt: s.cfg.Now().Add(s.cfg.FlowLifetime)}
	if u.oidc {
		flow.Nonce = random()
		q.Set("nonce", flow.Nonce)
	}
	au.RawQuery = q.Encode()
	if err := s.store.CreateFederationFlow(ctx, flow); err != nil {
		return nil, fmt.Errorf("federation: begin: %w", err)
	}
	return &Start{URL: au.String(), Binding: s.binding(state)}, nil
}

// Finish ends a trip at provider name's callback with its query and the
// browser's federation cookie (binding). It checks the state (known,
// unused, this provider's, this browser's) and takes the flow before
// anything else, so a state works once; then the provider's error, the
// code exchange (with the PKCE verifier), the ID token and the profile.
// Failures are *Error; once the flow is taken, the Result holding it (its
// pending request) comes with the error, without an Identity.
func (s *Service) Finish(ctx context.Context, name string, query url.Values, binding string) (*Result, error) {
	u, ok := s.ups[name]
	if !ok {
		return nil, ErrUnknownProvider
	}
	state := query.Get("state")
	if state == "" || len(state) > 256 || len(query["state"]) != 1 {
		return nil, fail(KindState, errors.New("no state"))
	}
	if binding == "" || !hmac.Equal([]byte(binding), []byte(s.binding(state))) {
		return nil, fail(KindState, errors.New("state not bound to this browser"))
	}
	flow, err := s.store.TakeFederationFlow(ctx, hashState(state))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fail(KindState, errors.New("unknown, used or expired state"))
	} else if err != nil {
		return nil, fmt.Errorf("federation: finish: %w", err)
	}
	if flow.Provider != name || (flow.Purpose != storage.FlowLogin && flow.Purpose != storage.FlowLink) {
		return &Result{Flow: flow}, fail(KindState, errors.New("state of another provider"))
	}
	if e := query.Get("error"); e != "" {
		if e == "access_denied" {
			return &Result{Flow: flow}, fail(KindCancelled, nil)
		}
		return &Result{Flow: flow}, fail(KindProvider, fmt.Errorf("error %q", clip(e)))
	}
	code := query.Get("code")
	if code == "" {
		return &Result{Flow: flow}, fail(KindProvider, errors.New("no code"))
	}
	rd, err := u.setup(ctx)
	if err != nil {
		return &Result{Flow: flow}, err
	}
	cctx := oidc.ClientContext(ctx, s.client)
	tok, err := rd.oauth.Exchange(cctx, code, oauth2.VerifierOption(flow.Verifier))
	if err != nil {
		return &Result{Flow: flow}, upstreamErr(KindExchange, err)
	}
	var idt *oidc.IDToken
	if rd.verifier != nil {
		raw, _ := tok.Extra("id_token").(string)
		if raw == "" {
			return &Result{Flow: flow}, fail(KindIDToken, errors.New("no id_token"))
		}
		if idt, err = rd.verifier.Verify(cctx, raw); err != nil {
			return &Result{Flow: flow}, upstreamErr(KindIDToken, err)
		}
		if !hmac.Equal([]byte(idt.Nonce), []byte(flow.Nonce)) {
			return &Result{Flow: flow}, fail(KindIDToken, errors.New("nonce mismatch"))
		}
	}
	id, err := rd.profile(cctx, tok, idt)
	if err != nil {
		return &Result{Flow: flow}, upstreamErr(KindProfile, err)
	}
	if idt != nil && id.Subject != idt.Subject {
		return &Result{Flow: flow}, fail(KindProfile, errors.New("profile subject is not the id token's"))
	}
	if id.Subject == "" || len(id.Subject) > 255 {
		return &Result{Flow: flow}, fail(KindProfile, errors.New("no subject"))
	}
	id.Provider = name
	return &Result{Flow: flow, Identity: id}, nil
}

// upstreamErr tells a provider that did not answer (in time) from one that
// answered wrongly.
//
// The error keeps nothing an upstream may have put in it that must not be
// logged: a URL loses its query (goth sends Google's and Facebook's access
// token there) and a token endpoint's answer is reduced to its status and
// error code.
func upstreamErr(k Kind, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		u := ue.URL
		if i := strings.IndexAny(u, "?#"); i >= 0 {
			u = u[:i]
		}
		kind := KindUnreachable
		if !ue.Timeout() && !isNetError(ue.Err) {
			kind = k
		}
		return fail(kind, fmt.Errorf("%s %s: %w", ue.Op, u, scrub(ue.Err)))
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		return fail(k, fmt.Errorf("token endpoint answered %d %q", status, clip(re.ErrorCode)))
	}
	return fail(k, err)
}

// isNetError reports whether err is a connection-level failure.
func isNetError(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// scrub keeps an inner error's text only when it cannot hold a URL.
func scrub(err error) error {
	if err == nil || !strings.Contains(err.Error(), "://") {
		return err
	}
	return errors.New("request failed")
}

// clip keeps an upstream's error code fit for a log line.
func clip(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}

// once caches a setup that succeeded (the generic provider's discovery);
// a failed one is tried again at the next flow.
type once struct {
	mu sync.Mutex
	rd *ready
}

func (o *once) get(ctx context.Context, f func(ctx context.Context) (*ready, error)) (*ready, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.rd != nil {
		return o.rd, nil
	}
	rd, err := f(ctx)
	if err != nil {
		return nil, err
	}
	o.rd = rd
	return rd, nil
}

// PendingLink keeps res's identity waiting for proof that its person owns
// the account userID (an account with the identity's email), for
// FlowLifetime, and returns the token the browser keeps for it (a cookie).
func (s *Service) PendingLink(ctx context.Context, res *Result, userID string) (string, error) {
	token := random()
	f := &storage.FederationFlow{StateHash: hashState(token), Provider: res.Identity.Provider, Purpose: storage.FlowPendingLink,
		RequestID: res.Flow.RequestID, UserID: userID, Subject: res.Identity.Subject, Email: res.Identity.Email,
		ExpiresAt: s.cfg.Now().Add(s.cfg.FlowLifetime)}
	if err := s.store.CreateFederationFlow(ctx, f); err != nil {
		return "", fmt.Errorf("federation: pending link: %w", err)
	}
	return token, nil
}

// PendingLinkOf returns the live pending link of token, without taking it,
// and the binding its one-time code is bound to; ErrNotFound (wrapped)
// when there is none.
func (s *Service) PendingLinkOf(ctx context.Context, token string) (*storage.FederationFlow, string, error) {
	if token == "" || len(token) > 64 {
		return nil, "", fmt.Errorf("federation: pending link: %w", storage.ErrNotFound)
	}
	f, err := s.store.FederationFlow(ctx, hashState(token))
	if err == nil && f.Purpose != storage.FlowPendingLink {
		err = storage.ErrNotFound
	}
	if err != nil {
		return nil, "", fmt.Errorf("federation: pending link: %w", err)
	}
	return f, "fedlink:" + f.StateHash, nil
}

// TakePendingLink takes the pending link of token (once).
func (s *Service) TakePendingLink(ctx context.Context, token string) (*storage.FederationFlow, error) {
	f, err := s.store.TakeFederationFlow(ctx, hashState(token))
	if err == nil && f.Purpose != storage.FlowPendingLink {
		err = storage.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("federation: pending link: %w", err)
	}
	return f, nil
}
