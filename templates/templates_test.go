package templates

import (
	"bytes"
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

func render(t *testing.T, name string, data any) string {
	t.Helper()
	pages, err := Pages()
	if err != nil {
		t.Fatalf("Pages: %v", err)
	}
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		t.Fatalf("ExecuteTemplate(%q): %v", name, err)
	}
	return buf.String()
}

var (
	inputRe  = regexp.MustCompile(`<input [^>]*>`)
	attrRe   = regexp.MustCompile(`\b(id|name|type)="([^"]*)"`)
	labelFor = regexp.MustCompile(`<label for="([^"]*)"`)
)

// samples executes every page with representative data.
var samples = map[string]any{
	"login.html":   LoginPage{CSRF: "tok", Req: "req1", Error: "The username or password is incorrect."},
	"consent.html": ConsentPage{ClientName: "Example App", Scopes: []string{"openid", "email"}, User: "a@example.com", CSRF: "tok", Req: "req1"},
	"done.html":    DonePage{User: "a@example.com", CSRF: "tok"},
	"error.html":   ErrorPage{Title: "Something went wrong", Message: "Please try again."},
	"code.html": CodePage{CSRF: "tok", Req: "req1", Destination: "a•••@example.com", Channel: "email", CanSMS: true, Minutes: 10,
		Error: "That code is not right.", Notice: "We sent you a new code.", Wait: "30 seconds", RememberFor: "30 days"},
	"register.html": RegisterPage{CSRF: "tok", Req: "req1", Email: "a@example.com", Username: "ada", Name: "Ada",
		Errors: map[string]string{"email": "Bad address.", "username": "Taken.", "name": "Too long.", "password": "Too common.", "password2": "They differ.", "form": "Oops."}},
	"verify.html":  VerifyPage{CSRF: "tok", Req: "req1", Destination: "a•••@example.com", Error: "Wrong code.", Notice: "Sent."},
	"message.html": MessagePage{Title: "Check your mail", Message: "We sent a link.", LinkURL: "/login", LinkText: "Sign in"},
	"forgot.html":  ForgotPage{CSRF: "tok", Error: "Bad address."},
	"reset.html":   ResetPage{CSRF: "tok", Token: "t", Errors: map[string]string{"password": "Too common.", "password2": "They differ."}},
	"logout.html":  LogoutPage{CSRF: "tok", User: "a@example.com"},
	"account.html": AccountPage{CSRF: "tok", UserID: "u1", Email: "a@example.com", Username: "ada", Name: "Ada", Bio: "Hi",
		EmailVerified: false, Phone: "+15550001111", PendingPhone: "+15550002222", AvatarURL: "/avatars/u1?v=x",
		Sessions: []AccountSession{{ID: "s1", UserAgent: "Firefox", Since: "1 Jan 2026", Current: true}},
		Apps:     []AccountApp{{ClientID: "app", Name: "App", Since: "1 Jan 2026", Scopes: []string{"openid"}}},
		Errors:   map[string]string{"name": "x", "username": "x", "bio": "x", "avatar": "x", "phone": "x", "phone-code": "x", "old-password": "x", "password": "x", "password2": "x", "deactivate": "x", "form": "x"},
		Notice:   "Saved."},
	"federation-link.html": FederatedLinkPage{CSRF: "tok", Provider: "GitHub", Email: "a•••@example.com", HasPassword: true, Step: "choose", Error: "Wrong.", Minutes: 10},
}

func TestEveryPageHasASample(t *testing.T) {
	pages, err := Pages()
	if err != nil {
		t.Fatal(err)
	}
	names, err := fs.Glob(files, "*.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if name == "layout.html" || name == "federation.html" { // definitions only
			continue
		}
		if pages.Lookup(name) == nil {
			t.Errorf("page %s is not parsed", name)
		}
		if _, ok := samples[name]; !ok {
			t.Errorf("page %s has no sample in this test", name)
		}
	}
}

// The basics every page must meet: language, viewport, our stylesheet and
// our one script file, no inline script or style (the CSP forbids them),
// and a label for every visible input.
func TestPagesBasics(t *testing.T) {
	for name, data := range samples {
		t.Run(name, func(t *testing.T) {
			html := render(t, name, data)
			for _, want := range []string{
				`<!DOCTYPE html>`,
				`<html lang="en">`,
				`<meta name="viewport" content="width=device-width, initial-scale=1">`,
				`<link rel="stylesheet" href="/static/style.css">`,
				`<script src="/static/torii.js" defer></script>`,
				`<h1>`,
			} {
				if !strings.Contains(html, want) {
					t.Errorf("page lacks %s", want)
				}
			}
			if n := strings.Count(html, "<script"); n != 1 {
				t.Errorf("page has %d scripts, want only torii.js", n)
			}
			for _, banned := range []string{"<script>", "style=", "javascript:", "http://", "https://", " on"} {
				if banned == " on" {
					if regexp.MustCompile(`\son[a-z]+=`).MatchString(html) {
						t.Errorf("page has an inline event handler")
					}
					continue
				}
				if strings.Contains(html, banned) {
					t.Errorf("page contains %q", banned)
				}
			}
			labels := map[string]bool{}
			for _, m := range labelFor.FindAllStringSubmatch(html, -1) {
				labels[m[1]] = true
			}
			for _, in := range inputRe.FindAllString(html, -1) {
				attrs := map[string]string{}
				for _, m := range attrRe.FindAllStringSubmatch(in, -1) {
					attrs[m[1]] = m[2]
				}
				if attrs["type"] == "hidden" {
					continue
				}
				if attrs["id"] == "" || !labels[attrs["id"]] {
					t.Errorf("input %s has no <label for>", in)
				}
			}
		})
	}
}

