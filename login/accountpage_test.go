package login_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/torii-idp/torii/login"
	"github.com/torii-idp/torii/login/account"
	"github.com/torii-idp/torii/login/notify"
	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

// accountEnv is an OTP-off environment with room for many requests.
func accountEnv(t *testing.T, open func(testing.TB) *storage.Store) *env {
	t.Helper()
	return newEnvWith(t, open, false, func(c *login.Config) { c.IPRateLimit = login.Limit{N: 10000, Per: time.Minute} })
}

// signedInAs returns a browser signed in with the password, its session
// cookie and the CSRF token of its account page.
func (e *env) signedInAs(t *testing.T, username, password string) (*browser, string, string) {
	t.Helper()
	b := e.browser()
	if r := b.signIn("", username, password); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in as %s = %d", username, r.StatusCode)
	}
	return b, b.jarCookie(e.sessionCookieName()), b.csrf(login.AccountPath)
}

func (b *browser) action(name, csrf string, form url.Values) *response {
	b.t.Helper()
	f := url.Values{"csrf": {csrf}}
	for k, v := range form {
		f[k] = v
	}
	return b.post(login.AccountPath+"/"+name, f)
}

func wantRedirect(t *testing.T, what string, r *response, location string) {
	t.Helper()
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != location {
		t.Fatalf("%s = %d → %q, want 303 → %q:\n%s", what, r.StatusCode, r.Header.Get("Location"), location, r.body)
	}
}

func TestAccountSessionEnd(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		e := accountEnv(t, open)
		if _, err := e.accounts.Create(t.Context(), account.NewUser{Email: "bob@example.com", Password: "bob has a long password", EmailVerified: true}); err != nil {
			t.Fatal(err)
		}
		_, bobCookie, _ := e.signedInAs(t, "bob@example.com", "bob has a long password")
		tests := []struct {
			name       string
			id         func(this, other string) string
			wantStatus int
			wantGone   func(this, other string) []string // cookies that no longer sign in
			wantLive   func(this, other string) []string
		}{
			{"another user's session", func(string, string) string { return sha256Hex(bobCookie) }, http.StatusBadRequest,
				func(string, string) []string { return nil }, func(this, other string) []string { return []string{this, other, bobCookie} }},
			{"unknown session", func(string, string) string { return sha256Hex(randomToken()) }, http.StatusBadRequest,
				func(string, string) []string { return nil }, func(this, other string) []string { return []string{this, other} }},
			{"the raw cookie value", func(this, _ string) string { return this }, http.StatusBadRequest,
				func(string, string) []string { return nil }, func(this, other string) []string { return []string{this, other} }},
			{"another device", func(_, other string) string { return sha256Hex(other) }, http.StatusSeeOther,
				func(_, other string) []string { return []string{other} }, func(this, _ string) []string { return []string{this, bobCookie} }},
			{"this device", func(this, _ string) string { return sha256Hex(this) }, http.StatusSeeOther,
				func(this, _ string) []string { return []string{this} }, func(_, other string) []string { return []string{other, bobCookie} }},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				b, this, csrf := e.signedInAs(t, "alice", alicePassword)
				_, other, _ := e.signedInAs(t, "alice", alicePassword)
				r := b.action("session-end", csrf, url.Values{"id": {tc.id(this, other)}})
				if r.StatusCode != tc.wantStatus {
					t.Fatalf("session-end = %d, want %d:\n%s", r.StatusCode, tc.wantStatus, r.body)
				}
				for _, c := range tc.wantGone(this, other) {
					if _, ok := e.signedIn(c); ok {
						t.Error("an ended session still signs in")
					}
				}
				for _, c := range tc.wantLive(this, other) {
					if _, ok := e.signedIn(c); !ok {
						t.Error("a session that should live was ended")
					}
				}
				switch tc.name {
				case "this device":
					wantRedirect(t, "session-end of this device", r, "/login?done=signed-out")
					if c := r.cookie(e.sessionCookieName()); c == nil || c.MaxAge >= 0 || c.Value != "" {
						t.Errorf("session cookie not cleared: %+v", c)
					}
					if p := b.get(login.AccountPath); p.StatusCode != http.StatusSeeOther || p.Header.Get("Location") != login.LoginPath {
						t.Errorf("account page after signing out this device = %d %q", p.StatusCode, p.Header.Get("Location"))
					}
				case "another device":
					wantRedirect(t, "session-end of another device", r, "/account?done=session-end")
				}
			})
		}
		if _, ok := e.signedIn(bobCookie); !ok {
			t.Error("bob was signed out by alice")
		}
	})
}

