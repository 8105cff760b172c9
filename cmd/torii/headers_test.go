package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/torii-idp/torii/provider"
)

// TestRedirectWithCodeIsNotStored: the 303 that carries an authorization
// code (or an error) to the client is never cached and sends no referrer
// (SEC 59; issue 3 "pages with codes or tokens are no-store").
func TestRedirectWithCodeIsNotStored(t *testing.T) {
	e := newEnv(t, backends[0].url(t))
	e.user("alice@example.com")
	_, secret := e.client(provider.ClientSpec{ID: "webapp", SkipConsent: true})
	b := e.signedInBrowser(e.oauth2Config("webapp", secret), "alice@example.com")
	tests := []struct {
		name     string
		mutate   func(url.Values)
		wantCode bool
	}{
		{"code", func(url.Values) {}, true},
		{"error", func(q url.Values) { q.Set("scope", "openid admin") }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := authParams(oauth2.GenerateVerifier())
			tc.mutate(q)
			p := e.rawAuthorize(b, q)
			loc, _ := url.Parse(p.resp.Header.Get("Location"))
			if p.status != http.StatusSeeOther || !strings.HasPrefix(loc.String(), callbackURL) || (loc.Query().Get("code") != "") != tc.wantCode {
				t.Fatalf("authorize = %d %s, want 303 to the callback (code %v)", p.status, loc, tc.wantCode)
			}
			for k, want := range map[string]string{"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"} {
				if got := p.resp.Header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
}
