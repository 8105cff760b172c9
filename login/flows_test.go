package login_test

import (
	"bytes"
	"image"
	"image/png"
	"mime/multipart"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/torii-idp/torii/login"
	"github.com/torii-idp/torii/login/account"
	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

// otpEnv is an environment where every sign-in needs the code.
func otpEnv(t *testing.T, open func(testing.TB) *storage.Store) *env {
	return newEnvWith(t, open, false, func(c *login.Config) { c.OTP = login.OTPAlways })
}

// passwordStep signs in with the password and returns the response (303
// to the code page) and the cookie the browser then holds.
func (b *browser) passwordStep(req string) (*response, string) {
	b.t.Helper()
	r := b.signIn(req, "alice", alicePassword)
	if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), login.CodePath) {
		b.t.Fatalf("password step = %d → %q, want 303 to the code page:\n%s", r.StatusCode, r.Header.Get("Location"), r.body)
	}
	return r, b.jarCookie(b.e.sessionCookieName())
}

func (b *browser) submitCode(req, code string) *response {
	b.t.Helper()
	form := url.Values{"csrf": {b.csrf(login.CodePath + "?req=" + req)}, "code": {code}}
	if req != "" {
		form.Set("req", req)
	}
	return b.post(login.CodePath, form)
}

func TestCodeStep(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		e := otpEnv(t, open)
		e.pendingRequest("req1", "openid")
		b := e.browser()
		planted := randomToken()
		b.setJarCookie(e.sessionCookieName(), planted)

		_, half := b.passwordStep("req1")
		if half == "" || half == planted {
			t.Fatal("the password step did not issue a new session ID")
		}
		// Half signed in is not signed in.
		if _, ok := e.signedIn(half); ok {
			t.Error("a session waiting for its code counts as signed in")
		}
		if r := b.get("/consent?req=req1"); r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/login") {
			t.Errorf("consent before the code = %d %q", r.StatusCode, r.Header.Get("Location"))
		}
		if r := b.get(login.AccountPath); r.StatusCode != http.StatusSeeOther {
			t.Errorf("account page before the code = %d", r.StatusCode)
		}
		page := b.get(login.CodePath + "?req=req1")
		if page.StatusCode != http.StatusOK || !strings.Contains(page.body, `name="code"`) || !strings.Contains(page.body, "a•••@example.com") {
			t.Fatalf("code page = %d:\n%s", page.StatusCode, page.body)
		}
		if page.Header.Get("Cache-Control") != "no-store" {
			t.Error("the code page may be cached")
		}
		code := e.mail.code(t, aliceEmail)
		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		if r := b.submitCode("req1", wrong); r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.body, `role="alert"`) {
			t.Errorf("wrong code = %d", r.StatusCode)
		}
		// Not a code at all: told so, and not counted as a guess.
		for _, bad := range []string{code + "1", code[:5], "abcdef", ""} {
			if r := b.submitCode("req1", bad); r.StatusCode != http.StatusBadRequest || !strings.Contains(r.body, "6-digit code") {
				t.Errorf("code %q = %d, want 400 and the shape message", bad, r.StatusCode)
			}
		}
		// Pasted with a space and a dash inside: accepted.
		r := b.submitCode("req1", " "+code[:3]+" - "+code[3:]+"\t")
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/oauth2/auth/resume?req=req1" {
			t.Fatalf("right code = %d %q", r.StatusCode, r.Header.Get("Location"))
		}
		full := r.cookie(e.sessionCookieName())
		if full == nil || full.Value == half || full.Value == planted {
			t.Fatal("the code step did not issue a new session ID")
		}
		if _, ok := e.signedIn(half); ok {
			t.Error("the half session's ID still works")
		}
		sub, ok := e.signedIn(full.Value)
		if !ok || sub != e.alice.ID {
			t.Fatal("not signed in after the code")
		}
		ls, _ := e.store.LoginSession(t.Context(), sha256Hex(full.Value))
		if strings.Join(ls.AMR, " ") != "pwd otp" {
			t.Errorf("AMR = %v, want pwd otp", ls.AMR)
		}
		// The used code is dead, also for a new attempt.
		b2 := e.browser()
		b2.passwordStep("req1")
		if r := b2.submitCode("req1", code); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("a code from an earlier attempt = %d, want 401", r.StatusCode)
		}
	})
}

