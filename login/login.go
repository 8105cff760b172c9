// Package login serves Torii's browser pages — sign-in, consent, sign-out
// and the signed-in page — and keeps browser sessions. *Handler implements
// provider.Browser, which tells the provider who is signed in.
//
// Routes (see Routes):
//
//	GET  /login?req=ID     sign-in form; req names a pending authorization request
//	POST /login            sign in; 303 to /oauth2/auth/resume?req=ID, or to /login/done
//	GET  /login/done       "You are signed in as …", with a sign-out button
//	GET  /consent?req=ID   may this client have these scopes?
//	POST /consent          allow or deny; 303 to /oauth2/auth/resume?req=ID[&deny=1]
//	POST /logout           end the session; 303 to /login
//	GET  /static/…         the stylesheet, the script (torii.js), the operator's logo and theme
//
// Every POST carries a CSRF token bound to a per-browser cookie; every page
// is sent with a strict Content-Security-Policy and no-store caching.
package login

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/torii-idp/torii/login/account"
	"github.com/torii-idp/torii/login/federation"
	"github.com/torii-idp/torii/login/iplimit"
	"github.com/torii-idp/torii/login/notify"
	"github.com/torii-idp/torii/provider"
	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/templates"
)

// Paths served besides provider.LoginPath and provider.ConsentPath.
const (
	// DonePath shows who is signed in; a sign-in that no application asked
	// for (no req) ends here.
	DonePath = "/login/done"
	// LogoutPath asks to sign out (GET) and signs out (POST, with a CSRF
	// token).
	LogoutPath = provider.LogoutPath
	// CodePath is the second sign-in step: the one-time code.
	CodePath = "/login/code"
	// RegisterPath creates an account.
	RegisterPath = "/register"
	// VerifyPath confirms an email address, by code or by link.
	VerifyPath = "/verify"
	// ForgotPath asks for a password-reset link; ResetPath uses it.
	ForgotPath = "/forgot"
	ResetPath  = "/reset"
	// AccountPath is the account page; its forms post to AccountPath/ACTION.
	AccountPath = "/account"
	// AvatarPrefix serves users' pictures: AvatarPrefix + user ID.
	AvatarPrefix = "/avatars/"
	// StaticPrefix is where the stylesheet and script are served.
	StaticPrefix = "/static/"
	// LogoPath serves the operator's logo (Config.Logo); ThemePath the
	// operator's theme (Config.ThemeCSS).
	LogoPath  = StaticPrefix + "brand-logo"
	ThemePath = StaticPrefix + "theme.css"
)

// Config configures the pages. The zero value of each optional field is
// documented on it.
type Config struct {
	// Issuer is Torii's public base URL, e.g. "http://127.0.0.1:8080" or
	// "https://id.example.com". With https, cookies are Secure, carry the
	// __Host- name prefix, and pages send Strict-Transport-Security.
	Issuer string
	// SessionLifetime is how long a sign-in lasts (absolute, not sliding);
	// 0 means 24 hours.
	SessionLifetime time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// OTP is "always" (the default when empty): every sign-in needs the
	// one-time code; or "off": only when the relying party asks for it
	// with acr_values=mfa.
	OTP string
	// IPRateLimit bounds the requests one client IP makes to the sign-in,
	// code, registration, verification and reset pages; zero means 60 per
	// minute. Kept in memory: per node.
	IPRateLimit Limit
	// IPFailureLimit bounds the failed attempts (wrong password or code,
	// bad link) of one client IP; zero means 50 per 15 minutes. Per node.
	IPFailureLimit Limit
	// TrustedProxies are the reverse proxies whose X-Forwarded-For header
	// names the client; nil trusts none (the TCP peer is the client).
	TrustedProxies []netip.Prefix
	// FederatedOTP is "" (a federated sign-in takes the code step as OTP
	// says) or "skip" (the provider is trusted: the code step only when the
	// relying party asks acr_values=mfa).
	FederatedOTP string
	// SiteName heads every page and ends every title; "" means "Torii".
	SiteName string
	// Logo is the operator's logo (a PNG, JPEG, WebP or GIF image, checked
	// by the caller), served at LogoPath with LogoType; nil for none.
	Logo     []byte
	LogoType string
	// ThemeCSS, when set, is a stylesheet served at ThemePath and linked
	// after style.css on every page (the operator's accent colour).
	ThemeCSS string
	// DefaultLanguage is the pages' language when neither the request
	// (ui_locales), the picker's cookie nor Accept-Language names one of
	// templates.Languages; "" means "en".
	DefaultLanguage string
}

