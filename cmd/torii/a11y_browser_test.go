package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/torii-idp/torii/login/notify/notifytest"
	"github.com/torii-idp/torii/provider"
)

// rpLogo is the test relying party's logo: a 40×40 PNG.
var rpLogo = sync.OnceValue(func() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 40, 40))
	for y := range 40 {
		for x := range 40 {
			img.Set(x, y, color.RGBA{R: 0x0f, G: 0x76, B: 0x6e, A: 0xff})
		}
	}
	var buf bytes.Buffer
	png.Encode(&buf, img)
	return buf.Bytes()
})

// axeSource is the vendored axe-core (testdata/axe, MPL-2.0).
var axeSource = sync.OnceValues(func() (string, error) {
	b, err := os.ReadFile(filepath.Join("testdata", "axe", "axe.min.js"))
	return string(b), err
})

// a11yVariants are the widths and colour schemes every page state is
// checked in: a phone and a desktop, light and dark.
var a11yVariants = []struct {
	width  int64
	scheme string
}{
	{375, "light"}, {375, "dark"}, {1280, "light"}, {1280, "dark"},
}

// axeViolation is one failed axe rule, with the elements that fail it.
type axeViolation struct {
	ID    string `json:"id"`
	Help  string `json:"help"`
	Nodes []struct {
		Target  []any  `json:"target"`
		Summary string `json:"failureSummary"`
	} `json:"nodes"`
}

// checkState checks the page on screen in every variant: a screenshot,
// and axe-core's WCAG 2.1 A and AA rules, which must find nothing.
func (b *browserEnv) checkState(label string) {
	b.t.Helper()
	src, err := axeSource()
	if err != nil {
		b.t.Fatalf("read axe-core: %v", err)
	}
	var loaded bool
	// DevTools evaluation is not subject to the page's CSP.
	if err := b.eval(`typeof axe !== "undefined"`, &loaded); err != nil || !loaded {
		var ignored any
		if err := chromedp.Run(b.ctx, chromedp.Evaluate(src+";true", &ignored)); err != nil {
			b.t.Fatalf("%s: load axe-core: %v", label, err)
		}
	}
	for _, v := range a11yVariants {
		b.run(chromedp.EmulateViewport(v.width, 900),
			emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: v.scheme}}))
		var scheme string
		b.eval(`matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light"`, &scheme)
		if scheme != v.scheme {
			b.t.Fatalf("%s: the page sees the %s scheme, want %s", label, scheme, v.scheme)
		}
		b.shot(fmt.Sprintf("%s-%d-%s", label, v.width, v.scheme))
		for _, viol := range b.axe(label) {
			for _, n := range viol.Nodes {
				b.t.Errorf("%s at %d px, %s: axe %s (%s): %v: %s", label, v.width, v.scheme, viol.ID, viol.Help, n.Target, n.Summary)
			}
		}
	}
	b.run(chromedp.EmulateViewport(420, 900), emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "light"}}))
}