func TestCodeStepSixWrongAndOtherAccount(t *testing.T) {
	e := otpEnv(t, storagetest.NewSQLite)
	bob, err := e.accounts.Create(t.Context(), account.NewUser{Email: "bob@example.com", Password: "bob has a long password", EmailVerified: true})
	if err != nil {
		t.Fatal(err)
	}
	bb := e.browser()
	r := bb.signIn("", "bob@example.com", "bob has a long password")
	if r.StatusCode != http.StatusSeeOther {
		t.Fatal(r.body)
	}
	bobCode := e.mail.code(t, bob.Email)

	b := e.browser()
	b.passwordStep("")
	code := e.mail.code(t, aliceEmail)
	if bobCode != code {
		if r := b.submitCode("", bobCode); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("another account's code = %d", r.StatusCode)
		}
	}
	for i := 0; i < 6; i++ {
		b.submitCode("", "999999")
	}
	if r := b.submitCode("", code); r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.body, "no longer works") {
		t.Errorf("the right code after 6 wrong ones = %d:\n%s", r.StatusCode, r.body)
	}
}

func TestResendFlooding(t *testing.T) {
	e := newEnvWith(t, storagetest.NewSQLite, false, func(c *login.Config) { c.OTP = login.OTPAlways })
	// This environment's account service resends without waiting; use one
	// that waits 30 s.
	e.accounts = account.New(e.store, account.Config{Notifier: e.mail, Issuer: "https://id.example.test"})
	h, err := login.New(t.Context(), login.Config{Issuer: "http://127.0.0.1:8080"}, login.Deps{Store: e.store, Accounts: e.accounts})
	if err != nil {
		t.Fatal(err)
	}
	e.swapHandler(h)
	b := e.browser()
	b.passwordStep("")
	tok := b.csrf(login.CodePath)
	r := b.post(login.CodePath+"/resend", url.Values{"csrf": {tok}, "channel": {"email"}})
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" || !strings.Contains(r.body, "seconds") {
		t.Errorf("resend at once = %d, Retry-After %q", r.StatusCode, r.Header.Get("Retry-After"))
	}
	if r := b.post(login.CodePath+"/resend", url.Values{"channel": {"email"}}); r.StatusCode != http.StatusForbidden {
		t.Errorf("resend without CSRF = %d, want 403", r.StatusCode)
	}
}

func TestOTPOffWithMFARequest(t *testing.T) {
	e := sqliteEnv(t) // OTP off
	e.pendingRequest("plain", "openid")
	form := url.Values{"client_id": {"app"}, "scope": {"openid"}, "response_type": {"code"}, "acr_values": {"mfa"}}
	if err := e.store.CreateAuthRequest(t.Context(), &storage.AuthRequest{ID: "mfa", ClientID: "app", Form: form.Encode(),
		BrowserHash: "b", ExpiresAt: time.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if r := e.browser().signIn("plain", "alice", alicePassword); r.Header.Get("Location") != "/oauth2/auth/resume?req=plain" {
		t.Errorf("OTP off: sign-in → %q, want straight to resume", r.Header.Get("Location"))
	}
	if r := e.browser().signIn("mfa", "alice", alicePassword); !strings.HasPrefix(r.Header.Get("Location"), login.CodePath) {
		t.Errorf("acr_values=mfa: sign-in → %q, want the code page", r.Header.Get("Location"))
	}
}

func TestUnverifiedUserGetsVerifyPage(t *testing.T) {
	e := otpEnv(t, storagetest.NewSQLite)
	u, err := e.accounts.Create(t.Context(), account.NewUser{Email: "new@example.com", Password: "a fresh unverified pass"})
	if err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	r := b.signIn("", "new@example.com", "a fresh unverified pass")
	if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), login.VerifyPath) {
		t.Fatalf("unverified sign-in = %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	if c := r.cookie(e.sessionCookieName()); c != nil && c.Value != "" {
		t.Error("an unverified user got a session")
	}
	page := b.get(r.Header.Get("Location"))
	if page.StatusCode != http.StatusOK || !strings.Contains(page.body, "n•••@example.com") {
		t.Fatalf("verify page = %d:\n%s", page.StatusCode, page.body)
	}
	code := e.mail.code(t, u.Email)
	r = b.post(login.VerifyPath, url.Values{"csrf": {b.csrf(login.VerifyPath)}, "code": {code}})
	if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/login?done=verified") {
		t.Fatalf("verify = %d %q:\n%s", r.StatusCode, r.Header.Get("Location"), r.body)
	}
	got, _ := e.store.User(t.Context(), u.ID)
	if !got.EmailVerified {
		t.Error("not verified")
	}
}

