package federation_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/torii-idp/torii/login/federation"
	"github.com/torii-idp/torii/login/federation/fedtest"
	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

type env struct {
	svc   *federation.Service
	store *storage.Store
	fakes map[string]*fedtest.Fake
	// browser follows nothing: each step is checked.
	browser *http.Client
}

// newEnv configures every provider against its own fake.
func newEnv(t *testing.T, open func(testing.TB) *storage.Store, timeout time.Duration) *env {
	t.Helper()
	e := &env{store: open(t), fakes: map[string]*fedtest.Fake{}}
	hosts := map[string]*fedtest.Fake{}
	for _, k := range []string{fedtest.GitHub, fedtest.Google, fedtest.Facebook, fedtest.OIDC} {
		e.fakes[k] = fedtest.New(t, k)
	}
	for _, h := range fedtest.GoogleHosts {
		hosts[h] = e.fakes[fedtest.Google]
	}
	for _, h := range fedtest.FacebookHosts {
		hosts[h] = e.fakes[fedtest.Facebook]
	}
	client := &http.Client{Transport: fedtest.Transport(nil, hosts)}
	cfg := federation.Config{
		Issuer:     "https://id.example",
		Google:     federation.Credentials{ClientID: e.fakes[fedtest.Google].ClientID, ClientSecret: e.fakes[fedtest.Google].ClientSecret},
		GitHub:     federation.Credentials{ClientID: e.fakes[fedtest.GitHub].ClientID, ClientSecret: e.fakes[fedtest.GitHub].ClientSecret},
		GitHubURL:  e.fakes[fedtest.GitHub].URL(),
		Facebook:   federation.Credentials{ClientID: e.fakes[fedtest.Facebook].ClientID, ClientSecret: e.fakes[fedtest.Facebook].ClientSecret},
		OIDC:       federation.Credentials{ClientID: e.fakes[fedtest.OIDC].ClientID, ClientSecret: e.fakes[fedtest.OIDC].ClientSecret},
		OIDCIssuer: e.fakes[fedtest.OIDC].URL(),
		OIDCName:   "Acme SSO",
		HTTPClient: client,
		Timeout:    timeout,
	}
	var err error
	if e.svc, err = federation.New(t.Context(), cfg, e.store); err != nil {
		t.Fatal(err)
	}
	e.browser = &http.Client{Transport: client.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return e
}

// trip begins a flow and follows the provider's authorization endpoint
// back to the callback: it returns the callback's query and the cookie.
func (e *env) trip(t *testing.T, name string) (url.Values, string, *federation.Start) {
	t.Helper()
	start, err := e.svc.Begin(t.Context(), name, storage.FlowLogin, "req-1", "")
	if err != nil {
		t.Fatalf("Begin(%s) = %v", name, err)
	}
	resp, err := e.browser.Get(start.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("authorize = %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if want := "https://id.example" + federation.CallbackPath(name); loc.Scheme+"://"+loc.Host+loc.Path != want {
		t.Fatalf("callback = %s, want %s", loc, want)
	}
	return loc.Query(), start.Binding, start
}

func stores(t *testing.T) map[string]func(testing.TB) *storage.Store {
	return map[string]func(testing.TB) *storage.Store{"sqlite": storagetest.NewSQLite, "postgres": storagetest.NewPostgres}
}

func TestFinishPerProvider(t *testing.T) {
	for dbName, open := range stores(t) {
		t.Run(dbName, func(t *testing.T) {
			e := newEnv(t, open, 0)
			e.fakes[fedtest.GitHub].User.Email = "public@example.com" // the public email is never taken
			tests := []struct {
				name         string
				want         federation.Identity
				authURLParts []string
			}{
				{federation.GitHub, federation.Identity{Provider: "github", Subject: "1001", Email: "octo@example.com", EmailVerified: true, Name: "Octo Cat", Picture: fedtest.PictureURL},
					[]string{"code_challenge_method=S256", "scope=read%3Auser+user%3Aemail"}},
				{federation.Google, federation.Identity{Provider: "google", Subject: "1001", Email: "octo@example.com", EmailVerified: true, Name: "Octo Cat", Picture: fedtest.PictureURL},
					[]string{"code_challenge_method=S256", "nonce="}},
				{federation.Facebook, federation.Identity{Provider: "facebook", Subject: "1001", Email: "octo@example.com", EmailVerified: false, Name: "Octo Cat", Picture: fedtest.PictureURL},
					[]string{"code_challenge_method=S256"}},
				{federation.OIDC, federation.Identity{Provider: "oidc", Subject: "1001", Email: "octo@example.com", EmailVerified: true, Name: "Octo Cat", Picture: fedtest.PictureURL},
					[]string{"code_challenge_method=S256", "nonce="}},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					q, binding, start := e.trip(t, tc.name)
					for _, part := range tc.authURLParts {
						if !strings.Contains(start.URL, part) {
							t.Errorf("authorization URL %s lacks %q", start.URL, part)
						}
					}
					res, err := e.svc.Finish(t.Context(), tc.name, q, binding)
					if err != nil {
						t.Fatalf("Finish = %v", err)
					}
					if res.Identity != tc.want {
						t.Errorf("Identity = %+v, want %+v", res.Identity, tc.want)
					}
					if tc.name == federation.GitHub {
						// TORII_GITHUB_URL names an Enterprise server: its
						// API is under /api/v3.
						reqs := e.fakes[fedtest.GitHub].Requests()
						for _, want := range []string{"/login/oauth/authorize", "/login/oauth/access_token", "/api/v3/user", "/api/v3/user/emails"} {
							if !slices.Contains(reqs, want) {
								t.Errorf("GitHub Enterprise requests %q lack %s", reqs, want)
							}
						}
					}
					if res.Flow.RequestID != "req-1" || res.Flow.Purpose != storage.FlowLogin {
						t.Errorf("Flow = %+v, want request req-1", res.Flow)
					}
					// The state works once.
					if _, err := e.svc.Finish(t.Context(), tc.name, q, binding); federation.KindOf(err) != federation.KindState {
						t.Errorf("Finish again = %v, want a state error", err)
					}
				})
			}
		})
	}
}

