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

// An unknown URL, or a page asked with a method it does not take, gets the
// styled error page with a title and lang, under the pages' headers; the
// API keeps its problems (issue 13: "serve the styled page, for 404 and
// 405 alike").
func TestUnknownURLsStyled(t *testing.T) {
	e := newEnv(t, backends[0].url(t))
	for _, tc := range []struct {
		method, path string
		status       int
		contentType  string
	}{
		{"GET", "/no/such/page", 404, "text/html; charset=utf-8"},
		{"GET", "/login/nope", 404, "text/html; charset=utf-8"},
		{"POST", "/healthz", 405, "text/html; charset=utf-8"},
		{"PUT", "/oauth2/token", 405, "text/html; charset=utf-8"},
		{"GET", "/api/v1/nope", 404, "application/problem+json"},
		{"PUT", "/api/v1/account/password", 405, "application/problem+json"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			resp, err := e.ts.Client().Do(mustReq(tc.method, e.issuer+tc.path))
			if err != nil {
				t.Fatal(err)
			}
			p := readPage(t, resp)
			if p.status != tc.status || resp.Header.Get("Content-Type") != tc.contentType {
				t.Fatalf("%s %s = %d %s, want %d %s", tc.method, tc.path, p.status, resp.Header.Get("Content-Type"), tc.status, tc.contentType)
			}
			if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("X-Request-Id") == "" {
				t.Errorf("headers = %v, want the pages' headers", resp.Header)
			}
			if strings.HasPrefix(tc.contentType, "text/html") {
				if !strings.Contains(p.body, `<html lang="en"`) || !strings.Contains(p.body, "<title>") || strings.Contains(p.body, "404 page not found") {
					t.Errorf("not the styled page:\n%s", p.body)
				}
				if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
					t.Errorf("CSP = %q", resp.Header.Get("Content-Security-Policy"))
				}
			}
		})
	}
}

// The pages allow their one script file and nothing else (issue 13): the
// CSP names script-src 'self' and no inline script, and /static/torii.js
// is served as JavaScript, never sniffed.
func TestPagesScriptPolicy(t *testing.T) {
	e := newEnv(t, backends[0].url(t))
	b := e.browser()
	p := e.get(b, e.issuer+"/login")
	const want = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'"
	if got := p.resp.Header.Get("Content-Security-Policy"); got != want {
		t.Errorf("CSP = %q, want %q", got, want)
	}
	if !strings.Contains(p.body, `<script src="/static/torii.js" defer></script>`) || strings.Contains(p.body, "<script>") {
		t.Errorf("the page does not load torii.js alone:\n%s", p.body)
	}
	js := e.get(b, e.issuer+"/static/torii.js")
	if js.status != http.StatusOK || js.resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" || js.resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("GET /static/torii.js = %d %q", js.status, js.resp.Header.Get("Content-Type"))
	}
}
