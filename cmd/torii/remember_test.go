package main

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/torii-idp/torii/login/notify/notifytest"
	"github.com/torii-idp/torii/provider"
)

// rememberDevice turns remembered devices on for 30 days (the default of
// TORII_REMEMBER_DEVICE; the test environments have it off).
// The tests sign in often: more codes than the default 5 per 15 minutes.
func rememberDevice(c *Config, _ *serverOptions) {
	c.RememberDevice = 720 * time.Hour
	c.OTPResendLimit = RateLimit{100, 15 * time.Minute}
}

const rememberLabel = "Don't ask for a code on this device for 30 days"

// rememberCookie returns the browser's remembered-device cookie, or nil.
func (e *env) rememberCookie(b *http.Client) *http.Cookie {
	u, _ := url.Parse(e.issuer)
	for _, c := range b.Jar.Cookies(u) {
		if c.Name == "torii_remember" {
			return c
		}
	}
	return nil
}

// signInRemembering runs flow f in browser b as login, ticking "don't ask
// for a code on this device" on the code page (when tick), and returns the
// callback's parameters and the paths of the pages shown.
func (e *env) signInRemembering(b *http.Client, authURL, login string, tick bool) (url.Values, []string) {
	e.t.Helper()
	p := e.get(b, authURL)
	var shown []string
	mails := len(e.mail.Mails())
	for range 5 {
		if p.status == http.StatusOK {
			shown = append(shown, p.url.Path)
		}
		switch {
		case p.status == http.StatusSeeOther:
			return e.callback(p), shown
		case p.status == http.StatusOK && p.url.Path == provider.LoginPath:
			mails = len(e.mail.Mails())
			p = e.signIn(b, p, login)
		case p.status == http.StatusOK && p.url.Path == "/login/code":
			f := p.formWith(e.t, "code")
			if tick {
				f.values.Set("remember", "1")
			}
			f.values.Set("code", codeOf(e, login, mails))
			p = e.post(b, f)
		default:
			e.t.Fatalf("unexpected page %d at %s:\n%s", p.status, p.url, p.body)
		}
	}
	e.t.Fatalf("authorization did not finish; last page %s", p.url)
	return nil, nil
}

// codeOf is the sign-in code last mailed to login after the first skip mails.
func codeOf(e *env, login string, skip int) string {
	e.t.Helper()
	return notifytest.Code(e.t, e.nextMail(login, "sign-in code", skip).Text)
}

