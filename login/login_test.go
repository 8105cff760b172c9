package login_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/torii-idp/torii/login"
	"github.com/torii-idp/torii/login/account"
	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

const (
	aliceEmail    = "alice@example.com"
	alicePassword = "Tr0ub4dor&3-horse-🦊"
)

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is a login handler on a real store, behind a test server.
type env struct {
	t        *testing.T
	store    *storage.Store
	accounts *account.Service
	h        *login.Handler
	srv      *httptest.Server
	logs     *syncBuffer
	mail     *mailbox
	alice    *storage.User
	https    bool
}

func newEnv(t *testing.T, open func(testing.TB) *storage.Store, https bool) *env {
	t.Helper()
	return newEnvWith(t, open, https, func(*login.Config) {})
}

// newEnvWith is newEnv with the login configuration changed by edit.
func newEnvWith(t *testing.T, open func(testing.TB) *storage.Store, https bool, edit func(*login.Config)) *env {
	t.Helper()
	st := open(t)
	e := &env{t: t, store: st, mail: &mailbox{}, logs: &syncBuffer{}, https: https}
	e.accounts = account.New(st, account.Config{Notifier: e.mail, Issuer: "https://id.example.test", ResendInterval: -1,
		RememberLifetime: 720 * time.Hour})
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	issuer := "http://127.0.0.1:8080"
	if https {
		issuer = "https://id.example.test"
	}
	cfg := login.Config{Issuer: issuer, OTP: login.OTPOff}
	edit(&cfg)
	h, err := login.New(t.Context(), cfg, login.Deps{Store: st, Accounts: e.accounts, Logger: logger})
	if err != nil {
		t.Fatalf("login.New: %v", err)
	}
	e.h = h
	r := mux.NewRouter()
	h.Routes(r)
	if https {
		e.srv = httptest.NewTLSServer(r)
	} else {
		e.srv = httptest.NewServer(r)
	}
	t.Cleanup(e.srv.Close)
	e.alice, err = e.accounts.Create(t.Context(), account.NewUser{Email: aliceEmail, Username: "alice", Password: alicePassword, EmailVerified: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateClient(t.Context(), &storage.Client{
		ID: "app", Name: "Example App", RedirectURIs: []string{"https://rp.example/cb"},
		GrantTypes: []string{"authorization_code"}, ResponseTypes: []string{"code"},
		Scopes: []string{"openid", "profile", "email"}, Audience: []string{}, TokenFormat: "opaque", IDTokenAlg: "RS256",
	}); err != nil {
		t.Fatal(err)
	}
	// Whatever a test did, the logs never hold the password.
	t.Cleanup(func() {
		if strings.Contains(e.logs.String(), alicePassword) {
			t.Errorf("the logs contain the password:\n%s", e.logs)
		}
	})
	return e
}

// sqliteEnv is newEnv on SQLite over http.
func sqliteEnv(t *testing.T) *env {
	t.Helper()
	return newEnv(t, storagetest.NewSQLite, false)
}

// pendingRequest stores an authorization request for client "app".
func (e *env) pendingRequest(id, scope string) {
	e.t.Helper()
	form := url.Values{"client_id": {"app"}, "scope": {scope}, "response_type": {"code"}}
	if err := e.store.CreateAuthRequest(e.t.Context(), &storage.AuthRequest{
		ID: id, ClientID: "app", Form: form.Encode(), BrowserHash: "b", ExpiresAt: time.Now().Add(10 * time.Minute),
	}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) sessionCookieName() string {
	if e.https {
		return "__Host-torii_session"
	}
	return "torii_session"
}

func (e *env) csrfCookieName() string {
	if e.https {
		return "__Host-torii_csrf"
	}
	return "torii_csrf"
}

// signedIn asks the handler, as the provider would, who a session cookie
// value belongs to.
func (e *env) signedIn(cookieValue string) (string, bool) {
	e.t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/oauth2/auth", nil)
	if cookieValue != "" {
		r.AddCookie(&http.Cookie{Name: e.sessionCookieName(), Value: cookieValue})
	}
	si, ok, err := e.h.SignedIn(r)
	if err != nil {
		e.t.Fatalf("SignedIn: %v", err)
	}
	return si.Subject, ok
}

// sessionRows counts stored login sessions.
func (e *env) sessionRows() int {
	e.t.Helper()
	n, err := e.store.DB().NewSelect().Model((*storage.LoginSession)(nil)).Count(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	return int(n)
}

// browser is a client with its own cookie jar that does not follow
// redirects.
type browser struct {
	t *testing.T
	e *env
	c *http.Client
}

func (e *env) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return &browser{t: e.t, e: e, c: &http.Client{
		Jar:           jar,
		Transport:     e.srv.Client().Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type response struct {
	*http.Response
	body string
}

// cookie returns the Set-Cookie of the response named name, or nil.
func (r *response) cookie(name string) *http.Cookie {
	for _, c := range r.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (b *browser) do(method, path string, body io.Reader, ctype string) *response {
	b.t.Helper()
	return b.doFrom("", method, path, body, ctype)
}

// doFrom is do as the client xff behind the (trusted) test proxy; an empty
// xff sends no X-Forwarded-For.
func (b *browser) doFrom(xff, method, path string, body io.Reader, ctype string) *response {
	b.t.Helper()
	req, err := http.NewRequestWithContext(b.t.Context(), method, b.e.srv.URL+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return &response{Response: resp, body: string(data)}
}

func (b *browser) get(path string) *response { return b.do(http.MethodGet, path, nil, "") }

func (b *browser) post(path string, form url.Values) *response {
	return b.do(http.MethodPost, path, strings.NewReader(form.Encode()), "application/x-www-form-urlencoded")
}

var csrfField = regexp.MustCompile(`<input type="hidden" name="csrf" value="([^"]+)">`)

// csrf loads a form page and returns its CSRF token.
func (b *browser) csrf(path string) string {
	b.t.Helper()
	resp := b.get(path)
	m := csrfField.FindStringSubmatch(resp.body)
	if resp.StatusCode != http.StatusOK || m == nil {
		b.t.Fatalf("GET %s = %d, no csrf field:\n%s", path, resp.StatusCode, resp.body)
	}
	return m[1]
}

// signIn signs in through the form and returns the POST's response.
func (b *browser) signIn(req, username, password string) *response {
	b.t.Helper()
	page := "/login"
	if req != "" {
		page += "?req=" + req
	}
	form := url.Values{"csrf": {b.csrf(page)}, "username": {username}, "password": {password}}
	if req != "" {
		form.Set("req", req)
	}
	return b.post("/login", form)
}

// jarCookie returns the value the browser holds for name.
func (b *browser) jarCookie(name string) string {
	u, _ := url.Parse(b.e.srv.URL)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func (b *browser) setJarCookie(name, value string) {
	u, _ := url.Parse(b.e.srv.URL)
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

var wantPageHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'",
	"X-Frame-Options":         "DENY",
	"Referrer-Policy":         "no-referrer",
	"X-Content-Type-Options":  "nosniff",
	"Cache-Control":           "no-store",
}

func checkPageHeaders(t *testing.T, what string, r *response) {
	t.Helper()
	for k, v := range wantPageHeaders {
		if got := r.Header.Get(k); got != v {
			t.Errorf("%s: %s = %q, want %q", what, k, got, v)
		}
	}
	if ct := r.Header.Get("Content-Type"); r.StatusCode != http.StatusSeeOther && ct != "text/html; charset=utf-8" {
		t.Errorf("%s: Content-Type = %q", what, ct)
	}
}

func TestNewChecksConfig(t *testing.T) {
	st := storagetest.NewSQLite(t)
	acc := account.New(st, account.Config{})
	tests := []struct {
		name string
		cfg  login.Config
		deps login.Deps
	}{
		{"no issuer", login.Config{}, login.Deps{Store: st, Accounts: acc}},
		{"relative issuer", login.Config{Issuer: "/idp"}, login.Deps{Store: st, Accounts: acc}},
		{"ftp issuer", login.Config{Issuer: "ftp://x"}, login.Deps{Store: st, Accounts: acc}},
		{"issuer with query", login.Config{Issuer: "https://x?y=1"}, login.Deps{Store: st, Accounts: acc}},
		{"negative lifetime", login.Config{Issuer: "https://x", SessionLifetime: -time.Second}, login.Deps{Store: st, Accounts: acc}},
		{"no store", login.Config{Issuer: "https://x"}, login.Deps{Accounts: acc}},
		{"no accounts", login.Config{Issuer: "https://x"}, login.Deps{Store: st}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := login.New(t.Context(), tc.cfg, tc.deps); err == nil {
				t.Errorf("New(%+v) = nil error", tc.cfg)
			}
		})
	}
}

func TestSecurityHeadersOnEveryPage(t *testing.T) {
	e := sqliteEnv(t)
	e.pendingRequest("req1", "openid")
	b := e.browser()
	checkPageHeaders(t, "GET /login", b.get("/login?req=req1"))
	checkPageHeaders(t, "POST /login 403", b.post("/login", url.Values{}))
	checkPageHeaders(t, "GET /login expired", b.get("/login?req=gone"))
	bad := b.signIn("", "alice", "wrong password")
	checkPageHeaders(t, "POST /login 401", bad)
	checkPageHeaders(t, "POST /login 303", b.signIn("req1", "alice", alicePassword))
	checkPageHeaders(t, "GET /consent", b.get("/consent?req=req1"))
	checkPageHeaders(t, "GET /login/done", b.get("/login/done"))
}

func TestHSTSOnlyOnHTTPS(t *testing.T) {
	plain := sqliteEnv(t).browser().get("/login")
	if v := plain.Header.Get("Strict-Transport-Security"); v != "" {
		t.Errorf("http issuer: Strict-Transport-Security = %q, want none", v)
	}
	secure := newEnv(t, storagetest.NewSQLite, true).browser().get("/login")
	if v := secure.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(v, "max-age=") {
		t.Errorf("https issuer: Strict-Transport-Security = %q", v)
	}
}

func TestStatic(t *testing.T) {
	e := sqliteEnv(t)
	b := e.browser()
	css := b.get("/static/style.css")
	if css.StatusCode != http.StatusOK || !strings.HasPrefix(css.Header.Get("Content-Type"), "text/css") || !strings.Contains(css.body, ":focus-visible") {
		t.Fatalf("GET /static/style.css = %d %q", css.StatusCode, css.Header.Get("Content-Type"))
	}
	if cc := css.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=") {
		t.Errorf("Cache-Control = %q, want a max-age", cc)
	}
	if css.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Error("stylesheet lacks nosniff")
	}
	etag := css.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.srv.URL+"/static/style.css", nil)
	req.Header.Set("If-None-Match", etag)
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match = %d, want 304", resp.StatusCode)
	}
	for _, p := range []string{"/static/", "/static/nope.css", "/static/../templates.go", "/static/%2e%2e/login.html", "/static/login.html"} {
		if r := b.get(p); r.StatusCode != http.StatusNotFound && r.StatusCode != http.StatusMovedPermanently {
			t.Errorf("GET %s = %d, want 404", p, r.StatusCode)
		}
	}
}

func TestMethodsAreRestricted(t *testing.T) {
	e := sqliteEnv(t)
	b := e.browser()
	for _, tc := range []struct{ method, path string }{
		{http.MethodPut, "/login"},
		{http.MethodDelete, "/consent"},
		{http.MethodPut, "/logout"},
		{http.MethodPost, "/login/done"},
		{http.MethodPost, "/static/style.css"},
	} {
		if r := b.do(tc.method, tc.path, nil, ""); r.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s %s = %d, want 405", tc.method, tc.path, r.StatusCode)
		}
	}
}

// When the database fails, the person sees a generic page (no error text)
// and the error is logged once.
func TestDatabaseErrorPage(t *testing.T) {
	e := sqliteEnv(t)
	b := e.browser()
	tok := b.csrf("/login")
	b.setJarCookie("torii_session", randomToken())
	e.store.Close()

	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(&http.Cookie{Name: "torii_session", Value: randomToken()})
	if _, ok, err := e.h.SignedIn(r); err == nil || ok {
		t.Errorf("SignedIn on a closed database = %v, %v; want an error", ok, err)
	}
	for _, resp := range []*response{
		b.get("/login?req=abc"),
		b.get("/login/done"),
		b.post("/login", url.Values{"csrf": {tok}, "username": {"alice"}, "password": {alicePassword}}),
	} {
		// A database outage is a fault of the moment: 503 (SECURITY R9).
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("status %d, want 503", resp.StatusCode)
		}
		if !strings.Contains(resp.body, "try again in a moment") || strings.Contains(resp.body, "storage") || strings.Contains(resp.body, "sql") {
			t.Errorf("error page body:\n%s", resp.body)
		}
		checkPageHeaders(t, "error page", resp)
	}
	if n := strings.Count(e.logs.String(), "level=ERROR"); n != 3 {
		t.Errorf("%d error lines logged, want 3:\n%s", n, e.logs)
	}
}

// swapHandler serves h from now on.
func (e *env) swapHandler(h *login.Handler) {
	e.h = h
	r := mux.NewRouter()
	h.Routes(r)
	e.srv.Config.Handler = r
}
