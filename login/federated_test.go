package login_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/torii-idp/torii/login"
	"github.com/torii-idp/torii/login/account"
	"github.com/torii-idp/torii/login/federation"
	"github.com/torii-idp/torii/login/federation/fedtest"
	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

// fedEnv is env with every provider configured against fedtest fakes;
// the browser reaches the fakes (Google's and Facebook's fixed hosts
// too) through fedtest.Transport.
type fedEnv struct {
	*env
	fakes     map[string]*fedtest.Fake
	transport http.RoundTripper
	// signIns records Deps.SignIns: "method outcome".
	mu      sync.Mutex
	signIns []string
}

func newFedEnv(t *testing.T, open func(testing.TB) *storage.Store, https bool, edit func(*login.Config, *federation.Config)) *fedEnv {
	t.Helper()
	st := open(t)
	e := &env{t: t, store: st, mail: &mailbox{}, logs: &syncBuffer{}, https: https}
	var handler http.Handler
	serve := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) })
	if https {
		e.srv = httptest.NewTLSServer(serve)
	} else {
		e.srv = httptest.NewServer(serve)
	}
	t.Cleanup(e.srv.Close)
	e.accounts = account.New(st, account.Config{Notifier: e.mail, Issuer: e.srv.URL, ResendInterval: -1})
	fe := &fedEnv{env: e, fakes: map[string]*fedtest.Fake{}}
	hosts := map[string]*fedtest.Fake{}
	for _, k := range []string{fedtest.GitHub, fedtest.Google, fedtest.Facebook, fedtest.OIDC} {
		fe.fakes[k] = fedtest.New(t, k)
	}
	for _, h := range fedtest.GoogleHosts {
		hosts[h] = fe.fakes[fedtest.Google]
	}
	for _, h := range fedtest.FacebookHosts {
		hosts[h] = fe.fakes[fedtest.Facebook]
	}
	hosts[fedtest.PictureHost] = fe.fakes[fedtest.GitHub]
	fe.transport = fedtest.Transport(e.srv.Client().Transport, hosts)
	fcfg := federation.Config{
		Issuer:        e.srv.URL,
		Google:        federation.Credentials{ClientID: fe.fakes[fedtest.Google].ClientID, ClientSecret: fe.fakes[fedtest.Google].ClientSecret},
		GitHub:        federation.Credentials{ClientID: fe.fakes[fedtest.GitHub].ClientID, ClientSecret: fe.fakes[fedtest.GitHub].ClientSecret},
		GitHubURL:     fe.fakes[fedtest.GitHub].URL(),
		Facebook:      federation.Credentials{ClientID: fe.fakes[fedtest.Facebook].ClientID, ClientSecret: fe.fakes[fedtest.Facebook].ClientSecret},
		OIDC:          federation.Credentials{ClientID: fe.fakes[fedtest.OIDC].ClientID, ClientSecret: fe.fakes[fedtest.OIDC].ClientSecret},
		OIDCIssuer:    fe.fakes[fedtest.OIDC].URL(),
		OIDCName:      "Acme SSO",
		HTTPClient:    &http.Client{Transport: fe.transport},
		PictureClient: &http.Client{Transport: fe.transport},
		Timeout:       2 * time.Second,
	}
	cfg := login.Config{Issuer: e.srv.URL, OTP: login.OTPOff}
	if edit != nil {
		edit(&cfg, &fcfg)
	}
	fed, err := federation.New(t.Context(), fcfg, st)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if e.h, err = login.New(t.Context(), cfg, login.Deps{Store: st, Accounts: e.accounts, Logger: logger, Federation: fed,
		SignIns: func(method, outcome string) {
			fe.mu.Lock()
			defer fe.mu.Unlock()
			fe.signIns = append(fe.signIns, method+" "+outcome)
		}}); err != nil {
		t.Fatal(err)
	}
	r := mux.NewRouter()
	e.h.Routes(r)
	handler = r
	if e.alice, err = e.accounts.Create(t.Context(), account.NewUser{Email: aliceEmail, Username: "alice", Password: alicePassword, EmailVerified: true}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateClient(t.Context(), &storage.Client{
		ID: "app", Name: "Example App", RedirectURIs: []string{"https://rp.example/cb"},
		GrantTypes: []string{"authorization_code"}, ResponseTypes: []string{"code"},
		Scopes: []string{"openid", "profile", "email"}, Audience: []string{}, TokenFormat: "opaque", IDTokenAlg: "RS256",
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, f := range fe.fakes {
			if strings.Contains(e.logs.String(), f.ClientSecret) {
				t.Errorf("the logs contain a client secret")
			}
		}
		if strings.Contains(e.logs.String(), alicePassword) {
			t.Errorf("the logs contain the password")
		}
		if strings.Contains(e.logs.String(), "fake_at_") {
			t.Errorf("the logs contain an upstream access token")
		}
	})
	return fe
}