// axe runs axe-core's WCAG 2.1 A and AA rules on the page (axe-core must be
// loaded) and returns the violations.
func (b *browserEnv) axe(label string) []axeViolation {
	b.t.Helper()
	var violations []axeViolation
	err := chromedp.Run(b.ctx, chromedp.Evaluate(
		`axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}, resultTypes: ["violations"]}).then(r => r.violations)`,
		&violations, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	if err != nil {
		b.t.Fatalf("%s: run axe-core: %v", label, err)
	}
	return violations
}

// focused returns the id (or, without one, the text) of the focused
// element.
func (b *browserEnv) focused() string {
	var f string
	b.eval(`(() => { const el = document.activeElement; if (!el || el === document.body) return ""; return el.id || el.textContent.trim() })()`, &f)
	return f
}

// expectFocus fails unless the element with id want has the focus.
// Chromium applies autofocus at its next rendering opportunity after the
// load: wait for it a little.
func (b *browserEnv) expectFocus(label, want string) {
	b.t.Helper()
	got := b.focused()
	for i := 0; got != want && i < 40; i++ {
		time.Sleep(50 * time.Millisecond)
		got = b.focused()
	}
	if got != want {
		b.t.Errorf("%s: the focus is on %q, want %q", label, got, want)
	}
}

// tabOrder presses Tab len(want) times from the focused element and fails
// unless the focus visits want in order.
func (b *browserEnv) tabOrder(label string, want ...string) {
	b.t.Helper()
	var got []string
	for range want {
		b.run(chromedp.KeyEvent(kb.Tab))
		got = append(got, b.focused())
	}
	if strings.Join(got, " | ") != strings.Join(want, " | ") {
		b.t.Errorf("%s: Tab visits %q, want %q", label, got, want)
	}
}

// pageTitle returns document.title.
func (b *browserEnv) pageTitle() string {
	var title string
	b.eval(`document.title`, &title)
	return title
}

// newA11yEnv is a browser environment whose relying party has a logo and
// a home page, with the user ada@example.com.
func newA11yEnv(t *testing.T) *browserEnv {
	b := newBrowserEnv(t)
	if _, err := b.srv.provider.Clients().Update(context.Background(), b.rp.clientID, func(s *provider.ClientSpec) {
		s.LogoURI, s.ClientURI = b.rp.ts.URL+"/logo.png", b.rp.ts.URL+"/"
	}); err != nil {
		t.Fatal(err)
	}
	b.env.user("ada@example.com")
	return b
}

// The TestBrowserAccessibility tests drive every page state of the sign-in
// pages, errors included, and check each at 375 and 1280 px in the light
// and the dark theme with axe-core (WCAG 2.1 A and AA: no violation), the
// focused field and the keyboard order (issue 13). They are three tests,
// each with its own browser, so that each stays well within the browser's
// time limit.

// TestBrowserAccessibilitySignIn: sign-in, code, consent, signed-in,
// sign-out, expired form, authorization error, not found.
func TestBrowserAccessibilitySignIn(t *testing.T) {
	b := newA11yEnv(t)

	// Sign-in: the application's context, the first field focused, the
	// keyboard order.
	b.startSignIn()
	b.checkState("login")
	b.expectFocus("login", "username")
	b.tabOrder("login", "password", "Show password", "Sign in", "Forgot your password?", "Create an account")

	// Every problem at once, the first field to fix focused.
	b.click(`form[action="/login"] button[type="submit"]`)
	b.expectPage("Sign in")
	if !strings.HasPrefix(b.pageTitle(), "Error: ") {
		t.Errorf("title after an empty sign-in = %q, want Error: first", b.pageTitle())
	}
	b.expectFocus("login-empty", "username")
	b.checkState("login-errors")
	b.fill(map[string]string{"username": "ada@example.com", "password": "not the password"})
	b.click(`form[action="/login"] button[type="submit"]`)
	b.expectPage("Sign in")
	b.expectFocus("login-wrong", "password")
	var kept string
	b.eval(`document.getElementById("username").value`, &kept)
	if kept != "ada@example.com" {
		t.Errorf("the username after a wrong password = %q, want it kept", kept)
	}
	b.checkState("login-wrong-password")
	// Show/hide password.
	b.fill(map[string]string{"password": testPassword})
	b.click(`button.reveal`)
	var shown string
	b.eval(`document.getElementById("password").type + " " + document.querySelector("button.reveal").getAttribute("aria-pressed")`, &shown)
	if shown != "text true" {
		t.Errorf("after Show password: %q, want the password shown and the button pressed", shown)
	}
	b.click(`button.reveal`)

	// The code step.
	b.click(`form[action="/login"] button[type="submit"]`)
	b.expectPage("Enter your code")
	b.expectFocus("code", "code")
	b.checkState("code")
	mail := b.smtp.WaitFor(t, "ada@example.com", "sign-in code")
	code := notifytest.Code(t, mail.Text)
	b.fill(map[string]string{"code": "12345"})
	b.click(`form[action="/login/code"] button[type="submit"]`)
	b.expectPage("Enter your code")
	b.expectFocus("code-error", "code")
	b.checkState("code-error")
	// A new code at once: the wait disables the resend buttons, not
	// Continue, and counts down.
	b.click(`form[action="/login/code/resend"] button[type="submit"]`)
	b.expectPage("Enter your code")
	var wait struct {
		Resend, Continue bool
		Text             string
	}
	b.eval(`({Resend: document.querySelector('form[action="/login/code/resend"] button').disabled,
		Continue: document.querySelector('form[action="/login/code"] button').disabled,
		Text: document.getElementById("wait").textContent})`, &wait)
	if !wait.Resend || wait.Continue || !strings.Contains(wait.Text, "You can ask for a new code in") {
		t.Errorf("resend wait: %+v, want the resend button disabled, Continue enabled, a countdown", wait)
	}
	b.checkState("code-wait")
	b.fill(map[string]string{"code": code})
	b.click(`form[action="/login/code"] button[type="submit"]`)
	b.expectPage("Allow Example Notes")
	b.checkState("consent")
	b.click(`button[value="allow"]`)
	b.expectPage("Welcome ada@example.com")

	// Signed in: the signed-in page, sign-out with Cancel, an expired form.
	b.run(chromedp.Navigate(b.issuer + "/login/done"))
	b.expectPage("You are signed in")
	b.checkState("done")
	b.run(chromedp.Navigate(b.issuer + "/logout"))
	b.expectPage("Sign out?")
	b.checkState("logout")
	b.fill(map[string]string{"csrf": "expired"})
	b.click(`form[action="/logout"] button[type="submit"]`)
	b.expectPage("Form expired")
	b.checkState("form-expired")

	// The authorization error page.
	b.run(chromedp.Navigate(b.issuer + "/oauth2/auth?response_type=code&client_id=" + b.rp.clientID + "&redirect_uri=https%3A%2F%2Fevil.example%2Fcb"))
	b.expectPage("Sign-in request rejected")
	b.checkState("authorize-error")
	b.run(chromedp.Navigate(b.issuer + "/no/such/page"))
	b.expectPage("Page not found")
	b.checkState("not-found")
	// The check can fail: an unlabelled field and a pale text are found.
	b.eval(`(() => { const m = document.querySelector("main"); m.insertAdjacentHTML("beforeend", '<input type="text"><p id="pale">pale</p>'); document.getElementById("pale").style.color = "#dddddd"; return true })()`, new(bool))
	found := map[string]bool{}
	for _, v := range b.axe("canary") {
		found[v.ID] = true
	}
	if !found["label"] || !found["color-contrast"] {
		t.Errorf("axe-core missed a planted unlabelled input or low contrast: found %v", found)
	}

}

// TestBrowserAccessibilityRegister: registration and verification.
func TestBrowserAccessibilityRegister(t *testing.T) {
	b := newA11yEnv(t)
	b.run(chromedp.Navigate(b.issuer + "/register"))
	b.expectPage("Create an account")
	b.expectFocus("register", "email")
	b.tabOrder("register", "name", "username", "password", "Show password", "password2", "Show password", "Create account", "Sign in")
	b.checkState("register")
	b.fill(map[string]string{"email": "not an email", "name": "Nora", "password": "short", "password2": "other"})
	b.click(`form[action="/register"] button[type="submit"]`)
	b.expectPage("Create an account")
	b.expectFocus("register-errors", "email")
	var items int
	b.eval(`document.querySelectorAll(".error-summary li a").length`, &items)
	if items != 3 {
		t.Errorf("the registration summary lists %d problems, want 3 (email, password, repeat)", items)
	}
	b.checkState("register-errors")
	b.fill(map[string]string{"email": "nora@example.com", "password": "nora has a long passphrase", "password2": "nora has a long passphrase"})
	b.click(`form[action="/register"] button[type="submit"]`)
	b.expectPage("Confirm your email address")
	b.checkState("verify")
	b.fill(map[string]string{"code": "1"})
	b.click(`form[action="/verify"] button[type="submit"]`)
	b.expectPage("Confirm your email address")
	b.expectFocus("verify-error", "code")
	b.checkState("verify-error")

}

// TestBrowserAccessibilityReset: forgotten password and reset, and the
// sign-in page without script.
func TestBrowserAccessibilityReset(t *testing.T) {
	b := newA11yEnv(t)
	b.run(chromedp.Navigate(b.issuer + "/forgot"))
	b.expectPage("Forgot your password")
	b.checkState("forgot")
	b.fill(map[string]string{"email": "not an email"})
	b.click(`form[action="/forgot"] button[type="submit"]`)
	b.expectPage("Forgot your password")
	b.checkState("forgot-error")
	b.fill(map[string]string{"email": "ada@example.com"})
	b.click(`form[action="/forgot"] button[type="submit"]`)
	b.expectPage("Check your mail")
	b.checkState("forgot-sent")
	mail := b.smtp.WaitFor(t, "ada@example.com", "new password")
	b.run(chromedp.Navigate(notifytest.Link(t, mail.Text)))
	b.expectPage("Choose a new password")
	b.expectFocus("reset", "password")
	b.checkState("reset")
	b.fill(map[string]string{"password": "ada picked a new passphrase", "password2": "ada picked another"})
	b.click(`form[action="/reset"] button[type="submit"]`)
	b.expectPage("Choose a new password")
	b.expectFocus("reset-errors", "password2")
	b.checkState("reset-errors")

	// Without script the pages work as before: no show/hide button, the
	// password field plain, and the form still signs in.
	b.run(emulation.SetScriptExecutionDisabled(true))
	b.run(chromedp.Navigate(b.issuer + "/login"))
	b.expectPage("Sign in")
	var reveal int
	b.eval(`document.querySelectorAll("button.reveal").length`, &reveal)
	if reveal != 0 {
		t.Errorf("without script the sign-in page has %d show/hide buttons, want 0", reveal)
	}
	// (axe-core itself cannot run without script: its checks use timers.)
	b.shot("login-no-script")
	b.fill(map[string]string{"username": "ada@example.com", "password": "not the password"})
	b.click(`form[action="/login"] button[type="submit"]`)
	b.expectPage("Sign in")
	if !strings.HasPrefix(b.pageTitle(), "Error: ") {
		t.Errorf("without script, the title after a wrong password = %q", b.pageTitle())
	}
	b.run(emulation.SetScriptExecutionDisabled(false))
}

// TestBrowserAccessibilityLanguages: page states in German (chosen by the
// picker's link) and Japanese (chosen with the picker's form, remembered in
// its cookie), each with the right <html lang> and no axe finding.
func TestBrowserAccessibilityLanguages(t *testing.T) {
	b := newA11yEnv(t)
	lang := func(label, want string) {
		t.Helper()
		var got string
		b.eval(`document.documentElement.lang`, &got)
		if got != want {
			t.Errorf("%s: <html lang=%q>, want %q", label, got, want)
		}
	}

	b.run(chromedp.Navigate(b.issuer + "/login?lang=de"))
	b.expectPage("Anmelden")
	lang("de-login", "de")
	b.expectFocus("de-login", "username")
	b.checkState("de-login")
	b.click(`form[action="/login"] button[type="submit"]`)
	b.expectPage("Anmelden")
	if !strings.HasPrefix(b.pageTitle(), "Fehler: ") {
		t.Errorf("German title after an empty sign-in = %q, want Fehler: first", b.pageTitle())
	}
	b.checkState("de-login-errors")
	b.fill(map[string]string{"username": "ada@example.com", "password": testPassword})
	b.click(`form[action="/login"] button[type="submit"]`)
	b.expectPage("Code eingeben")
	lang("de-code", "de")
	b.fill(map[string]string{"code": "12345"})
	b.click(`form[action="/login/code"] button[type="submit"]`)
	b.expectPage("Code eingeben")
	b.checkState("de-code-error")
	mail := b.smtp.WaitFor(t, "ada@example.com", "Ihr Anmeldecode")
	b.fill(map[string]string{"code": notifytest.Code(t, mail.Text)})
	b.click(`form[action="/login/code"] button[type="submit"]`)
	b.expectPage("Ihr Konto")

	// The picker's form: Japanese, then remembered for the next pages.
	b.eval(`(() => { document.getElementById("lang-picker").value = "ja"; return true })()`, new(bool))
	b.click(`form.lang-picker button[type="submit"]`)
	b.expectPage("アカウント")
	lang("ja-account", "ja")
	b.checkState("ja-account")
	b.run(chromedp.Navigate(b.issuer + "/login/done"))
	b.expectPage("ログインしました")
	lang("ja-done", "ja")
	b.checkState("ja-done")
	b.run(chromedp.Navigate(b.issuer + "/no/such/page"))
	b.expectPage("ページが見つかりません")
	lang("ja-not-found", "ja")
	b.checkState("ja-not-found")
}
