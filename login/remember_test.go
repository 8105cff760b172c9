package login_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/torii-idp/torii/login"
	"github.com/torii-idp/torii/login/account"
	"github.com/torii-idp/torii/storage/storagetest"
)

// The remembered-device cookie follows the other cookies' rules: on https
// __Host-torii_remember, Secure, HttpOnly, Path=/, SameSite=Lax, host-only,
// living as long as the setting; it is set only when the choice is ticked,
// and then the password alone signs alice in on that browser, never bob.
func TestRememberCookie(t *testing.T) {
	for _, https := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[https], func(t *testing.T) {
			e := newEnvWith(t, storagetest.NewSQLite, https, func(c *login.Config) { c.OTP = login.OTPAlways })
			name := "torii_remember"
			if https {
				name = "__Host-torii_remember"
			}
			if _, err := e.accounts.Create(t.Context(), account.NewUser{Email: "bob@example.com", Password: "bob has a long password", EmailVerified: true}); err != nil {
				t.Fatal(err)
			}
			codeStep := func(b *browser, remember bool) *response {
				t.Helper()
				b.passwordStep("")
				form := url.Values{"csrf": {b.csrf(login.CodePath)}, "code": {e.mail.code(t, aliceEmail)}}
				if remember {
					form.Set("remember", "1")
				}
				return b.post(login.CodePath, form)
			}
			cookieOf := func(r *response) *http.Cookie {
				for _, c := range r.Cookies() {
					if c.Name == name {
						return c
					}
				}
				return nil
			}
			if c := cookieOf(codeStep(e.browser(), false)); c != nil {
				t.Errorf("a cookie without the choice ticked: %v", c)
			}
			r := codeStep(e.browser(), true)
			c := cookieOf(r)
			if r.StatusCode != http.StatusSeeOther || c == nil {
				t.Fatalf("code with the choice ticked = %d, cookie %v", r.StatusCode, c)
			}
			if !c.HttpOnly || c.Secure != https || c.Path != "/" || c.Domain != "" || c.SameSite != http.SameSiteLaxMode || c.MaxAge != 30*24*3600 {
				t.Errorf("cookie = %+v; want HttpOnly, Secure=%v, Path=/, host-only, SameSite=Lax, Max-Age 30 days", c, https)
			}
			b := e.browser()
			b.setJarCookie(name, c.Value)
			if r := b.signIn("", "alice", alicePassword); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != login.AccountPath {
				t.Errorf("password with a remembered device = %d → %q, want 303 → /account (no code)", r.StatusCode, r.Header.Get("Location"))
			}
			bob := e.browser()
			bob.setJarCookie(name, c.Value)
			if r := bob.signIn("", "bob@example.com", "bob has a long password"); r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), login.CodePath) {
				t.Errorf("bob with alice's cookie = %d → %q, want the code page", r.StatusCode, r.Header.Get("Location"))
			}
			if strings.Contains(e.logs.String(), strings.Split(c.Value, ".")[2]) {
				t.Error("the logs contain the device's secret")
			}
		})
	}
}