func (fe *fedEnv) browser() *browser {
	b := fe.env.browser()
	b.c.Transport = fe.transport
	return b
}

// getURL requests an absolute URL (a provider's).
func (b *browser) getURL(abs string) *response {
	b.t.Helper()
	u, err := url.Parse(abs)
	if err != nil {
		b.t.Fatal(err)
	}
	if strings.HasPrefix(abs, b.e.srv.URL) {
		return b.get(strings.TrimPrefix(abs, b.e.srv.URL))
	}
	req, _ := http.NewRequestWithContext(b.t.Context(), http.MethodGet, u.String(), nil)
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("GET %s: %v", abs, err)
	}
	resp.Body.Close()
	return &response{Response: resp}
}

// continueWith presses "Continue with …" on the sign-in page and follows
// the provider's redirect back to Torii's callback; it returns the
// callback's response and the callback URL.
func (b *browser) continueWith(provider, req string) (*response, string) {
	b.t.Helper()
	page := "/login"
	if req != "" {
		page += "?req=" + req
	}
	form := url.Values{"csrf": {b.csrf(page)}}
	if req != "" {
		form.Set("req", req)
	}
	start := b.post(federation.StartPath(provider), form)
	if start.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("start = %d:\n%s", start.StatusCode, start.body)
	}
	up := b.getURL(start.Header.Get("Location"))
	if up.StatusCode != http.StatusFound {
		b.t.Fatalf("provider = %d", up.StatusCode)
	}
	callback := up.Header.Get("Location")
	return b.getURL(callback), callback
}

func (e *env) userCount() int {
	e.t.Helper()
	n, err := e.store.DB().NewSelect().Model((*storage.User)(nil)).Count(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	return int(n)
}

func (e *env) identityCount() int {
	e.t.Helper()
	n, err := e.store.DB().NewSelect().Model((*storage.Identity)(nil)).Count(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	return int(n)
}

// session returns the browser's sign-in as the provider sees it.
func (b *browser) session() (subject string, amr []string, idp string, ok bool) {
	b.t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/oauth2/auth", nil)
	if v := b.jarCookie(b.e.sessionCookieName()); v != "" {
		r.AddCookie(&http.Cookie{Name: b.e.sessionCookieName(), Value: v})
	}
	si, ok, err := b.e.h.SignedIn(r)
	if err != nil {
		b.t.Fatal(err)
	}
	return si.Subject, si.AMR, si.IDP, ok
}

func bothStores() map[string]func(testing.TB) *storage.Store {
	return map[string]func(testing.TB) *storage.Store{"sqlite": storagetest.NewSQLite, "postgres": storagetest.NewPostgres}
}

// The buttons show for configured providers only.
func TestFederatedButtons(t *testing.T) {
	fe := newFedEnv(t, storagetest.NewSQLite, false, func(_ *login.Config, f *federation.Config) {
		f.Facebook, f.Google = federation.Credentials{}, federation.Credentials{}
	})
	b := fe.browser()
	for _, page := range []string{"/login", "/register"} {
		body := b.get(page).body
		for _, want := range []string{"Continue with GitHub", "Continue with Acme SSO", `action="/login/federated/github"`} {
			if !strings.Contains(body, want) {
				t.Errorf("%s lacks %q", page, want)
			}
		}
		for _, unwanted := range []string{"Continue with Google", "Continue with Facebook"} {
			if strings.Contains(body, unwanted) {
				t.Errorf("%s shows %q for an unconfigured provider", page, unwanted)
			}
		}
	}
	plain := newEnv(t, storagetest.NewSQLite, false)
	if body := plain.browser().get("/login").body; strings.Contains(body, "Continue with") {
		t.Errorf("/login without providers shows a button")
	}
	if resp := plain.browser().post("/login/federated/github", url.Values{}); resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /login/federated/github without providers = %d, want 404/405", resp.StatusCode)
	}
}

// A first sign-in with an identity nobody linked and an email no account
// has creates the account and signs it in (amr fed, idp), per provider.
func TestFederatedNewAccount(t *testing.T) {
	for dbName, open := range bothStores() {
		t.Run(dbName, func(t *testing.T) {
			fe := newFedEnv(t, open, false, nil)
			for i, name := range []string{federation.GitHub, federation.Google, federation.OIDC} {
				t.Run(name, func(t *testing.T) {
					email := name + "-user@example.com"
					f := fe.fakes[name]
					f.User.Email, f.User.Emails = email, []fedtest.Email{{Email: email, Primary: true, Verified: true}}
					req := "req-" + name
					fe.pendingRequest(req, "openid")
					b := fe.browser()
					resp, _ := b.continueWith(name, req)
					if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/oauth2/auth/resume?req="+req {
						t.Fatalf("callback = %d %q, want 303 to resume:\n%s", resp.StatusCode, resp.Header.Get("Location"), resp.body)
					}
					sub, amr, idp, ok := b.session()
					if !ok || !slices.Equal(amr, []string{"fed"}) || idp != name {
						t.Fatalf("session = %v amr %v idp %q", ok, amr, idp)
					}
					u, err := fe.accounts.Get(t.Context(), sub)
					if err != nil || u.Email != email || !u.EmailVerified || u.Name != "Octo Cat" || u.PasswordHash != "" {
						t.Errorf("user = %+v, %v", u, err)
					}
					if _, _, err := fe.accounts.Avatar(t.Context(), sub); err != nil {
						t.Errorf("the provider's picture was not copied: %v", err)
					}
					if n := fe.userCount(); n != 2+i {
						t.Errorf("%d users, want %d", n, 2+i)
					}
					// The second time, the link signs in; no new account.
					b2 := fe.browser()
					resp, _ = b2.continueWith(name, "")
					if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != login.AccountPath {
						t.Fatalf("second sign-in = %d %q", resp.StatusCode, resp.Header.Get("Location"))
					}
					if sub2, _, _, _ := b2.session(); sub2 != sub {
						t.Errorf("second sign-in as %q, want %q", sub2, sub)
					}
					if n := fe.userCount(); n != 2+i {
						t.Errorf("%d users after the second sign-in, want %d", n, 2+i)
					}
				})
			}
		})
	}
}