func TestRegistrationPages(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		e := otpEnv(t, open)
		register := func(b *browser, email, password, password2, name string) *response {
			return b.post(login.RegisterPath, url.Values{"csrf": {b.csrf(login.RegisterPath)}, "email": {email},
				"password": {password}, "password2": {password2}, "name": {name}})
		}
		// A new address and a taken one: the same answer.
		bNew, bTaken := e.browser(), e.browser()
		rNew := register(bNew, "zoe@example.com", "zoe likes long passwords", "zoe likes long passwords", "Zoë 🦋")
		rTaken := register(bTaken, strings.ToUpper(aliceEmail), "someone else's password", "someone else's password", "Mallory")
		if rNew.StatusCode != http.StatusSeeOther || rTaken.StatusCode != rNew.StatusCode || rNew.Header.Get("Location") != rTaken.Header.Get("Location") {
			t.Errorf("new → %d %q; taken → %d %q", rNew.StatusCode, rNew.Header.Get("Location"), rTaken.StatusCode, rTaken.Header.Get("Location"))
		}
		pNew, pTaken := bNew.get(login.VerifyPath), bTaken.get(login.VerifyPath)
		norm := regexp.MustCompile(`value="[^"]*"|<strong>[^<]*</strong>`)
		if norm.ReplaceAllString(pNew.body, "") != norm.ReplaceAllString(pTaken.body, "") {
			t.Error("the verification pages of a new and a taken address differ")
		}
		if !strings.Contains(e.mail.last(t, aliceEmail).Subject, "tried to register") {
			t.Error("the owner of the taken address got no notice")
		}
		code := e.mail.code(t, "zoe@example.com")
		if r := bNew.post(login.VerifyPath, url.Values{"csrf": {bNew.csrf(login.VerifyPath)}, "code": {code}}); r.StatusCode != http.StatusSeeOther {
			t.Errorf("verify the new account = %d", r.StatusCode)
		}
		u, _ := e.store.UserByLogin(t.Context(), "zoe@example.com")
		if u == nil || !u.EmailVerified || u.Name != "Zoë 🦋" {
			t.Errorf("registered user = %+v", u)
		}

		for _, tc := range []struct{ name, email, pw, pw2, field string }{
			{"invalid email", "not an email", "zoe likes long passwords", "zoe likes long passwords", "email-error"},
			{"129 characters", "x@example.com", strings.Repeat("p", 129), strings.Repeat("p", 129), "password-error"},
			{"common password", "x@example.com", "password123", "password123", "password-error"},
			{"confirmation differs", "x@example.com", "zoe likes long passwords", "zoe likes long passwordz", "password2-error"},
		} {
			b := e.browser()
			r := register(b, tc.email, tc.pw, tc.pw2, "")
			if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.body, `id="`+tc.field+`"`) {
				t.Errorf("%s: %d, want 400 with the error next to the field", tc.name, r.StatusCode)
			}
			if strings.Contains(r.body, tc.pw) {
				t.Errorf("%s: the page echoes the password", tc.name)
			}
		}
		if r := e.browser().post(login.RegisterPath, url.Values{"email": {"y@example.com"}}); r.StatusCode != http.StatusForbidden {
			t.Errorf("register without CSRF = %d", r.StatusCode)
		}
	})
}

