package login_test

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/torii-idp/torii/login"
	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

// dbState renders every row a form could change (users, sessions, codes,
// links, consents, avatars, pending requests, failure counters) and the
// number of messages sent, so a test can tell that a request changed
// nothing.
func (e *env) dbState() string {
	e.t.Helper()
	var out []string
	for _, table := range []string{"users", "login_sessions", "one_time_codes", "action_tokens", "consents", "avatars", "auth_requests", "login_failures"} {
		var rows []map[string]any
		if err := e.store.DB().NewSelect().Table(table).Scan(e.t.Context(), &rows); err != nil {
			e.t.Fatalf("read %s: %v", table, err)
		}
		for _, r := range rows {
			out = append(out, table+" "+fmt.Sprint(r))
		}
	}
	slices.Sort(out)
	return fmt.Sprintf("%d messages\n%s", e.mail.count(), strings.Join(out, "\n"))
}

// mfaRequest stores a pending request for client "app" with
// acr_values=mfa: the sign-in for it needs the code even with OTP off.
func (e *env) mfaRequest(id string) {
	e.t.Helper()
	form := url.Values{"client_id": {"app"}, "scope": {"openid"}, "response_type": {"code"}, "acr_values": {"mfa"}}
	if err := e.store.CreateAuthRequest(e.t.Context(), &storage.AuthRequest{ID: id, ClientID: "app", Form: form.Encode(),
		BrowserHash: "b", ExpiresAt: time.Now().Add(10 * time.Minute)}); err != nil {
		e.t.Fatal(err)
	}
}