// Facebook's email never counts as verified: the new account must confirm
// its address first, and gets no session until then.
func TestFederatedNewAccountUnverifiedEmail(t *testing.T) {
	fe := newFedEnv(t, storagetest.NewSQLite, false, nil)
	fe.fakes[fedtest.Facebook].User.Email = "fb-user@example.com"
	b := fe.browser()
	resp, _ := b.continueWith(federation.Facebook, "")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), login.VerifyPath) {
		t.Fatalf("callback = %d %q, want the verify page", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, _, _, ok := b.session(); ok {
		t.Error("signed in with an unverified address")
	}
	u, err := fe.accounts.UserByEmail(t.Context(), "fb-user@example.com")
	if err != nil || u.EmailVerified {
		t.Errorf("user = %+v, %v; want an unverified account", u, err)
	}
}

// SECURITY 63: an identity whose email is an existing account's is never
// linked silently; with a verified upstream email the person proves the
// account is theirs (password then code, or a mailed code); with an
// unverified one (Facebook) nothing is offered but the account's own
// sign-in.
func TestSecurity63AccountTakeoverByEmail(t *testing.T) {
	for dbName, open := range bothStores() {
		t.Run(dbName, func(t *testing.T) {
			fe := newFedEnv(t, open, false, nil)
			for _, f := range fe.fakes {
				f.User.Email, f.User.Emails = aliceEmail, []fedtest.Email{{Email: aliceEmail, Primary: true, Verified: true}}
			}
			t.Run("never linked silently", func(t *testing.T) {
				b := fe.browser()
				resp, _ := b.continueWith(federation.Google, "")
				if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != login.FederatedLinkPath {
					t.Fatalf("callback = %d %q, want the link page", resp.StatusCode, resp.Header.Get("Location"))
				}
				if _, _, _, ok := b.session(); ok {
					t.Error("signed in before proving the account")
				}
				if n := fe.identityCount(); n != 0 {
					t.Errorf("%d identities linked, want 0", n)
				}
				page := b.get(login.FederatedLinkPath)
				if page.StatusCode != http.StatusOK || !strings.Contains(page.body, "already exists") {
					t.Errorf("link page = %d:\n%s", page.StatusCode, page.body)
				}
			})
			t.Run("unverified upstream email", func(t *testing.T) {
				b := fe.browser()
				resp, _ := b.continueWith(federation.Facebook, "")
				if resp.StatusCode != http.StatusConflict || !strings.Contains(resp.body, "Sign in with your password first") || !strings.Contains(resp.body, `href="/login"`) {
					t.Fatalf("callback = %d:\n%s", resp.StatusCode, resp.body)
				}
				if _, _, _, ok := b.session(); ok || fe.identityCount() != 0 || fe.userCount() != 1 {
					t.Errorf("signed in %v, %d identities, %d users; want nothing", ok, fe.identityCount(), fe.userCount())
				}
			})
			t.Run("password then code", func(t *testing.T) {
				b := fe.browser()
				b.continueWith(federation.GitHub, "")
				csrf := b.csrf(login.FederatedLinkPath)
				resp := b.post(login.FederatedLinkPath, url.Values{"csrf": {csrf}, "action": {"password"}, "password": {"wrong password!"}})
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("wrong password = %d", resp.StatusCode)
				}
				sent := fe.mail.count()
				resp = b.post(login.FederatedLinkPath, url.Values{"csrf": {csrf}, "action": {"password"}, "password": {alicePassword}})
				if resp.StatusCode != http.StatusSeeOther || fe.mail.count() != sent+1 {
					t.Fatalf("password = %d, %d mails", resp.StatusCode, fe.mail.count()-sent)
				}
				resp = b.post(login.FederatedLinkPath+"/code", url.Values{"csrf": {csrf}, "code": {"000000"}})
				if resp.StatusCode != http.StatusUnauthorized || fe.identityCount() != 0 {
					t.Fatalf("wrong code = %d, %d identities", resp.StatusCode, fe.identityCount())
				}
				resp = b.post(login.FederatedLinkPath+"/code", url.Values{"csrf": {csrf}, "code": {fe.mail.code(t, aliceEmail)}})
				if resp.StatusCode != http.StatusSeeOther {
					t.Fatalf("code = %d:\n%s", resp.StatusCode, resp.body)
				}
				sub, amr, idp, ok := b.session()
				if !ok || sub != fe.alice.ID || !slices.Equal(amr, []string{"fed", "otp"}) || idp != "github" {
					t.Errorf("session = %q %v %q %v", sub, amr, idp, ok)
				}
				if id, err := fe.store.Identity(t.Context(), "github", "1001"); err != nil || id.UserID != fe.alice.ID {
					t.Errorf("identity = %+v, %v", id, err)
				}
				// The pending link worked once.
				if resp := b.get(login.FederatedLinkPath); resp.StatusCode != http.StatusBadRequest {
					t.Errorf("link page after linking = %d, want 400", resp.StatusCode)
				}
			})
			t.Run("mailed code", func(t *testing.T) {
				b := fe.browser()
				b.continueWith(federation.OIDC, "")
				csrf := b.csrf(login.FederatedLinkPath)
				if resp := b.post(login.FederatedLinkPath, url.Values{"csrf": {csrf}, "action": {"mail"}}); resp.StatusCode != http.StatusSeeOther {
					t.Fatalf("mail = %d", resp.StatusCode)
				}
				resp := b.post(login.FederatedLinkPath+"/code", url.Values{"csrf": {csrf}, "code": {fe.mail.code(t, aliceEmail)}})
				if resp.StatusCode != http.StatusSeeOther {
					t.Fatalf("code = %d:\n%s", resp.StatusCode, resp.body)
				}
				if sub, _, idp, ok := b.session(); !ok || sub != fe.alice.ID || idp != "oidc" {
					t.Errorf("session = %q %q %v", sub, idp, ok)
				}
			})
		})
	}
}

