package login_test

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/torii-idp/torii/login"
	"github.com/torii-idp/torii/login/account"
	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

func accountUser(email string) account.NewUser {
	return account.NewUser{Email: email, Password: alicePassword}
}

func TestLoginPage(t *testing.T) {
	e := sqliteEnv(t)
	e.pendingRequest("req_1-A", "openid")
	b := e.browser()

	r := b.get("/login?req=req_1-A")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET /login = %d", r.StatusCode)
	}
	c := r.cookie("torii_csrf")
	if c == nil || len(c.Value) != 43 || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure {
		t.Fatalf("CSRF cookie = %+v", c)
	}
	for _, want := range []string{
		`name="username"`, `autocomplete="username"`,
		`name="password"`, `autocomplete="current-password"`,
		`<input type="hidden" name="req" value="req_1-A">`,
		`<input type="hidden" name="csrf" value="`,
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("login page lacks %s", want)
		}
	}
	// The cookie is set once; later pages reuse it.
	if again := b.get("/login"); again.cookie("torii_csrf") != nil {
		t.Error("CSRF cookie set again although the browser has one")
	}

	tests := []struct {
		name, query string
		status      int
		hasReq      bool
	}{
		{"no req", "", http.StatusOK, false},
		{"malformed req is ignored", "?req=../evil", http.StatusOK, false},
		{"overlong req is ignored", "?req=" + strings.Repeat("a", 200), http.StatusOK, false},
		{"unknown req", "?req=gone", http.StatusBadRequest, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := b.get("/login" + tc.query)
			if r.StatusCode != tc.status {
				t.Fatalf("GET /login%s = %d, want %d", tc.query, r.StatusCode, tc.status)
			}
			if got := strings.Contains(r.body, `name="req"`); got != tc.hasReq {
				t.Errorf("req field present = %v, want %v", got, tc.hasReq)
			}
			if tc.status == http.StatusBadRequest && !strings.Contains(r.body, "This sign-in request has expired. Go back to the app and try again.") {
				t.Errorf("expired page body:\n%s", r.body)
			}
		})
	}
}

func TestLoginCSRF(t *testing.T) {
	e := sqliteEnv(t)
	victim := e.browser()
	token := victim.csrf("/login")
	attacker := e.browser()
	attackerToken := attacker.csrf("/login")

	creds := func(csrf ...string) url.Values {
		v := url.Values{"username": {"alice"}, "password": {alicePassword}}
		if len(csrf) > 0 {
			v["csrf"] = csrf
		}
		return v
	}
	tests := []struct {
		name string
		b    *browser
		form url.Values
	}{
		{"no token", victim, creds()},
		{"empty token", victim, creds("")},
		{"forged token", victim, creds(randomToken())},
		{"not base64", victim, creds("!!!")},
		{"another browser's token", victim, creds(attackerToken)},
		{"token twice", victim, creds(token, token)},
		{"no cookie", e.browser(), creds(token)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.b.post("/login", tc.form)
			if r.StatusCode != http.StatusForbidden {
				t.Fatalf("POST /login = %d, want 403", r.StatusCode)
			}
			if r.cookie("torii_session") != nil {
				t.Error("a session cookie was set")
			}
			if !strings.Contains(r.body, "This form has expired") {
				t.Errorf("403 page body:\n%s", r.body)
			}
		})
	}
	if n := e.sessionRows(); n != 0 {
		t.Errorf("%d sessions stored, want 0", n)
	}
	// No state change: not even a counted failure.
	u, err := e.accounts.Get(t.Context(), e.alice.ID)
	if err != nil || u.FailedLogins != 0 {
		t.Errorf("failed logins = %d, %v; want 0", u.FailedLogins, err)
	}
	// The right token still works.
	if r := victim.post("/login", creds(token)); r.StatusCode != http.StatusSeeOther {
		t.Errorf("POST with the right token = %d, want 303", r.StatusCode)
	}
}

