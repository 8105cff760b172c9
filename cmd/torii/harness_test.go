package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/net/html"
	"golang.org/x/oauth2"

	"github.com/torii-idp/torii/login/account"
	"github.com/torii-idp/torii/login/notify/notifytest"
	"github.com/torii-idp/torii/provider"
	"github.com/torii-idp/torii/storage/storagetest"
)

// callbackURL is where test relying parties receive codes. Nothing listens
// there: the test browser stops at the redirect and reads it.
const callbackURL = "https://rp.example.test/callback"

// testPassword is the password of every test user.
const testPassword = "correct horse battery staple"

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

// env is a running Torii on an httptest server with a real database.
type env struct {
	t      testing.TB
	srv    *server
	nodes  []*server // every node serving the issuer; srv is nodes[0]
	route  atomic.Pointer[[]*server]
	ts     *httptest.Server
	issuer string
	logs   *syncBuffer
	dbURL  string
	cfg    Config
	so     serverOptions
	// mail, when set (newMailEnv), receives Torii's mails: authorize then
	// also passes the one-time-code page.
	mail *notifytest.SMTPServer
	// admin serves node 0's admin listener.
	admin *httptest.Server
}

// dbURLs returns a fresh database URL per backend; the Postgres one skips
// the test when TORII_TEST_POSTGRES_URL is unset.
var backends = []struct {
	name string
	url  func(t testing.TB) string
}{
	{"sqlite", func(t testing.TB) string { return "sqlite:" + filepath.Join(t.TempDir(), "torii.db") }},
	{"postgres", storagetest.PostgresURL},
}

// forEachBackend runs fn on SQLite and on Postgres.
func forEachBackend(t *testing.T, fn func(t *testing.T, dbURL string)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, b.url(t)) })
	}
}

type envOption func(*Config, *serverOptions)

// newEnv starts Torii on dbURL.
func newEnv(t testing.TB, dbURL string, opts ...envOption) *env {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String()
	cfg := Config{
		Addr: ts.Listener.Addr().String(), Issuer: issuer, DatabaseURL: Secret(dbURL),
		LogFormat: "json", LogLevel: slog.LevelDebug,
		AccessTokenTTL: time.Hour, RefreshTokenTTL: 24 * time.Hour, IDTokenTTL: time.Hour, CodeTTL: 10 * time.Minute,
		CleanupInterval: time.Hour, ShutdownTimeout: 5 * time.Second,
		OTP: "off", OTPTTL: 10 * time.Minute, OTPResendInterval: 30 * time.Second, OTPResendLimit: RateLimit{5, 15 * time.Minute},
		LockoutThreshold: 5, IPRateLimit: RateLimit{100000, time.Minute}, IPFailureLimit: RateLimit{100000, time.Minute},
		TokenFailureLimit: RateLimit{100000, time.Minute}, TwilioURL: "https://api.twilio.com",
		AdminAddr: "127.0.0.1:0",
	}
	so := serverOptions{Keys: provider.KeysConfig{ActivationDelay: -1}}
	for _, o := range opts {
		o(&cfg, &so)
	}
	logs := &syncBuffer{}
	srv, err := newServer(t.Context(), cfg, newLogger(logs, cfg), so)
	if err != nil {
		t.Fatalf("newServer: %v", err)
	}
	e := &env{t: t, srv: srv, ts: ts, issuer: issuer, logs: logs, dbURL: dbURL, cfg: cfg, so: so}
	e.nodes = []*server{srv}
	e.route.Store(&e.nodes)
	// Like a load balancer: the X-Test-Node header picks a node (default 0).
	// Every answer on a documented route is checked against the OpenAPI
	// document (validateResponses).
	ts.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nodes := *e.route.Load()
		i := 0
		if n := r.Header.Get("X-Test-Node"); n != "" {
			i, _ = strconv.Atoi(n)
		}
		n := nodes[i%len(nodes)]
		validateResponses(t, publicListener, n.router, n.handler).ServeHTTP(w, r)
	})
	ts.Start()
	if srv.adminHandler != nil {
		e.admin = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := (*e.route.Load())[0]
			validateResponses(t, adminListener, n.adminRouter, n.adminHandler).ServeHTTP(w, r)
		}))
		t.Cleanup(e.admin.Close)
	}
	t.Cleanup(func() {
		ts.Close()
		for _, n := range *e.route.Load() {
			n.close()
		}
	})
	return e
}