// SECURITY 52: an account whose address is unconfirmed is never a
// federation link target.
func TestSecurity52UnverifiedAccountNeverLinkTarget(t *testing.T) {
	fe := newFedEnv(t, storagetest.NewSQLite, false, nil)
	if _, err := fe.accounts.Create(t.Context(), account.NewUser{Email: "bob@example.com", Password: alicePassword}); err != nil {
		t.Fatal(err)
	}
	fe.fakes[fedtest.Google].User.Email = "bob@example.com"
	b := fe.browser()
	resp, _ := b.continueWith(federation.Google, "")
	if resp.StatusCode != http.StatusConflict || fe.identityCount() != 0 {
		t.Fatalf("callback = %d, %d identities; want 409 and none", resp.StatusCode, fe.identityCount())
	}
	if _, _, _, ok := b.session(); ok {
		t.Error("signed in")
	}
}

// SECURITY 62 and every failure the issue names: a clear page with a way
// back to sign-in, no session, no account, no link.
func TestSecurity62FederatedFailures(t *testing.T) {
	for dbName, open := range bothStores() {
		t.Run(dbName, func(t *testing.T) {
			fe := newFedEnv(t, open, false, func(_ *login.Config, f *federation.Config) {
				// Long enough for every answering call on a loaded machine; the
				// hanging ones end with it.
				f.Timeout = 2 * time.Second
			})
			disabled, err := fe.accounts.Create(t.Context(), account.NewUser{Email: "dis@example.com", Password: alicePassword, EmailVerified: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := fe.store.CreateIdentity(t.Context(), &storage.Identity{Provider: "facebook", Subject: "666", UserID: disabled.ID}); err != nil {
				t.Fatal(err)
			}
			if _, err := fe.accounts.SetActive(t.Context(), disabled.ID, false); err != nil {
				t.Fatal(err)
			}
			reset := func(f *fedtest.Fake) {
				f.AuthorizeError, f.TokenStatus, f.ProfileStatus, f.Hang, f.Claims, f.WrongKey = "", 0, 0, false, nil, false
				f.HangProfile = false
				f.User.Subject = "1001"
			}
			type step func(t *testing.T, b *browser) *response
			// viaProvider: a whole trip with the fake set up by set.
			viaProvider := func(name string, set func(f *fedtest.Fake)) step {
				return func(t *testing.T, b *browser) *response {
					f := fe.fakes[name]
					t.Cleanup(func() { f.Configure(reset) })
					f.Configure(set)
					resp, _ := b.continueWith(name, "")
					return resp
				}
			}
			// replay signs in once through GitHub in a first browser and
			// gives b that browser's federation cookie and callback URL.
			var replayed string
			replay := func(t *testing.T, b *browser) string {
				t.Helper()
				first := fe.browser()
				csrf := first.csrf("/login")
				start := first.post(federation.StartPath("github"), url.Values{"csrf": {csrf}})
				callback := first.getURL(start.Header.Get("Location")).Header.Get("Location")
				b.setJarCookie("torii_fed", first.jarCookie("torii_fed"))
				if resp := first.getURL(callback); resp.StatusCode != http.StatusSeeOther {
					t.Fatalf("first use = %d", resp.StatusCode)
				}
				replayed = callback
				return callback
			}
			tests := []struct {
				name   string
				do     step
				status int
				title  string
			}{
				{"cancelled", viaProvider(federation.GitHub, func(f *fedtest.Fake) { f.AuthorizeError = "access_denied" }), 400, "Sign-in cancelled"},
				{"provider error", viaProvider(federation.Google, func(f *fedtest.Fake) { f.AuthorizeError = "temporarily_unavailable" }), 502, "Sign-in with Google failed"},
				{"exchange fails", viaProvider(federation.GitHub, func(f *fedtest.Fake) { f.TokenStatus = 500 }), 502, "Sign-in with GitHub failed"},
				{"profile fails", viaProvider(federation.Facebook, func(f *fedtest.Fake) { f.ProfileStatus = 503 }), 502, "Sign-in with Facebook failed"},
				{"slow provider", viaProvider(federation.GitHub, func(f *fedtest.Fake) { f.Hang = true }), 502, "GitHub is not answering"},
				{"slow profile (token in the URL)", viaProvider(federation.Google, func(f *fedtest.Fake) { f.HangProfile = true }), 502, "Google is not answering"},
				{"slow graph API", viaProvider(federation.Facebook, func(f *fedtest.Fake) { f.HangProfile = true }), 502, "Facebook is not answering"},
				{"id token signature", viaProvider(federation.OIDC, func(f *fedtest.Fake) { f.WrongKey = true }), 502, "Sign-in with Acme SSO failed"},
				{"id token iss", viaProvider(federation.OIDC, func(f *fedtest.Fake) { f.Claims = func(c map[string]any) { c["iss"] = "https://evil.example" } }), 502, "Sign-in with Acme SSO failed"},
				{"id token aud", viaProvider(federation.OIDC, func(f *fedtest.Fake) { f.Claims = func(c map[string]any) { c["aud"] = "other" } }), 502, "Sign-in with Acme SSO failed"},
				{"id token nonce", viaProvider(federation.OIDC, func(f *fedtest.Fake) { f.Claims = func(c map[string]any) { c["nonce"] = "replayed" } }), 502, "Sign-in with Acme SSO failed"},
				{"id token exp", viaProvider(federation.OIDC, func(f *fedtest.Fake) {
					f.Claims = func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }
				}), 502, "Sign-in with Acme SSO failed"},
				{"disabled account", viaProvider(federation.Facebook, func(f *fedtest.Fake) { f.User.Subject = "666" }), 403, "Account disabled"},
				{"state missing", func(t *testing.T, b *browser) *response {
					return b.get(federation.CallbackPath("github") + "?code=abc")
				}, 400, "Sign-in not recognised"},
				{"state reused", func(t *testing.T, b *browser) *response {
					// The callback, with its cookie, as it was when it
					// first succeeded (in another browser, before this
					// one's counts were taken)...
					return b.getURL(replayed)
				}, 400, "Sign-in not recognised"},
				{"state from another browser", func(t *testing.T, b *browser) *response {
					csrf := b.csrf("/login")
					start := b.post(federation.StartPath("github"), url.Values{"csrf": {csrf}})
					callback := b.getURL(start.Header.Get("Location")).Header.Get("Location")
					return fe.browser().getURL(callback) // the victim's browser
				}, 400, "Sign-in not recognised"},
				{"state Torii did not begin", func(t *testing.T, b *browser) *response {
					// gothic would take ?state= from the begin request and
					// later skip its check; Torii makes its own state.
					csrf := b.csrf("/login")
					start := b.post(federation.StartPath("github")+"?state=attacker", url.Values{"csrf": {csrf}, "state": {"attacker"}})
					if strings.Contains(start.Header.Get("Location"), "state=attacker") {
						t.Errorf("the state came from the request: %s", start.Header.Get("Location"))
					}
					return b.get(federation.CallbackPath("github") + "?state=attacker&code=abc")
				}, 400, "Sign-in not recognised"},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					b := fe.browser()
					if tc.name == "state reused" {
						replay(t, b)
					}
					users, ids := fe.userCount(), fe.identityCount()
					var resp *response
					if tc.name == "state reused" {
						resp = b.getURL(replayed)
					} else {
						resp = tc.do(t, b)
					}
					if resp.StatusCode != tc.status || !strings.Contains(resp.body, tc.title) {
						t.Fatalf("status %d, want %d with %q:\n%s", resp.StatusCode, tc.status, tc.title, resp.body)
					}
					if !strings.Contains(resp.body, `href="/login`) || !strings.Contains(resp.body, "Back to sign-in") {
						t.Errorf("no way back to sign-in:\n%s", resp.body)
					}
					checkPageHeaders(t, tc.name, resp)
					if _, _, _, ok := b.session(); ok {
						t.Error("signed in")
					}
					if fe.userCount() != users || fe.identityCount() != ids {
						t.Errorf("users %d → %d, identities %d → %d: something was created", users, fe.userCount(), ids, fe.identityCount())
					}
				})
			}
		})
	}
}

