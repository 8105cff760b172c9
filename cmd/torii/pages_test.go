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