// Look-alike addresses (SECURITY 53) are answered on the pages exactly as
// a new address: 303 to the verification page, which shows the address
// typed; no account is made, and the owner of the account it looks like is
// mailed.
func TestRegistrationPagesLookAlike(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		e := otpEnv(t, open)
		register := func(email string) (*response, *response) {
			b := e.browser()
			r := b.post(login.RegisterPath, url.Values{"csrf": {b.csrf(login.RegisterPath)}, "email": {email},
				"password": {"zoe likes long passwords"}, "password2": {"zoe likes long passwords"}})
			return r, b.get(login.VerifyPath)
		}
		rNew, pNew := register("zoe@example.com")
		masked := regexp.MustCompile(`value="[^"]*"|<strong>[^<]*</strong>`)
		for _, tc := range []struct {
			name, email, shown string
			owner              bool
		}{
			{"dotless ı", "alıce@example.com", "a•••@example.com", true},
			{"Cyrillic а first", "аlice@example.com", "а•••@example.com", true},
			{"Cyrillic а in the domain", "alice@exаmple.com", "a•••@exаmple.com", true},
			{"1 for l", "a1ice@examp1e.com", "a•••@examp1e.com", true},
			{"mixed scripts, like no account", "zоe.b@example.com", "z•••@example.com", false},
		} {
			before := e.mail.count()
			r, p := register(tc.email)
			if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != rNew.Header.Get("Location") {
				t.Errorf("%s: %d → %q; want %d → %q as for a new address", tc.name, r.StatusCode, r.Header.Get("Location"),
					rNew.StatusCode, rNew.Header.Get("Location"))
			}
			if p.StatusCode != http.StatusOK || !strings.Contains(p.body, "<strong>"+tc.shown+"</strong>") ||
				masked.ReplaceAllString(p.body, "") != masked.ReplaceAllString(pNew.body, "") {
				t.Errorf("%s: the verification page (%d) differs from a new address's or does not show %s", tc.name, p.StatusCode, tc.shown)
			}
			wantMails := 0
			if tc.owner {
				wantMails = 1
				if !strings.Contains(e.mail.last(t, aliceEmail).Subject, "tried to register") {
					t.Errorf("%s: the owner got no notice", tc.name)
				}
			}
			if got := e.mail.count() - before; got != wantMails {
				t.Errorf("%s: %d messages, want %d", tc.name, got, wantMails)
			}
		}
		if us, err := e.accounts.List(t.Context(), 0, 100); err != nil || len(us) != 2 {
			t.Errorf("List() = %d users, %v; want alice and zoe", len(us), err)
		}
	})
}

func TestResetPages(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		e := otpEnv(t, open)
		b := e.browser()
		ask := func(email string) *response {
			return b.post(login.ForgotPath, url.Values{"csrf": {b.csrf(login.ForgotPath)}, "email": {email}})
		}
		known, unknown := ask(aliceEmail), ask("nobody@example.com")
		if known.StatusCode != http.StatusOK || known.body != unknown.body {
			t.Errorf("forgot: known %d / unknown %d, bodies equal %v", known.StatusCode, unknown.StatusCode, known.body == unknown.body)
		}
		link, _ := url.Parse(e.mail.link(t, aliceEmail))
		if link.Host != "id.example.test" {
			t.Errorf("reset link host %q: must come from the configured issuer", link.Host)
		}
		token := link.Query().Get("token")
		page := b.get(login.ResetPath + "?token=" + url.QueryEscape(token))
		if page.StatusCode != http.StatusOK || page.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Fatalf("reset page = %d", page.StatusCode)
		}
		set := func(tok, pw string) *response {
			return b.post(login.ResetPath, url.Values{"csrf": {b.csrf(login.ForgotPath)}, "token": {tok}, "password": {pw}, "password2": {pw}})
		}
		if r := set(token[:len(token)-3]+"abc", "a brand new walrus"); r.StatusCode != http.StatusBadRequest || !strings.Contains(r.body, "no longer works") {
			t.Errorf("tampered link = %d", r.StatusCode)
		}
		if r := set(token, "a brand new walrus"); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login?done=reset" {
			t.Fatalf("reset = %d %q:\n%s", r.StatusCode, r.Header.Get("Location"), r.body)
		}
		if r := set(token, "yet another walrus"); r.StatusCode != http.StatusBadRequest {
			t.Errorf("reused link = %d", r.StatusCode)
		}
		if r := b.get(login.ResetPath + "?token=" + url.QueryEscape(token)); r.StatusCode != http.StatusBadRequest {
			t.Errorf("GET of a used link = %d", r.StatusCode)
		}
		if _, err := e.accounts.Authenticate(t.Context(), aliceEmail, "a brand new walrus"); err != nil {
			t.Errorf("the new password does not work: %v", err)
		}
	})
}