// The start needs the CSRF token.
func TestFederatedStartCSRF(t *testing.T) {
	fe := newFedEnv(t, storagetest.NewSQLite, false, nil)
	if resp := fe.browser().post(federation.StartPath("github"), url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("start without csrf = %d, want 403", resp.StatusCode)
	}
}

// SECURITY 60: the federation cookies are __Host-, Secure, HttpOnly,
// SameSite=Lax, Path=/ on https, and keyed (an HMAC of the state, not
// gothic's store).
func TestSecurity60FederationCookie(t *testing.T) {
	fe := newFedEnv(t, storagetest.NewSQLite, true, nil)
	b := fe.browser()
	csrf := b.csrf("/login")
	start := b.post(federation.StartPath("github"), url.Values{"csrf": {csrf}})
	c := start.cookie("__Host-torii_fed")
	if c == nil {
		t.Fatalf("no __Host-torii_fed cookie: %v", start.Header["Set-Cookie"])
	}
	if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
		t.Errorf("cookie = %+v", c)
	}
	loc, _ := url.Parse(start.Header.Get("Location"))
	if state := loc.Query().Get("state"); len(state) < 43 || c.Value == state || strings.Contains(c.Value, state) {
		t.Errorf("state %q (want ≥ 256 bits) and cookie %q", state, c.Value)
	}
}

