package main

import (
	"net/http"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/torii-idp/torii/provider"
)

// The authorization error page (no redirect URI to send the error to) has a
// way forward: back to the application's site when it registered a
// client_uri, else to the sign-in page (issue 13).
func TestAuthorizeErrorPageWayForward(t *testing.T) {
	e := newEnv(t, backends[0].url(t))
	e.client(provider.ClientSpec{ID: "webapp", Name: "Web <App>", ClientURI: "https://rp.example/home"})
	e.client(provider.ClientSpec{ID: "bare"})
	for _, tc := range []struct {
		name, clientID, want string
	}{
		{"client_uri", "webapp", `<a href="https://rp.example/home">Back to Web &lt;App&gt;</a>`},
		{"no client_uri", "bare", `<a href="/login">Go to the sign-in page</a>`},
		{"unknown client", "nobody", `<a href="/login">Go to the sign-in page</a>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := authParams(oauth2.GenerateVerifier())
			q.Set("client_id", tc.clientID)
			q.Set("redirect_uri", "https://evil.example/cb")
			p := e.rawAuthorize(e.browser(), q)
			if p.status != http.StatusBadRequest || !strings.Contains(p.body, "Sign-in request rejected") || !strings.Contains(p.body, tc.want) {
				t.Errorf("authorize = %d, want 400 with %s:\n%s", p.status, tc.want, p.body)
			}
			if csp := p.resp.Header.Get("Content-Security-Policy"); csp != provider.PageCSP {
				t.Errorf("CSP = %q, want %q", csp, provider.PageCSP)
			}
		})
	}
}

// The authorization error page speaks the request's ui_locales (issue 13):
// title, message and way forward.
func TestAuthorizeErrorPageLanguage(t *testing.T) {
	e := newEnv(t, backends[0].url(t))
	e.client(provider.ClientSpec{ID: "webapp", Name: "Web <App>", ClientURI: "https://rp.example/home"})
	for _, tc := range []struct {
		name, clientID, locales string
		want                    []string
	}{
		{"German, client_uri", "webapp", "de", []string{`<html lang="de">`, "<h1>Anmeldeanfrage abgelehnt</h1>",
			"Die Rücksprungadresse der Anwendung (Redirect-URI) ist nicht registriert (invalid_request). Wenden Sie sich an die Entwickler der Anwendung.",
			`<a href="https://rp.example/home">Zurück zu Web &lt;App&gt;</a>`}},
		{"Japanese, unknown client", "nobody", "ja-JP en", []string{`<html lang="ja">`, "<h1>ログインリクエストが拒否されました</h1>",
			"アプリケーションはこのサーバーに登録されていません（invalid_client）。", `<a href="/login">ログインページへ</a>`}},
		{"unsupported: the default", "nobody", "nl", []string{`<html lang="en">`, "Sign-in request rejected"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := authParams(oauth2.GenerateVerifier())
			q.Set("client_id", tc.clientID)
			q.Set("redirect_uri", "https://evil.example/cb")
			q.Set("ui_locales", tc.locales)
			p := e.rawAuthorize(e.browser(), q)
			for _, want := range tc.want {
				if p.status != http.StatusBadRequest || !strings.Contains(p.body, want) {
					t.Errorf("authorize = %d, want 400 with %s:\n%s", p.status, want, p.body)
				}
			}
		})
	}
}