// addNode starts another Torii on the same database and issuer, reachable
// with the header X-Test-Node: <index>.
func (e *env) addNode() int {
	e.t.Helper()
	n, err := newServer(e.t.Context(), e.cfg, newLogger(e.logs, e.cfg), e.so)
	if err != nil {
		e.t.Fatalf("start node: %v", err)
	}
	nodes := append(slices.Clone(*e.route.Load()), n)
	e.route.Store(&nodes)
	return len(nodes) - 1
}

// restart replaces every node by one fresh Torii on the same database and
// issuer, as after a process restart.
func (e *env) restart() {
	e.t.Helper()
	old := *e.route.Load()
	for _, n := range old {
		n.close()
	}
	n, err := newServer(e.t.Context(), e.cfg, newLogger(e.logs, e.cfg), e.so)
	if err != nil {
		e.t.Fatalf("restart: %v", err)
	}
	e.srv = n
	nodes := []*server{n}
	e.route.Store(&nodes)
}

// user creates a verified user and returns its ID.
func (e *env) user(email string) string {
	e.t.Helper()
	u, err := e.srv.accounts.Create(context.Background(), account.NewUser{
		Email: email, Password: testPassword, Name: "Test " + email, EmailVerified: true,
	})
	if err != nil {
		e.t.Fatalf("create user %s: %v", email, err)
	}
	return u.ID
}

// client registers a client and returns it with its secret.
func (e *env) client(spec provider.ClientSpec) (id, secret string) {
	e.t.Helper()
	if spec.RedirectURIs == nil && (spec.GrantTypes == nil || slices.Contains(spec.GrantTypes, "authorization_code")) {
		spec.RedirectURIs = []string{callbackURL}
	}
	c, secret, err := e.srv.provider.Clients().Register(context.Background(), spec)
	if err != nil {
		e.t.Fatalf("register client %s: %v", spec.ID, err)
	}
	return c.ID, secret
}

// oauth2Config is a relying party's configuration for a client.
func (e *env) oauth2Config(id, secret string, scopes ...string) *oauth2.Config {
	if scopes == nil {
		scopes = []string{oidc.ScopeOpenID, "profile", "email", "offline_access"}
	}
	return &oauth2.Config{
		ClientID: id, ClientSecret: secret, RedirectURL: callbackURL, Scopes: scopes,
		Endpoint: oauth2.Endpoint{AuthURL: e.issuer + "/oauth2/auth", TokenURL: e.issuer + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader},
	}
}

// ctx returns a context whose HTTP client talks to the test server.
func (e *env) ctx() context.Context {
	return oidc.ClientContext(e.t.Context(), e.ts.Client())
}

// oidcProvider discovers Torii as a relying party would.
func (e *env) oidcProvider() *oidc.Provider {
	e.t.Helper()
	p, err := oidc.NewProvider(e.ctx(), e.issuer)
	if err != nil {
		e.t.Fatalf("oidc.NewProvider: %v", err)
	}
	return p
}

// browser returns an HTTP client with a cookie jar that follows redirects
// within Torii and stops at the relying party's callback.
func (e *env) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar: jar,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if !strings.HasPrefix(req.URL.String(), e.issuer) {
				return http.ErrUseLastResponse
			}
			if len(via) > 10 {
				return errors.New("too many redirects")
			}
			return nil
		},
	}
}

// page is an HTML page the browser got.
type page struct {
	status int
	url    *url.URL
	body   string
	resp   *http.Response
}

func (e *env) get(b *http.Client, u string) *page {
	e.t.Helper()
	resp, err := b.Get(u)
	if err != nil {
		e.t.Fatalf("GET %s: %v", u, err)
	}
	return readPage(e.t, resp)
}

func readPage(t testing.TB, resp *http.Response) *page {
	t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return &page{status: resp.StatusCode, url: resp.Request.URL, body: string(body), resp: resp}
}

// form is an HTML form on a page.
type form struct {
	action string
	values url.Values
}

// forms parses the POST forms of a page with their hidden and pre-filled
// inputs.
func (p *page) forms(t testing.TB) []form {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(p.body))
	if err != nil {
		t.Fatalf("parse %s: %v", p.url, err)
	}
	var out []form
	var walk func(n *html.Node, f *form)
	walk = func(n *html.Node, f *form) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "form":
				if !strings.EqualFold(attr(n, "method"), "post") {
					return // a GET form (the language picker) posts nothing
				}
				nf := form{values: url.Values{}}
				action := attr(n, "action")
				ref, _ := url.Parse(action)
				nf.action = p.url.ResolveReference(ref).String()
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					walk(c, &nf)
				}
				out = append(out, nf)
				return
			case "input":
				// A checkbox is sent only when it is ticked, as a browser does.
				box := attr(n, "type") == "checkbox" || attr(n, "type") == "radio"
				checked := slices.ContainsFunc(n.Attr, func(a html.Attribute) bool { return a.Key == "checked" })
				if f != nil && attr(n, "name") != "" && attr(n, "type") != "submit" && (!box || checked) {
					f.values.Set(attr(n, "name"), attr(n, "value"))
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, f)
		}
	}
	walk(doc, nil)
	return out
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

