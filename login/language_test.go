package login_test

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/torii-idp/torii/login"
	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

var htmlLangRe = regexp.MustCompile(`<html lang="([^"]*)">`)

// get fetches path with the headers and cookies given, and returns the
// response and the page's <html lang>.
func (e *env) getLang(path string, hdr map[string]string, cookies ...*http.Cookie) (*http.Response, string, string) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := htmlLangRe.FindSubmatch(body)
	if m == nil {
		e.t.Fatalf("GET %s: no <html lang> in\n%s", path, body)
	}
	return resp, string(m[1]), string(body)
}

// pendingWithLocales stores a pending request for "app" with ui_locales.
func (e *env) pendingWithLocales(id, locales string) {
	e.t.Helper()
	form := url.Values{"client_id": {"app"}, "scope": {"openid"}, "response_type": {"code"}}
	if locales != "" {
		form.Set("ui_locales", locales)
	}
	if err := e.store.CreateAuthRequest(e.t.Context(), &storage.AuthRequest{
		ID: id, ClientID: "app", Form: form.Encode(), BrowserHash: "b", ExpiresAt: time.Now().Add(10 * time.Minute),
	}); err != nil {
		e.t.Fatal(err)
	}
}

// The page's language: the picker's lang parameter, then ui_locales of the
// pending request, then the picker's cookie, then Accept-Language (with
// q-values), then the default; unknown values are skipped at every step.
func TestLanguageNegotiation(t *testing.T) {
	e := newEnvWith(t, storagetest.NewSQLite, false, func(c *login.Config) { c.DefaultLanguage = "fr" })
	e.pendingWithLocales("ja-req", "ja de")
	e.pendingWithLocales("unknown-req", "nl xx-invalid-")
	e.pendingWithLocales("region-req", "es-MX")
	e.pendingWithLocales("none-req", "")
	cookie := func(v string) *http.Cookie { return &http.Cookie{Name: "torii_lang", Value: v} }
	tests := []struct {
		name, path, accept string
		cookie             *http.Cookie
		want               string
	}{
		{"default", "/login", "", nil, "fr"},
		{"accept-language", "/login", "de-DE,de;q=0.9,en;q=0.5", nil, "de"},
		{"accept-language q-values", "/login", "en;q=0.2, ja;q=0.8, nl", nil, "ja"},
		{"accept-language unsupported only", "/login", "nl, pt-BR;q=0.9", nil, "fr"},
		{"accept-language malformed", "/login", ";;q=x,", nil, "fr"},
		{"cookie over accept-language", "/login", "de", cookie("es"), "es"},
		{"unknown cookie ignored", "/login", "de", cookie("nl"), "de"},
		{"ui_locales over cookie", "/login?req=ja-req", "de", cookie("es"), "ja"},
		{"ui_locales region", "/login?req=region-req", "", nil, "es"},
		{"unknown ui_locales ignored", "/login?req=unknown-req", "de", cookie("es"), "es"},
		{"no ui_locales", "/login?req=none-req", "de", nil, "de"},
		{"picker over ui_locales", "/login?req=ja-req&lang=de", "", cookie("es"), "de"},
		{"unknown picker value ignored", "/login?lang=nl", "ja", nil, "ja"},
		{"other pages too", "/forgot", "es", nil, "es"},
		{"error pages too", "/login?req=gone", "ja", nil, "ja"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.accept != "" {
				hdr["Accept-Language"] = tc.accept
			}
			var cs []*http.Cookie
			if tc.cookie != nil {
				cs = append(cs, tc.cookie)
			}
			_, got, _ := e.getLang(tc.path, hdr, cs...)
			if got != tc.want {
				t.Errorf("GET %s (Accept-Language %q, cookie %v): <html lang=%q>, want %q", tc.path, tc.accept, tc.cookie, got, tc.want)
			}
		})
	}
}