// The code step follows TORII_OTP; TORII_FEDERATED_OTP=skip trusts the
// provider. After the code, amr is fed otp.
func TestFederatedCodeStep(t *testing.T) {
	tests := []struct {
		name     string
		otp      string
		fedOTP   string
		wantCode bool
	}{
		{"otp always", login.OTPAlways, "", true},
		{"otp always, federated skip", login.OTPAlways, login.FederatedOTPSkip, false},
		{"otp off", login.OTPOff, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fe := newFedEnv(t, storagetest.NewSQLite, false, func(c *login.Config, _ *federation.Config) {
				c.OTP, c.FederatedOTP = tc.otp, tc.fedOTP
			})
			fe.fakes[fedtest.GitHub].User.Emails = []fedtest.Email{{Email: "gh@example.com", Primary: true, Verified: true}}
			b := fe.browser()
			resp, _ := b.continueWith(federation.GitHub, "")
			gotCode := strings.HasPrefix(resp.Header.Get("Location"), login.CodePath)
			if gotCode != tc.wantCode {
				t.Fatalf("callback → %q; want code step %v", resp.Header.Get("Location"), tc.wantCode)
			}
			if !tc.wantCode {
				if _, amr, _, ok := b.session(); !ok || !slices.Equal(amr, []string{"fed"}) {
					t.Errorf("session %v amr %v", ok, amr)
				}
				return
			}
			if _, _, _, ok := b.session(); ok {
				t.Fatal("signed in before the code")
			}
			csrf := b.csrf(resp.Header.Get("Location"))
			resp = b.post(login.CodePath, url.Values{"csrf": {csrf}, "code": {fe.mail.code(t, "gh@example.com")}})
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("code = %d:\n%s", resp.StatusCode, resp.body)
			}
			if _, amr, idp, ok := b.session(); !ok || !slices.Equal(amr, []string{"fed", "otp"}) || idp != "github" {
				t.Errorf("session %v amr %v idp %q", ok, amr, idp)
			}
			fe.mu.Lock()
			defer fe.mu.Unlock()
			if !slices.Equal(fe.signIns, []string{"federated success"}) {
				t.Errorf("sign-ins reported = %q, want [federated success]", fe.signIns)
			}
		})
	}
}

