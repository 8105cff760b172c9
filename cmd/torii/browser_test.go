package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/torii-idp/torii/login/account"
	"github.com/torii-idp/torii/login/notify/notifytest"
	"github.com/torii-idp/torii/provider"
	"github.com/torii-idp/torii/storage"
)

// The browser tests drive headless Chromium through Torii's pages with a
// real relying party (x/oauth2 + go-oidc) and real mail and SMS delivery
// (an SMTP listener and an SMS gateway in the test). Every page visited is
// saved as a screenshot; the folder is printed. They need Chromium
// (Debian's chromium package; .ci/run installs it): without it they skip,
// except in CI, where they fail.

// screenshotDir is where the screenshots go: $TORII_SCREENSHOTS or a
// folder under the system's temporary directory.
var screenshotDir = sync.OnceValue(func() string {
	dir := os.Getenv("TORII_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "torii-screenshots")
	}
	os.MkdirAll(dir, 0o755)
	return dir
})

func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("Chromium is not installed (apt-get install -y chromium); the browser tests cannot run")
	}
	t.Skip("Chromium is not installed (apt-get install -y chromium): skipping the browser tests")
	return ""
}

// browserEnv is Torii with mail and SMS, a relying party, and a browser.
type browserEnv struct {
	*env
	smtp  *notifytest.SMTPServer
	sms   *notifytest.SMSServer
	rp    *relyingParty
	ctx   context.Context
	shots int
	name  string
}