func TestAccountPageAvatar(t *testing.T) {
	e := sqliteEnv(t)
	b := e.browser()
	if r := b.signIn("", "alice", alicePassword); r.StatusCode != http.StatusSeeOther {
		t.Fatal(r.body)
	}
	page := b.get(login.AccountPath)
	if page.StatusCode != http.StatusOK || !strings.Contains(page.body, aliceEmail) || !strings.Contains(page.body, "(this device)") {
		t.Fatalf("account page = %d", page.StatusCode)
	}
	tok := csrfField.FindStringSubmatch(page.body)[1]
	upload := func(filename string, data []byte, csrf string) *response {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		mw.WriteField("csrf", csrf)
		fw, _ := mw.CreateFormFile("avatar", filename)
		fw.Write(data)
		mw.Close()
		return b.do(http.MethodPost, login.AccountPath+"/avatar", &body, mw.FormDataContentType())
	}
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	var pngBuf bytes.Buffer
	png.Encode(&pngBuf, img)
	for _, tc := range []struct {
		name, file string
		data       []byte
		status     int
	}{
		{"5 MiB", "big.png", make([]byte, 5<<20), http.StatusRequestEntityTooLarge},
		{"svg", "x.svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`), http.StatusBadRequest},
		{"php renamed png", "shell.png", []byte("<?php echo 'pwned'; ?>"), http.StatusBadRequest},
	} {
		r := upload(tc.file, tc.data, tok)
		if r.StatusCode != tc.status || !strings.Contains(r.body, `id="avatar-error"`) {
			t.Errorf("%s: %d, want %d with the message next to the field", tc.name, r.StatusCode, tc.status)
		}
	}
	if r := upload("me.png", pngBuf.Bytes(), "forged"); r.StatusCode != http.StatusForbidden {
		t.Errorf("upload with a forged CSRF token = %d", r.StatusCode)
	}
	if r := upload("me.png", pngBuf.Bytes(), tok); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("upload = %d:\n%s", r.StatusCode, r.body)
	}
	av := b.get(login.AvatarPrefix + e.alice.ID)
	if av.StatusCode != http.StatusOK || av.Header.Get("Content-Type") != "image/png" || av.Header.Get("X-Content-Type-Options") != "nosniff" ||
		!strings.Contains(av.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("avatar = %d %q", av.StatusCode, av.Header.Get("Content-Type"))
	}

	// Profile and password forms: CSRF, errors next to fields.
	if r := b.post(login.AccountPath+"/profile", url.Values{"name": {"x"}}); r.StatusCode != http.StatusForbidden {
		t.Errorf("profile without CSRF = %d", r.StatusCode)
	}
	if r := b.post(login.AccountPath+"/profile", url.Values{"csrf": {tok}, "name": {"Alice 🦊"}, "username": {"alice"}, "bio": {"Hello"}}); r.StatusCode != http.StatusSeeOther {
		t.Errorf("profile = %d", r.StatusCode)
	}
	if r := b.post(login.AccountPath+"/password", url.Values{"csrf": {tok}, "old_password": {"wrong"}, "password": {"a brand new walrus"}, "password2": {"a brand new walrus"}}); r.StatusCode != http.StatusForbidden || !strings.Contains(r.body, `id="old-password-error"`) {
		t.Errorf("wrong current password = %d", r.StatusCode)
	}
}