// TestRememberedDevice: "Don't ask for a code on this device" skips the
// code step of later sign-ins in that browser (amr pwd, acr pwd), never the
// password, never when the relying party asks acr_values=mfa, never for
// another user, and no longer once the device is forgotten or expired.
func TestRememberedDevice(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		e := newMailEnv(t, dbURL, "always", rememberDevice)
		alice := e.user("alice@example.com")
		e.user("bob@example.com")
		id, secret := e.client(provider.ClientSpec{ID: "webapp", SkipConsent: true})
		conf := e.oauth2Config(id, secret)
		again := oauthParam("prompt", "login")

		b := e.browser()
		// The code page offers the choice, in the setting's days.
		f0 := newCodeFlow(conf)
		mails := len(e.mail.Mails())
		p := e.signIn(b, e.get(b, f0.authURL()), "alice@example.com")
		codeOf(e, "alice@example.com", mails) // before the next sign-in's code
		if p.url.Path != "/login/code" || !strings.Contains(p.body, rememberLabel) || !strings.Contains(p.body, `name="remember"`) {
			t.Fatalf("code page = %d %s, want the remember choice:\n%s", p.status, p.url, p.body)
		}
		f1 := newCodeFlow(conf)
		q, _ := e.signInRemembering(b, f1.authURL(again), "alice@example.com", true)
		if c := e.idTokenOf(t, conf, f1, q); !slices.Equal(c.AMR, []string{"pwd", "otp"}) {
			t.Errorf("amr of the sign-in that chose to remember = %v, want [pwd otp]", c.AMR)
		}
		cookie := e.rememberCookie(b)
		if cookie == nil || !strings.HasPrefix(cookie.Value, "r1.") {
			t.Fatalf("remembered-device cookie = %v, want one", cookie)
		}
		if n := e.auditCount(alice, "device.remembered"); n != 1 {
			t.Errorf("device.remembered events = %d, want 1", n)
		}

		t.Run("skips the code step", func(t *testing.T) {
			f := newCodeFlow(conf)
			q, pages := e.signInRemembering(b, f.authURL(again), "alice@example.com", false)
			if !slices.Equal(pages, []string{"/login"}) {
				t.Errorf("pages shown = %v, want only /login", pages)
			}
			c := e.idTokenOf(t, conf, f, q)
			if !slices.Equal(c.AMR, []string{"pwd"}) || c.ACR != provider.ACRPassword {
				t.Errorf("amr = %v, acr = %q; want [pwd], %q", c.AMR, c.ACR, provider.ACRPassword)
			}
		})
		t.Run("never skips the password", func(t *testing.T) {
			f := newCodeFlow(conf)
			p := e.get(b, f.authURL(again))
			lf := p.formWith(t, "password")
			lf.values.Set("username", "alice@example.com")
			lf.values.Set("password", "not the password")
			if p := e.post(b, lf); p.status != http.StatusUnauthorized || p.url.Path != provider.LoginPath {
				t.Errorf("wrong password with a remembered device = %d at %s, want 401 on the sign-in page", p.status, p.url)
			}
		})
		t.Run("never with acr_values=mfa", func(t *testing.T) {
			f := newCodeFlow(conf)
			q, pages := e.signInRemembering(b, f.authURL(again, oauthParam("acr_values", "mfa")), "alice@example.com", false)
			if !slices.Equal(pages, []string{"/login", "/login/code"}) {
				t.Errorf("pages shown = %v, want /login then /login/code", pages)
			}
			if c := e.idTokenOf(t, conf, f, q); !slices.Equal(c.AMR, []string{"pwd", "otp"}) || c.ACR != provider.ACRMFA {
				t.Errorf("amr = %v, acr = %q; want [pwd otp], mfa", c.AMR, c.ACR)
			}
		})
		t.Run("a stolen cookie does nothing for another user", func(t *testing.T) {
			thief := e.browser()
			u, _ := url.Parse(e.issuer)
			thief.Jar.SetCookies(u, []*http.Cookie{{Name: cookie.Name, Value: cookie.Value, Path: "/"}})
			f := newCodeFlow(conf)
			_, pages := e.signInRemembering(thief, f.authURL(), "bob@example.com", false)
			if !slices.Equal(pages, []string{"/login", "/login/code"}) {
				t.Errorf("bob with alice's cookie: pages shown = %v, want /login then /login/code", pages)
			}
		})
		t.Run("expires", func(t *testing.T) {
			b2 := e.browser()
			e.signInRemembering(b2, newCodeFlow(conf).authURL(), "alice@example.com", true)
			old := time.Now().Add(-721 * time.Hour).UTC()
			if _, err := e.srv.store.DB().NewUpdate().Table("remembered_devices").Set("created_at = ?", old).
				Set("expires_at = ?", old.Add(720*time.Hour)).Where("id = ?", strings.Split(e.rememberCookie(b2).Value, ".")[1]).
				Exec(t.Context()); err != nil {
				t.Fatal(err)
			}
			_, pages := e.signInRemembering(b2, newCodeFlow(conf).authURL(again), "alice@example.com", false)
			if !slices.Equal(pages, []string{"/login", "/login/code"}) {
				t.Errorf("after 30 days: pages shown = %v, want /login then /login/code", pages)
			}
		})
		t.Run("forgotten on the account page", func(t *testing.T) {
			acct := e.get(b, e.issuer+"/account")
			if !strings.Contains(acct.body, "Forget this device") {
				t.Fatalf("account page lists no remembered device:\n%s", acct.body)
			}
			var forget form
			for _, f := range acct.forms(t) {
				if strings.HasSuffix(f.action, "/account/device-forget") && f.values.Get("id") == strings.Split(cookie.Value, ".")[1] {
					forget = f
				}
			}
			if forget.values == nil {
				t.Fatalf("no forget form for this device:\n%s", acct.body)
			}
			if p := e.post(b, forget); p.status != http.StatusOK || p.url.Path != "/account" {
				t.Fatalf("forget this device = %d at %s", p.status, p.url)
			}
			if e.rememberCookie(b) != nil {
				t.Error("forgetting this device left its cookie")
			}
			if e.post(b, forget).status != http.StatusBadRequest {
				t.Error("forgetting a forgotten device again is not 400")
			}
			// The old cookie, kept, no longer skips anything.
			u, _ := url.Parse(e.issuer)
			b.Jar.SetCookies(u, []*http.Cookie{{Name: cookie.Name, Value: cookie.Value, Path: "/"}})
			_, pages := e.signInRemembering(b, newCodeFlow(conf).authURL(again), "alice@example.com", false)
			if !slices.Equal(pages, []string{"/login", "/login/code"}) {
				t.Errorf("after forgetting: pages shown = %v, want /login then /login/code", pages)
			}
			if n := e.auditCount(alice, "device.forgotten"); n != 1 {
				t.Errorf("device.forgotten events = %d, want 1", n)
			}
		})
		t.Run("forgotten when signing out everywhere", func(t *testing.T) {
			b3 := e.browser()
			e.signInRemembering(b3, newCodeFlow(conf).authURL(), "alice@example.com", true)
			acct := e.get(b3, e.issuer+"/account")
			var out form
			for _, f := range acct.forms(t) {
				if strings.HasSuffix(f.action, "/account/signout-everywhere") {
					out = f
				}
			}
			kept := e.rememberCookie(b3)
			e.post(b3, out)
			if e.rememberCookie(b3) != nil {
				t.Error("signing out everywhere left this browser's remembered-device cookie")
			}
			// The cookie, kept anyway, no longer skips anything.
			u, _ := url.Parse(e.issuer)
			b3.Jar.SetCookies(u, []*http.Cookie{{Name: kept.Name, Value: kept.Value, Path: "/"}})
			_, pages := e.signInRemembering(b3, newCodeFlow(conf).authURL(), "alice@example.com", false)
			if !slices.Equal(pages, []string{"/login", "/login/code"}) {
				t.Errorf("after signing out everywhere: pages shown = %v, want /login then /login/code", pages)
			}
		})
	})
}

