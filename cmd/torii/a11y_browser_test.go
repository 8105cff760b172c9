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
	"slices"
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
	"github.com/torii-idp/torii/templates"
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
// axe-core's WCAG 2.1 A and AA rules, which must find nothing, and no
// element sticking out sideways (also at 320 px, WCAG 1.4.10).
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
		// Reflow (WCAG 1.4.10): nothing sticks out sideways, long words
		// (German's) included.
		wide := b.overflowing()
		for _, w := range wide {
			b.t.Errorf("%s at %d px, %s: %s sticks out of its box", label, v.width, v.scheme, w)
		}
		for _, viol := range b.axe(label) {
			for _, n := range viol.Nodes {
				b.t.Errorf("%s at %d px, %s: axe %s (%s): %v: %s", label, v.width, v.scheme, viol.ID, viol.Help, n.Target, n.Summary)
			}
		}
	}
	// 1280 px at 400 % zoom is 320 CSS px: the page still reflows.
	b.run(chromedp.EmulateViewport(320, 900))
	for _, w := range b.overflowing() {
		b.t.Errorf("%s at 320 px: %s sticks out of its box", label, w)
	}
	b.run(chromedp.EmulateViewport(420, 900), emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "light"}}))
}

// overflowing lists the elements that stick out of the window or, with
// visible overflow, out of their own box.
func (b *browserEnv) overflowing() []string {
	b.t.Helper()
	var wide []string
	if err := b.eval(`[...document.body.querySelectorAll("*")].filter(el => el.getBoundingClientRect().right > innerWidth + 0.5 ||
		el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0 && getComputedStyle(el).overflowX === "visible").map(el =>
		el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + ": " + el.textContent.trim().slice(0, 40))`, &wide); err != nil {
		b.t.Fatalf("overflow check: %v", err)
	}
	return wide
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

// a11yLanguages are the languages every sign-in page state is checked in.
var a11yLanguages = []string{"en", "de"}

// useLanguage picks lang for the browser's next pages: the picker's link
// (?lang=) on the sign-in page, remembered in its cookie.
func (b *browserEnv) useLanguage(lang string) {
	b.t.Helper()
	b.run(chromedp.Navigate(b.issuer + "/login?lang=" + lang))
	b.expectPage(templates.T(lang, "login.title"))
	b.expectLang("pick-"+lang, lang)
}

// expectLang fails unless the page says <html lang=want>.
func (b *browserEnv) expectLang(label, want string) {
	b.t.Helper()
	var got string
	b.eval(`document.documentElement.lang`, &got)
	if got != want {
		b.t.Errorf("%s: <html lang=%q>, want %q", label, got, want)
	}
}

// expectErrorTitle fails unless the page title starts with lang's
// "Error: ".
func (b *browserEnv) expectErrorTitle(label, lang string) {
	b.t.Helper()
	if want := templates.T(lang, "layout.error_prefix") + " "; !strings.HasPrefix(b.pageTitle(), want) {
		b.t.Errorf("%s: title %q, want %q first", label, b.pageTitle(), want)
	}
}

// submit clicks the button sel selects and waits until the browser shows
// the page its form led to: a page with the same heading as the one it
// left (the account page after a failed action) is told apart by a mark
// left on the old document.
func (b *browserEnv) submit(sel string) {
	b.t.Helper()
	b.eval(`(() => { window.__toriiLeft = true; return true })()`, new(bool))
	b.click(sel)
	deadline := time.Now().Add(15 * time.Second)
	for {
		var arrived bool
		b.eval(`typeof window.__toriiLeft === "undefined" && document.readyState === "complete"`, &arrived)
		if arrived {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s: no new page after the click", sel)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// a11yPage waits for the page whose heading is lang's key (with args),
// checks <html lang> and checks the state in every variant, labelled with
// the language.
func (b *browserEnv) a11yPage(lang, label, key string, args ...any) {
	b.t.Helper()
	b.expectPage(templates.T(lang, key, args...))
	b.expectLang(lang+"-"+label, lang)
	b.checkState(lang + "-" + label)
}

// The TestBrowserAccessibility tests drive every page state of the sign-in
// pages, errors included, in English and German, and check each at 375 and
// 1280 px in the light and the dark theme with axe-core (WCAG 2.1 A and AA:
// no violation), its <html lang>, the focused field and the keyboard order
// (issue 13). Each test and language has its own browser, so that each
// stays well within the browser's time limit.

func TestBrowserAccessibilitySignInEN(t *testing.T) { a11ySignIn(t, "en") }
func TestBrowserAccessibilitySignInDE(t *testing.T) { a11ySignIn(t, "de") }

// a11ySignIn: sign-in, code, consent, signed-in, sign-out, expired form,
// authorization error, not found, in lang.
func a11ySignIn(t *testing.T, lang string) {
	b := newA11yEnv(t)
	tr := func(key string, args ...any) string { return templates.T(lang, key, args...) }
	b.useLanguage(lang)

	// Sign-in: the application's context, the first field focused, the
	// keyboard order.
	b.run(chromedp.Navigate(b.rp.ts.URL + "/start"))
	b.a11yPage(lang, "login", "login.title")
	b.expectFocus("login", "username")
	b.tabOrder("login", "password", tr("js.show"), tr("login.submit"), tr("login.forgot"), tr("login.register"))

	// Every problem at once, the first field to fix focused.
	b.click(`form[action="/login"] button[type="submit"]`)
	b.expectPage(tr("login.title"))
	b.expectErrorTitle("login-errors", lang)
	b.expectFocus("login-empty", "username")
	b.a11yPage(lang, "login-errors", "login.title")
	b.fill(map[string]string{"username": "ada@example.com", "password": "not the password"})
	b.click(`form[action="/login"] button[type="submit"]`)
	b.expectPage(tr("login.title"))
	b.expectErrorTitle("login-wrong-password", lang)
	b.expectFocus("login-wrong", "password")
	var kept string
	b.eval(`document.getElementById("username").value`, &kept)
	if kept != "ada@example.com" {
		t.Errorf("the username after a wrong password = %q, want it kept", kept)
	}
	b.a11yPage(lang, "login-wrong-password", "login.title")
	// Show/hide password.
	b.fill(map[string]string{"password": testPassword})
	b.click(`button.reveal`)
	var shown string
	b.eval(`document.getElementById("password").type + " " + document.querySelector("button.reveal").getAttribute("aria-pressed") + " " + document.querySelector("button.reveal").textContent.trim()`, &shown)
	if want := "text true " + tr("js.hide"); shown != want {
		t.Errorf("after Show password: %q, want %q (the password shown, the button pressed)", shown, want)
	}
	b.click(`button.reveal`)

	// The code step.
	b.click(`form[action="/login"] button[type="submit"]`)
	b.expectPage(tr("code.title"))
	b.expectFocus("code", "code")
	b.a11yPage(lang, "code", "code.title")
	mail := b.smtp.WaitFor(t, "ada@example.com", tr("mail.login_code.subject"))
	code := notifytest.Code(t, mail.Text)
	b.fill(map[string]string{"code": "12345"})
	b.click(`form[action="/login/code"] button[type="submit"]`)
	b.expectPage(tr("code.title"))
	b.expectErrorTitle("code-error", lang)
	b.expectFocus("code-error", "code")
	b.a11yPage(lang, "code-error", "code.title")
	// A new code at once: the wait disables the resend buttons, not
	// Continue, and counts down.
	b.click(`form[action="/login/code/resend"] button[type="submit"]`)
	b.expectPage(tr("code.title"))
	var wait struct {
		Resend, Continue bool
		Text             string
	}
	b.eval(`({Resend: document.querySelector('form[action="/login/code/resend"] button').disabled,
		Continue: document.querySelector('form[action="/login/code"] button').disabled,
		Text: document.getElementById("wait").textContent})`, &wait)
	waitText, _, _ := strings.Cut(tr("js.wait_left", "time", "\x00"), "\x00")
	if !wait.Resend || wait.Continue || !strings.Contains(wait.Text, waitText) {
		t.Errorf("resend wait: %+v, want the resend button disabled, Continue enabled, a countdown (%q)", wait, waitText)
	}
	b.a11yPage(lang, "code-wait", "code.title")
	b.fill(map[string]string{"code": code})
	b.click(`form[action="/login/code"] button[type="submit"]`)
	b.a11yPage(lang, "consent", "consent.title", "app", "Example Notes")
	b.click(`button[value="allow"]`)
	b.expectPage("Welcome ada@example.com")

	// Signed in: the signed-in page, sign-out with Cancel, an expired form.
	b.run(chromedp.Navigate(b.issuer + "/login/done"))
	b.a11yPage(lang, "done", "done.title")
	b.run(chromedp.Navigate(b.issuer + "/logout"))
	b.a11yPage(lang, "logout", "logout.title")
	b.fill(map[string]string{"csrf": "expired"})
	b.click(`form[action="/logout"] button[type="submit"]`)
	b.a11yPage(lang, "form-expired", "msg.err.csrf_title")

	// The authorization error page.
	b.run(chromedp.Navigate(b.issuer + "/oauth2/auth?response_type=code&client_id=" + b.rp.clientID + "&redirect_uri=https%3A%2F%2Fevil.example%2Fcb"))
	b.a11yPage(lang, "authorize-error", "msg.prov.rejected_title")
	b.run(chromedp.Navigate(b.issuer + "/no/such/page"))
	b.a11yPage(lang, "not-found", "msg.err.notfound_title")
	// The check can fail: an unlabelled field and a pale text are found.
	b.eval(`(() => { const m = document.querySelector("main"); m.insertAdjacentHTML("beforeend", '<input type="text"><p id="pale">pale</p>'); document.getElementById("pale").style.color = "#dddddd"; return true })()`, new(bool))
	found := map[string]bool{}
	for _, v := range b.axe("canary") {
		found[v.ID] = true
	}
	if !found["label"] || !found["color-contrast"] {
		t.Errorf("axe-core missed a planted unlabelled input or low contrast: found %v", found)
	}
	b.eval(`(() => { document.querySelector("main").insertAdjacentHTML("beforeend", '<p id="wide">'+"Donaudampfschifffahrtsgesellschaftskapitän ".repeat(5)+'</p>'); document.getElementById("wide").style.whiteSpace = "nowrap"; return true })()`, new(bool))
	if wide := b.overflowing(); !slices.ContainsFunc(wide, func(s string) bool { return strings.HasPrefix(s, "p#wide") }) {
		t.Errorf("the overflow check missed a planted wide paragraph: found %q", wide)
	}
}

func TestBrowserAccessibilityRegisterEN(t *testing.T) { a11yRegister(t, "en") }
func TestBrowserAccessibilityRegisterDE(t *testing.T) { a11yRegister(t, "de") }

// a11yRegister: registration and verification, in lang.
func a11yRegister(t *testing.T, lang string) {
	b := newA11yEnv(t)
	tr := func(key string, args ...any) string { return templates.T(lang, key, args...) }
	b.useLanguage(lang)
	b.run(chromedp.Navigate(b.issuer + "/register"))
	b.expectPage(tr("register.title"))
	b.expectFocus("register", "email")
	b.tabOrder("register", "name", "username", "password", tr("js.show"), "password2", tr("js.show"), tr("register.submit"), tr("login.submit"))
	b.a11yPage(lang, "register", "register.title")
	b.fill(map[string]string{"email": "not an email", "name": "Nora", "password": "short", "password2": "other"})
	b.click(`form[action="/register"] button[type="submit"]`)
	b.expectPage(tr("register.title"))
	b.expectErrorTitle("register-errors", lang)
	b.expectFocus("register-errors", "email")
	var items int
	b.eval(`document.querySelectorAll(".error-summary li a").length`, &items)
	if items != 3 {
		t.Errorf("the registration summary lists %d problems, want 3 (email, password, repeat)", items)
	}
	b.a11yPage(lang, "register-errors", "register.title")
	b.fill(map[string]string{"email": "nora@example.com", "password": "nora has a long passphrase", "password2": "nora has a long passphrase"})
	b.click(`form[action="/register"] button[type="submit"]`)
	b.a11yPage(lang, "verify", "verify.title")
	b.fill(map[string]string{"code": "1"})
	b.click(`form[action="/verify"] button[type="submit"]`)
	b.expectPage(tr("verify.title"))
	b.expectErrorTitle("verify-error", lang)
	b.expectFocus("verify-error", "code")
	b.a11yPage(lang, "verify-error", "verify.title")
}

func TestBrowserAccessibilityResetEN(t *testing.T) { a11yReset(t, "en") }
func TestBrowserAccessibilityResetDE(t *testing.T) { a11yReset(t, "de") }

// a11yReset: forgotten password and reset, and the sign-in page without
// script, in lang.
func a11yReset(t *testing.T, lang string) {
	b := newA11yEnv(t)
	tr := func(key string, args ...any) string { return templates.T(lang, key, args...) }
	b.useLanguage(lang)
	b.run(chromedp.Navigate(b.issuer + "/forgot"))
	b.a11yPage(lang, "forgot", "forgot.title")
	b.fill(map[string]string{"email": "not an email"})
	b.click(`form[action="/forgot"] button[type="submit"]`)
	b.expectPage(tr("forgot.title"))
	b.expectErrorTitle("forgot-error", lang)
	b.a11yPage(lang, "forgot-error", "forgot.title")
	b.fill(map[string]string{"email": "ada@example.com"})
	b.click(`form[action="/forgot"] button[type="submit"]`)
	b.a11yPage(lang, "forgot-sent", "msg.reset.check_mail_title")
	mail := b.smtp.WaitFor(t, "ada@example.com", tr("mail.password_reset.subject"))
	b.run(chromedp.Navigate(notifytest.Link(t, mail.Text)))
	b.expectPage(tr("reset.title"))
	b.expectFocus("reset", "password")
	b.a11yPage(lang, "reset", "reset.title")
	b.fill(map[string]string{"password": "ada picked a new passphrase", "password2": "ada picked another"})
	b.click(`form[action="/reset"] button[type="submit"]`)
	b.expectPage(tr("reset.title"))
	b.expectErrorTitle("reset-errors", lang)
	b.expectFocus("reset-errors", "password2")
	b.a11yPage(lang, "reset-errors", "reset.title")

	// Without script the pages work as before: no show/hide button, the
	// password field plain, and the form still signs in.
	b.run(emulation.SetScriptExecutionDisabled(true))
	b.run(chromedp.Navigate(b.issuer + "/login"))
	b.expectPage(tr("login.title"))
	b.expectLang(lang+"-login-no-script", lang)
	var reveal int
	b.eval(`document.querySelectorAll("button.reveal").length`, &reveal)
	if reveal != 0 {
		t.Errorf("without script the sign-in page has %d show/hide buttons, want 0", reveal)
	}
	// (axe-core itself cannot run without script: its checks use timers.)
	b.shot(lang + "-login-no-script")
	b.fill(map[string]string{"username": "ada@example.com", "password": "not the password"})
	b.click(`form[action="/login"] button[type="submit"]`)
	b.expectPage(tr("login.title"))
	b.expectErrorTitle("login-no-script-error", lang)
	b.run(emulation.SetScriptExecutionDisabled(false))
}

func TestBrowserAccessibilityAccountEN(t *testing.T) { a11yAccount(t, "en") }
func TestBrowserAccessibilityAccountDE(t *testing.T) { a11yAccount(t, "de") }

// a11yAccount: the account page with a remembered device, and after a
// failed password change, in lang.
func a11yAccount(t *testing.T, lang string) {
	b := newA11yEnv(t)
	tr := func(key string, args ...any) string { return templates.T(lang, key, args...) }
	b.useLanguage(lang)
	b.run(chromedp.Navigate(b.issuer + "/account"))
	b.expectPage(tr("login.title"))
	b.fill(map[string]string{"username": "ada@example.com", "password": testPassword})
	b.click(`form[action="/login"] button[type="submit"]`)
	b.expectPage(tr("code.title"))
	b.click(`#remember`)
	mail := b.smtp.WaitFor(t, "ada@example.com", tr("mail.login_code.subject"))
	b.fill(map[string]string{"code": notifytest.Code(t, mail.Text)})
	b.click(`form[action="/login/code"] button[type="submit"]`)
	b.expectPage(tr("account.title"))
	var devices int
	b.eval(`document.querySelectorAll('form[action="/account/device-forget"]').length`, &devices)
	if devices != 1 {
		t.Errorf("the account page lists %d remembered devices, want 1", devices)
	}
	b.a11yPage(lang, "account", "account.title")

	// A failed action: the summary at the top, the field focused.
	b.fill(map[string]string{"old_password": "not my password", "password": "ada has a new passphrase", "password2": "ada has a new passphrase"})
	b.submit(`form[action="/account/password"] button[type="submit"]`)
	b.expectPage(tr("account.title"))
	b.expectErrorTitle("account-error", lang)
	b.expectFocus("account-error", "old-password")
	var summary string
	b.eval(`(document.querySelector(".error-summary a") || {}).hash || ""`, &summary)
	if summary != "#old-password" {
		t.Errorf("after a wrong current password the summary links to %q, want #old-password", summary)
	}
	b.a11yPage(lang, "account-error", "account.title")

	// The other failed actions: an unusable phone number, a wrong password
	// to deactivate; then a result announced (a device forgotten).
	b.fill(map[string]string{"phone": "not a number"})
	b.submit(`form[action="/account/phone"] button[type="submit"]`)
	b.expectErrorTitle("account-phone-error", lang)
	b.expectFocus("account-phone-error", "phone")
	b.a11yPage(lang, "account-phone-error", "account.title")
	b.eval(`(() => { document.getElementById("deactivate-password").value = "not my password"; return true })()`, new(bool))
	b.submit(`form[action="/account/deactivate"] button[type="submit"]`)
	b.expectErrorTitle("account-deactivate-error", lang)
	b.expectFocus("account-deactivate-error", "deactivate-password")
	b.a11yPage(lang, "account-deactivate-error", "account.title")
	b.submit(`form[action="/account/device-forget"] button[type="submit"]`)
	b.expectPage(tr("account.title"))
	var notice string
	b.eval(`(document.querySelector('.notice[role="status"]') || {}).textContent || ""`, &notice)
	if want := templates.Translate(lang, "That device is forgotten: it will be asked for a code at its next sign-in."); notice != want {
		t.Errorf("after forgetting the device the page announces %q, want %q", notice, want)
	}
	b.a11yPage(lang, "account-notice", "account.title")
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