func TestPerIPLimits(t *testing.T) {
	e := newEnvWith(t, storagetest.NewSQLite, false, func(c *login.Config) {
		c.IPRateLimit = login.Limit{N: 3, Per: time.Hour}
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	b := e.browser()
	tok := b.csrf(login.LoginPath)
	post := func(xff string) *response {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+login.LoginPath, strings.NewReader(url.Values{"csrf": {tok}, "username": {"alice"}, "password": {"wrong"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", xff)
		resp, err := b.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return &response{Response: resp}
	}
	for i := 0; i < 3; i++ {
		if r := post("203.0.113.7"); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("attempt %d = %d", i+1, r.StatusCode)
		}
	}
	r := post("203.0.113.7")
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Errorf("4th attempt = %d, Retry-After %q; want 429", r.StatusCode, r.Header.Get("Retry-After"))
	}
	// Another client behind the trusted proxy has its own budget.
	if r := post("198.51.100.9"); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("another client = %d", r.StatusCode)
	}
	// The pages count too, the sign-in page included.
	for _, path := range []string{login.LoginPath, login.RegisterPath, login.ForgotPath} {
		xff := "192.0.2." + strconv.Itoa(len(path))
		for i := range 3 {
			if r := b.getFrom(xff, path); r.StatusCode != http.StatusOK {
				t.Fatalf("GET %s #%d = %d, want 200", path, i+1, r.StatusCode)
			}
		}
		if r := b.getFrom(xff, path); r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
			t.Errorf("GET %s #4 = %d (Retry-After %q), want 429 with Retry-After", path, r.StatusCode, r.Header.Get("Retry-After"))
		}
	}
}

func TestXForwardedForUntrusted(t *testing.T) {
	e := newEnvWith(t, storagetest.NewSQLite, false, func(c *login.Config) { c.IPRateLimit = login.Limit{N: 2, Per: time.Hour} })
	b := e.browser()
	tok := b.csrf(login.LoginPath)
	statuses := []int{}
	for i := range 3 {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+login.LoginPath, strings.NewReader(url.Values{"csrf": {tok}, "username": {"alice"}, "password": {"wrong"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", "192.0.2."+string(rune('1'+i)))
		resp, err := b.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
	}
	if statuses[2] != http.StatusTooManyRequests {
		t.Errorf("rotating X-Forwarded-For from an untrusted peer escaped the limit: %v", statuses)
	}
}

func TestLogoutConfirmation(t *testing.T) {
	e := sqliteEnv(t)
	b := e.browser()
	b.signIn("", "alice", alicePassword)
	page := b.get(login.LogoutPath)
	if page.StatusCode != http.StatusOK || !strings.Contains(page.body, aliceEmail) || !strings.Contains(page.body, `action="/logout"`) {
		t.Errorf("logout confirmation = %d", page.StatusCode)
	}
}

// TestIPFailureLimit: N failed attempts from one client IP (wrong
// passwords, wrong codes, bad links) refuse that IP with 429 and
// Retry-After, even with the right password; another IP is not affected.
func TestIPFailureLimit(t *testing.T) {
	tests := []struct {
		name string
		fail func(t *testing.T, e *env, b *browser, xff string) *response
	}{
		{"wrong passwords", func(t *testing.T, e *env, b *browser, xff string) *response {
			return b.postFrom(xff, login.LoginPath, url.Values{"csrf": {b.csrf(login.LoginPath)}, "username": {"alice"}, "password": {"wrong"}})
		}},
		{"bad reset links", func(t *testing.T, e *env, b *browser, xff string) *response {
			return b.getFrom(xff, login.ResetPath+"?token="+randomToken())
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnvWith(t, storagetest.NewSQLite, false, func(c *login.Config) {
				c.IPRateLimit = login.Limit{N: 10000, Per: time.Minute}
				c.IPFailureLimit = login.Limit{N: 3, Per: time.Hour}
				c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
			})
			b := e.browser()
			const attacker, other = "203.0.113.7", "198.51.100.9"
			for i := range 3 {
				if r := tc.fail(t, e, b, attacker); r.StatusCode != http.StatusUnauthorized && r.StatusCode != http.StatusBadRequest {
					t.Fatalf("failure %d = %d", i+1, r.StatusCode)
				}
			}
			right := url.Values{"csrf": {b.csrf(login.LoginPath)}, "username": {"alice"}, "password": {alicePassword}}
			r := b.postFrom(attacker, login.LoginPath, right)
			if r.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("right password after 3 failures = %d, want 429", r.StatusCode)
			}
			if secs, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || secs < 1 || secs > 3600 {
				t.Errorf("Retry-After = %q, want 1..3600 seconds", r.Header.Get("Retry-After"))
			}
			if c := r.cookie(e.sessionCookieName()); c != nil {
				t.Error("a refused sign-in set a session cookie")
			}
			if r := b.postFrom(other, login.LoginPath, right); r.StatusCode != http.StatusSeeOther {
				t.Errorf("another IP = %d, want 303", r.StatusCode)
			}
		})
	}
}

// postFrom posts a form as the client xff behind the (trusted) test proxy.
func (b *browser) postFrom(xff, path string, form url.Values) *response {
	b.t.Helper()
	return b.doFrom(xff, http.MethodPost, path, strings.NewReader(form.Encode()), "application/x-www-form-urlencoded")
}

func (b *browser) getFrom(xff, path string) *response {
	b.t.Helper()
	return b.doFrom(xff, http.MethodGet, path, nil, "")
}

// TestSecurityHeadersOnFlowPages: the code, registration, verification,
// reset and account pages, their answers to POSTs and the message pages
// all carry the CSP (no script, frame-ancestors 'none'), X-Frame-Options
// DENY, no-referrer, nosniff and no-store (SECURITY 59).
func TestSecurityHeadersOnFlowPages(t *testing.T) {
	e := newEnvWith(t, storagetest.NewSQLite, false, func(c *login.Config) { c.IPRateLimit = login.Limit{N: 10000, Per: time.Minute} })
	e.mfaRequest("mfa")
	half := e.browser()
	half.signIn("mfa", "alice", alicePassword)
	reg := e.browser()
	regPost := reg.post(login.RegisterPath, url.Values{"csrf": {reg.csrf(login.RegisterPath)}, "email": {"zoe@example.com"},
		"password": {"zoe likes long passwords"}, "password2": {"zoe likes long passwords"}})
	anon := e.browser()
	forgotPost := anon.post(login.ForgotPath, url.Values{"csrf": {anon.csrf(login.ForgotPath)}, "email": {aliceEmail}})
	link, _ := url.Parse(e.mail.link(t, aliceEmail))
	signed, _, csrf := e.signedInAs(t, "alice", alicePassword)
	tests := []struct {
		name       string
		r          func() *response
		wantStatus int
	}{
		{"code page", func() *response { return half.get(login.CodePath + "?req=mfa") }, http.StatusOK},
		{"malformed code", func() *response { return half.submitCode("mfa", "000000x") }, http.StatusBadRequest},
		{"wrong code", func() *response { return half.submitCode("mfa", "000000") }, http.StatusUnauthorized},
		{"code resend", func() *response {
			return half.post(login.CodePath+"/resend", url.Values{"csrf": {half.csrf(login.CodePath + "?req=mfa")}, "req": {"mfa"}, "channel": {"email"}})
		}, http.StatusSeeOther},
		{"register page", func() *response { return anon.get(login.RegisterPath) }, http.StatusOK},
		{"register answer", func() *response { return regPost }, http.StatusSeeOther},
		{"register error", func() *response {
			return anon.post(login.RegisterPath, url.Values{"csrf": {anon.csrf(login.RegisterPath)}, "email": {"bad"}, "password": {"x"}, "password2": {"y"}})
		}, http.StatusBadRequest},
		{"verify page", func() *response { return reg.get(login.VerifyPath) }, http.StatusOK},
		{"malformed verify code", func() *response {
			return reg.post(login.VerifyPath, url.Values{"csrf": {reg.csrf(login.VerifyPath)}, "code": {"000000x"}})
		}, http.StatusBadRequest},
		{"wrong verify code", func() *response {
			return reg.post(login.VerifyPath, url.Values{"csrf": {reg.csrf(login.VerifyPath)}, "code": {"000000"}})
		}, http.StatusUnauthorized},
		{"verify link", func() *response { return anon.get(login.VerifyPath + "?token=" + randomToken()) }, http.StatusBadRequest},
		{"forgot page", func() *response { return anon.get(login.ForgotPath) }, http.StatusOK},
		{"forgot answer", func() *response { return forgotPost }, http.StatusOK},
		{"reset page", func() *response { return anon.get(login.ResetPath + "?" + link.RawQuery) }, http.StatusOK},
		{"used or bad reset link", func() *response { return anon.get(login.ResetPath + "?token=" + randomToken()) }, http.StatusBadRequest},
		{"account page", func() *response { return signed.get(login.AccountPath) }, http.StatusOK},
		{"account error", func() *response {
			return signed.action("password", csrf, url.Values{"old_password": {"wrong"}, "password": {"a brand new walrus"}, "password2": {"a brand new walrus"}})
		}, http.StatusForbidden},
		{"account action", func() *response { return signed.action("profile", csrf, url.Values{"name": {"Alice"}}) }, http.StatusSeeOther},
		{"logout page", func() *response { return signed.get(login.LogoutPath) }, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r()
			if r.StatusCode != tc.wantStatus {
				t.Errorf("status %d, want %d", r.StatusCode, tc.wantStatus)
			}
			checkPageHeaders(t, tc.name, r)
			if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self';") || strings.Contains(csp, "unsafe-inline") {
				t.Errorf("CSP allows scripts other than our own file: %q", csp)
			}
			if strings.Contains(r.body, "<script>") || regexp.MustCompile(`<[^>]+\son[a-z]+=`).MatchString(r.body) {
				t.Errorf("page has inline script:\n%s", r.body)
			}
		})
	}
}

// TestCodePageAfterQuickReSignIn: with the default 30 s resend interval, a
// second password step within 30 s (back button, double submit) cannot get
// a code at once. The code page then says so and when to ask again, instead
// of pointing at the earlier attempt's code (bound to the replaced session,
// it cannot work); once the wait is over, a new code works.
// Past the per-account cap (5 codes in 15 minutes) a new sign-in gets no
// code: the code page says so and how long to wait, instead of waiting for
// a code that will not come.
func TestCodePageOverTheCap(t *testing.T) {
	e := otpEnv(t, storagetest.NewSQLite)
	b := e.browser()
	for i := range 5 {
		r, _ := b.passwordStep("")
		if loc := r.Header.Get("Location"); strings.Contains(loc, "state=wait") {
			t.Fatalf("sign-in %d = %q, want a code", i+1, loc)
		}
	}
	r, _ := b.passwordStep("")
	loc := r.Header.Get("Location")
	if r.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "state=wait") || !strings.Contains(loc, "retry=") {
		t.Fatalf("6th sign-in = %d %q, want the code page in state wait with retry", r.StatusCode, loc)
	}
	page := b.get(loc)
	if page.StatusCode != http.StatusOK || !strings.Contains(page.body, "too many were sent") ||
		!regexp.MustCompile(`You can ask for a new code in \d+ (seconds|minutes)`).MatchString(page.body) {
		t.Errorf("code page over the cap = %d:\n%s", page.StatusCode, page.body)
	}
}