// TestRememberDeviceOff: TORII_REMEMBER_DEVICE=0 hides the choice, ignores
// a posted one, and makes a cookie from before count for nothing.
func TestRememberDeviceOff(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		e := newMailEnv(t, dbURL, "always", rememberDevice)
		e.user("alice@example.com")
		id, secret := e.client(provider.ClientSpec{ID: "webapp", SkipConsent: true})
		conf := e.oauth2Config(id, secret)
		b := e.browser()
		e.signInRemembering(b, newCodeFlow(conf).authURL(), "alice@example.com", true)
		if e.rememberCookie(b) == nil {
			t.Fatal("no remembered-device cookie with the choice on")
		}

		e.cfg.RememberDevice = 0
		e.restart()
		go e.srv.outbox.Run(t.Context())
		f := newCodeFlow(conf)
		mails := len(e.mail.Mails())
		p := e.signIn(b, e.get(b, f.authURL(oauthParam("prompt", "login"))), "alice@example.com")
		codeOf(e, "alice@example.com", mails) // before the next sign-in's code
		if p.url.Path != "/login/code" {
			t.Fatalf("with the choice off, a remembered browser got %d at %s, want the code page", p.status, p.url)
		}
		if strings.Contains(p.body, `name="remember"`) || strings.Contains(p.body, "on this device") {
			t.Errorf("the code page offers the choice while it is off:\n%s", p.body)
		}
		fresh := e.browser()
		_, pages := e.signInRemembering(fresh, newCodeFlow(conf).authURL(), "alice@example.com", true)
		if !slices.Equal(pages, []string{"/login", "/login/code"}) || e.rememberCookie(fresh) != nil {
			t.Errorf("posting the choice while off: pages %v, cookie %v; want the code step and no cookie", pages, e.rememberCookie(fresh))
		}
	})
}