func TestLoginPage(t *testing.T) {
	html := render(t, "login.html", LoginPage{CSRF: "tok-1", Req: "req-1"})
	for _, want := range []string{
		`action="/login"`, `method="post"`,
		`name="username"`, `autocomplete="username"`,
		`name="password"`, `type="password"`, `autocomplete="current-password"`,
		`<input type="hidden" name="csrf" value="tok-1">`,
		`<input type="hidden" name="req" value="req-1">`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("login page lacks %s", want)
		}
	}
	if strings.Contains(html, `role="alert"`) {
		t.Error("login page without an error shows an alert")
	}

	if !strings.Contains(html, `<title>Sign in – Torii</title>`) || !strings.Contains(html, `autocomplete="username" autocapitalize="none" spellcheck="false" value="" required autofocus>`) {
		t.Errorf("login page without an error: wrong title, or the first field lacks autofocus:\n%s", html)
	}

	html = render(t, "login.html", LoginPage{CSRF: "tok-1", Username: "ada", Errors: map[string]string{"password": "The username or password is incorrect."}})
	if strings.Contains(html, `name="req"`) {
		t.Error("login page without a request has a req field")
	}
	for _, want := range []string{
		`<title>Error: Sign in – Torii</title>`,
		`<div class="error-summary" role="alert" aria-labelledby="error-summary-title">`,
		`<li><a href="#password">The username or password is incorrect.</a></li>`,
		`<p id="password-error" class="error">The username or password is incorrect.</p>`,
		`value="ada" required>`,
		`autocomplete="current-password" required autofocus aria-invalid="true" aria-describedby="password-error">`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("login page with an error lacks %s:\n%s", want, html)
		}
	}
}

// Every problem of a form is in the summary, in the form's order (the
// form-level one first), each linked to its field; the first field with a
// problem gets autofocus, and only it.
func TestErrorSummary(t *testing.T) {
	tests := []struct {
		name, page string
		data       any
		want       []string
		focus      string
	}{
		{"register, all fields", "register.html", samples["register.html"],
			[]string{`<li>Oops.</li>`, `<a href="#email">Bad address.</a>`, `<a href="#name">Too long.</a>`, `<a href="#username">Taken.</a>`, `<a href="#password">Too common.</a>`, `<a href="#password2">They differ.</a>`}, "email"},
		{"register, the repeat only", "register.html", RegisterPage{Errors: map[string]string{"password2": "They differ."}},
			[]string{`<a href="#password2">They differ.</a>`}, "password2"},
		{"register, none", "register.html", RegisterPage{}, nil, "email"},
		{"reset", "reset.html", ResetPage{Errors: map[string]string{"password2": "They differ."}}, []string{`<a href="#password2">They differ.</a>`}, "password2"},
		{"login, missing both", "login.html", LoginPage{Errors: map[string]string{"password": "Enter your password.", "username": "Enter your email address or username."}},
			[]string{`<a href="#username">Enter your email address or username.</a>`, `<a href="#password">Enter your password.</a>`}, "username"},
		{"login, locked", "login.html", LoginPage{Error: "Too many failed attempts."}, []string{`<li>Too many failed attempts.</li>`}, "username"},
		{"code", "code.html", CodePage{Error: "That code is not right."}, []string{`<a href="#code">That code is not right.</a>`}, "code"},
		{"verify", "verify.html", VerifyPage{Error: "Wrong code."}, []string{`<a href="#code">Wrong code.</a>`}, "code"},
		{"forgot", "forgot.html", ForgotPage{Error: "Bad address."}, []string{`<a href="#email">Bad address.</a>`}, "email"},
	}
	autofocus := regexp.MustCompile(`<input id="([^"]+)"[^>]* autofocus[ >]`)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			html := render(t, tc.page, tc.data)
			if got := strings.HasPrefix(between(html, "<title>", "</title>"), "Error: "); got != (tc.want != nil) {
				t.Errorf("title starts with Error: = %v, want %v", got, tc.want != nil)
			}
			last := -1
			for _, w := range tc.want {
				i := strings.Index(html, w)
				if i < 0 || i < last {
					t.Errorf("summary lacks %s, or not in the form's order:\n%s", w, html)
				}
				last = i
			}
			ms := autofocus.FindAllStringSubmatch(html, -1)
			if len(ms) != 1 || ms[0][1] != tc.focus {
				t.Errorf("autofocus on %v, want only %q", ms, tc.focus)
			}
		})
	}
}

func between(s, from, to string) string {
	_, after, _ := strings.Cut(s, from)
	before, _, _ := strings.Cut(after, to)
	return before
}