func TestAccountAppRevoke(t *testing.T) {
	e := accountEnv(t, storagetest.NewSQLite)
	if err := e.store.SaveConsent(t.Context(), &storage.Consent{Subject: e.alice.ID, ClientID: "app", Scopes: []string{"openid"}}); err != nil {
		t.Fatal(err)
	}
	b, _, csrf := e.signedInAs(t, "alice", alicePassword)
	if p := b.get(login.AccountPath); !strings.Contains(p.body, "Example App") {
		t.Fatalf("the account page does not list the app:\n%s", p.body)
	}
	wantRedirect(t, "app-revoke", b.action("app-revoke", csrf, url.Values{"client_id": {"app"}}), "/account?done=app-revoke")
	if _, err := e.store.Consent(t.Context(), e.alice.ID, "app"); err == nil {
		t.Error("the consent survived the revoke")
	}
	if p := b.get(login.AccountPath + "?done=app-revoke"); strings.Contains(p.body, "Example App") || !strings.Contains(p.body, "no longer has access") {
		t.Errorf("account page after revoke still lists the app or lacks the notice:\n%s", p.body)
	}
	// Revoking an app one never allowed is harmless.
	wantRedirect(t, "app-revoke of an unknown client", b.action("app-revoke", csrf, url.Values{"client_id": {"ghost"}}), "/account?done=app-revoke")
}

func TestAccountDeactivate(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		e := accountEnv(t, open)
		b, cookie, csrf := e.signedInAs(t, "alice", alicePassword)
		_, other, _ := e.signedInAs(t, "alice", alicePassword)
		tests := []struct {
			name       string
			password   string
			wantStatus int
		}{
			{"wrong password", "not alice's password", http.StatusForbidden},
			{"no password", "", http.StatusForbidden},
			{"right password", alicePassword, http.StatusOK},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := b.action("deactivate", csrf, url.Values{"password": {tc.password}})
				if r.StatusCode != tc.wantStatus {
					t.Fatalf("deactivate = %d, want %d:\n%s", r.StatusCode, tc.wantStatus, r.body)
				}
				u, _ := e.store.User(t.Context(), e.alice.ID)
				if u.Disabled != (tc.wantStatus == http.StatusOK) {
					t.Errorf("disabled = %v", u.Disabled)
				}
				if tc.wantStatus != http.StatusOK {
					if !strings.Contains(r.body, `id="deactivate-error"`) {
						t.Error("no error next to the password field")
					}
					return
				}
				if c := r.cookie(e.sessionCookieName()); c == nil || c.MaxAge >= 0 {
					t.Errorf("session cookie not cleared: %+v", c)
				}
				for _, c := range []string{cookie, other} {
					if _, ok := e.signedIn(c); ok {
						t.Error("a session survived the deactivation")
					}
				}
				again := e.browser().signIn("", "alice", alicePassword)
				if again.StatusCode != http.StatusUnauthorized || !strings.Contains(again.body, "The username or password is incorrect.") {
					t.Errorf("sign-in after deactivation = %d", again.StatusCode)
				}
			})
		}
	})
}