// TestCSRFOnEveryPost: every state-changing POST of the pages refuses a
// request without the CSRF token, with a forged one, or with another
// browser's, with 403 and no change at all (SECURITY 58).
func TestCSRFOnEveryPost(t *testing.T) {
	// OTP off (the mfa request below still asks for the code), and room
	// for the many requests of one test client.
	e := newEnvWith(t, storagetest.NewSQLite, false, func(c *login.Config) { c.IPRateLimit = login.Limit{N: 10000, Per: time.Minute} })
	e.mfaRequest("mfa")
	e.pendingRequest("consent-req", "openid email")
	if _, err := e.store.DB().NewUpdate().Model((*storage.User)(nil)).Set("phone = ?, phone_verified = ?", "+15550100001", true).
		Where("id = ?", e.alice.ID).Exec(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := e.store.SaveConsent(t.Context(), &storage.Consent{Subject: e.alice.ID, ClientID: "app", Scopes: []string{"openid"}}); err != nil {
		t.Fatal(err)
	}

	signedIn := func(t *testing.T) *browser {
		b := e.browser()
		if r := b.signIn("", "alice", alicePassword); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in = %d", r.StatusCode)
		}
		return b
	}
	halfSignedIn := func(t *testing.T) *browser {
		b := e.browser()
		if r := b.signIn("mfa", "alice", alicePassword); !strings.HasPrefix(r.Header.Get("Location"), login.CodePath) {
			t.Fatalf("password step → %q, want the code page", r.Header.Get("Location"))
		}
		return b
	}
	registering := func(t *testing.T) *browser {
		b := e.browser()
		r := b.post(login.RegisterPath, url.Values{"csrf": {b.csrf(login.RegisterPath)}, "email": {"new-" + randomToken()[:8] + "@example.com"},
			"password": {"a long enough passphrase"}, "password2": {"a long enough passphrase"}})
		if r.StatusCode != http.StatusSeeOther {
			t.Fatalf("register = %d", r.StatusCode)
		}
		return b
	}
	fresh := func(t *testing.T) *browser {
		b := e.browser()
		b.csrf(login.LoginPath) // the browser has a CSRF cookie
		return b
	}
	resetToken := func() string {
		b := e.browser()
		b.post(login.ForgotPath, url.Values{"csrf": {b.csrf(login.ForgotPath)}, "email": {aliceEmail}})
		link, _ := url.Parse(e.mail.link(t, aliceEmail))
		return link.Query().Get("token")
	}
	sessionID := func(t *testing.T) string {
		sessions, err := e.store.LoginSessions(t.Context(), e.alice.ID)
		if err != nil || len(sessions) == 0 {
			t.Fatalf("sessions: %v %v", sessions, err)
		}
		return sessions[0].IDHash
	}

	tests := []struct {
		name  string
		path  string
		setup func(t *testing.T) *browser
		form  func(t *testing.T) url.Values
	}{
		{"sign-in", login.LoginPath, fresh, func(*testing.T) url.Values {
			return url.Values{"username": {"alice"}, "password": {alicePassword}}
		}},
		{"code", login.CodePath, halfSignedIn, func(*testing.T) url.Values {
			return url.Values{"req": {"mfa"}, "code": {e.mail.code(t, aliceEmail)}}
		}},
		{"code resend", login.CodePath + "/resend", halfSignedIn, func(*testing.T) url.Values {
			return url.Values{"req": {"mfa"}, "channel": {"email"}}
		}},
		{"code by SMS instead", login.CodePath + "/resend", halfSignedIn, func(*testing.T) url.Values {
			return url.Values{"req": {"mfa"}, "channel": {"sms"}}
		}},
		{"verify", login.VerifyPath, registering, func(*testing.T) url.Values { return url.Values{"code": {"123456"}} }},
		{"verify resend", login.VerifyPath + "/resend", registering, func(*testing.T) url.Values { return url.Values{} }},
		{"register", login.RegisterPath, fresh, func(*testing.T) url.Values {
			return url.Values{"email": {"csrf-victim@example.com"}, "password": {"a long enough passphrase"}, "password2": {"a long enough passphrase"}}
		}},
		{"forgot", login.ForgotPath, fresh, func(*testing.T) url.Values { return url.Values{"email": {aliceEmail}} }},
		{"reset", login.ResetPath, fresh, func(*testing.T) url.Values {
			return url.Values{"token": {resetToken()}, "password": {"attacker's new password"}, "password2": {"attacker's new password"}}
		}},
		{"profile", login.AccountPath + "/profile", signedIn, func(*testing.T) url.Values {
			return url.Values{"name": {"Mallory"}, "username": {"mallory"}, "bio": {"pwned"}}
		}},
		{"password", login.AccountPath + "/password", signedIn, func(*testing.T) url.Values {
			return url.Values{"old_password": {alicePassword}, "password": {"attacker's new password"}, "password2": {"attacker's new password"}}
		}},
		{"session end", login.AccountPath + "/session-end", signedIn, func(t *testing.T) url.Values {
			return url.Values{"id": {sessionID(t)}}
		}},
		{"app revoke", login.AccountPath + "/app-revoke", signedIn, func(*testing.T) url.Values { return url.Values{"client_id": {"app"}} }},
		{"deactivate", login.AccountPath + "/deactivate", signedIn, func(*testing.T) url.Values { return url.Values{"password": {alicePassword}} }},
		{"phone", login.AccountPath + "/phone", signedIn, func(*testing.T) url.Values { return url.Values{"phone": {"+15550100002"}} }},
		{"phone verify", login.AccountPath + "/phone-verify", signedIn, func(*testing.T) url.Values { return url.Values{"code": {"123456"}} }},
		{"phone remove", login.AccountPath + "/phone-remove", signedIn, func(*testing.T) url.Values { return url.Values{} }},
		{"avatar remove", login.AccountPath + "/avatar-remove", signedIn, func(*testing.T) url.Values { return url.Values{} }},
		{"verify email", login.AccountPath + "/verify-email", signedIn, func(*testing.T) url.Values { return url.Values{} }},
		{"consent", "/consent", signedIn, func(*testing.T) url.Values { return url.Values{"req": {"consent-req"}, "action": {"allow"}} }},
		{"logout", login.LogoutPath, signedIn, func(*testing.T) url.Values { return url.Values{} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.setup(t)
			own := b.csrf(login.LoginPath)
			other := fresh(t).csrf(login.LoginPath)
			form := tc.form(t)
			before := e.dbState()
			cookie := b.jarCookie(e.sessionCookieName())
			for _, bad := range []struct {
				name  string
				token []string
			}{
				{"missing", nil},
				{"empty", []string{""}},
				{"forged", []string{randomToken()}},
				{"another browser's", []string{other}},
				{"twice", []string{own, own}},
			} {
				f := url.Values{}
				for k, v := range form {
					f[k] = v
				}
				if bad.token != nil {
					f["csrf"] = bad.token
				}
				r := b.post(tc.path, f)
				if r.StatusCode != http.StatusForbidden || !strings.Contains(r.body, "This form has expired") {
					t.Errorf("%s token: POST %s = %d, want 403", bad.name, tc.path, r.StatusCode)
				}
				if len(r.Cookies()) != 0 {
					t.Errorf("%s token: cookies set: %v", bad.name, r.Cookies())
				}
			}
			if after := e.dbState(); after != before {
				t.Errorf("refused requests changed the state:\nbefore %s\nafter  %s", before, after)
			}
			if got := b.jarCookie(e.sessionCookieName()); got != cookie {
				t.Error("the session cookie changed")
			}
		})
	}

	t.Run("avatar upload", func(t *testing.T) {
		b := signedIn(t)
		other := fresh(t).csrf(login.LoginPath)
		before := e.dbState()
		for _, token := range [][]string{nil, {randomToken()}, {other}} {
			var body bytes.Buffer
			mw := multipart.NewWriter(&body)
			for _, v := range token {
				mw.WriteField("csrf", v)
			}
			fw, _ := mw.CreateFormFile("avatar", "me.png")
			fw.Write(pngBytes(t))
			mw.Close()
			if r := b.do(http.MethodPost, login.AccountPath+"/avatar", &body, mw.FormDataContentType()); r.StatusCode != http.StatusForbidden {
				t.Errorf("avatar with CSRF %v = %d, want 403", token, r.StatusCode)
			}
		}
		if after := e.dbState(); after != before {
			t.Errorf("refused uploads changed the state:\nbefore %s\nafter  %s", before, after)
		}
	})
}

// pngBytes is a small valid PNG.
func pngBytes(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewRGBA(image.Rect(0, 0, 8, 8))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