// Unknown user, wrong password and a disabled account get the same status,
// headers and body, but for the typed login refilled (escaped) in its field
// (issue 13: keep what the user typed) and so the Content-Length. (Locked
// names are told when to retry: see TestLockIsToldForKnownAndUnknownNames.)
func TestLoginFailuresAreIdentical(t *testing.T) {
	e := sqliteEnv(t)
	ctx := t.Context()
	for _, email := range []string{"locked@example.com", "disabled@example.com"} {
		if _, err := e.accounts.Create(ctx, accountUser(email)); err != nil {
			t.Fatal(err)
		}
	}
	locked, _ := e.store.UserByLogin(ctx, "locked@example.com")
	// One attempt reaches a threshold of 1 and locks the account for an hour.
	if _, err := e.store.AdmitAttempt(ctx, storage.PasswordCounter(locked.ID), time.Now(), 1,
		func(int) time.Duration { return time.Hour }); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.DB().NewUpdate().Model((*storage.User)(nil)).Set("disabled = ?", true).Where("email = ?", "disabled@example.com").Exec(ctx); err != nil {
		t.Fatal(err)
	}

	b := e.browser()
	tok := b.csrf("/login")
	tests := []struct{ name, username, password string }{
		{"wrong password", "alice", "wrong password"},
		{"unknown user", "mallory@example.com", "wrong password"},
		{"unknown username", "mallory", alicePassword},
		{"disabled, right password", "disabled@example.com", alicePassword},
		{"malformed login", "' OR 1=1--", alicePassword},
	}
	var first *response
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := b.post("/login", url.Values{"csrf": {tok}, "username": {tc.username}, "password": {tc.password}})
			if r.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", r.StatusCode)
			}
			if !strings.Contains(r.body, `<p id="password-error" class="error">The username or password is incorrect.</p>`) ||
				!strings.Contains(r.body, `<title>Error: Sign in`) {
				t.Errorf("body lacks the generic message:\n%s", r.body)
			}
			if len(r.Cookies()) != 0 {
				t.Errorf("cookies set: %v", r.Cookies())
			}
			refill := `value="` + html.EscapeString(tc.username) + `"`
			if !strings.Contains(r.body, refill) {
				t.Errorf("the typed login is not refilled as %s", refill)
			}
			r.body = strings.Replace(r.body, refill, `value=""`, 1)
			if strings.Contains(r.body, tc.username) || strings.Contains(r.body, tc.password) {
				t.Errorf("body repeats the typed login or password elsewhere")
			}
			if first == nil {
				first = r
				return
			}
			if r.body != first.body {
				t.Errorf("body differs from %q's:\n%s\n---\n%s", tests[0].name, r.body, first.body)
			}
			for k := range first.Header {
				if k != "Date" && k != "Content-Length" && r.Header.Get(k) != first.Header.Get(k) {
					t.Errorf("header %s = %q, want %q", k, r.Header.Get(k), first.Header.Get(k))
				}
			}
			if len(r.Header) != len(first.Header) {
				t.Errorf("headers %v, want %v", r.Header, first.Header)
			}
		})
	}
	if n := e.sessionRows(); n != 0 {
		t.Errorf("%d sessions stored, want 0", n)
	}
}

func TestLoginBadInput(t *testing.T) {
	e := sqliteEnv(t)
	b := e.browser()
	tok := b.csrf("/login")
	tests := []struct {
		name   string
		form   url.Values
		status int
		msg    string
	}{
		{"username over 320 bytes", url.Values{"username": {strings.Repeat("a", 321)}, "password": {"x"}}, http.StatusBadRequest, "The username is too long."},
		{"10 kB username", url.Values{"username": {strings.Repeat("a", 10_000)}, "password": {"x"}}, http.StatusBadRequest, "The username is too long."},
		{"password over 1024 bytes", url.Values{"username": {"alice"}, "password": {strings.Repeat("p", 1025)}}, http.StatusBadRequest, "The password is too long."},
		{"empty username", url.Values{"username": {" "}, "password": {"x"}}, http.StatusBadRequest, "Enter your email address or username."},
		{"empty password", url.Values{"username": {"alice"}}, http.StatusBadRequest, "Enter your password."},
		{"username twice", url.Values{"username": {"alice", "bob"}, "password": {alicePassword}}, http.StatusBadRequest, "The request was not understood."},
		{"NUL and invalid UTF-8", url.Values{"username": {"al\x00ice\xff"}, "password": {"\x00"}}, http.StatusUnauthorized, "The username or password is incorrect."},
		{"emoji username", url.Values{"username": {"🦊🦊🦊"}, "password": {alicePassword}}, http.StatusUnauthorized, "The username or password is incorrect."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.form.Set("csrf", tok)
			r := b.post("/login", tc.form)
			if r.StatusCode != tc.status || !strings.Contains(r.body, tc.msg) {
				t.Errorf("status %d, want %d with %q:\n%s", r.StatusCode, tc.status, tc.msg, r.body)
			}
		})
	}
	t.Run("body over the limit", func(t *testing.T) {
		form := url.Values{"csrf": {tok}, "username": {"alice"}, "password": {alicePassword}, "pad": {strings.Repeat("x", 100<<10)}}
		if r := b.post("/login", form); r.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("status %d, want 413", r.StatusCode)
		}
	})
	t.Run("malformed body", func(t *testing.T) {
		r := b.do(http.MethodPost, "/login", strings.NewReader("csrf=%zz"), "application/x-www-form-urlencoded")
		if r.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d, want 400", r.StatusCode)
		}
	})
	if n := e.sessionRows(); n != 0 {
		t.Errorf("%d sessions stored, want 0", n)
	}
}