func TestAccountPhone(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		e := accountEnv(t, open)
		b, _, csrf := e.signedInAs(t, "alice", alicePassword)
		const phone = "+15550104242"
		for _, tc := range []struct{ name, phone string }{
			{"no plus", "15550104242"},
			{"letters", "+1555CALLME"},
			{"too short", "+1555"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := b.action("phone", csrf, url.Values{"phone": {tc.phone}})
				if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.body, `id="phone-error"`) {
					t.Errorf("phone %q = %d, want 400 with the error next to the field", tc.phone, r.StatusCode)
				}
			})
		}
		wantRedirect(t, "add phone", b.action("phone", csrf, url.Values{"phone": {phone}}), "/account?done=phone")
		sms := e.mail.last(t, phone)
		if sms.Channel != notify.SMS {
			t.Fatalf("the code went by %s, want SMS", sms.Channel)
		}
		code := sixDigits.FindString(sms.Text)
		u, _ := e.store.User(t.Context(), e.alice.ID)
		if u.PendingPhone != phone || u.Phone != "" || u.PhoneVerified {
			t.Fatalf("before verification: phone %q verified %v pending %q", u.Phone, u.PhoneVerified, u.PendingPhone)
		}
		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		if r := b.action("phone-verify", csrf, url.Values{"code": {wrong}}); r.StatusCode != http.StatusBadRequest || !strings.Contains(r.body, `id="phone-code-error"`) {
			t.Errorf("wrong phone code = %d, want 400 with the error next to the field", r.StatusCode)
		}
		wantRedirect(t, "verify phone", b.action("phone-verify", csrf, url.Values{"code": {code}}), "/account?done=phone-verify")
		u, _ = e.store.User(t.Context(), e.alice.ID)
		if u.Phone != phone || !u.PhoneVerified || u.PendingPhone != "" {
			t.Errorf("after verification: phone %q verified %v pending %q", u.Phone, u.PhoneVerified, u.PendingPhone)
		}
		if r := b.action("phone-verify", csrf, url.Values{"code": {code}}); r.StatusCode != http.StatusBadRequest {
			t.Errorf("the phone code reused = %d, want 400", r.StatusCode)
		}
		wantRedirect(t, "remove phone", b.action("phone-remove", csrf, nil), "/account?done=phone-remove")
		if u, _ = e.store.User(t.Context(), e.alice.ID); u.Phone != "" || u.PhoneVerified {
			t.Errorf("after removal: phone %q verified %v", u.Phone, u.PhoneVerified)
		}
	})
}

func TestAccountPasswordChange(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		e := accountEnv(t, open)
		const newPassword = "a brand new walrus"
		b, before, csrf := e.signedInAs(t, "alice", alicePassword)
		_, other, _ := e.signedInAs(t, "alice", alicePassword)
		bad := []struct {
			name, old, pw, pw2, field string
			wantStatus                int
		}{
			{"current password missing", "", newPassword, newPassword, "old-password-error", http.StatusBadRequest},
			{"current password wrong", "not alice's password", newPassword, newPassword, "old-password-error", http.StatusForbidden},
			{"confirmation differs", alicePassword, newPassword, newPassword + "!", "new-password2-error", http.StatusBadRequest},
			{"common new password", alicePassword, "password123", "password123", "new-password-error", http.StatusBadRequest},
		}
		for _, tc := range bad {
			t.Run(tc.name, func(t *testing.T) {
				r := b.action("password", csrf, url.Values{"old_password": {tc.old}, "password": {tc.pw}, "password2": {tc.pw2}})
				if r.StatusCode != tc.wantStatus || !strings.Contains(r.body, `id="`+tc.field+`"`) {
					t.Errorf("status %d, want %d with %s", r.StatusCode, tc.wantStatus, tc.field)
				}
				if _, ok := e.signedIn(before); !ok {
					t.Error("a refused change signed this browser out")
				}
			})
		}
		// Counted toward the lockout, on this browser's device: it signed
		// in to the account, so its failures have their own budget.
		ds, err := e.store.Devices(t.Context(), e.alice.ID)
		failures := 0
		for _, d := range ds {
			failures += d.FailedLogins
		}
		if u, _ := e.store.User(t.Context(), e.alice.ID); err != nil || failures != 1 || u.FailedLogins != 0 {
			t.Errorf("failures after one wrong current password: %d on devices (%v), %d on the account; want 1 and 0", failures, err, u.FailedLogins)
		}

		r := b.action("password", csrf, url.Values{"old_password": {alicePassword}, "password": {newPassword}, "password2": {newPassword}})
		wantRedirect(t, "password change", r, "/account?done=password")
		c := r.cookie(e.sessionCookieName())
		if c == nil || c.Value == before || c.MaxAge <= 0 {
			t.Fatalf("this browser got no new session ID: %+v", c)
		}
		if sub, ok := e.signedIn(c.Value); !ok || sub != e.alice.ID {
			t.Error("this browser is not signed in with its new session")
		}
		for name, old := range map[string]string{"this browser's old session": before, "another device": other} {
			if _, ok := e.signedIn(old); ok {
				t.Errorf("%s survived the password change", name)
			}
		}
		if p := b.get(login.AccountPath + "?done=password"); p.StatusCode != http.StatusOK || !strings.Contains(p.body, "Your other devices are signed out") {
			t.Errorf("account page after the change = %d", p.StatusCode)
		}
		if !strings.Contains(e.mail.last(t, aliceEmail).Subject, "password was changed") {
			t.Error("the owner was not told of the change")
		}
		if _, err := e.accounts.Authenticate(t.Context(), aliceEmail, alicePassword); err == nil {
			t.Error("the old password still works")
		}
		if _, err := e.accounts.Authenticate(t.Context(), aliceEmail, newPassword); err != nil {
			t.Errorf("the new password does not work: %v", err)
		}
	})
}

