package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/torii-idp/torii/provider"
)

// TestRPInitiatedLogout covers the end-session endpoint (SECURITY 6, 34).
func TestRPInitiatedLogout(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		e.user("kim@example.com")
		e.user("lee@example.com")
		const bye = "https://rp.example.test/signed-out"
		id, secret := e.client(provider.ClientSpec{ID: "webapp", SkipConsent: true, RedirectURIs: []string{callbackURL}, PostLogoutRedirectURIs: []string{bye}})
		conf := e.oauth2Config(id, secret)
		noFollow := func(b *http.Client) *http.Client {
			c := *b
			c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			return &c
		}
		signedIn := func(b *http.Client) bool {
			f := newCodeFlow(conf)
			p := e.get(noFollow(b), f.authURL(oauthParam("prompt", "none")))
			loc, _ := url.Parse(p.resp.Header.Get("Location"))
			return loc.Query().Get("code") != ""
		}
		logout := func(b *http.Client, q url.Values) *page {
			return e.get(noFollow(b), e.issuer+provider.EndSessionPath+"?"+q.Encode())
		}

		t.Run("genuine hint signs out and returns with state", func(t *testing.T) {
			b := e.browser()
			tok, _ := e.login(conf, b, "kim@example.com")
			p := logout(b, url.Values{"id_token_hint": {tok.Extra("id_token").(string)}, "post_logout_redirect_uri": {bye}, "state": {"after-logout"}})
			if p.status != http.StatusSeeOther || p.resp.Header.Get("Location") != bye+"?state=after-logout" {
				t.Errorf("logout = %d %q", p.status, p.resp.Header.Get("Location"))
			}
			if signedIn(b) {
				t.Error("still signed in after logout")
			}
		})
		t.Run("unregistered post-logout URI", func(t *testing.T) {
			b := e.browser()
			tok, _ := e.login(conf, b, "kim@example.com")
			for _, evil := range []string{"https://evil.example/", "//evil.example", "/\\evil.example", "https:evil.example", bye + "/x"} {
				p := logout(b, url.Values{"id_token_hint": {tok.Extra("id_token").(string)}, "post_logout_redirect_uri": {evil}})
				if p.status != http.StatusBadRequest || p.resp.Header.Get("Location") != "" {
					t.Errorf("logout to %q = %d %q, want a 400 page", evil, p.status, p.resp.Header.Get("Location"))
				}
			}
			if !signedIn(b) {
				t.Error("a rejected logout request signed the user out")
			}
		})
		t.Run("forged or foreign hint asks the user", func(t *testing.T) {
			b := e.browser()
			tok, _ := e.login(conf, b, "kim@example.com")
			other, _ := e.login(conf, e.browser(), "lee@example.com")
			parts := strings.Split(tok.Extra("id_token").(string), ".")
			for name, hint := range map[string]string{
				"alg none":     b64json(map[string]string{"alg": "none"}) + "." + parts[1] + ".",
				"unknown kid":  b64json(map[string]string{"alg": "RS256", "kid": "nope"}) + "." + parts[1] + "." + parts[2],
				"another user": other.Extra("id_token").(string),
				"garbage":      "not-a-token",
			} {
				p := logout(b, url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {bye}})
				if p.status != http.StatusSeeOther || p.resp.Header.Get("Location") != provider.LogoutPath {
					t.Errorf("%s: logout = %d %q, want the confirmation page", name, p.status, p.resp.Header.Get("Location"))
				}
			}
			if !signedIn(b) {
				t.Error("a forged hint signed the user out")
			}
		})
		t.Run("discovery names the endpoint", func(t *testing.T) {
			status, doc, _ := e.do(mustReq("GET", e.issuer+"/.well-known/openid-configuration"))
			if status != 200 || doc["end_session_endpoint"] != e.issuer+provider.EndSessionPath {
				t.Errorf("end_session_endpoint = %v", doc["end_session_endpoint"])
			}
		})
	})
}

func oauthParam(k, v string) oauth2.AuthCodeOption { return oauth2.SetAuthURLParam(k, v) }