// formWith returns the first form with an input named field.
func (p *page) formWith(t testing.TB, field string) form {
	t.Helper()
	for _, f := range p.forms(t) {
		if _, ok := f.values[field]; ok {
			return f
		}
	}
	t.Fatalf("no form with field %q on %s (status %d):\n%s", field, p.url, p.status, p.body)
	return form{}
}

func (e *env) post(b *http.Client, f form) *page {
	e.t.Helper()
	resp, err := b.PostForm(f.action, f.values)
	if err != nil {
		e.t.Fatalf("POST %s: %v", f.action, err)
	}
	return readPage(e.t, resp)
}

// signIn fills the login page the browser is on (or was sent to).
func (e *env) signIn(b *http.Client, p *page, login string) *page {
	e.t.Helper()
	f := p.formWith(e.t, "password")
	f.values.Set("username", login)
	f.values.Set("password", testPassword)
	return e.post(b, f)
}

// consent answers the consent page with "allow" or "deny".
func (e *env) consent(b *http.Client, p *page, action string) *page {
	e.t.Helper()
	var f form
	for _, ff := range p.forms(e.t) {
		if strings.HasSuffix(strings.SplitN(ff.action, "?", 2)[0], provider.ConsentPath) {
			f = ff
		}
	}
	if f.values == nil {
		e.t.Fatalf("no consent form on %s:\n%s", p.url, p.body)
	}
	f.values.Set("action", action)
	return e.post(b, f)
}

// callback returns the relying-party callback the browser was sent to.
func (e *env) callback(p *page) url.Values {
	e.t.Helper()
	if p.status != http.StatusSeeOther && p.status != http.StatusFound {
		e.t.Fatalf("expected a redirect to the client, got %d at %s:\n%s", p.status, p.url, p.body)
	}
	loc, err := url.Parse(p.resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), strings.SplitN(callbackURL, "?", 2)[0]) {
		e.t.Fatalf("redirected to %q, want the callback %s", p.resp.Header.Get("Location"), callbackURL)
	}
	return loc.Query()
}

// authorize runs the browser through /oauth2/auth: sign-in as login when
// asked, the mailed one-time code when asked (an env with mail), consent
// "allow" when asked, and returns the callback's parameters.
func (e *env) authorize(b *http.Client, authURL, login string) url.Values {
	e.t.Helper()
	q, _ := e.authorizeTrace(b, authURL, login)
	return q
}

// authorizeTrace is authorize that also returns the paths of the pages the
// browser was shown, in order (e.g. /login, /login/code, /consent).
func (e *env) authorizeTrace(b *http.Client, authURL, login string) (url.Values, []string) {
	e.t.Helper()
	p := e.get(b, authURL)
	var shown []string
	mailsBefore := 0
	for range 5 {
		if p.status == http.StatusOK {
			shown = append(shown, p.url.Path)
		}
		switch {
		case p.status == http.StatusSeeOther || p.status == http.StatusFound:
			return e.callback(p), shown
		case p.status == http.StatusOK && strings.HasSuffix(p.url.Path, provider.LoginPath):
			if e.mail != nil {
				mailsBefore = len(e.mail.Mails())
			}
			p = e.signIn(b, p, login)
		case p.status == http.StatusOK && strings.HasSuffix(p.url.Path, "/login/code") && e.mail != nil:
			p = e.enterCode(b, p, e.nextMail(login, "sign-in code", mailsBefore))
		case p.status == http.StatusOK && strings.HasSuffix(p.url.Path, provider.ConsentPath):
			p = e.consent(b, p, "allow")
		default:
			e.t.Fatalf("unexpected page %d at %s:\n%s", p.status, p.url, p.body)
		}
	}
	e.t.Fatalf("authorization did not finish; last page %s", p.url)
	return nil, nil
}

// codeFlow is one relying-party authorization with PKCE.
type codeFlow struct {
	conf     *oauth2.Config
	verifier string
	state    string
	nonce    string
}

func newCodeFlow(conf *oauth2.Config) *codeFlow {
	return &codeFlow{conf: conf, verifier: oauth2.GenerateVerifier(), state: "state-" + oauth2.GenerateVerifier()[:16], nonce: "nonce-" + oauth2.GenerateVerifier()[:16]}
}