// The email-verified rules: GitHub's primary verified address only;
// Google's and the generic provider's email_verified; Facebook's never.
func TestEmailVerifiedRules(t *testing.T) {
	e := newEnv(t, storagetest.NewSQLite, 0)
	tests := []struct {
		name      string
		provider  string
		set       func(u *fedtest.User)
		wantEmail string
		wantOK    bool
	}{
		{"github no verified primary", federation.GitHub, func(u *fedtest.User) {
			u.Email = "public@example.com"
			u.Emails = []fedtest.Email{{Email: "a@example.com", Primary: true}, {Email: "b@example.com", Verified: true}}
		}, "", false},
		{"github primary verified", federation.GitHub, func(u *fedtest.User) {
			u.Emails = []fedtest.Email{{Email: "b@example.com", Verified: true}, {Email: "a@example.com", Primary: true, Verified: true}}
		}, "a@example.com", true},
		{"google unverified", federation.Google, func(u *fedtest.User) { u.EmailVerified = false }, "octo@example.com", false},
		{"oidc unverified", federation.OIDC, func(u *fedtest.User) { u.EmailVerified = false }, "octo@example.com", false},
		{"facebook", federation.Facebook, func(u *fedtest.User) { u.EmailVerified = true }, "octo@example.com", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := e.fakes[tc.provider]
			saved := f.User
			t.Cleanup(func() { f.User = saved })
			tc.set(&f.User)
			q, binding, _ := e.trip(t, tc.provider)
			res, err := e.svc.Finish(t.Context(), tc.provider, q, binding)
			if err != nil {
				t.Fatal(err)
			}
			if res.Identity.Email != tc.wantEmail || res.Identity.EmailVerified != tc.wantOK {
				t.Errorf("email = %q verified %v, want %q %v", res.Identity.Email, res.Identity.EmailVerified, tc.wantEmail, tc.wantOK)
			}
		})
	}
}