// The picker is a GET form back to the same page, keeping the pending
// request and the code page's channel; its choice is remembered in an
// HttpOnly, SameSite=Lax cookie (Secure, __Host- on https).
func TestLanguagePicker(t *testing.T) {
	for _, https := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[https], func(t *testing.T) {
			e := newEnv(t, storagetest.NewSQLite, https)
			e.pendingWithLocales("r1", "")
			_, lang, body := e.getLang("/login?req=r1", nil)
			if lang != "en" {
				t.Fatalf("lang %q, want en", lang)
			}
			for _, want := range []string{
				`<form method="get" action="/login" class="lang-picker">`,
				`<input type="hidden" name="req" value="r1">`,
				`<select id="lang-picker" name="lang">`,
				`<option value="de" lang="de">Deutsch</option>`,
				`<option value="en" lang="en" selected>English</option>`,
				`<option value="ja" lang="ja">日本語</option>`,
			} {
				if !strings.Contains(body, want) {
					t.Errorf("login page lacks %s", want)
				}
			}
			resp, lang, _ := e.getLang("/login?req=r1&lang=de", nil)
			if lang != "de" {
				t.Fatalf("picked de: lang %q", lang)
			}
			name := "torii_lang"
			if https {
				name = "__Host-torii_lang"
			}
			var c *http.Cookie
			for _, rc := range resp.Cookies() {
				if rc.Name == name {
					c = rc
				}
			}
			if c == nil {
				t.Fatalf("no %s cookie set; cookies %v", name, resp.Cookies())
			}
			if c.Value != "de" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure != https || c.MaxAge <= 0 {
				t.Errorf("cookie %+v: want de, HttpOnly, SameSite=Lax, Path=/, Secure=%v, persistent", c, https)
			}
			// The cookie then picks the language of the next page.
			if _, lang, _ := e.getLang("/forgot", nil, &http.Cookie{Name: name, Value: "de"}); lang != "de" {
				t.Errorf("with the cookie: lang %q, want de", lang)
			}
			// An unknown choice sets no cookie.
			resp, _, _ = e.getLang("/login?lang=klingon", nil)
			for _, rc := range resp.Cookies() {
				if rc.Name == name {
					t.Errorf("lang=klingon set %v", rc)
				}
			}
		})
	}
}

// The messages made in Go follow the page's language: a wrong password in
// German, the account page (device name, relative time) in Japanese.
func TestGoMessagesFollowTheLanguage(t *testing.T) {
	e := sqliteEnv(t)
	b := e.browser()
	b.get("/login?lang=de") // the picker: remembered in the cookie jar
	r := b.post("/login", url.Values{"csrf": {b.csrf("/login")}, "username": {"alice"}, "password": {"wrong password"}})
	for _, want := range []string{`<html lang="de">`, "<title>Fehler: Anmelden – Torii</title>", "Der Benutzername oder das Passwort ist falsch."} {
		if !strings.Contains(r.body, want) {
			t.Errorf("wrong password in German: page lacks %q:\n%s", want, r.body)
		}
	}
	if strings.Contains(r.body, "incorrect") {
		t.Error("the German page shows the English message")
	}

	b.get("/login?lang=ja")
	if r := b.signIn("", "alice", alicePassword); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in = %d", r.StatusCode)
	}
	r = b.get("/account")
	for _, want := range []string{`<html lang="ja">`, "<h1>アカウント</h1>", "たった今", "（このデバイス）"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("account page in Japanese lacks %q:\n%s", want, r.body)
		}
	}
	if strings.Contains(r.body, "just now") {
		t.Error("the Japanese account page says \"just now\"")
	}
}

// The mail a request causes is in its page's language: a registration in
// Spanish sends the confirmation in Spanish.
func TestMailFollowsTheLanguage(t *testing.T) {
	e := sqliteEnv(t)
	b := e.browser()
	b.get("/register?lang=es")
	r := b.post("/register", url.Values{"csrf": {b.csrf("/register")}, "email": {"zoe@example.com"},
		"password": {"a long enough passphrase"}, "password2": {"a long enough passphrase"}})
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("register = %d:\n%s", r.StatusCode, r.body)
	}
	m := e.mail.last(t, "zoe@example.com")
	if m.Subject != "Confirma tu correo electrónico" || !strings.Contains(m.Text, "Tu código de confirmación es") ||
		!strings.Contains(m.HTML, `<html lang="es">`) {
		t.Errorf("confirmation mail not in Spanish: %q\n%s", m.Subject, m.Text)
	}
}