func TestLoginSuccess(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		for _, https := range []bool{false, true} {
			name := "http"
			if https {
				name = "https"
			}
			t.Run(name, func(t *testing.T) {
				e := newEnv(t, open, https)
				e.pendingRequest("req1", "openid")
				b := e.browser()
				planted := randomToken()
				b.setJarCookie(e.sessionCookieName(), planted)

				r := b.signIn("req1", "ALICE@example.com", alicePassword)
				if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/oauth2/auth/resume?req=req1" {
					t.Fatalf("POST /login = %d, Location %q; want 303 to the resume URL", r.StatusCode, r.Header.Get("Location"))
				}
				c := r.cookie(e.sessionCookieName())
				if c == nil {
					t.Fatalf("no %s cookie in %v", e.sessionCookieName(), r.Cookies())
				}
				if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" || c.Secure != https || c.MaxAge <= 0 {
					t.Errorf("session cookie = %+v", c)
				}
				if len(c.Value) != 43 {
					t.Errorf("session cookie value has %d chars, want 43", len(c.Value))
				}
				if c.Value == planted {
					t.Fatal("the planted session ID was adopted (fixation)")
				}
				if https && !strings.HasPrefix(c.Name, "__Host-") {
					t.Errorf("cookie name %q lacks __Host-", c.Name)
				}
				if csrf := r.cookie(e.csrfCookieName()); csrf != nil {
					t.Errorf("CSRF cookie replaced at sign-in: %+v", csrf)
				}

				if sub, ok := e.signedIn(c.Value); !ok || sub != e.alice.ID {
					t.Errorf("SignedIn(new cookie) = %q, %v; want alice", sub, ok)
				}
				if _, ok := e.signedIn(planted); ok {
					t.Error("SignedIn(planted cookie) = true")
				}
				ls, err := e.store.LoginSession(t.Context(), sha256Hex(c.Value))
				if err != nil {
					t.Fatalf("the session is not stored under the hash of its ID: %v", err)
				}
				if len(ls.AMR) != 1 || ls.AMR[0] != "pwd" || ls.UserAgent == "" || time.Since(ls.AuthTime) > time.Minute {
					t.Errorf("stored session = %+v", ls)
				}
				if _, err := e.store.LoginSession(t.Context(), c.Value); err == nil {
					t.Error("the raw session ID is stored")
				}

				// Signing in again replaces the session; the old ID is dead.
				r = b.signIn("", "alice", alicePassword)
				if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != login.AccountPath {
					t.Fatalf("second sign-in = %d, Location %q; want 303 to the account page", r.StatusCode, r.Header.Get("Location"))
				}
				c2 := r.cookie(e.sessionCookieName())
				if c2 == nil || c2.Value == c.Value {
					t.Fatalf("second sign-in kept the session ID")
				}
				if _, ok := e.signedIn(c.Value); ok {
					t.Error("the old session still works after a new sign-in")
				}
				if n := e.sessionRows(); n != 1 {
					t.Errorf("%d sessions stored, want 1", n)
				}

				done := b.get("/login/done")
				if done.StatusCode != http.StatusOK || !strings.Contains(done.body, "You are signed in as <strong>alice@example.com</strong>") {
					t.Errorf("GET /login/done = %d:\n%s", done.StatusCode, done.body)
				}
				if !strings.Contains(e.logs.String(), "subject="+e.alice.ID) {
					t.Errorf("the sign-in is not logged with the subject:\n%s", e.logs)
				}
			})
		}
	})
}

func TestDoneWithoutSession(t *testing.T) {
	e := sqliteEnv(t)
	r := e.browser().get("/login/done")
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login" {
		t.Errorf("GET /login/done = %d, Location %q; want 303 to /login", r.StatusCode, r.Header.Get("Location"))
	}
}

func TestLoginExpiredRequest(t *testing.T) {
	e := sqliteEnv(t)
	b := e.browser()
	tok := b.csrf("/login")
	r := b.post("/login", url.Values{"csrf": {tok}, "req": {"gone"}, "username": {"alice"}, "password": {alicePassword}})
	if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.body, "This sign-in request has expired") {
		t.Errorf("POST /login with an unknown req = %d:\n%s", r.StatusCode, r.body)
	}
	// A malformed req is ignored: the sign-in goes to the account page.
	r = b.post("/login", url.Values{"csrf": {tok}, "req": {"https://evil.example/"}, "username": {"alice"}, "password": {alicePassword}})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != login.AccountPath {
		t.Errorf("POST /login with a malformed req = %d, Location %q", r.StatusCode, r.Header.Get("Location"))
	}
}