// Every failure is an *Error of its kind, and no flow survives it.
func TestFinishFailures(t *testing.T) {
	e := newEnv(t, storagetest.NewSQLite, 2*time.Second)
	tests := []struct {
		name     string
		provider string
		set      func(f *fedtest.Fake)
		query    func(q url.Values) url.Values
		binding  func(b string) string
		want     federation.Kind
	}{
		{name: "cancelled", provider: federation.GitHub, set: func(f *fedtest.Fake) { f.AuthorizeError = "access_denied" }, want: federation.KindCancelled},
		{name: "provider error", provider: federation.Google, set: func(f *fedtest.Fake) { f.AuthorizeError = "server_error" }, want: federation.KindProvider},
		{name: "exchange fails", provider: federation.GitHub, set: func(f *fedtest.Fake) { f.TokenStatus = 500 }, want: federation.KindExchange},
		{name: "profile fails", provider: federation.Facebook, set: func(f *fedtest.Fake) { f.ProfileStatus = 500 }, want: federation.KindProfile},
		{name: "github emails fail", provider: federation.GitHub, set: func(f *fedtest.Fake) { f.ProfileStatus = 502 }, want: federation.KindProfile},
		{name: "slow provider", provider: federation.OIDC, set: func(f *fedtest.Fake) { f.Hang = true }, want: federation.KindUnreachable},
		{name: "state missing", provider: federation.GitHub, query: func(q url.Values) url.Values { q.Del("state"); return q }, want: federation.KindState},
		{name: "state from another browser", provider: federation.GitHub, binding: func(string) string { return "" }, want: federation.KindState},
		{name: "state with another browser's cookie", provider: federation.GitHub, binding: func(string) string { return "AAAA" }, want: federation.KindState},
		{name: "state Torii did not make", provider: federation.GitHub, query: func(q url.Values) url.Values { q.Set("state", "attacker-state"); return q }, want: federation.KindState},
		{name: "id token bad signature", provider: federation.OIDC, set: func(f *fedtest.Fake) { f.WrongKey = true }, want: federation.KindIDToken},
		{name: "id token wrong iss", provider: federation.OIDC, set: func(f *fedtest.Fake) { f.Claims = func(c map[string]any) { c["iss"] = "https://evil.example" } }, want: federation.KindIDToken},
		{name: "id token wrong aud", provider: federation.OIDC, set: func(f *fedtest.Fake) { f.Claims = func(c map[string]any) { c["aud"] = "someone-else" } }, want: federation.KindIDToken},
		{name: "id token wrong nonce", provider: federation.OIDC, set: func(f *fedtest.Fake) { f.Claims = func(c map[string]any) { c["nonce"] = "other" } }, want: federation.KindIDToken},
		{name: "id token expired", provider: federation.OIDC, set: func(f *fedtest.Fake) {
			f.Claims = func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }
		}, want: federation.KindIDToken},
		{name: "google id token wrong nonce", provider: federation.Google, set: func(f *fedtest.Fake) { f.Claims = func(c map[string]any) { delete(c, "nonce") } }, want: federation.KindIDToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := e.fakes[tc.provider]
			q, binding, _ := e.trip(t, tc.provider)
			if tc.set != nil {
				t.Cleanup(func() {
					f.Configure(func(f *fedtest.Fake) {
						f.AuthorizeError, f.TokenStatus, f.ProfileStatus, f.Hang, f.Claims, f.WrongKey = "", 0, 0, false, nil, false
					})
				})
				f.Configure(tc.set)
				if f.AuthorizeError != "" {
					q, binding, _ = e.trip(t, tc.provider)
				}
			}
			if tc.query != nil {
				q = tc.query(q)
			}
			if tc.binding != nil {
				binding = tc.binding(binding)
			}
			_, err := e.svc.Finish(t.Context(), tc.provider, q, binding)
			if got := federation.KindOf(err); got != tc.want {
				t.Fatalf("Finish = %v (kind %d), want kind %d", err, got, tc.want)
			}
			for _, secret := range []string{f.ClientSecret, q.Get("code")} {
				if secret != "" && strings.Contains(err.Error(), secret) {
					t.Errorf("error %q holds a secret or code", err)
				}
			}
		})
	}
}

