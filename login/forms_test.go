package login_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/torii-idp/torii/login"
	"github.com/torii-idp/torii/login/account"
	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

// wantAll fails unless body holds every one of want.
func wantAll(t *testing.T, what, body string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("%s lacks %s:\n%s", what, w, body)
		}
	}
}

// Registration checks the email's form, the password's length and
// strength and the repeat in one submit, shows every problem at once, and
// keeps what was typed but the passwords (issue 13, forgiving forms).
func TestRegistrationShowsEveryProblem(t *testing.T) {
	e := sqliteEnv(t)
	tests := []struct {
		name         string
		form         url.Values
		wantSummary  []string
		wantKept     []string
		wantAutofocs string
	}{
		{"email, short password, repeat", url.Values{"email": {"not an email"}, "name": {"Zoë"}, "username": {"zoe"}, "password": {"short"}, "password2": {"other"}},
			[]string{`<a href="#email">The email address contains characters that are not allowed.</a>`, `<a href="#password">The password must have at least 8 characters.</a>`, `<a href="#password2">The two passwords differ.</a>`},
			[]string{`value="not an email"`, `value="Zoë"`, `value="zoe"`}, `id="email"`},
		{"common password, no repeat", url.Values{"email": {"zoe@example.com"}, "password": {"password123"}},
			[]string{`<a href="#password">This password is too common`, `<a href="#password2">Enter the password again.</a>`},
			[]string{`value="zoe@example.com"`}, `id="password"`},
		{"empty email, bad username", url.Values{"email": {""}, "username": {"a b"}, "password": {"zoe likes long passwords"}, "password2": {"zoe likes long passwords"}},
			[]string{`<a href="#email">Enter an email address.</a>`, `<a href="#username">`},
			[]string{`value="a b"`}, `id="email"`},
		{"email too long", url.Values{"email": {strings.Repeat("a", 321) + "@example.com"}, "password": {"zoe likes long passwords"}, "password2": {"zoe likes long passwordz"}},
			[]string{`<a href="#email">The email address is too long.</a>`, `<a href="#password2">The two passwords differ.</a>`},
			nil, `id="email"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := e.browser()
			tc.form.Set("csrf", b.csrf(login.RegisterPath))
			r := b.post(login.RegisterPath, tc.form)
			if r.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", r.StatusCode)
			}
			wantAll(t, "page", r.body, append([]string{`<title>Error: Create an account`, `class="error-summary" role="alert"`}, append(tc.wantSummary, tc.wantKept...)...)...)
			if strings.Count(r.body, `<li>`) != len(tc.wantSummary) {
				t.Errorf("summary has %d items, want %d:\n%s", strings.Count(r.body, `<li>`), len(tc.wantSummary), r.body)
			}
			for _, pw := range tc.form["password"] {
				if strings.Contains(r.body, `value="`+pw+`"`) {
					t.Error("the page refills the password")
				}
			}
			if !strings.Contains(r.body, tc.wantAutofocs) || !strings.Contains(between(r.body, tc.wantAutofocs, ">"), "autofocus") || strings.Count(r.body, "autofocus") != 1 {
				t.Errorf("autofocus is not on %s alone", tc.wantAutofocs)
			}
		})
	}
	if us, _ := e.accounts.List(t.Context(), 0, 10); len(us) != 1 {
		t.Errorf("%d users, want alice alone", len(us))
	}
}

func between(s, from, to string) string {
	_, after, _ := strings.Cut(s, from)
	before, _, _ := strings.Cut(after, to)
	return before
}

// Sign-in errors name each field, keep the login name, and give the
// application's context.
func TestSignInPageErrorsAndContext(t *testing.T) {
	e := sqliteEnv(t)
	if err := e.store.CreateClient(t.Context(), &storage.Client{
		ID: "photos", Name: "Example App", RedirectURIs: []string{"https://rp.example/cb"}, LogoURI: "https://rp.example/logo.png",
		GrantTypes: []string{"authorization_code"}, ResponseTypes: []string{"code"},
		Scopes: []string{"openid"}, Audience: []string{}, TokenFormat: "opaque", IDTokenAlg: "RS256",
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateAuthRequest(t.Context(), &storage.AuthRequest{
		ID: "req-ctx", ClientID: "photos", Form: "client_id=photos&scope=openid", BrowserHash: "b", ExpiresAt: time.Now().Add(10 * time.Minute),
	}); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	page := b.get("/login?req=req-ctx")
	wantAll(t, "sign-in page", page.body, `<img src="https://rp.example/logo.png" alt="" width="40" height="40"><span>Sign in to continue to <strong>Example App</strong></span>`,
		`<title>Sign in – Torii</title>`)
	if got, want := page.Header.Get("Content-Security-Policy"), "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https://rp.example; frame-ancestors 'none'; base-uri 'none'"; got != want {
		t.Errorf("CSP with a logo = %q, want %q (the logo's origin only)", got, want)
	}
	if strings.Contains(b.get("/login").body, "Sign in to continue") {
		t.Error("the sign-in page without a request names an application")
	}
	tok := b.csrf("/login?req=req-ctx")
	r := b.post("/login", url.Values{"csrf": {tok}, "req": {"req-ctx"}, "username": {" "}, "password": {""}})
	wantAll(t, "empty form", r.body, `<a href="#username">Enter your email address or username.</a>`, `<a href="#password">Enter your password.</a>`,
		`<title>Error: Sign in – Torii</title>`, `Sign in to continue to <strong>Example App</strong>`)
	r = b.post("/login", url.Values{"csrf": {tok}, "req": {"req-ctx"}, "username": {"alice <b>"}, "password": {"wrong password"}})
	wantAll(t, "wrong password", r.body, `value="alice &lt;b&gt;"`, `<a href="#password">The username or password is incorrect.</a>`)
	if strings.Contains(r.body, "wrong password") {
		t.Error("the page refills the password")
	}
}

// Every dead end has a way forward (issue 13).
func TestWaysForward(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		e := otpEnv(t, open)
		e.pendingRequest("req-fwd", "openid")

		t.Run("form expired starts again", func(t *testing.T) {
			b := e.browser()
			b.csrf("/login")
			r := b.post("/login", url.Values{"csrf": {"forged"}, "req": {"req-fwd"}, "username": {"alice"}, "password": {alicePassword}})
			if r.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d, want 403", r.StatusCode)
			}
			wantAll(t, "form expired", r.body, `<form method="get" action="/login">`, `<input type="hidden" name="req" value="req-fwd">`,
				`<button type="submit">Start again</button>`)
			r = b.post(login.CodePath+"/resend", url.Values{"csrf": {"forged"}, "channel": {"sms"}})
			wantAll(t, "form expired (resend)", r.body, `<form method="get" action="/login/code">`, `<input type="hidden" name="via" value="sms">`)
			r = b.post(login.CodePath, url.Values{"csrf": {"forged"}, "via": {"sms"}, "req": {"req-fwd"}})
			wantAll(t, "form expired (code)", r.body, `<input type="hidden" name="req" value="req-fwd">`, `<input type="hidden" name="via" value="sms">`)
		})
		t.Run("expired request links to the sign-in page", func(t *testing.T) {
			r := e.browser().get("/login?req=gone")
			if r.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", r.StatusCode)
			}
			wantAll(t, "request expired", r.body, `<a href="/login">Go to the sign-in page</a>`)
		})
		t.Run("signed-in page links to the account", func(t *testing.T) {
			b := e.browser()
			b.passwordStep("")
			if r := b.submitCode("", e.mail.code(t, aliceEmail)); r.StatusCode != http.StatusSeeOther {
				t.Fatalf("code = %d", r.StatusCode)
			}
			wantAll(t, "done page", b.get(login.DonePath).body, `<a class="button" href="/account">Go to your account</a>`)
			wantAll(t, "sign-out page", b.get(login.LogoutPath).body, `<a class="button secondary" href="/account">Cancel</a>`)
			wantAll(t, "sign-out page signed out", e.browser().get(login.LogoutPath).body, `<a class="button secondary" href="/login">Cancel</a>`)
		})
		t.Run("reset page names the account", func(t *testing.T) {
			b := e.browser()
			b.post(login.ForgotPath, url.Values{"csrf": {b.csrf(login.ForgotPath)}, "email": {aliceEmail}})
			link, _ := url.Parse(e.mail.link(t, aliceEmail))
			token := link.Query().Get("token")
			page := b.get(login.ResetPath + "?token=" + url.QueryEscape(token))
			wantAll(t, "reset page", page.body, `For the account <strong>`+aliceEmail+`</strong>`, `<a href="/login">Back to sign-in</a>`)
			r := b.post(login.ResetPath, url.Values{"csrf": {b.csrf(login.ForgotPath)}, "token": {token}, "password": {"short"}, "password2": {"shorter"}})
			if r.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", r.StatusCode)
			}
			wantAll(t, "reset errors", r.body, `<a href="#password">The password must have at least 8 characters.</a>`,
				`<a href="#password2">The two passwords differ.</a>`, `For the account <strong>`+aliceEmail+`</strong>`)
		})
		t.Run("verification page offers another address", func(t *testing.T) {
			b := e.browser()
			b.post(login.RegisterPath, url.Values{"csrf": {b.csrf(login.RegisterPath)}, "req": {"req-fwd"}, "email": {"zoe@example.com"},
				"password": {"zoe likes long passwords"}, "password2": {"zoe likes long passwords"}})
			page := b.get(login.VerifyPath + "?req=req-fwd")
			wantAll(t, "verify page", page.body, `<strong>z•••@example.com</strong>`, `<a href="/register?req=req-fwd">Use another address</a>`)
			r := b.post(login.VerifyPath, url.Values{"csrf": {b.csrf(login.VerifyPath)}, "code": {"12 34"}})
			wantAll(t, "verify shape error", r.body, `value="12 34"`, `<a href="#code">`, `<title>Error: Confirm your email address`)
		})
		t.Run("forgot keeps the address", func(t *testing.T) {
			b := e.browser()
			r := b.post(login.ForgotPath, url.Values{"csrf": {b.csrf(login.ForgotPath)}, "email": {"not an email"}})
			wantAll(t, "forgot", r.body, `value="not an email"`, `<a href="#email">`)
		})
	})
}

// The operator's branding: the site name in every title and header, the
// logo and the accent stylesheet served under /static/.
func TestBranding(t *testing.T) {
	png := pngBytes(t)
	e := newEnvWith(t, storagetest.NewSQLite, false, func(c *login.Config) {
		c.SiteName, c.Logo, c.LogoType = "Example ID", png, "image/png"
		c.ThemeCSS = ":root { --accent: #2563eb; }\n"
	})
	b := e.browser()
	page := b.get("/login")
	wantAll(t, "sign-in page", page.body, `<title>Sign in – Example ID</title>`, `<img src="/static/brand-logo" alt="" height="32"><span class="site-name">Example ID</span>`,
		`<link rel="stylesheet" href="/static/theme.css">`)
	for _, tc := range []struct{ path, ctype, body string }{
		{login.LogoPath, "image/png", string(png)},
		{login.ThemePath, "text/css; charset=utf-8", ":root { --accent: #2563eb; }\n"},
	} {
		r := b.get(tc.path)
		if r.StatusCode != http.StatusOK || r.Header.Get("Content-Type") != tc.ctype || r.body != tc.body || r.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s = %d %q", tc.path, r.StatusCode, r.Header.Get("Content-Type"))
		}
	}
	if r := e.browser().get(login.LogoPath); r.StatusCode != http.StatusOK {
		t.Errorf("logo = %d", r.StatusCode)
	}
	plain := sqliteEnv(t).browser()
	if r := plain.get(login.LogoPath); r.StatusCode != http.StatusNotFound {
		t.Errorf("logo without TORII_LOGO_FILE = %d, want 404", r.StatusCode)
	}
	if body := plain.get("/login").body; strings.Contains(body, "brand-logo") || strings.Contains(body, "theme.css") || !strings.Contains(body, "<title>Sign in – Torii</title>") {
		t.Errorf("unbranded page:\n%s", body)
	}
}

// The resend wait on the code and verification pages: the resend buttons
// are disabled (never Continue or Confirm), the page says when the wait
// ends and offers a reload for browsers without script, and the channel
// sticks in that reload link.
func TestResendWaitPages(t *testing.T) {
	e := otpEnv(t, storagetest.NewSQLite)
	// The store stamps codes with the real time: a fixed clock near it.
	now := time.Now().UTC()
	clock := func() time.Time { return now }
	e.accounts = account.New(e.store, account.Config{Notifier: e.mail, Issuer: "https://id.example.test", Now: clock, ResendInterval: 30 * time.Second})
	h, err := login.New(t.Context(), login.Config{Issuer: "http://127.0.0.1:8080", OTP: login.OTPAlways, Now: clock},
		login.Deps{Store: e.store, Accounts: e.accounts})
	if err != nil {
		t.Fatal(err)
	}
	e.swapHandler(h)

	b := e.browser()
	b.passwordStep("")
	r := b.post(login.CodePath+"/resend", url.Values{"csrf": {b.csrf(login.CodePath)}, "channel": {"email"}})
	if r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("resend within the interval = %d, want 429", r.StatusCode)
	}
	waitRe := regexp.MustCompile(`data-wait="(\d+)">You can ask for a new code in (\d+) seconds \(at (\d\d:\d\d:\d\d) UTC\)`)
	checkWait := func(what, body string) {
		t.Helper()
		m := waitRe.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("%s: no wait:\n%s", what, body)
		}
		secs, _ := strconv.Atoi(m[1])
		if m[1] != m[2] || secs < 1 || secs > 31 || m[3] != now.Add(time.Duration(secs)*time.Second).Format("15:04:05") {
			t.Errorf("%s: wait %s s, %s s, until %s; want the same seconds (at most 30) ending at now + them", what, m[1], m[2], m[3])
		}
	}
	checkWait("code page", r.body)
	wantAll(t, "code page", r.body,
		`<p class="muted" role="status" id="wait" data-wait="`, `). <a href="/login/code?via=email">Reload this page</a> then.</p>`,
		`<button type="submit" name="channel" value="email" class="secondary" disabled data-wait-control>Send a new code</button>`,
		`<button type="submit">Continue</button>`)

	v := e.browser()
	v.post(login.RegisterPath, url.Values{"csrf": {v.csrf(login.RegisterPath)}, "email": {"zoe@example.com"},
		"password": {"zoe likes long passwords"}, "password2": {"zoe likes long passwords"}})
	r = v.post(login.VerifyPath+"/resend", url.Values{"csrf": {v.csrf(login.VerifyPath)}})
	if r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("verification resend within the interval = %d, want 429", r.StatusCode)
	}
	checkWait("verify page", r.body)
	wantAll(t, "verify page", r.body,
		`). <a href="/verify">Reload this page</a> then.</p>`,
		`<button type="submit" class="secondary" disabled data-wait-control>Send a new code</button>`,
		`<button type="submit">Confirm</button>`)
}