// The account page lists linked identities, links another through the
// provider, and refuses to unlink the last way to sign in; an account
// created through a provider sets a password with the forgotten-password
// mail, and may then unlink.
func TestFederatedAccountPageLinksAndUnlink(t *testing.T) {
	fe := newFedEnv(t, storagetest.NewSQLite, false, nil)
	const email = "upstream-only@example.com"
	fe.fakes[fedtest.GitHub].User.Emails = []fedtest.Email{{Email: email, Primary: true, Verified: true}}
	fe.fakes[fedtest.Google].User.Email = "other-google@example.com"
	b := fe.browser()
	if resp, _ := b.continueWith(federation.GitHub, ""); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in = %d", resp.StatusCode)
	}
	sub, _, _, _ := b.session()
	page := b.get(login.AccountPath)
	if !strings.Contains(page.body, "GitHub") || !strings.Contains(page.body, "Link another: Google") {
		t.Fatalf("account page lacks the identities:\n%s", page.body)
	}
	csrf := csrfField.FindStringSubmatch(page.body)[1]
	unlink := func(provider, subject string) *response {
		return b.post("/account/federated/unlink", url.Values{"csrf": {csrf}, "provider": {provider}, "subject": {subject}})
	}
	if resp := unlink("github", "1001"); resp.StatusCode != http.StatusConflict || !strings.Contains(resp.body, "Cannot unlink") {
		t.Errorf("unlink the last way = %d:\n%s", resp.StatusCode, resp.body)
	}
	if resp := unlink("google", "nope"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unlink an unknown identity = %d, want 404", resp.StatusCode)
	}
	if resp := b.post("/account/federated/unlink", url.Values{"provider": {"github"}, "subject": {"1001"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("unlink without CSRF = %d, want 403", resp.StatusCode)
	}
	// Link another: Google, through the provider, for the signed-in user.
	start := b.post("/account/federated/google", url.Values{"csrf": {csrf}})
	if start.StatusCode != http.StatusSeeOther {
		t.Fatalf("link start = %d", start.StatusCode)
	}
	back := b.getURL(b.getURL(start.Header.Get("Location")).Header.Get("Location"))
	if back.StatusCode != http.StatusSeeOther || !strings.HasPrefix(back.Header.Get("Location"), login.AccountPath) {
		t.Fatalf("link callback = %d %q", back.StatusCode, back.Header.Get("Location"))
	}
	if id, err := fe.store.Identity(t.Context(), "google", "1001"); err != nil || id.UserID != sub {
		t.Fatalf("google identity = %+v, %v", id, err)
	}
	if resp := unlink("github", "1001"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("unlink with another left = %d", resp.StatusCode)
	}
	if resp := unlink("google", "1001"); resp.StatusCode != http.StatusConflict {
		t.Errorf("unlink the remaining one = %d, want 409", resp.StatusCode)
	}
	// The account page offers a link to set a password, not the change
	// form (there is no current password to type), and deactivation waits
	// for one.
	page = b.get(login.AccountPath)
	if !strings.Contains(page.body, "Set a password") || strings.Contains(page.body, `id="old-password"`) ||
		strings.Contains(page.body, `action="/account/deactivate"`) {
		t.Errorf("account page of an account without a password:\n%s", page.body)
	}
	if resp := b.post("/account/password-link", url.Values{"csrf": {csrf}}); resp.StatusCode != http.StatusSeeOther ||
		resp.Header.Get("Location") != login.AccountPath+"?done=password-link" {
		t.Fatalf("password-link = %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if link := fe.mail.link(t, email); !strings.Contains(link, "/reset?token=") {
		t.Errorf("password-link mailed %q, want a reset link", link)
	}
	if resp := b.post("/account/password-link", url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("password-link without CSRF = %d, want 403", resp.StatusCode)
	}
	// A password through the forgotten-password mail; then unlinking works.
	if resp := b.post(login.ForgotPath, url.Values{"csrf": {b.csrf(login.ForgotPath)}, "email": {email}}); resp.StatusCode >= 400 {
		t.Fatalf("forgot = %d", resp.StatusCode)
	}
	link, _ := url.Parse(fe.mail.link(t, email))
	token := link.Query().Get("token")
	resp := b.post(login.ResetPath, url.Values{"csrf": {b.csrf(login.ResetPath + "?token=" + url.QueryEscape(token))}, "token": {token},
		"password": {alicePassword}, "password2": {alicePassword}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("reset = %d:\n%s", resp.StatusCode, resp.body)
	}
	b2 := fe.browser()
	if resp := b2.signIn("", email, alicePassword); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("password sign-in = %d", resp.StatusCode)
	}
	csrf = csrfField.FindStringSubmatch(b2.get(login.AccountPath).body)[1]
	if resp := b2.post("/account/federated/unlink", url.Values{"csrf": {csrf}, "provider": {"google"}, "subject": {"1001"}}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("unlink with a password = %d", resp.StatusCode)
	}
	if n := fe.identityCount(); n != 0 {
		t.Errorf("%d identities left, want 0", n)
	}
}

// A "Link another" trip finished in a browser signed in as someone else
// (or nobody) links nothing.
func TestFederatedLinkAnotherOtherBrowser(t *testing.T) {
	fe := newFedEnv(t, storagetest.NewSQLite, false, nil)
	b := fe.browser()
	if resp := b.signIn("", aliceEmail, alicePassword); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in = %d", resp.StatusCode)
	}
	csrf := csrfField.FindStringSubmatch(b.get(login.AccountPath).body)[1]
	start := b.post("/account/federated/github", url.Values{"csrf": {csrf}})
	callback := b.getURL(start.Header.Get("Location")).Header.Get("Location")
	// Sign out, keeping the federation cookie: the trip's user is gone.
	b.setJarCookie(fe.sessionCookieName(), "")
	if resp := b.getURL(callback); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("callback without the user = %d, want 400", resp.StatusCode)
	}
	if n := fe.identityCount(); n != 0 {
		t.Errorf("%d identities, want 0", n)
	}
}

