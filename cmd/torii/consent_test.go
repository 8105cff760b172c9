package main

import (
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/torii-idp/torii/provider"
)

// TestConsentMemory: a granted consent is remembered per client and scope
// set. The consent page comes back for more scopes, for another client and
// after "revoke" on the account page, which also ends the client's refresh
// tokens (issue 3 "Consent page").
func TestConsentMemory(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		e.user("alice@example.com")
		webID, webSecret := e.client(provider.ClientSpec{ID: "webapp", Name: "Web App"})
		otherID, otherSecret := e.client(provider.ClientSpec{ID: "other", Name: "Other App"})
		b := e.browser()
		tokens := map[string]*oauth2.Token{}
		steps := []struct {
			name        string
			client      string
			scopes      []string
			wantConsent bool
		}{
			{"first time", webID, []string{"openid", "email", "offline_access"}, true},
			{"same scopes", webID, []string{"openid", "email", "offline_access"}, false},
			{"same scopes in another order", webID, []string{"offline_access", "email", "openid"}, false},
			{"fewer scopes", webID, []string{"openid"}, false},
			{"more scopes", webID, []string{"openid", "email", "profile", "offline_access"}, true},
			{"the grown set, again", webID, []string{"openid", "profile"}, false},
			{"another client", otherID, []string{"openid", "offline_access"}, true},
			{"the other client, again", otherID, []string{"openid", "offline_access"}, false},
		}
		secrets := map[string]string{webID: webSecret, otherID: otherSecret}
		for _, st := range steps {
			t.Run(st.name, func(t *testing.T) {
				conf := e.oauth2Config(st.client, secrets[st.client], st.scopes...)
				f := newCodeFlow(conf)
				q, pages := e.authorizeTrace(b, f.authURL(), "alice@example.com")
				if got := slices.Contains(pages, provider.ConsentPath); got != st.wantConsent {
					t.Errorf("pages %v: consent shown = %v, want %v", pages, got, st.wantConsent)
				}
				tok, err := conf.Exchange(e.ctx(), q.Get("code"), oauth2.VerifierOption(f.verifier))
				if err != nil {
					t.Fatalf("Exchange: %v", err)
				}
				if tok.RefreshToken != "" {
					tokens[st.client] = tok
				}
			})
		}

		// Revoke the web app on the account page.
		acct := e.get(b, e.issuer+"/account")
		var revoke *form
		for _, f := range acct.forms(t) {
			if strings.HasSuffix(f.action, "/account/app-revoke") && f.values.Get("client_id") == webID {
				revoke = &f
			}
		}
		if revoke == nil {
			t.Fatalf("the account page has no revoke form for %s:\n%s", webID, acct.body)
		}
		if p := e.post(b, *revoke); p.status != 200 || !strings.Contains(p.body, "no longer has access") {
			t.Fatalf("revoke = %d:\n%s", p.status, p.body)
		}
		if in := e.introspect(tokens[webID].RefreshToken, webID, webSecret); in["active"] != false {
			t.Errorf("the revoked app's refresh token: %v", in)
		}
		if in := e.introspect(tokens[webID].AccessToken, webID, webSecret); in["active"] != false {
			t.Errorf("the revoked app's access token: %v", in)
		}
		if in := e.introspect(tokens[otherID].RefreshToken, otherID, otherSecret); in["active"] != true {
			t.Errorf("another app's refresh token after revoking the first: %v", in)
		}
		status, body, _ := e.postForm("/oauth2/token", map[string][]string{"grant_type": {"refresh_token"}, "refresh_token": {tokens[webID].RefreshToken}}, webID, webSecret)
		wantOAuthError(t, status, body, 400, "invalid_grant")

		conf := e.oauth2Config(webID, webSecret, "openid")
		_, pages := e.authorizeTrace(b, newCodeFlow(conf).authURL(), "alice@example.com")
		if !slices.Equal(pages, []string{provider.ConsentPath}) {
			t.Errorf("after revoke: pages %v, want the consent page only (still signed in)", pages)
		}
	})
}