// Brand is how the pages are branded for cfg: the provider's error pages
// use the same.
func (cfg Config) Brand() templates.Brand {
	b := templates.Brand{SiteName: cfg.SiteName}
	if len(cfg.Logo) > 0 {
		b.LogoURL = LogoPath
	}
	if cfg.ThemeCSS != "" {
		b.ThemeURL = ThemePath
	}
	return b
}

// Deps are what the handler works with.
type Deps struct {
	Store    *storage.Store
	Accounts *account.Service
	// Logger receives one line per sign-in, sign-out, consent and failed
	// request; nil discards them. Passwords and typed login names are
	// never logged, only user IDs ("subject").
	Logger *slog.Logger
	// SignIns, when set, hears how each sign-in on the pages ends, by
	// method (password) and outcome (success, wrong_credentials, locked,
	// wrong_code, unverified): metrics, never who.
	SignIns func(method, outcome string)
	// Federation, when it has providers, adds "Continue with …" and the
	// /login/federated routes; nil for none.
	Federation *federation.Service
	// Limits, when set, keeps the per-IP request and failure budgets
	// (Config.IPRateLimit, IPFailureLimit), shared by every node on it;
	// nil keeps them in this node's memory.
	Limits iplimit.Shared
}

// Handler serves the browser pages. It is safe for concurrent use.
type Handler struct {
	cfg      Config
	store    *storage.Store
	accounts *account.Service
	log      *slog.Logger
	signIns  func(method, outcome string)
	pages    *templates.Localized
	static   map[string]staticFile
	csrfKey  []byte
	secure   bool
	// Cookie names: with the __Host- prefix on https.
	sessionCookie, csrfCookie, verifyCookie, deviceCookie, rememberCookie string
	requests                                                              *iplimit.Limiter
	failures                                                              *iplimit.Failures
	proxies                                                               iplimit.Proxies
	fed                                                                   *federation.Service
}

// signInEnded reports a sign-in's outcome to Deps.SignIns.
func (h *Handler) signInEnded(outcome string) {
	if h.signIns != nil {
		h.signIns("password", outcome)
	}
}

// OTP modes.
const (
	OTPAlways = "always"
	OTPOff    = "off"
)

var _ provider.Browser = (*Handler)(nil)