// auditCount counts subject's audit events of type typ.
func (e *env) auditCount(subject, typ string) int {
	e.t.Helper()
	n, err := e.srv.store.DB().NewSelect().Table("audit_events").Where("subject = ?", subject).Where("type = ?", typ).Count(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	return int(n)
}

// TestAPIDevices: the account API lists the caller's remembered devices
// and forgets one; another user's device, an unknown one and one already
// forgotten are 404; no token is 401.
func TestAPIDevices(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		a := newAPIEnv(t, dbURL, rememberDevice)
		dan := a.user("dan@example.com")
		eve := a.user("eve@example.com")
		access, _ := a.tokens("dan@example.com", "openid account")
		ctx := t.Context()
		tok, err := a.srv.accounts.RememberBrowser(ctx, dan, "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0")
		if err != nil {
			t.Fatal(err)
		}
		eveTok, err := a.srv.accounts.RememberBrowser(ctx, eve, "Chrome")
		if err != nil {
			t.Fatal(err)
		}
		danDevice, eveDevice := strings.Split(tok, ".")[1], strings.Split(eveTok, ".")[1]

		status, body, _ := a.call("GET", "/account/devices", access, nil)
		items, _ := body["items"].([]any)
		if status != 200 || len(items) != 1 || items[0].(map[string]any)["id"] != danDevice {
			t.Fatalf("GET /account/devices = %d %v, want dan's one device", status, body)
		}
		if strings.Contains(strings.ToLower(a.logs.String()), strings.ToLower(strings.Split(tok, ".")[2])) {
			t.Error("the device's secret is in the logs")
		}
		status, body, h := a.call("GET", "/account/devices", "", nil)
		if status != 401 || !strings.Contains(h.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("GET /account/devices without a token = %d %v", status, body)
		}
		noScope, _ := a.tokens("dan@example.com", "openid")
		for _, m := range []string{"GET /account/devices", "DELETE /account/devices/" + danDevice} {
			method, path, _ := strings.Cut(m, " ")
			status, body, h := a.call(method, path, noScope, nil)
			if status != 403 || !strings.Contains(h.Get("WWW-Authenticate"), "insufficient_scope") {
				t.Errorf("%s without scope account = %d %v %q, want 403 insufficient_scope", m, status, body, h.Get("WWW-Authenticate"))
			}
		}
		for _, tc := range []struct{ name, id string }{{"another user's", eveDevice}, {"unknown", "nope"}} {
			status, body, h := a.call("DELETE", "/account/devices/"+tc.id, access, nil)
			wantProblem(t, status, body, h, 404, "not-found", "")
		}
		if status, body, _ := a.call("DELETE", "/account/devices/"+danDevice, access, nil); status != 204 {
			t.Fatalf("DELETE own device = %d %v, want 204", status, body)
		}
		status, body, h = a.call("DELETE", "/account/devices/"+danDevice, access, nil)
		wantProblem(t, status, body, h, 404, "not-found", "")
		if _, body, _ := a.call("GET", "/account/devices", access, nil); len(body["items"].([]any)) != 0 {
			t.Errorf("devices after forgetting = %v, want none", body)
		}
		if ok, err := a.srv.accounts.Remembered(ctx, eve, eveTok); !ok || err != nil {
			t.Errorf("eve's device after dan's calls = %v, %v; want still remembered", ok, err)
		}

		// Signing out everywhere through the API forgets them too.
		tok, _ = a.srv.accounts.RememberBrowser(ctx, dan, "Firefox")
		if status, body, _ := a.call("POST", "/account/logout", access, map[string]any{"all": true}); status != 204 {
			t.Fatalf("logout all = %d %v", status, body)
		}
		if ok, _ := a.srv.accounts.Remembered(ctx, dan, tok); ok {
			t.Error("a remembered device survived signing out everywhere through the API")
		}
		// So do a password change and deactivation through the API.
		access, _ = a.tokens("dan@example.com", "openid account")
		tok, _ = a.srv.accounts.RememberBrowser(ctx, dan, "Firefox")
		if status, body, _ := a.call("POST", "/account/password", access,
			map[string]any{"current_password": testPassword, "new_password": "dan chose a new passphrase"}); status != 204 {
			t.Fatalf("password change = %d %v", status, body)
		}
		if ok, _ := a.srv.accounts.Remembered(ctx, dan, tok); ok {
			t.Error("a remembered device survived a password change through the API")
		}
		tok, _ = a.srv.accounts.RememberBrowser(ctx, dan, "Firefox")
		if status, body, _ := a.call("DELETE", "/account", access, map[string]any{"password": "dan chose a new passphrase"}); status != 204 {
			t.Fatalf("deactivation = %d %v", status, body)
		}
		if ok, _ := a.srv.accounts.Remembered(ctx, dan, tok); ok {
			t.Error("a remembered device survived deactivation through the API")
		}
		if n := a.auditCount(dan, "device.forgotten"); n != 4 {
			t.Errorf("device.forgotten events = %d, want 4 (one device, then all three times)", n)
		}
	})
}

// TORII_REMEMBER_DEVICE: 0 (or 0s) turns remembered devices off; other
// durations from 1h to 8760h are taken as they are.
func TestRememberDeviceSetting(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"0", 0}, {"0s", 0}, {"168h", 168 * time.Hour}, {"1h", time.Hour}, {"8760h", 8760 * time.Hour},
	} {
		t.Run(tc.in, func(t *testing.T) {
			for _, s := range settings() {
				t.Setenv(s.env, "")
				os.Unsetenv(s.env)
			}
			t.Setenv("TORII_REMEMBER_DEVICE", tc.in)
			cfg, err := configFlags(newRootCmd(io.Discard, io.Discard).Flags())()
			if err != nil || cfg.RememberDevice != tc.want {
				t.Errorf("TORII_REMEMBER_DEVICE=%s: %v, %v; want %v", tc.in, cfg.RememberDevice, err, tc.want)
			}
		})
	}
}