// What signing out does to refresh tokens (issue 14, 7c): signing one
// browser out, by its sign-out button or an application's logout, ends that
// browser's session only; refresh tokens (issued only with offline_access,
// access while the user is away: OIDC Core §11) keep working. "Sign out
// everywhere" on the account page ends every session and revokes every
// token of the user.
func TestSignOutAndRefreshTokens(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		e.user("kim@example.com")
		const bye = "https://rp.example.test/signed-out"
		id, secret := e.client(provider.ClientSpec{ID: "webapp", SkipConsent: true, RedirectURIs: []string{callbackURL}, PostLogoutRedirectURIs: []string{bye}})
		conf := e.oauth2Config(id, secret)
		refresh := func(rt string) (*oauth2.Token, error) {
			return conf.TokenSource(e.ctx(), &oauth2.Token{RefreshToken: rt}).Token()
		}
		noFollow := func(b *http.Client) *http.Client {
			c := *b
			c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			return &c
		}

		// The browser's own sign-out button.
		b1 := e.browser()
		tok1, _ := e.login(conf, b1, "kim@example.com")
		if p := e.post(noFollow(b1), e.get(b1, e.issuer+provider.LogoutPath).formWith(t, "csrf")); p.status != http.StatusSeeOther {
			t.Fatalf("sign-out = %d", p.status)
		}
		tok1, err := refresh(tok1.RefreshToken)
		if err != nil {
			t.Fatalf("refresh after the browser signed out = %v, want new tokens (offline access survives)", err)
		}

		// An application's logout (RP-initiated).
		b2 := e.browser()
		tok2, _ := e.login(conf, b2, "kim@example.com")
		q := url.Values{"id_token_hint": {tok2.Extra("id_token").(string)}, "post_logout_redirect_uri": {bye}}
		if p := e.get(noFollow(b2), e.issuer+provider.EndSessionPath+"?"+q.Encode()); p.status != http.StatusSeeOther {
			t.Fatalf("RP-initiated logout = %d", p.status)
		}
		tok2, err = refresh(tok2.RefreshToken)
		if err != nil {
			t.Fatalf("refresh after RP-initiated logout = %v, want new tokens", err)
		}

		// Sign out everywhere, from a third browser's account page.
		b3 := e.browser()
		tok3, _ := e.login(conf, b3, "kim@example.com")
		b4 := e.browser()
		e.login(conf, b4, "kim@example.com")
		account := e.get(b3, e.issuer+"/account")
		var everywhere form
		for _, f := range account.forms(t) {
			if strings.HasSuffix(f.action, "/account/signout-everywhere") {
				everywhere = f
			}
		}
		if everywhere.action == "" {
			t.Fatalf("no Sign out everywhere form on the account page:\n%s", account.body)
		}
		if p := e.post(noFollow(b3), everywhere); p.status != http.StatusSeeOther || !strings.Contains(p.resp.Header.Get("Location"), "signed-out") {
			t.Fatalf("sign out everywhere = %d %q", p.status, p.resp.Header.Get("Location"))
		}
		for name, tok := range map[string]*oauth2.Token{"after browser sign-out": tok1, "after RP logout": tok2, "this browser's": tok3} {
			if _, err := refresh(tok.RefreshToken); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
				t.Errorf("refresh of the %s token after sign out everywhere = %v, want invalid_grant", name, err)
			}
			if in := e.introspect(tok.AccessToken, id, secret); in["active"] != false {
				t.Errorf("access token (%s) after sign out everywhere: introspection %v, want inactive", name, in)
			}
		}
		for name, b := range map[string]*http.Client{"this browser": b3, "another browser": b4} {
			p := e.get(noFollow(b), e.issuer+"/account")
			if p.status != http.StatusSeeOther || !strings.HasPrefix(p.resp.Header.Get("Location"), provider.LoginPath) {
				t.Errorf("%s's account page after sign out everywhere = %d %q, want the sign-in page", name, p.status, p.resp.Header.Get("Location"))
			}
		}
	})
}
