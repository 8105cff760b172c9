package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/torii-idp/torii/login/account"
	"github.com/torii-idp/torii/provider"
)

// roleUser creates a verified user with roles and returns its ID.
func (e *env) roleUser(email string, roles ...string) string {
	e.t.Helper()
	u, err := e.srv.accounts.Create(context.Background(), account.NewUser{
		Email: email, Password: testPassword, EmailVerified: true, Roles: roles,
	})
	if err != nil {
		e.t.Fatalf("create user %s: %v", email, err)
	}
	return u.ID
}

// rolesIn returns the "roles" member of claims as text ("[a b]", "[]"),
// or "absent".
func rolesIn(claims map[string]any) string {
	v, ok := claims["roles"]
	if !ok {
		return "absent"
	}
	list, ok := v.([]any)
	if !ok {
		return fmt.Sprintf("not a list: %#v", v)
	}
	return fmt.Sprint(list)
}

// scopeOf returns the scope a token response granted.
func scopeOf(tok *oauth2.Token) []string {
	s, _ := tok.Extra("scope").(string)
	return strings.Fields(s)
}

// The roles claim, with scope roles, in the ID token (verified by go-oidc),
// userinfo, a JWT access token (verified against the JWKS) and
// introspection; none of them has it without the scope. An empty set is
// [].
func TestRolesClaim(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		e.roleUser("ada@example.com", "billing.read", account.RoleAdmin)
		boID := e.roleUser("bo@example.com")
		id, secret := e.client(provider.ClientSpec{ID: "webapp", SkipConsent: true, TokenFormat: provider.FormatJWT,
			Scopes: []string{"openid", "email", "offline_access", provider.ScopeRoles}})
		op := e.oidcProvider()
		var doc struct {
			Scopes []string `json:"scopes_supported"`
			Claims []string `json:"claims_supported"`
		}
		if err := op.Claims(&doc); err != nil || !slices.Contains(doc.Scopes, provider.ScopeRoles) ||
			!slices.Contains(doc.Scopes, provider.ScopeAdmin) || !slices.Contains(doc.Claims, "roles") {
			t.Errorf("discovery scopes_supported %q, claims_supported %q (%v); want roles, torii:admin and the claim roles", doc.Scopes, doc.Claims, err)
		}
		keys := oidc.NewRemoteKeySet(e.ctx(), e.issuer+"/.well-known/jwks.json")
		for _, tc := range []struct {
			name, user string
			scopes     []string
			want       string
		}{
			{"admin", "ada@example.com", []string{"openid", "email", provider.ScopeRoles}, "[admin billing.read]"},
			{"no roles", "bo@example.com", []string{"openid", provider.ScopeRoles}, "[]"},
			{"without the scope", "ada@example.com", []string{"openid", "email", "offline_access"}, "absent"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				conf := e.oauth2Config(id, secret, tc.scopes...)
				tok, _ := e.login(conf, e.browser(), tc.user)
				idt, _ := verifyIDToken(t, e, op, id, "RS256", tok)
				var idc map[string]any
				if err := idt.Claims(&idc); err != nil {
					t.Fatal(err)
				}
				if got := rolesIn(idc); got != tc.want {
					t.Errorf("ID token roles = %s, want %s", got, tc.want)
				}

				req := mustReq("GET", e.issuer+"/userinfo")
				req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
				status, ui, _ := e.do(req)
				if got := rolesIn(ui); status != http.StatusOK || got != tc.want {
					t.Errorf("userinfo = %d %v; roles %s, want %s", status, ui, got, tc.want)
				}

				payload, err := keys.VerifySignature(e.ctx(), tok.AccessToken)
				if err != nil {
					t.Fatalf("JWT access token does not verify: %v", err)
				}
				var at map[string]any
				if err := json.Unmarshal(payload, &at); err != nil {
					t.Fatal(err)
				}
				if got := rolesIn(at); got != tc.want {
					t.Errorf("JWT access token roles = %s, want %s (%s)", got, tc.want, payload)
				}

				if got := rolesIn(e.introspect(tok.AccessToken, id, secret)); got != tc.want {
					t.Errorf("introspection roles = %s, want %s", got, tc.want)
				}
			})
		}

		// A refresh carries the user's roles of now.
		conf := e.oauth2Config(id, secret, "openid", "offline_access", provider.ScopeRoles)
		tok, _ := e.login(conf, e.browser(), "bo@example.com")
		if _, err := e.srv.accounts.SetRoles(t.Context(), boID, []string{"support"}, nil); err != nil {
			t.Fatal(err)
		}
		fresh, err := conf.TokenSource(e.ctx(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		idt, _ := verifyIDToken(t, e, op, id, "RS256", fresh)
		var idc map[string]any
		idt.Claims(&idc)
		if got := rolesIn(idc); got != "[support]" {
			t.Errorf("refreshed ID token roles = %s, want [support]", got)
		}
		if got := rolesIn(e.introspect(fresh.AccessToken, id, secret)); got != "[support]" {
			t.Errorf("refreshed access token's introspection roles = %s, want [support]", got)
		}
		// A client's own token has no user and no roles.
		svc, svcSecret := e.client(provider.ClientSpec{ID: "svc", GrantTypes: []string{"client_credentials"}, TokenFormat: provider.FormatJWT,
			Scopes: []string{provider.ScopeRoles}})
		status, body, _ := e.postForm("/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {provider.ScopeRoles}}, svc, svcSecret)
		if status != http.StatusOK {
			t.Fatalf("client credentials = %d %v", status, body)
		}
		if got := rolesIn(e.introspect(body["access_token"].(string), svc, svcSecret)); got != "absent" {
			t.Errorf("client's own token's roles = %s, want absent", got)
		}
	})
}