func (f *codeFlow) authURL(extra ...oauth2.AuthCodeOption) string {
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(f.verifier), oidc.Nonce(f.nonce)}, extra...)
	return f.conf.AuthCodeURL(f.state, opts...)
}

// login runs a full authorization-code flow and returns the tokens.
func (e *env) login(conf *oauth2.Config, b *http.Client, userLogin string) (*oauth2.Token, *codeFlow) {
	e.t.Helper()
	f := newCodeFlow(conf)
	q := e.authorize(b, f.authURL(), userLogin)
	if q.Get("error") != "" {
		e.t.Fatalf("authorization failed: %v", q)
	}
	if q.Get("state") != f.state || q.Get("iss") != e.issuer {
		e.t.Fatalf("callback state=%q iss=%q, want %q %q", q.Get("state"), q.Get("iss"), f.state, e.issuer)
	}
	tok, err := conf.Exchange(e.ctx(), q.Get("code"), oauth2.VerifierOption(f.verifier))
	if err != nil {
		e.t.Fatalf("Exchange: %v", err)
	}
	return tok, f
}

// tokenRequest posts a raw form to the token endpoint.
func (e *env) postForm(path string, form url.Values, basicID, basicSecret string) (int, map[string]any, http.Header) {
	e.t.Helper()
	return e.postFormVia(0, path, form, basicID, basicSecret)
}

// postFormVia is postForm sent to one node.
func (e *env) postFormVia(node int, path string, form url.Values, basicID, basicSecret string) (int, map[string]any, http.Header) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("X-Test-Node", strconv.Itoa(node))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicID != "" {
		req.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(basicSecret))
	}
	return e.do(req)
}

func (e *env) do(req *http.Request) (int, map[string]any, http.Header) {
	e.t.Helper()
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &m); err != nil {
			m = map[string]any{"_raw": string(body)}
		}
	}
	return resp.StatusCode, m, resp.Header
}

// introspect returns the introspection answer for token.
func (e *env) introspect(token, clientID, secret string) map[string]any {
	e.t.Helper()
	return e.introspectVia(0, token, clientID, secret)
}

func (e *env) introspectVia(node int, token, clientID, secret string) map[string]any {
	e.t.Helper()
	status, body, _ := e.postFormVia(node, "/oauth2/introspect", url.Values{"token": {token}}, clientID, secret)
	if status != http.StatusOK {
		e.t.Fatalf("introspect: %d %v", status, body)
	}
	return body
}

// wantOAuthError asserts an OAuth error response.
func wantOAuthError(t testing.TB, status int, body map[string]any, wantStatus int, wantCode string) {
	t.Helper()
	if status != wantStatus || body["error"] != wantCode {
		t.Errorf("got %d %v, want %d error=%s", status, body, wantStatus, wantCode)
	}
}

func mustReq(method, u string) *http.Request {
	r, err := http.NewRequest(method, u, nil)
	if err != nil {
		panic(err)
	}
	return r
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }

// newMailEnv starts Torii with real mail delivery (an SMTP listener in the
// test, not development mode), the one-time-code step set to otp, and the
// outbox worker running.
func newMailEnv(t testing.TB, dbURL, otp string, opts ...envOption) *env {
	t.Helper()
	smtpd := notifytest.NewSMTPServer(t)
	opts = append([]envOption{func(c *Config, so *serverOptions) {
		c.OTP = otp
		c.SMTPURL = Secret(smtpd.URL())
		c.MailFrom = "torii@example.test"
		so.SMTPRootCAs = smtpd.RootCAs()
	}}, opts...)
	e := newEnv(t, dbURL, opts...)
	e.mail = smtpd
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	t.Cleanup(func() { cancel(); <-stopped }) // before the store closes
	go func() {
		defer close(stopped)
		e.srv.outbox.Run(ctx)
	}()
	return e
}

// nextMail waits (up to 10 s) for a mail to addr whose subject contains
// subject, among the mails after the first skip ones, and returns the
// newest.
func (e *env) nextMail(addr, subject string, skip int) notifytest.Mail {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ms := e.mail.Mails()
		for i := len(ms) - 1; i >= skip; i-- {
			for _, to := range ms[i].To {
				if strings.EqualFold(to, addr) && strings.Contains(ms[i].Subject, subject) {
					return ms[i]
				}
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no new mail to %s about %q arrived (%d mails, %d skipped)", addr, subject, len(ms), skip)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// enterCode submits the code in mail on the code page p.
func (e *env) enterCode(b *http.Client, p *page, mail notifytest.Mail) *page {
	e.t.Helper()
	f := p.formWith(e.t, "code")
	f.values.Set("code", notifytest.Code(e.t, mail.Text))
	return e.post(b, f)
}