// A state begun for one provider does not finish at another.
func TestStateOfAnotherProvider(t *testing.T) {
	e := newEnv(t, storagetest.NewSQLite, 0)
	q, binding, _ := e.trip(t, federation.GitHub)
	if _, err := e.svc.Finish(t.Context(), federation.Google, q, binding); federation.KindOf(err) != federation.KindState {
		t.Errorf("Finish at google = %v, want a state error", err)
	}
}

func TestUnknownProvider(t *testing.T) {
	svc, err := federation.New(context.Background(), federation.Config{Issuer: "https://id.example"}, storagetest.NewSQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Begin(t.Context(), "github", storage.FlowLogin, "", ""); !errors.Is(err, federation.ErrUnknownProvider) {
		t.Errorf("Begin(unconfigured) = %v, want ErrUnknownProvider", err)
	}
	if len(svc.Buttons()) != 0 {
		t.Errorf("Buttons = %v, want none", svc.Buttons())
	}
}

// github.com itself (no TORII_GITHUB_URL): github.com/login/oauth/… and
// api.github.com/user, /user/emails.
func TestGitHubDotCom(t *testing.T) {
	f := fedtest.New(t, fedtest.GitHub)
	hosts := map[string]*fedtest.Fake{}
	for _, h := range fedtest.GitHubHosts {
		hosts[h] = f
	}
	client := &http.Client{Transport: fedtest.Transport(nil, hosts)}
	svc, err := federation.New(t.Context(), federation.Config{Issuer: "https://id.example",
		GitHub: federation.Credentials{ClientID: f.ClientID, ClientSecret: f.ClientSecret}, HTTPClient: client}, storagetest.NewSQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	start, err := svc.Begin(t.Context(), federation.GitHub, storage.FlowLogin, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(start.URL, "https://github.com/login/oauth/authorize?") {
		t.Errorf("authorization URL = %s", start.URL)
	}
	browser := &http.Client{Transport: client.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := browser.Get(start.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	res, err := svc.Finish(t.Context(), federation.GitHub, loc.Query(), start.Binding)
	if err != nil || res.Identity.Subject != "1001" || res.Identity.Email != "octo@example.com" || !res.Identity.EmailVerified {
		t.Errorf("Finish = %+v, %v", res, err)
	}
	if reqs := f.Requests(); !slices.Contains(reqs, "/user") || !slices.Contains(reqs, "/user/emails") || slices.Contains(reqs, "/api/v3/user") {
		t.Errorf("api.github.com requests = %q, want /user and /user/emails", reqs)
	}
}

// Pictures come only over https, from public addresses, at most 1 MiB.
func TestPicture(t *testing.T) {
	svc, err := federation.New(t.Context(), federation.Config{Issuer: "https://id.example"}, storagetest.NewSQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"https://127.0.0.1:9/p.png", "https://[::1]:9/p.png", "https://10.0.0.1:9/p.png",
		"https://169.254.169.254/latest/meta-data", "http://img.example/p.png", "file:///etc/passwd", "https://user@img.example/p.png"} {
		if _, err := svc.Picture(t.Context(), u); err == nil {
			t.Errorf("Picture(%q) fetched it", u)
		}
	}
	f := fedtest.New(t, fedtest.GitHub)
	routed, err := federation.New(t.Context(), federation.Config{Issuer: "https://id.example",
		PictureClient: &http.Client{Transport: fedtest.Transport(nil, map[string]*fedtest.Fake{fedtest.PictureHost: f})}}, storagetest.NewSQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	if data, err := routed.Picture(t.Context(), fedtest.PictureURL); err != nil || string(data) != string(fedtest.PicturePNG()) {
		t.Errorf("Picture = %d bytes, %v", len(data), err)
	}
}