// New checks cfg, loads the CSRF key (the server secret "csrf", shared by
// every node on the database) and parses the templates.
func New(ctx context.Context, cfg Config, deps Deps) (*Handler, error) {
	if deps.Store == nil || deps.Accounts == nil {
		return nil, errors.New("login: Deps.Store and Deps.Accounts are required")
	}
	u, err := url.Parse(cfg.Issuer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("login: issuer %q must be an http or https URL with a host and no query", cfg.Issuer)
	}
	switch {
	case cfg.SessionLifetime < 0:
		return nil, errors.New("login: SessionLifetime must not be negative")
	case cfg.SessionLifetime == 0:
		cfg.SessionLifetime = 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch cfg.OTP {
	case "":
		cfg.OTP = OTPAlways
	case OTPAlways, OTPOff:
	default:
		return nil, fmt.Errorf("login: OTP must be %q or %q", OTPAlways, OTPOff)
	}
	switch {
	case cfg.DefaultLanguage == "":
		cfg.DefaultLanguage = "en"
	case !templates.IsLanguage(cfg.DefaultLanguage):
		return nil, fmt.Errorf("login: DefaultLanguage %q must be one of %s", cfg.DefaultLanguage, strings.Join(templates.Languages, ", "))
	}
	if cfg.IPRateLimit.N <= 0 || cfg.IPRateLimit.Per <= 0 {
		cfg.IPRateLimit = Limit{N: 60, Per: time.Minute}
	}
	if cfg.IPFailureLimit.N <= 0 || cfg.IPFailureLimit.Per <= 0 {
		cfg.IPFailureLimit = Limit{N: 50, Per: 15 * time.Minute}
	}
	h := &Handler{
		cfg:           cfg,
		store:         deps.Store,
		accounts:      deps.Accounts,
		log:           deps.Logger,
		signIns:       deps.SignIns,
		secure:        u.Scheme == "https",
		sessionCookie: "torii_session",
		csrfCookie:    "torii_csrf",
		verifyCookie:  "torii_verify",
		deviceCookie:  "torii_device",
		// rememberCookie holds a remembered device's token (see
		// account.RememberBrowser).
		rememberCookie: "torii_remember",
		fed:            deps.Federation,
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.proxies = cfg.TrustedProxies
	if deps.Limits != nil {
		h.requests = iplimit.NewShared("login.requests", cfg.IPRateLimit, deps.Limits, cfg.Now)
		h.failures = iplimit.NewSharedFailures("login.failures", cfg.IPFailureLimit, cfg.TrustedProxies, deps.Limits, cfg.Now)
	} else {
		h.requests = iplimit.New(cfg.IPRateLimit, cfg.Now)
		h.failures = iplimit.NewFailures(cfg.IPFailureLimit, cfg.TrustedProxies, cfg.Now)
	}
	if h.secure {
		h.sessionCookie = "__Host-" + h.sessionCookie
		h.csrfCookie = "__Host-" + h.csrfCookie
		h.verifyCookie = "__Host-" + h.verifyCookie
		h.deviceCookie = "__Host-" + h.deviceCookie
		h.rememberCookie = "__Host-" + h.rememberCookie
	}
	if h.csrfKey, err = deps.Store.Secret(ctx, "csrf"); err != nil {
		return nil, fmt.Errorf("login: load CSRF key: %w", err)
	}
	if h.pages, err = templates.LocalizedPages(cfg.Brand()); err != nil {
		return nil, fmt.Errorf("login: parse templates: %w", err)
	}
	if h.static, err = loadStatic(templates.Static()); err != nil {
		return nil, fmt.Errorf("login: load static files: %w", err)
	}
	if len(cfg.Logo) > 0 {
		h.static[strings.TrimPrefix(LogoPath, StaticPrefix)] = newStaticFile(cfg.Logo, cfg.LogoType)
	}
	if cfg.ThemeCSS != "" {
		h.static[strings.TrimPrefix(ThemePath, StaticPrefix)] = newStaticFile([]byte(cfg.ThemeCSS), "text/css; charset=utf-8")
	}
	return h, nil
}

// Routes mounts the pages on r.
func (h *Handler) Routes(r *mux.Router) {
	get := []string{http.MethodGet, http.MethodHead}
	r.Handle(provider.LoginPath, h.page(h.limited(h.loginForm))).Methods(get...)
	r.Handle(provider.LoginPath, h.page(h.limited(h.signIn))).Methods(http.MethodPost)
	r.Handle(DonePath, h.page(h.done)).Methods(get...)
	r.Handle(provider.ConsentPath, h.page(h.consentForm)).Methods(get...)
	r.Handle(provider.ConsentPath, h.page(h.consent)).Methods(http.MethodPost)
	r.Handle(provider.LogoutPath, h.page(h.logoutForm)).Methods(get...)
	r.Handle(provider.LogoutPath, h.page(h.logout)).Methods(http.MethodPost)
	r.Handle(CodePath, h.page(h.limited(h.codeForm))).Methods(get...)
	r.Handle(CodePath, h.page(h.limited(h.checkCode))).Methods(http.MethodPost)
	r.Handle(CodePath+"/resend", h.page(h.limited(h.resendCode))).Methods(http.MethodPost)
	r.Handle(RegisterPath, h.page(h.limited(h.registerForm))).Methods(get...)
	r.Handle(RegisterPath, h.page(h.limited(h.register))).Methods(http.MethodPost)
	r.Handle(VerifyPath, h.page(h.limited(h.verifyForm))).Methods(get...)
	r.Handle(VerifyPath, h.page(h.limited(h.verify))).Methods(http.MethodPost)
	r.Handle(VerifyPath+"/resend", h.page(h.limited(h.resendVerification))).Methods(http.MethodPost)
	r.Handle(ForgotPath, h.page(h.limited(h.forgotForm))).Methods(get...)
	r.Handle(ForgotPath, h.page(h.limited(h.forgot))).Methods(http.MethodPost)
	r.Handle(ResetPath, h.page(h.limited(h.resetForm))).Methods(get...)
	r.Handle(ResetPath, h.page(h.limited(h.reset))).Methods(http.MethodPost)
	r.Handle(AccountPath, h.page(h.accountPage)).Methods(get...)
	r.Handle(AccountPath+"/{action}", h.page(h.limited(h.accountAction))).Methods(http.MethodPost)
	r.Handle(AvatarPrefix+"{id}", http.HandlerFunc(h.serveAvatar)).Methods(get...)
	r.PathPrefix(StaticPrefix).Handler(http.HandlerFunc(h.serveStatic)).Methods(get...)
	h.federatedRoutes(r)
}

// contentSecurityPolicy allows our stylesheet and our one script
// (/static/torii.js: script-src 'self', no inline script) and nothing else:
// no framing. It has no form-action directive on purpose: Chromium applies
// form-action to the redirects that follow a form submission, so
// form-action 'self' would block the 303 → /oauth2/auth/resume → relying
// party redirect chain after the login and consent POSTs (checked with
// Chromium 156).
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'"

// logoCSP is contentSecurityPolicy with img-src widened to the origin of a
// client's logo (an https URL, or http on a loopback host, as registration
// checks): the browser fetches that one image from there and nothing else.
// ok is false for a URI that is not such a URL.
func logoCSP(logoURI string) (csp string, ok bool) {
	u, err := url.Parse(logoURI)
	if err != nil || u.Host == "" || u.User != nil || (u.Scheme != "https" && u.Scheme != "http") ||
		strings.ContainsAny(u.Host, "; ,'\"\\*") {
		return "", false
	}
	return strings.Replace(contentSecurityPolicy, "img-src 'self'", "img-src 'self' "+u.Scheme+"://"+u.Host, 1), true
}

func (h *Handler) setPageHeaders(hdr http.Header) {
	hdr.Set("Content-Security-Policy", contentSecurityPolicy)
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Cache-Control", "no-store")
	if h.secure {
		hdr.Set("Strict-Transport-Security", "max-age=31536000")
	}
}

// page adapts a handler that returns an error: it sets the security headers
// and turns the error into the error page.
func (h *Handler) page(fn func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.setPageHeaders(w.Header())
		h.rememberLanguage(w, r)
		pw := &pageWriter{ResponseWriter: w, h: h}
		// The mails this request causes are in its page's language.
		r = r.WithContext(notify.WithLanguage(r.Context(), pw.languageIn))
		pw.r = r
		if err := fn(pw, r); err != nil {
			h.fail(pw, r, err)
		}
	})
}

