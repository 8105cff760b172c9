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