func TestCodePageAfterQuickReSignIn(t *testing.T) {
	e := otpEnv(t, storagetest.NewSQLite)
	var skew atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	e.accounts = account.New(e.store, account.Config{Notifier: e.mail, Issuer: "https://id.example.test", Now: clock})
	h, err := login.New(t.Context(), login.Config{Issuer: "http://127.0.0.1:8080", OTP: login.OTPAlways, Now: clock},
		login.Deps{Store: e.store, Accounts: e.accounts})
	if err != nil {
		t.Fatal(err)
	}
	e.swapHandler(h)
	b := e.browser()
	b.passwordStep("")
	first := e.mail.code(t, aliceEmail)
	// A second sign-in at once (back button, double submit), well within
	// the 30 s resend interval: its first code is sent all the same.
	r, _ := b.passwordStep("")
	if loc := r.Header.Get("Location"); r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, login.CodePath) || strings.Contains(loc, "state=wait") {
		t.Fatalf("second password step = %d %q, want 303 to the code page", r.StatusCode, loc)
	}
	second := e.mail.code(t, aliceEmail)
	if second == first {
		t.Fatal("the second sign-in got no new code")
	}
	if r := b.submitCode("", first); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("the first attempt's code in the second attempt = %d, want 401", r.StatusCode)
	}
	// "Send a new code" right away is a resend: held back by the interval.
	tok := b.csrf(login.CodePath)
	if r := b.post(login.CodePath+"/resend", url.Values{"csrf": {tok}, "channel": {"email"}}); r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Errorf("resend within the interval = %d (Retry-After %q), want 429 with Retry-After", r.StatusCode, r.Header.Get("Retry-After"))
	}
	if r := b.submitCode("", second); r.StatusCode != http.StatusSeeOther {
		t.Errorf("the second attempt's code = %d, want 303", r.StatusCode)
	}
}