// A page that calls "top" with a plain title (other pages may) still
// renders; a Head made by "head" shows the application and the problems.
func TestTopTakesATitleOrAHead(t *testing.T) {
	pages, err := BrandedPages(Brand{SiteName: "Example ID", LogoURL: "/static/brand-logo", ThemeURL: "/static/theme.css"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pages.New("plain.html").Parse(`{{template "top" "Plain"}}x{{template "bottom"}}`); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, "plain.html", nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<title>Plain – Example ID</title>`, `<h1>Plain</h1>`, `<span class="site-name">Example ID</span>`,
		`<img src="/static/brand-logo" alt="" height="32">`, `<link rel="stylesheet" href="/static/theme.css">`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("plain page lacks %s:\n%s", want, buf.String())
		}
	}
	buf.Reset()
	if err := pages.ExecuteTemplate(&buf, "code.html", CodePage{App: &App{Name: "Photos <3", LogoURI: "https://photos.example/logo.png"}}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<img src="https://photos.example/logo.png" alt="" width="40" height="40"><span>Sign in to continue to <strong>Photos &lt;3</strong></span>`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("code page lacks %s:\n%s", want, buf.String())
		}
	}
}

// The resend wait disables the waiting controls, never Continue, and says
// when it ends without script.
func TestCodePageWait(t *testing.T) {
	html := render(t, "code.html", CodePage{Channel: "email", CanSMS: true, Wait: "45 seconds", WaitSeconds: 45, WaitUntil: "14:32:05 UTC", ReloadURL: "/login/code?via=email"})
	for _, want := range []string{
		`<p class="muted" role="status" id="wait" data-wait="45">You can ask for a new code in 45 seconds (at 14:32:05 UTC). <a href="/login/code?via=email">Reload this page</a> then.</p>`,
		`<button type="submit" name="channel" value="email" class="secondary" disabled data-wait-control>Send a new code</button>`,
		`<button type="submit" name="channel" value="sms" class="secondary" disabled data-wait-control>Send it by SMS instead</button>`,
		`<button type="submit">Continue</button>`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("code page lacks %s:\n%s", want, html)
		}
	}
	if html := render(t, "code.html", CodePage{Channel: "email"}); strings.Contains(html, "disabled") {
		t.Error("code page without a wait disables a button")
	}
}

func TestConsentPage(t *testing.T) {
	html := render(t, "consent.html", ConsentPage{
		ClientName: "Example <App>",
		Scopes:     []string{"openid", "profile", "email", "phone", "offline_access", "calendar.read", "<b>x</b>"},
		User:       "a@example.com",
		CSRF:       "tok",
		Req:        "req-1",
	})
	for _, want := range []string{
		"<strong>Example &lt;App&gt;</strong>",
		"<title>Allow Example &lt;App&gt; to use your account? – Torii</title>",
		"<li>Sign you in</li>",
		"<li>See your name, username and picture</li>",
		"<li>See your email address</li>",
		"<li>See your phone number</li>",
		"<li>Stay signed in when you are away</li>",
		"<li>Use the permission <code>calendar.read</code></li>",
		"<li>Use the permission <code>&lt;b&gt;x&lt;/b&gt;</code></li>",
		`<button type="submit" name="action" value="allow">Allow</button>`,
		`<button type="submit" name="action" value="deny" class="secondary">Deny</button>`,
		`action="/consent"`,
		`<input type="hidden" name="req" value="req-1">`,
		`<input type="hidden" name="csrf" value="tok">`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("consent page lacks %s", want)
		}
	}
}

func TestDonePage(t *testing.T) {
	html := render(t, "done.html", DonePage{User: "a@example.com", CSRF: "tok"})
	for _, want := range []string{"a@example.com", `action="/logout"`, `<input type="hidden" name="csrf" value="tok">`} {
		if !strings.Contains(html, want) {
			t.Errorf("done page lacks %s", want)
		}
	}
}

func TestErrorPageEscapes(t *testing.T) {
	html := render(t, "error.html", ErrorPage{Title: `Bad <script>alert(1)</script>`, Message: `"><img src=x onerror=alert(1)>`})
	if strings.Contains(html, "<script>") || strings.Contains(html, "<img") {
		t.Errorf("error page does not escape its fields:\n%s", html)
	}
	if !strings.Contains(html, `role="alert"`) {
		t.Error("error message is not an alert")
	}
}

func TestStatic(t *testing.T) {
	css, err := fs.ReadFile(Static(), "style.css")
	if err != nil {
		t.Fatalf("style.css: %v", err)
	}
	for _, want := range []string{":focus-visible", "outline"} {
		if !bytes.Contains(css, []byte(want)) {
			t.Errorf("style.css lacks %s", want)
		}
	}
	for _, banned := range []string{"@import", "url(", "http:", "https:"} {
		if bytes.Contains(css, []byte(banned)) {
			t.Errorf("style.css loads something external (%s)", banned)
		}
	}
	if _, err := fs.Stat(Static(), "login.html"); err == nil {
		t.Error("Static exposes the page sources")
	}
}