// A provider that cannot be reached when the trip starts (the generic
// provider's discovery) ends on a page with a way back; nothing is stored.
func TestFederatedProviderUnreachableAtStart(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	fe := newFedEnv(t, storagetest.NewSQLite, false, func(_ *login.Config, f *federation.Config) { f.OIDCIssuer = deadURL })
	b := fe.browser()
	resp := b.post(federation.StartPath("oidc"), url.Values{"csrf": {b.csrf("/login")}})
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(resp.body, "Acme SSO is not answering") || !strings.Contains(resp.body, "Back to sign-in") {
		t.Fatalf("start = %d:\n%s", resp.StatusCode, resp.body)
	}
	if resp.cookie("torii_fed") != nil {
		t.Error("a federation cookie was set for a trip that did not start")
	}
	n, err := fe.store.DB().NewSelect().Model((*storage.FederationFlow)(nil)).Count(t.Context())
	if err != nil || n != 0 {
		t.Errorf("%d flows stored, %v; want 0", n, err)
	}
}

// The pending-link cookie is a __Host- cookie too, and names a
// server-side row (never the identity itself).
func TestSecurity60PendingLinkCookie(t *testing.T) {
	fe := newFedEnv(t, storagetest.NewSQLite, true, nil)
	fe.fakes[fedtest.Google].User.Email = aliceEmail
	b := fe.browser()
	resp, _ := b.continueWith(federation.Google, "")
	c := resp.cookie("__Host-torii_fedlink")
	if c == nil || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
		t.Fatalf("pending-link cookie = %+v (%v)", c, resp.Header["Set-Cookie"])
	}
	if strings.Contains(c.Value, "1001") || strings.Contains(c.Value, "alice") {
		t.Errorf("the cookie carries the identity: %q", c.Value)
	}
	if fed := resp.cookie("__Host-torii_fed"); fed == nil || fed.MaxAge >= 0 {
		t.Errorf("the trip's cookie is not cleared at the callback: %+v", fed)
	}
}