func newBrowserEnv(t *testing.T, extra ...envOption) *browserEnv {
	path := chromiumPath(t)
	smtpd := notifytest.NewSMTPServer(t)
	gw := notifytest.NewSMSServer(t)
	e := newEnv(t, backends[0].url(t), func(c *Config, so *serverOptions) {
		c.OTP = "always"
		c.SMTPURL = Secret(smtpd.URL())
		c.MailFrom = "torii@example.test"
		c.SMSURL = Secret(gw.URL())
		c.RememberDevice = 720 * time.Hour
		so.SMTPRootCAs = smtpd.RootCAs()
		for _, o := range extra {
			o(c, so)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	t.Cleanup(func() { cancel(); <-stopped }) // before the store closes
	go func() {
		defer close(stopped)
		e.srv.outbox.Run(ctx)
	}()
	// Chromium may still write to its profile as it exits: remove it
	// ourselves, leniently, rather than with t.TempDir's strict clean-up.
	profile, err := os.MkdirTemp("", "torii-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(profile) })

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(420, 900), // a phone-sized window
		chromedp.UserDataDir(profile),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelBrowser)
	bctx, cancelTimeout := context.WithTimeout(bctx, 90*time.Second)
	t.Cleanup(cancelTimeout)
	if err := chromedp.Run(bctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	be := &browserEnv{env: e, smtp: smtpd, sms: gw, ctx: bctx, name: strings.ReplaceAll(t.Name(), "/", "_")}
	be.rp = newRelyingParty(t, e)
	t.Logf("screenshots in %s", screenshotDir())
	return be
}

// run runs chromedp actions, failing the test with what the page shows.
func (b *browserEnv) run(actions ...chromedp.Action) {
	b.t.Helper()
	if err := chromedp.Run(b.ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v (on the page %q)", err, b.heading())
	}
}

// shot saves a screenshot of the current page.
func (b *browserEnv) shot(label string) {
	b.t.Helper()
	var png []byte
	// Right after a navigation Chromium may not have laid the page out yet
	// ("cannot take screenshot with 0 width"): try again shortly.
	var err error
	for range 20 {
		if err = chromedp.Run(b.ctx, chromedp.FullScreenshot(&png, 100)); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		b.t.Fatalf("screenshot of %q: %v", b.heading(), err)
	}
	b.shots++
	name := fmt.Sprintf("%s-%02d-%s.png", b.name, b.shots, label)
	if err := os.WriteFile(filepath.Join(screenshotDir(), name), png, 0o644); err != nil {
		b.t.Errorf("save screenshot: %v", err)
	}
}

// eval runs a JavaScript expression in the page (DevTools evaluation: the
// pages' CSP, which forbids their own scripts, does not apply) and stores
// its result in out. Working through the document, never through DevTools
// node IDs, keeps the steps free of races with navigation.
func (b *browserEnv) eval(expr string, out any) error {
	return chromedp.Run(b.ctx, chromedp.Evaluate(expr, out))
}

// heading returns the page's h1 ("" while there is none).
func (b *browserEnv) heading() string {
	var h string
	if err := b.eval(`(document.querySelector("h1") || {}).textContent || ""`, &h); err != nil {
		return ""
	}
	return strings.TrimSpace(h)
}

// expectPage waits for a loaded page whose h1 contains want.
func (b *browserEnv) expectPage(want string) {
	b.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var ready string
		b.eval(`document.readyState`, &ready)
		if h := b.heading(); ready == "complete" && strings.Contains(h, want) {
			return
		}
		if time.Now().After(deadline) {
			var body string
			b.eval(`document.body ? document.body.outerHTML : ""`, &body)
			b.t.Fatalf("expected the page %q, got %q:\n%s", want, b.heading(), body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fill types values into the named inputs.
func (b *browserEnv) fill(fields map[string]string) {
	b.t.Helper()
	for name, v := range fields {
		var ok bool
		expr := fmt.Sprintf(`(() => { const el = document.querySelector('[name=%q]'); if (!el) return false; el.value = %q; return true })()`, name, v)
		if err := b.eval(expr, &ok); err != nil || !ok {
			b.t.Fatalf("no input named %q on the page %q (%v)", name, b.heading(), err)
		}
	}
}

// click clicks the element sel selects (submitting its form for a button).
func (b *browserEnv) click(sel string) {
	b.t.Helper()
	var ok bool
	expr := fmt.Sprintf(`(() => { const el = document.querySelector(%q); if (!el) return false; el.click(); return true })()`, sel)
	if err := b.eval(expr, &ok); err != nil || !ok {
		b.t.Fatalf("nothing to click at %q on the page %q (%v)", sel, b.heading(), err)
	}
}

// relyingParty is a small web application that signs its users in with
// Torii: /start begins the authorization-code flow with PKCE, /callback
// redeems the code and verifies the ID token.
type relyingParty struct {
	ts       *httptest.Server
	clientID string
	mu       sync.Mutex
	flows    map[string]*codeFlow
}

func newRelyingParty(t *testing.T, e *env) *relyingParty {
	rp := &relyingParty{flows: map[string]*codeFlow{}}
	rp.ts = httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(rp.ts.Close)
	id, secret := e.client(provider.ClientSpec{ID: "rp-" + strings.ToLower(rand.Text()[:6]), Name: "Example Notes", RedirectURIs: []string{rp.ts.URL + "/callback"}})
	rp.clientID = id
	rp.ts.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conf := e.oauth2Config(id, secret)
		conf.RedirectURL = rp.ts.URL + "/callback"
		rp.handle(t, e, conf, w, r)
	})
	return rp
}

func (rp *relyingParty) handle(_ *testing.T, e *env, conf *oauth2.Config, w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/start":
		f := newCodeFlow(conf)
		rp.mu.Lock()
		rp.flows[f.state] = f
		rp.mu.Unlock()
		http.Redirect(w, r, f.authURL(), http.StatusSeeOther)
	case "/callback":
		q := r.URL.Query()
		rp.mu.Lock()
		f := rp.flows[q.Get("state")]
		rp.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if f == nil || q.Get("iss") != e.issuer {
			http.Error(w, "unknown state or issuer", http.StatusBadRequest)
			return
		}
		if errCode := q.Get("error"); errCode != "" {
			fmt.Fprintf(w, "<html><body><h1>Sign-in failed: %s</h1></body></html>", html.EscapeString(errCode))
			return
		}
		tok, err := conf.Exchange(e.ctx(), q.Get("code"), oauth2.VerifierOption(f.verifier))
		if err != nil {
			http.Error(w, "exchange: "+err.Error(), http.StatusBadGateway)
			return
		}
		raw, _ := tok.Extra("id_token").(string)
		idt, err := e.oidcProvider().Verifier(&oidc.Config{ClientID: conf.ClientID}).Verify(e.ctx(), raw)
		if err != nil || idt.Nonce != f.nonce {
			http.Error(w, "bad ID token", http.StatusBadGateway)
			return
		}
		var c struct {
			Email string   `json:"email"`
			AMR   []string `json:"amr"`
			ACR   string   `json:"acr"`
		}
		idt.Claims(&c)
		fmt.Fprintf(w, "<html><body><h1>Welcome %s</h1><p id=amr>%s</p><p id=acr>%s</p></body></html>",
			html.EscapeString(c.Email), strings.Join(c.AMR, " "), c.ACR)
	case "/logo.png":
		// The application's logo (its logo_uri, when a test registers it).
		w.Header().Set("Content-Type", "image/png")
		w.Write(rpLogo())
	default:
		http.NotFound(w, r)
	}
}

// startSignIn opens the relying party, which sends the browser to Torii.
func (b *browserEnv) startSignIn() {
	b.t.Helper()
	b.run(chromedp.Navigate(b.rp.ts.URL + "/start"))
	b.expectPage("Sign in")
}

// signInWithMailedCode does the password step and the mailed code.
func (b *browserEnv) signInWithMailedCode(email, password string) {
	b.t.Helper()
	b.fill(map[string]string{"username": email, "password": password})
	b.shot("login-filled")
	b.click(`button[type="submit"]`)
	b.expectPage("Enter your code")
	b.shot("code")
	mail := b.smtp.WaitFor(b.t, email, "sign-in code")
	b.fill(map[string]string{"code": notifytest.Code(b.t, mail.Text)})
	b.click(`form[action="/login/code"] button[type="submit"]`)
}

func (b *browserEnv) expectWelcome(email, amr string) {
	b.t.Helper()
	b.expectPage("Welcome " + email)
	var got string
	b.eval(`document.getElementById("amr").textContent`, &got)
	if got != amr {
		b.t.Errorf("ID token amr = %q, want %q", got, amr)
	}
	wantACR := provider.ACRPassword
	if strings.Contains(amr, "otp") {
		wantACR = provider.ACRMFA
	}
	var acr string
	b.eval(`document.getElementById("acr").textContent`, &acr)
	if acr != wantACR {
		b.t.Errorf("ID token acr = %q, want %q", acr, wantACR)
	}
	b.shot("relying-party")
}

func TestBrowserRegisterVerifyAndSignIn(t *testing.T) {
	b := newBrowserEnv(t)
	b.startSignIn()
	b.shot("login")
	b.click(`a[href^="/register"]`)
	b.expectPage("Create an account")
	b.fill(map[string]string{"email": "nora@example.com", "name": "Nora Ørsted", "password": "nora has a long passphrase", "password2": "nora has a long passphrase"})
	b.shot("register")
	b.click(`form[action="/register"] button[type="submit"]`)
	b.expectPage("Confirm your email address")
	b.shot("verify")
	mail := b.smtp.WaitFor(t, "nora@example.com", "Confirm")
	b.fill(map[string]string{"code": notifytest.Code(t, mail.Text)})
	b.click(`form[action="/verify"] button[type="submit"]`)
	b.expectPage("Sign in")
	b.shot("login-after-verify")
	b.signInWithMailedCode("nora@example.com", "nora has a long passphrase")
	b.expectPage("Allow Example Notes")
	b.shot("consent")
	b.click(`button[value="allow"]`)
	b.expectWelcome("nora@example.com", "pwd otp")
}

func TestBrowserSMSCode(t *testing.T) {
	b := newBrowserEnv(t)
	if _, err := b.srv.accounts.Create(t.Context(), accountUser("omar@example.com", "+15550104242")); err != nil {
		t.Fatal(err)
	}
	b.startSignIn()
	b.fill(map[string]string{"username": "omar@example.com", "password": testPassword})
	b.shot("login-filled")
	b.click(`button[type="submit"]`)
	b.expectPage("Enter your code")
	b.shot("code-email")
	b.click(`button[value="sms"]`)
	b.expectPage("Enter your code")
	b.shot("code-sms")
	sms := b.sms.WaitFor(t, "+15550104242")
	code := notifytest.Code(t, sms.Body)
	// A wrong code, and one too short: the page stays on the SMS path
	// (what it says, and what "Send a new code" sends).
	for _, bad := range []string{wrongCode(code), code[:5]} {
		b.fill(map[string]string{"code": bad})
		b.click(`form[action="/login/code"] button[type="submit"]`)
		b.expectPage("Enter your code")
		var state struct {
			Text, Resend string
		}
		if err := b.eval(`({Text: document.body.innerText, Resend: document.querySelector('form[action="/login/code/resend"] button').value})`, &state); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(state.Text, "by SMS") || state.Resend != "sms" {
			t.Errorf("after the code %q the page left the SMS path: resend=%q\n%s", bad, state.Resend, state.Text)
		}
	}
	b.shot("code-sms-error")
	// Pasted as "123 456": the field takes it whole, and it works.
	b.fill(map[string]string{"code": code[:3] + " " + code[3:]})
	b.click(`form[action="/login/code"] button[type="submit"]`)
	b.expectPage("Allow Example Notes")
	b.shot("consent")
	b.click(`button[value="allow"]`)
	b.expectWelcome("omar@example.com", "pwd otp")
}

func TestBrowserForgotPassword(t *testing.T) {
	b := newBrowserEnv(t)
	e := b.env
	e.user("pia@example.com")
	b.startSignIn()
	b.click(`a[href="/forgot"]`)
	b.expectPage("Forgot your password")
	b.shot("forgot")
	b.fill(map[string]string{"email": "pia@example.com"})
	b.click(`form[action="/forgot"] button[type="submit"]`)
	b.expectPage("Check your mail")
	b.shot("forgot-sent")
	mail := b.smtp.WaitFor(t, "pia@example.com", "new password")
	b.run(chromedp.Navigate(notifytest.Link(t, mail.Text)))
	b.expectPage("Choose a new password")
	b.shot("reset")
	b.fill(map[string]string{"password": "pia picked a new passphrase", "password2": "pia picked a new passphrase"})
	b.click(`form[action="/reset"] button[type="submit"]`)
	b.expectPage("Sign in")
	b.shot("login-after-reset")
	b.smtp.WaitFor(t, "pia@example.com", "password was changed")
	b.startSignIn()
	b.signInWithMailedCode("pia@example.com", "pia picked a new passphrase")
	b.expectPage("Allow Example Notes")
	b.click(`button[value="allow"]`)
	b.expectWelcome("pia@example.com", "pwd otp")
}

func TestBrowserConsentDeny(t *testing.T) {
	b := newBrowserEnv(t)
	b.env.user("quinn@example.com")
	b.startSignIn()
	b.signInWithMailedCode("quinn@example.com", testPassword)
	b.expectPage("Allow Example Notes")
	b.shot("consent-before-deny")
	b.click(`button[value="deny"]`)
	b.expectPage("Sign-in failed: access_denied")
	b.shot("denied")
}

func TestBrowserAccountPage(t *testing.T) {
	b := newBrowserEnv(t)
	rosa := b.env.user("rosa@example.com")
	// An application she allowed, listed in the consent page's words.
	if err := b.srv.store.SaveConsent(t.Context(), &storage.Consent{Subject: rosa, ClientID: b.rp.clientID,
		Scopes: []string{"openid", "profile", "email", "offline_access"}}); err != nil {
		t.Fatal(err)
	}
	b.run(chromedp.Navigate(b.issuer + "/account"))
	b.expectPage("Sign in")
	// The code step, with "Don't ask for a code on this device" ticked.
	b.fill(map[string]string{"username": "rosa@example.com", "password": testPassword})
	b.click(`button[type="submit"]`)
	b.expectPage("Enter your code")
	b.click(`#remember`)
	b.shot("code-remember")
	mail := b.smtp.WaitFor(t, "rosa@example.com", "sign-in code")
	b.fill(map[string]string{"code": notifytest.Code(t, mail.Text)})
	b.click(`form[action="/login/code"] button[type="submit"]`)
	b.expectPage("Your account")
	b.shot("account")
	b.checkAccountSections()
	b.fill(map[string]string{"name": "Rosa Luz"})
	b.click(`form[action="/account/profile"] button[type="submit"]`)
	b.expectPage("Your account")
	var notice string
	b.eval(`(document.querySelector(".notice") || {}).textContent || ""`, &notice)
	if !strings.Contains(notice, "saved") {
		t.Errorf("notice after saving = %q", notice)
	}
	b.shot("account-saved")

	// Reflow (WCAG 1.4.10): 1280 px at 400 % zoom is 320 CSS px; and text
	// spacing (1.4.12) raised as the criterion's bookmarklet does. Nothing,
	// the picture's file input included, may stick out sideways.
	b.run(chromedp.EmulateViewport(320, 800))
	var overflow struct {
		Page, Input float64
		Width       float64
	}
	err := b.eval(`(() => {
		for (const el of document.querySelectorAll("*")) {
			el.style.setProperty("line-height", "1.5", "important");
			el.style.setProperty("letter-spacing", "0.12em", "important");
			el.style.setProperty("word-spacing", "0.16em", "important");
		}
		for (const p of document.querySelectorAll("p")) p.style.setProperty("margin-bottom", "2em", "important");
		const input = document.querySelector('input[type="file"]');
		return {Page: document.documentElement.scrollWidth, Input: input.getBoundingClientRect().right, Width: window.innerWidth};
	})()`, &overflow)
	if err != nil {
		t.Fatal(err)
	}
	b.shot("account-320px-text-spacing")
	if overflow.Page > overflow.Width || overflow.Input > overflow.Width {
		t.Errorf("at 320 px with text spacing the page is %v px wide and the file input ends at %v px: both must fit %v px",
			overflow.Page, overflow.Input, overflow.Width)
	}
}

// checkAccountSections checks the account page's sections, devices and
// error summary, with screenshots at 375 and 1280 px, and leaves the page
// at the browser's own size.
func (b *browserEnv) checkAccountSections() {
	t := b.t
	t.Helper()
	var page struct {
		Headings []string
		Text     string
		SignOut  bool
	}
	err := b.eval(`({
		Headings: [...document.querySelectorAll("h2")].map(h => h.textContent.trim()),
		Text: document.body.innerText,
		SignOut: document.querySelector('.account-bar form[action="/logout"]') !== null &&
			document.querySelector('.danger-zone form[action="/logout"]') === null,
	})`, &page)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Profile", "Email and phone", "Password and sign-in", "Devices", "Applications", "Danger zone"}
	if !slices.Equal(page.Headings, want) {
		t.Errorf("sections = %q, want %q", page.Headings, want)
	}
	for _, s := range []string{"Chrome on Linux (this device)", "Signed in just now", "Forget this device", "asked for a code again in 30 days",
		"Example Notes", "See your name, username and picture", "Stay signed in when you are away"} {
		if !strings.Contains(page.Text, s) {
			t.Errorf("the account page does not say %q:\n%s", s, page.Text)
		}
	}
	if !page.SignOut {
		t.Error("Sign out is not at the top, apart from the danger zone")
	}
	for _, w := range []int64{375, 1280} {
		b.run(chromedp.EmulateViewport(w, 900))
		b.shot(fmt.Sprintf("account-%dpx", w))
	}

	// A failed action: the summary at the top links to the field, which
	// has the focus.
	b.fill(map[string]string{"old_password": "not my password", "password": "rosa has a new passphrase", "password2": "rosa has a new passphrase"})
	b.click(`form[action="/account/password"] button[type="submit"]`)
	b.expectPage("Your account")
	var state struct {
		Link, Focus, Role string
	}
	if err := b.eval(`({
		Link: (document.querySelector(".error-summary a") || {}).hash || "",
		Role: (document.querySelector(".error-summary") || {getAttribute: () => ""}).getAttribute("role"),
		Focus: document.activeElement ? document.activeElement.id : "",
	})`, &state); err != nil {
		t.Fatal(err)
	}
	if state.Link != "#old-password" || state.Focus != "old-password" || state.Role != "alert" {
		t.Errorf("after a wrong current password: summary link %q, role %q, focus on %q; want #old-password, alert, old-password", state.Link, state.Role, state.Focus)
	}
	for _, w := range []int64{375, 1280} {
		b.run(chromedp.EmulateViewport(w, 900))
		b.shot(fmt.Sprintf("account-error-%dpx", w))
	}

	// Forget this device: announced, and the list is empty.
	b.click(`form[action="/account/device-forget"] button[type="submit"]`)
	b.expectPage("Your account")
	var notice string
	b.eval(`(document.querySelector('.notice[role="status"]') || {}).textContent || ""`, &notice)
	if !strings.Contains(notice, "forgotten") {
		t.Errorf("notice after Forget this device = %q", notice)
	}
	for _, w := range []int64{375, 1280} {
		b.run(chromedp.EmulateViewport(w, 900))
		b.shot(fmt.Sprintf("account-forgotten-%dpx", w))
	}
	b.run(chromedp.EmulateViewport(420, 900))
}

// accountUser is a verified user with a verified phone.
func accountUser(email, phone string) account.NewUser {
	return account.NewUser{Email: email, Password: testPassword, EmailVerified: true, Phone: phone, PhoneVerified: true}
}