// torii:admin: a user gets it only with the role admin (authorization code
// flow with consent, password grant), silently left out otherwise; a
// refresh after the role is gone no longer grants it; a client's own token
// carries it when the client is allowed it, and invalid_scope otherwise.
func TestAdminScope(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		adminID := e.roleUser("root@example.com", account.RoleAdmin)
		e.roleUser("pat@example.com", "billing")
		id, secret := e.client(provider.ClientSpec{ID: "console", GrantTypes: []string{"authorization_code", "password", "refresh_token"},
			Scopes: []string{"openid", "offline_access", provider.ScopeRoles, provider.ScopeAdmin}})
		scopes := []string{"openid", "offline_access", provider.ScopeAdmin}
		conf := e.oauth2Config(id, secret, scopes...)
		hasAdmin := func(tok *oauth2.Token) bool { return slices.Contains(scopeOf(tok), provider.ScopeAdmin) }

		t.Run("password grant", func(t *testing.T) {
			for _, tc := range []struct {
				user string
				want bool
			}{{"root@example.com", true}, {"pat@example.com", false}} {
				tok, err := conf.PasswordCredentialsToken(e.ctx(), tc.user, testPassword)
				if err != nil {
					t.Fatalf("password grant of %s: %v", tc.user, err)
				}
				if hasAdmin(tok) != tc.want || !slices.Contains(scopeOf(tok), "openid") {
					t.Errorf("%s: granted scope %q, want torii:admin %v", tc.user, scopeOf(tok), tc.want)
				}
				in := e.introspect(tok.AccessToken, id, secret)
				if strings.Contains(fmt.Sprint(in["scope"]), provider.ScopeAdmin) != tc.want {
					t.Errorf("%s: introspected scope %v, want torii:admin %v", tc.user, in["scope"], tc.want)
				}
			}
		})

		t.Run("authorization code", func(t *testing.T) {
			// The consent page neither shows nor records torii:admin for a
			// user without the role: the next sign-in asks nothing.
			b := e.browser()
			f := newCodeFlow(conf)
			p := e.signIn(b, e.get(b, f.authURL()), "pat@example.com")
			if !strings.HasSuffix(p.url.Path, provider.ConsentPath) {
				t.Fatalf("after sign-in: %d %s, want the consent page", p.status, p.url)
			}
			if strings.Contains(p.body, provider.ScopeAdmin) || strings.Contains(p.body, "Administer") {
				t.Errorf("consent page of a user without admin offers torii:admin:\n%s", p.body)
			}
			q := e.callback(e.consent(b, p, "allow"))
			tok, err := conf.Exchange(e.ctx(), q.Get("code"), oauth2.VerifierOption(f.verifier))
			if err != nil {
				t.Fatal(err)
			}
			if hasAdmin(tok) {
				t.Errorf("user without admin: granted scope %q", scopeOf(tok))
			}
			f = newCodeFlow(conf)
			if q, shown := e.authorizeTrace(b, f.authURL(), "pat@example.com"); len(shown) != 0 || q.Get("code") == "" {
				t.Errorf("second authorization showed %v (%v), want no page", shown, q)
			}

			b = e.browser()
			f = newCodeFlow(conf)
			p = e.signIn(b, e.get(b, f.authURL()), "root@example.com")
			if !strings.Contains(p.body, "<code>"+provider.ScopeAdmin+"</code>") && !strings.Contains(p.body, "Administer") {
				t.Errorf("consent page of an admin does not offer torii:admin:\n%s", p.body)
			}
			q = e.callback(e.consent(b, p, "allow"))
			tok, err = conf.Exchange(e.ctx(), q.Get("code"), oauth2.VerifierOption(f.verifier))
			if err != nil {
				t.Fatal(err)
			}
			if !hasAdmin(tok) {
				t.Errorf("admin: granted scope %q, want torii:admin", scopeOf(tok))
			}
		})

		t.Run("refresh after losing admin", func(t *testing.T) {
			tok, err := conf.PasswordCredentialsToken(e.ctx(), "root@example.com", testPassword)
			if err != nil || !hasAdmin(tok) {
				t.Fatalf("password grant = %v (%q), want torii:admin", err, scopeOf(tok))
			}
			refresh := func(rt string) *oauth2.Token {
				t.Helper()
				next, err := conf.TokenSource(e.ctx(), &oauth2.Token{RefreshToken: rt}).Token()
				if err != nil {
					t.Fatalf("refresh: %v", err)
				}
				return next
			}
			tok = refresh(tok.RefreshToken)
			if !hasAdmin(tok) {
				t.Errorf("refresh while admin: scope %q, want torii:admin", scopeOf(tok))
			}
			if _, err := e.srv.accounts.SetRoles(t.Context(), adminID, nil, []string{account.RoleAdmin}); err != nil {
				t.Fatal(err)
			}
			tok = refresh(tok.RefreshToken)
			if hasAdmin(tok) || !slices.Contains(scopeOf(tok), "openid") {
				t.Errorf("refresh after losing admin: scope %q, want openid without torii:admin", scopeOf(tok))
			}
			if in := e.introspect(tok.AccessToken, id, secret); strings.Contains(fmt.Sprint(in["scope"]), provider.ScopeAdmin) {
				t.Errorf("introspected scope after losing admin = %v", in["scope"])
			}
			// The family lost it for good: getting the role back takes a
			// new sign-in.
			if _, err := e.srv.accounts.SetRoles(t.Context(), adminID, []string{account.RoleAdmin}, nil); err != nil {
				t.Fatal(err)
			}
			if tok = refresh(tok.RefreshToken); hasAdmin(tok) {
				t.Errorf("refresh of a family that lost torii:admin: scope %q", scopeOf(tok))
			}
			// Asking a refresh for it back is asking for more than was granted.
			status, body, _ := e.postForm("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken},
				"scope": {"openid " + provider.ScopeAdmin}}, id, secret)
			wantOAuthError(t, status, body, http.StatusBadRequest, "invalid_scope")
		})

		t.Run("client credentials", func(t *testing.T) {
			allowed, allowedSecret := e.client(provider.ClientSpec{ID: "ops", GrantTypes: []string{"client_credentials"}, Scopes: []string{provider.ScopeAdmin}})
			other, otherSecret := e.client(provider.ClientSpec{ID: "reports", GrantTypes: []string{"client_credentials"}, Scopes: []string{provider.ScopeRoles}})
			form := url.Values{"grant_type": {"client_credentials"}, "scope": {provider.ScopeAdmin}}
			status, body, _ := e.postForm("/oauth2/token", form, allowed, allowedSecret)
			if status != http.StatusOK || body["scope"] != provider.ScopeAdmin {
				t.Errorf("client allowed torii:admin = %d %v, want its scope", status, body)
			}
			status, body, _ = e.postForm("/oauth2/token", form, other, otherSecret)
			wantOAuthError(t, status, body, http.StatusBadRequest, "invalid_scope")
		})
	})
}

// The password grant's code step grants torii:admin by the same rule.
func TestAdminScopeCodeStep(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		m := newMFAEnv(t, dbURL, "always")
		m.id, m.secret = m.client(provider.ClientSpec{ID: "console", GrantTypes: []string{"password", "refresh_token"},
			Scopes: []string{"openid", "offline_access", provider.ScopeAdmin}})
		m.passwordForm.Set("scope", "openid offline_access "+provider.ScopeAdmin)
		for _, roles := range [][]string{nil, {account.RoleAdmin}} {
			want := roles != nil
			if _, err := m.srv.accounts.SetRoles(t.Context(), m.sub, roles, nil); err != nil {
				t.Fatal(err)
			}
			token, code := m.mfaToken(t)
			status, body := m.redeem(token, code, m.id, m.secret)
			if status != http.StatusOK {
				t.Fatalf("redeem = %d %v", status, body)
			}
			scope := strings.Fields(fmt.Sprint(body["scope"]))
			if slices.Contains(scope, provider.ScopeAdmin) != want || !slices.Contains(scope, "openid") {
				t.Errorf("roles %q: code step granted %q, want torii:admin %v", roles, scope, want)
			}
		}
	})
}