// render executes a page into a buffer, then writes it with status. A page
// that shows an application's logo allows images from that logo's origin,
// and from no other (see logoCSP).
func (h *Handler) render(w http.ResponseWriter, status int, name string, data any) error {
	var app *templates.App
	switch p := data.(type) {
	case templates.LoginPage:
		app = p.App
	case templates.CodePage:
		app = p.App
	case templates.ConsentPage:
		app = p.App
	}
	if app != nil && app.LogoURI != "" {
		if csp, ok := logoCSP(app.LogoURI); ok {
			w.Header().Set("Content-Security-Policy", csp)
		} else {
			app.LogoURI = ""
		}
	}
	var buf bytes.Buffer
	data = h.federatedButtons(data)
	lang := h.langOf(w)
	if err := h.pages.In(lang).ExecuteTemplate(&buf, name, localize(lang, data)); err != nil {
		return fmt.Errorf("login: render %s: %w", name, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	buf.WriteTo(w) // a failed write means the client left
	return nil
}

// redirect answers with 303 See Other, so the browser follows with a GET
// and never re-posts the form (never 307/308).
func redirect(w http.ResponseWriter, r *http.Request, target string) error {
	http.Redirect(w, r, target, http.StatusSeeOther)
	return nil
}

// pageError is an error with the page the person should see.
type pageError struct {
	status int
	page   templates.ErrorPage
}

func (e *pageError) Error() string {
	return fmt.Sprintf("login: %d %s", e.status, e.page.Title)
}

var (
	errExpired = &pageError{http.StatusBadRequest, templates.ErrorPage{
		Title:   "Request expired",
		Message: "This sign-in request has expired. Go back to the app and try again.",
		LinkURL: LoginPath, LinkText: "Go to the sign-in page",
	}}
	errBadRequest = &pageError{http.StatusBadRequest, templates.ErrorPage{
		Title:   "Bad request",
		Message: "The request was not understood. Go back and try again.",
	}}
	errFormExpired = &pageError{http.StatusForbidden, templates.ErrorPage{
		Title:   "Form expired",
		Message: "This form has expired or was not sent from this site. Start again with a fresh form.",
	}}
	errNotFoundPage = &pageError{http.StatusNotFound, templates.ErrorPage{
		Title:   "Page not found",
		Message: "There is no such page.",
		LinkURL: LoginPath, LinkText: "Go to the sign-in page",
	}}
	errTooLarge = &pageError{http.StatusRequestEntityTooLarge, templates.ErrorPage{
		Title:   "Request too large",
		Message: "The form you sent is too large. Go back and try again.",
	}}
	errUnavailable = &pageError{http.StatusServiceUnavailable, templates.ErrorPage{
		Title:   "Temporarily unavailable",
		Message: "The service is busy right now. Please try again in a moment.",
	}}
	errInternal = &pageError{http.StatusInternalServerError, templates.ErrorPage{
		Title:   "Something went wrong",
		Message: "Something went wrong on our side. Please try again in a moment.",
	}}
)

// fail logs err once and shows the error page for it. Only pageErrors
// choose what the person sees; any other error gets a generic page.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	ctx := r.Context()
	var pe *pageError
	switch {
	case errors.As(err, &pe):
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		h.log.DebugContext(ctx, "login: client went away", "path", r.URL.Path, "err", err)
		return
	case storage.IsUnavailable(err), errors.Is(err, storage.ErrConflict):
		// The pages' one mapping of storage faults: the database away
		// (however wrapped) or a lost race is a fault of the moment.
		pe = errUnavailable
	default:
		pe = errInternal
	}
	if pe.status >= 500 {
		h.log.ErrorContext(ctx, "login: request failed", "path", r.URL.Path, "status", pe.status, "err", err)
	} else {
		h.log.InfoContext(ctx, "login: request refused", "path", r.URL.Path, "status", pe.status, "reason", pe.page.Title)
	}
	if pe.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	page := pe.page
	if pe == errFormExpired {
		// A way forward: the form again, fresh.
		page.AgainURL, page.AgainFields = againURL(r)
	}
	if rerr := h.render(w, pe.status, "error.html", page); rerr != nil {
		h.log.ErrorContext(ctx, "login: render error page", "err", rerr)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
	}
}

// againURL is the page whose form r posted (GET of the same path: the
// form again, with a fresh token) and the fields that page needs: the
// pending request, and on the code step the channel the code went by.
func againURL(r *http.Request) (path string, fields map[string]string) {
	path = r.URL.Path
	switch {
	case strings.HasPrefix(path, AccountPath+"/"):
		path = AccountPath
	case strings.HasSuffix(path, "/resend"):
		path = strings.TrimSuffix(path, "/resend")
	}
	fields = map[string]string{}
	if r.PostForm != nil {
		if req := validReq(r.PostForm.Get("req")); req != "" {
			fields["req"] = req
		}
		if path == CodePath {
			via := r.PostForm.Get("via")
			if via == "" {
				via = r.PostForm.Get("channel")
			}
			fields["via"] = string(channelOf(via))
		}
	}
	return path, fields
}