func TestLogout(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		e := newEnv(t, open, false)
		b := e.browser()
		if r := b.signIn("", "alice", alicePassword); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in = %d", r.StatusCode)
		}
		sess := b.jarCookie("torii_session")
		tok := b.csrf("/login/done")

		if r := b.post("/logout", url.Values{}); r.StatusCode != http.StatusForbidden {
			t.Errorf("POST /logout without a token = %d, want 403", r.StatusCode)
		}
		if r := b.post("/logout", url.Values{"csrf": {randomToken()}}); r.StatusCode != http.StatusForbidden {
			t.Errorf("POST /logout with a forged token = %d, want 403", r.StatusCode)
		}
		if _, ok := e.signedIn(sess); !ok {
			t.Fatal("a refused logout ended the session")
		}

		r := b.post("/logout", url.Values{"csrf": {tok}})
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login?done=signed-out" {
			t.Fatalf("POST /logout = %d, Location %q; want 303 to /login?done=signed-out", r.StatusCode, r.Header.Get("Location"))
		}
		if c := r.cookie("torii_session"); c == nil || c.MaxAge >= 0 {
			t.Errorf("session cookie not cleared: %+v", c)
		}
		if _, ok := e.signedIn(sess); ok {
			t.Error("session still valid after logout")
		}
		if n := e.sessionRows(); n != 0 {
			t.Errorf("%d sessions stored, want 0", n)
		}
		if r := b.get("/login"); r.StatusCode != http.StatusOK || !strings.Contains(r.body, `name="password"`) {
			t.Errorf("GET /login after logout = %d", r.StatusCode)
		}
	})
}

// After full flows, neither the password nor the typed login names appear
// in the logs; user IDs do.
func TestLogsHoldNoCredentials(t *testing.T) {
	e := sqliteEnv(t)
	e.pendingRequest("req1", "openid email")
	b := e.browser()
	b.signIn("req1", "mallory@example.com", "mallory's secret pw")
	b.signIn("req1", "alice", "a wrong password")
	b.signIn("req1", aliceEmail, alicePassword)
	tok := b.csrf("/consent?req=req1")
	b.post("/consent", url.Values{"csrf": {tok}, "req": {"req1"}, "action": {"allow"}})
	b.post("/logout", url.Values{"csrf": {tok}})

	logs := e.logs.String()
	for _, secret := range []string{alicePassword, "a wrong password", "mallory's secret pw", "mallory", aliceEmail, "alice\"", "=alice", tok} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs contain %q:\n%s", secret, logs)
		}
	}
	for _, want := range []string{"login: sign-in failed", "login: signed in", "login: consent granted", "login: signed out", "subject=" + e.alice.ID, "client_id=app"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the logs lack %q:\n%s", want, logs)
		}
	}
}

// A locked account is told when it may try again — and a login name
// without an account is "locked" the same way after the same failures, so
// the message reveals nothing.
func TestLockIsToldForKnownAndUnknownNames(t *testing.T) {
	e := sqliteEnv(t)
	b := e.browser()
	tok := b.csrf("/login")
	attempt := func(name string) *response {
		return b.post("/login", url.Values{"csrf": {tok}, "username": {name}, "password": {"wrong password"}})
	}
	var last [2]*response
	for i, name := range []string{aliceEmail, "nobody-here@example.com"} {
		for range 5 {
			if r := attempt(name); r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.body, "incorrect") {
				t.Fatalf("%s: failure before the lock = %d", name, r.StatusCode)
			}
		}
		last[i] = attempt(name)
	}
	for i, r := range last {
		if r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.body, "Too many failed attempts. Try again in 1 minute") {
			t.Errorf("attempt %d after the lock = %d:\n%s", i, r.StatusCode, r.body)
		}
	}
	last[0].body = strings.Replace(last[0].body, `value="`+aliceEmail+`"`, `value=""`, 1)
	last[1].body = strings.Replace(last[1].body, `value="nobody-here@example.com"`, `value=""`, 1)
	if last[0].body != last[1].body {
		t.Errorf("a locked account and a locked unknown name answer differently:\n%s\n---\n%s", last[0].body, last[1].body)
	}
	// The owner can still reset the password by mail.
	if err := e.accounts.RequestPasswordReset(t.Context(), aliceEmail); err != nil {
		t.Fatal(err)
	}
	if m := e.mail.last(t, aliceEmail); !strings.Contains(m.Subject, "new password") {
		t.Errorf("no reset mail for the locked account: %+v", m)
	}
}
