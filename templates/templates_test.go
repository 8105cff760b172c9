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
		Error: "That code is not right.", Notice: "We sent you a new code.", Wait: "30 seconds"},
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

// The basics every page must meet: language, viewport, our stylesheet, no
// script or inline style (the CSP forbids them), and a label for every
// visible input.
func TestPagesBasics(t *testing.T) {
	for name, data := range samples {
		t.Run(name, func(t *testing.T) {
			html := render(t, name, data)
			for _, want := range []string{
				`<!DOCTYPE html>`,
				`<html lang="en">`,
				`<meta name="viewport" content="width=device-width, initial-scale=1">`,
				`<link rel="stylesheet" href="/static/style.css">`,
				`<h1>`,
			} {
				if !strings.Contains(html, want) {
					t.Errorf("page lacks %s", want)
				}
			}
			for _, banned := range []string{"<script", "style=", "javascript:", "http://", "https://", " on"} {
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

	html = render(t, "login.html", LoginPage{CSRF: "tok-1", Error: "The username or password is incorrect."})
	if strings.Contains(html, `name="req"`) {
		t.Error("login page without a request has a req field")
	}
	if !strings.Contains(html, `<p id="form-error" class="error" role="alert">The username or password is incorrect.</p>`) {
		t.Errorf("login page does not show the error as an alert:\n%s", html)
	}
	if !strings.Contains(html, `aria-describedby="form-error"`) {
		t.Error("inputs do not point at the error")
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