// The account actions spend from the per-IP budgets: wrong passwords there
// count as failures, and past the limit every action answers 429.
func TestAccountActionsPerIPLimit(t *testing.T) {
	e := newEnvWith(t, storagetest.NewSQLite, false, func(c *login.Config) {
		c.IPRateLimit = login.Limit{N: 10000, Per: time.Minute}
		c.IPFailureLimit = login.Limit{N: 2, Per: time.Hour}
	})
	b, _, csrf := e.signedInAs(t, "alice", alicePassword)
	for i := range 2 {
		r := b.action("password", csrf, url.Values{"old_password": {"wrong"}, "password": {"a brand new walrus"}, "password2": {"a brand new walrus"}})
		if r.StatusCode != http.StatusForbidden {
			t.Fatalf("wrong current password %d = %d, want 403", i+1, r.StatusCode)
		}
	}
	r := b.action("profile", csrf, url.Values{"name": {"Alice"}})
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Errorf("an action past the failure limit = %d, Retry-After %q; want 429", r.StatusCode, r.Header.Get("Retry-After"))
	}
}

// The account page's sections, in order; devices named in words with
// relative times; applications' permissions in the consent page's words;
// "Sign out" at the top, away from the danger zone.
func TestAccountPageSections(t *testing.T) {
	e := accountEnv(t, storagetest.NewSQLite)
	ctx := t.Context()
	if err := e.store.SaveConsent(ctx, &storage.Consent{Subject: e.alice.ID, ClientID: "app", Scopes: []string{"openid", "email", "offline_access"}}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateLoginSession(ctx, &storage.LoginSession{IDHash: sha256Hex(randomToken()), Subject: e.alice.ID,
		AuthTime: time.Now(), AMR: []string{"pwd"}, ExpiresAt: time.Now().Add(time.Hour),
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateRememberedDevice(ctx, &storage.RememberedDevice{ID: "dev1", UserID: e.alice.ID, SecretHash: "h",
		UserAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
		CreatedAt: time.Now().Add(-3 * time.Hour), ExpiresAt: time.Now().Add(30 * 24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	b, _, _ := e.signedInAs(t, "alice", alicePassword)
	p := b.get(login.AccountPath)
	if p.StatusCode != http.StatusOK {
		t.Fatalf("account page = %d", p.StatusCode)
	}
	last := -1
	for _, id := range []string{`id="profile-h"`, `id="contact-h"`, `id="password-h"`, `id="devices-h"`, `id="apps-h"`, `id="danger-h"`} {
		i := strings.Index(p.body, id)
		if i < last {
			t.Errorf("section %s missing or out of order", id)
		}
		last = i
	}
	for _, want := range []string{
		"Chrome on Linux", "Safari on iPhone", "Unknown browser", // the test client's own session
		"Signed in <time", ">just now</time>", ">3 hours ago</time>", ">in 30 days</time>",
		"Forget this device", "Sign you in", "See your email address", "Stay signed in when you are away",
	} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the account page lacks %q", want)
		}
	}
	if strings.Contains(p.body, "Mozilla/5.0") {
		t.Error("the account page shows a raw user agent")
	}
	signOut, danger := strings.Index(p.body, `action="/logout"`), strings.Index(p.body, `id="danger-h"`)
	deactivate := strings.Index(p.body, `action="/account/deactivate"`)
	if signOut < 0 || signOut > strings.Index(p.body, `id="profile-h"`) || deactivate < danger {
		t.Errorf("Sign out (at %d) must come before the sections, Deactivate (at %d) in the danger zone (at %d)", signOut, deactivate, danger)
	}
	if strings.Contains(p.body, "error-summary") {
		t.Error("an error summary without an error")
	}
}

// After a failed action the page starts with an error summary (the GOV.UK
// pattern) linking to each field in error, announced (role=alert), with the
// field in error focused; a success is announced as a status.
func TestAccountErrorSummary(t *testing.T) {
	e := accountEnv(t, storagetest.NewSQLite)
	b, _, csrf := e.signedInAs(t, "alice", alicePassword)
	for _, tc := range []struct {
		name, action string
		form         url.Values
		status       int
		field, msg   string
	}{
		{"wrong current password", "password", url.Values{"old_password": {"not it"}, "password": {"a new long passphrase"}, "password2": {"a new long passphrase"}},
			http.StatusForbidden, "old-password", "The current password is not right."},
		{"passwords differ", "password", url.Values{"old_password": {alicePassword}, "password": {"a new long passphrase"}, "password2": {"another one"}},
			http.StatusBadRequest, "new-password2", "The two passwords differ."},
		{"bad phone", "phone", url.Values{"phone": {"12"}}, http.StatusBadRequest, "phone", "The phone number must be in international format"},
		{"wrong password to deactivate", "deactivate", url.Values{"password": {"not it"}}, http.StatusForbidden, "deactivate-password", "The password is not right."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.action(tc.action, csrf, tc.form)
			if r.StatusCode != tc.status {
				t.Fatalf("%s = %d, want %d", tc.action, r.StatusCode, tc.status)
			}
			summary := strings.Index(r.body, `<div class="error-summary" role="alert"`)
			link := strings.Index(r.body, `<li><a href="#`+tc.field+`">`+tc.msg)
			if summary < 0 || link < summary || summary > strings.Index(r.body, `id="profile-h"`) {
				t.Errorf("no error summary at the top linking to #%s with %q:\n%s", tc.field, tc.msg, r.body)
			}
			if !strings.Contains(r.body, `id="`+tc.field+`"`) || !strings.Contains(r.body, `aria-invalid="true"`) {
				t.Errorf("no field #%s marked invalid", tc.field)
			}
			if n := strings.Count(r.body, " autofocus"); n != 1 {
				t.Errorf("%d autofocus attributes, want 1 (on #%s)", n, tc.field)
			}
		})
	}
	p := b.get(login.AccountPath + "?done=profile")
	if !strings.Contains(p.body, `<p class="notice" role="status">Your profile was saved.</p>`) {
		t.Errorf("the result is not announced as a status:\n%s", p.body)
	}
}

// "Forget this device": only the user's own remembered device.
func TestAccountForgetDevice(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		e := accountEnv(t, open)
		ctx := t.Context()
		bob, err := e.accounts.Create(ctx, account.NewUser{Email: "bob@example.com", Password: "bob has a long password", EmailVerified: true})
		if err != nil {
			t.Fatal(err)
		}
		soon := time.Now().Add(time.Hour)
		for _, d := range []*storage.RememberedDevice{{ID: "mine", UserID: e.alice.ID, SecretHash: "h", ExpiresAt: soon},
			{ID: "bobs", UserID: bob.ID, SecretHash: "h", ExpiresAt: soon}} {
			if err := e.store.CreateRememberedDevice(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		b, _, csrf := e.signedInAs(t, "alice", alicePassword)
		for _, tc := range []struct {
			name, id string
			status   int
		}{
			{"bob's device", "bobs", http.StatusBadRequest},
			{"unknown", "nope", http.StatusBadRequest},
			{"own device", "mine", http.StatusSeeOther},
			{"own device again", "mine", http.StatusBadRequest},
		} {
			if r := b.action("device-forget", csrf, url.Values{"id": {tc.id}}); r.StatusCode != tc.status {
				t.Errorf("%s: device-forget = %d, want %d", tc.name, r.StatusCode, tc.status)
			}
		}
		if _, err := e.store.RememberedDevice(ctx, "bobs"); err != nil {
			t.Errorf("bob's device after alice's tries = %v", err)
		}
		if _, err := e.store.RememberedDevice(ctx, "mine"); err == nil {
			t.Error("alice's device survived Forget this device")
		}
		if p := b.get(login.AccountPath + "?done=device-forget"); !strings.Contains(p.body, "That device is forgotten") {
			t.Errorf("no notice after forgetting:\n%s", p.body)
		}
	})
}
