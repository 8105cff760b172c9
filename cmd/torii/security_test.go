package main

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/torii-idp/torii/provider"
	"github.com/torii-idp/torii/storage"
)

// The tests in this file follow ../shared/SECURITY.md; each names the items
// it covers as "SEC n".

// authParams are the parameters of a valid authorization request for client
// "webapp", which the tests then break one way or another.
func authParams(verifier string) url.Values {
	return url.Values{
		"response_type":         {"code"},
		"client_id":             {"webapp"},
		"redirect_uri":          {callbackURL},
		"scope":                 {"openid email"},
		"state":                 {"some-state-value"},
		"nonce":                 {"some-nonce-value"},
		"code_challenge":        {oauth2.S256ChallengeFromVerifier(verifier)},
		"code_challenge_method": {"S256"},
	}
}

// rawAuthorize sends an authorization request without following redirects.
func (e *env) rawAuthorize(b *http.Client, q url.Values) *page {
	e.t.Helper()
	noFollow := *b
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return e.get(&noFollow, e.issuer+"/oauth2/auth?"+q.Encode())
}

// signedInBrowser returns a browser signed in as login (after one full
// authorization for client webapp).
func (e *env) signedInBrowser(conf *oauth2.Config, login string) *http.Client {
	e.t.Helper()
	b := e.browser()
	e.login(conf, b, login)
	return b
}

// code obtains an authorization code for conf with a signed-in browser.
func (e *env) code(b *http.Client, q url.Values) url.Values {
	e.t.Helper()
	p := e.rawAuthorize(b, q)
	return e.callback(p)
}

func TestRedirectURIValidation(t *testing.T) { // SEC 1, 2, 3, 4, 19
	e := newEnv(t, backends[0].url(t))
	e.user("alice@example.com")
	e.client(provider.ClientSpec{ID: "webapp", RedirectURIs: []string{callbackURL}})
	e.client(provider.ClientSpec{ID: "two-uris", RedirectURIs: []string{callbackURL, "https://rp.example.test/other"}})
	e.client(provider.ClientSpec{ID: "native", Public: true, RedirectURIs: []string{"http://127.0.0.1/cb"}})
	verifier := oauth2.GenerateVerifier()

	errorPage := []struct {
		name   string
		mutate func(url.Values)
	}{
		{"case differs", func(q url.Values) { q.Set("redirect_uri", strings.ToUpper(callbackURL)) }},
		{"path case differs", func(q url.Values) { q.Set("redirect_uri", "https://rp.example.test/CALLBACK") }},
		{"trailing slash", func(q url.Values) { q.Set("redirect_uri", callbackURL+"/") }},
		{"added query", func(q url.Values) { q.Set("redirect_uri", callbackURL+"?x=1") }},
		{"fragment", func(q url.Values) { q.Set("redirect_uri", callbackURL+"#frag") }},
		{"dot segments", func(q url.Values) { q.Set("redirect_uri", "https://rp.example.test/callback/../x") }},
		{"semicolon dot segments", func(q url.Values) { q.Set("redirect_uri", "https://rp.example.test/callback..;/x") }},
		{"userinfo", func(q url.Values) { q.Set("redirect_uri", "https://rp.example.test@evil.example/callback") }},
		{"other port", func(q url.Values) { q.Set("redirect_uri", "https://rp.example.test:8443/callback") }},
		{"attacker host", func(q url.Values) { q.Set("redirect_uri", "https://evil.example/callback") }},
		{"unknown client", func(q url.Values) { q.Set("client_id", "ghost"); q.Set("redirect_uri", "https://evil.example/cb") }},
		{"missing client", func(q url.Values) { q.Del("client_id"); q.Set("redirect_uri", "https://evil.example/cb") }},
		{"no redirect with two registered", func(q url.Values) { q.Set("client_id", "two-uris"); q.Del("redirect_uri") }},
		{"no redirect, openid", func(q url.Values) { q.Del("redirect_uri") }},
		{"repeated client_id", func(q url.Values) { q.Add("client_id", "two-uris") }},
		{"repeated redirect_uri", func(q url.Values) { q.Add("redirect_uri", "https://evil.example/cb") }},
		{"loopback with query", func(q url.Values) {
			q.Set("client_id", "native")
			q.Set("redirect_uri", "http://127.0.0.1:51234/cb?x=1")
		}},
		{"loopback other path", func(q url.Values) {
			q.Set("client_id", "native")
			q.Set("redirect_uri", "http://127.0.0.1:51234/other")
		}},
		{"loopback lookalike host", func(q url.Values) {
			q.Set("client_id", "native")
			q.Set("redirect_uri", "http://127.0.0.1.evil.com/cb")
		}},
		{"huge parameter", func(q url.Values) { q.Set("scope", strings.Repeat("openid ", 15000)) }},
	}
	for _, tc := range errorPage {
		t.Run(tc.name, func(t *testing.T) {
			q := authParams(verifier)
			tc.mutate(q)
			p := e.rawAuthorize(e.browser(), q)
			if p.status != http.StatusBadRequest || p.resp.Header.Get("Location") != "" || strings.Contains(p.body, "code=") {
				t.Errorf("status %d, Location %q; want a 400 error page and no redirect", p.status, p.resp.Header.Get("Location"))
			}
			if ct := p.resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type %q, want an HTML error page", ct)
			}
		})
	}

	t.Run("loopback port may vary", func(t *testing.T) {
		q := authParams(verifier)
		q.Set("client_id", "native")
		q.Set("redirect_uri", "http://127.0.0.1:51234/cb")
		p := e.rawAuthorize(e.browser(), q)
		if p.status != http.StatusSeeOther || !strings.HasPrefix(p.resp.Header.Get("Location"), provider.LoginPath+"?req=") {
			t.Errorf("status %d Location %q, want a redirect to the login page", p.status, p.resp.Header.Get("Location"))
		}
	})
}

// TestLoopbackRedirectURIs: with http://127.0.0.1/cb registered, only the
// port may vary, and only to a valid port number (1–65535, no leading zero);
// every other difference gets the error page, never a redirect, even for a
// signed-in user whose request would otherwise get a code at once (SEC 2).
func TestLoopbackRedirectURIs(t *testing.T) {
	e := newEnv(t, backends[0].url(t))
	e.user("alice@example.com")
	id, secret := e.client(provider.ClientSpec{ID: "webapp", SkipConsent: true})
	e.client(provider.ClientSpec{ID: "native", Public: true, SkipConsent: true, RedirectURIs: []string{"http://127.0.0.1/cb", "http://[::1]:8080/cb"}})
	b := e.signedInBrowser(e.oauth2Config(id, secret), "alice@example.com")
	verifier := oauth2.GenerateVerifier()
	request := func(redirectURI string, extra url.Values) *page {
		q := authParams(verifier)
		q.Set("client_id", "native")
		q.Set("redirect_uri", redirectURI)
		for k, v := range extra {
			q[k] = v
		}
		return e.rawAuthorize(b, q)
	}

	refused := []struct {
		name, redirectURI string
		extra             url.Values
	}{
		{"user info and a port", "http://x@127.0.0.1:51234/cb", nil},
		{"user info, no port", "http://x@127.0.0.1/cb", nil},
		{"user and password", "http://x:y@127.0.0.1:51234/cb", nil},
		{"empty user info", "http://@127.0.0.1:51234/cb", nil},
		{"user info and a bad scope", "http://x@127.0.0.1:51234/cb", url.Values{"scope": {"openid admin"}}},
		{"port 0", "http://127.0.0.1:0/cb", nil},
		{"port 65536", "http://127.0.0.1:65536/cb", nil},
		{"port 99999", "http://127.0.0.1:99999/cb", nil},
		{"port with a leading zero", "http://127.0.0.1:051234/cb", nil},
		{"port 00080", "http://127.0.0.1:00080/cb", nil},
		{"empty port", "http://127.0.0.1:/cb", nil},
		{"empty port and a bad scope", "http://127.0.0.1:/cb", url.Values{"scope": {"openid admin"}}},
		{"port with a sign", "http://127.0.0.1:+80/cb", nil},
		{"upper-case scheme", "HTTP://127.0.0.1:51234/cb", nil},
		{"encoded path", "http://127.0.0.1:51234/c%62", nil},
		{"empty query", "http://127.0.0.1:51234/cb?", nil},
		{"added query", "http://127.0.0.1:51234/cb?x=1", nil},
		{"other path", "http://127.0.0.1:51234/other", nil},
		{"https", "https://127.0.0.1:51234/cb", nil},
		{"other loopback address", "http://127.0.0.2:51234/cb", nil},
		{"IPv4-mapped IPv6 address", "http://[::ffff:127.0.0.1]:51234/cb", nil},
		{"localhost for the IP", "http://localhost:51234/cb", nil},
		{"IPv6 with user info", "http://x@[::1]:51234/cb", nil},
		{"IPv6 empty port", "http://[::1]:/cb", nil},
		{"IPv6 port 0", "http://[::1]:0/cb", nil},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			p := request(tc.redirectURI, tc.extra)
			if p.status != http.StatusBadRequest || p.resp.Header.Get("Location") != "" || strings.Contains(p.body, "code=") {
				t.Fatalf("redirect_uri %q: status %d, Location %q; want a 400 error page and no redirect", tc.redirectURI, p.status, p.resp.Header.Get("Location"))
			}
			if ct := p.resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type %q, want an HTML error page", ct)
			}
			if !strings.Contains(p.body, "redirect URI") || !strings.Contains(p.body, "(invalid_request)") {
				t.Errorf("error page does not say invalid_request for the redirect URI:\n%s", p.body)
			}
		})
	}

	accepted := []string{
		"http://127.0.0.1/cb",
		"http://127.0.0.1:51234/cb",
		"http://127.0.0.1:1/cb",
		"http://127.0.0.1:65535/cb",
		"http://[::1]:8080/cb",
		"http://[::1]/cb",
		"http://[::1]:51234/cb",
	}
	for _, u := range accepted {
		t.Run("accepted "+u, func(t *testing.T) {
			p := request(u, nil)
			loc := p.resp.Header.Get("Location")
			if p.status != http.StatusSeeOther || !strings.HasPrefix(loc, u+"?") || !strings.Contains(loc, "code=") {
				t.Errorf("redirect_uri %q: status %d, Location %q; want the code sent there", u, p.status, loc)
			}
		})
	}
}

func TestAuthorizeErrorsRedirect(t *testing.T) { // SEC 9, 10, 17, 19, 20, 22, 33
	e := newEnv(t, backends[0].url(t))
	e.user("alice@example.com")
	_, webSecret := e.client(provider.ClientSpec{ID: "webapp"})
	e.client(provider.ClientSpec{ID: "legacy", PKCEOptional: true})
	e.client(provider.ClientSpec{ID: "spa", Public: true, RedirectURIs: []string{callbackURL}})
	verifier := oauth2.GenerateVerifier()
	tests := []struct {
		name      string
		mutate    func(url.Values)
		wantError string
	}{
		{"no PKCE, confidential", func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }, "invalid_request"},
		{"no PKCE, public", func(q url.Values) {
			q.Set("client_id", "spa")
			q.Del("code_challenge")
			q.Del("code_challenge_method")
		}, "invalid_request"},
		{"PKCE plain", func(q url.Values) { q.Set("code_challenge_method", "plain") }, "invalid_request"},
		{"PKCE method omitted", func(q url.Values) { q.Del("code_challenge_method") }, "invalid_request"},
		{"PKCE S512", func(q url.Values) { q.Set("code_challenge_method", "S512") }, "invalid_request"},
		{"PKCE short challenge", func(q url.Values) { q.Set("code_challenge", "abc") }, "invalid_request"},
		{"PKCE bad characters", func(q url.Values) { q.Set("code_challenge", strings.Repeat("+", 43)) }, "invalid_request"},
		{"short state", func(q url.Values) { q.Set("state", "abc") }, "invalid_state"},
		{"short nonce", func(q url.Values) { q.Set("nonce", "abc") }, "insufficient_entropy"},
		{"no state", func(q url.Values) { q.Del("state") }, "invalid_state"},
		{"response_type token", func(q url.Values) { q.Set("response_type", "token") }, "unsupported_response_type"},
		{"no response_type", func(q url.Values) { q.Del("response_type") }, "unsupported_response_type"},
		{"unknown scope", func(q url.Values) { q.Set("scope", "openid admin") }, "invalid_scope"},
		{"repeated scope", func(q url.Values) { q.Add("scope", "profile") }, "invalid_request"},
		{"repeated state", func(q url.Values) { q.Add("state", "another-state") }, "invalid_request"},
		{"request object", func(q url.Values) { q.Set("request", "eyJhbGciOiJub25lIn0.e30.") }, "request_not_supported"},
		{"request_uri", func(q url.Values) { q.Set("request_uri", "https://evil.example/req") }, "request_uri_not_supported"},
		{"prompt none, not signed in", func(q url.Values) { q.Set("prompt", "none") }, "login_required"},
		{"unknown prompt", func(q url.Values) { q.Set("prompt", "sideways") }, "invalid_request"},
		{"response_mode fragment", func(q url.Values) { q.Set("response_mode", "fragment") }, "unsupported_response_mode"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := authParams(verifier)
			tc.mutate(q)
			p := e.rawAuthorize(e.browser(), q)
			if p.status != http.StatusSeeOther {
				t.Fatalf("status %d, want 303 to the client:\n%s", p.status, p.body)
			}
			loc, _ := url.Parse(p.resp.Header.Get("Location"))
			got := loc.Query()
			if !strings.HasPrefix(loc.String(), callbackURL) || got.Get("error") != tc.wantError || got.Get("code") != "" {
				t.Errorf("redirect %s, want error=%s and no code", loc, tc.wantError)
			}
			if got.Get("iss") != e.issuer {
				t.Errorf("error redirect lacks iss=%s: %s", e.issuer, loc)
			}
			if st := q["state"]; len(st) == 1 && len(st[0]) >= 8 && got.Get("state") != st[0] {
				t.Errorf("state not echoed: %q", got.Get("state"))
			}
		})
	}

	t.Run("state echoed byte-exact", func(t *testing.T) {
		conf := e.oauth2Config("webapp", webSecret)
		b := e.signedInBrowser(conf, "alice@example.com")
		q := authParams(verifier)
		q.Set("state", "a&b=%20ü✓/+?#")
		got := e.code(b, q)
		if got.Get("state") != "a&b=%20ü✓/+?#" || got.Get("iss") != e.issuer {
			t.Errorf("callback %v", got)
		}
	})

	t.Run("POST and unknown parameters accepted", func(t *testing.T) { // SEC 21
		conf := e.oauth2Config("webapp", webSecret)
		b := e.signedInBrowser(conf, "alice@example.com")
		q := authParams(verifier)
		q.Set("extra", "foobar")
		q.Set("scope", "email openid")
		resp, err := (&http.Client{Jar: b.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).PostForm(e.issuer+"/oauth2/auth", q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther || loc.Query().Get("code") == "" {
			t.Errorf("POST /oauth2/auth = %d %s, want a code", resp.StatusCode, loc)
		}
	})

	t.Run("discovery", func(t *testing.T) { // SEC 19, 33
		resp, err := e.ts.Client().Get(e.issuer + "/.well-known/openid-configuration")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc map[string]any
		json.NewDecoder(resp.Body).Decode(&doc)
		if doc["issuer"] != e.issuer || doc["authorization_response_iss_parameter_supported"] != true {
			t.Errorf("discovery issuer/iss support = %v %v", doc["issuer"], doc["authorization_response_iss_parameter_supported"])
		}
		algs, _ := json.Marshal(doc["id_token_signing_alg_values_supported"])
		if strings.Contains(string(algs), "none") || !strings.Contains(string(algs), "RS256") {
			t.Errorf("id_token_signing_alg_values_supported = %s", algs)
		}
		methods, _ := json.Marshal(doc["code_challenge_methods_supported"])
		if string(methods) != `["S256"]` {
			t.Errorf("code_challenge_methods_supported = %s", methods)
		}
	})
}

func TestCodeRedemption(t *testing.T) { // SEC 7, 11, 12, 13, 14, 15, 16, 25
	forEachBackend(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		e.user("alice@example.com")
		id, secret := e.client(provider.ClientSpec{ID: "webapp", SkipConsent: true})
		otherID, otherSecret := e.client(provider.ClientSpec{ID: "other", SkipConsent: true})
		legacy, legacySecret := e.client(provider.ClientSpec{ID: "legacy", SkipConsent: true, PKCEOptional: true})
		conf := e.oauth2Config(id, secret)
		b := e.signedInBrowser(conf, "alice@example.com")

		newCode := func(client string) (string, string) {
			v := oauth2.GenerateVerifier()
			q := authParams(v)
			q.Set("scope", "openid email offline_access")
			q.Set("client_id", client)
			return e.code(b, q).Get("code"), v
		}
		redeem := func(code, verifier, client, sec string, extra url.Values) (int, map[string]any) {
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {callbackURL}}
			if verifier != "" {
				form.Set("code_verifier", verifier)
			}
			for k, v := range extra {
				form[k] = v
			}
			status, body, hdr := e.postForm("/oauth2/token", form, client, sec)
			if hdr.Get("Cache-Control") != "no-store" {
				t.Errorf("token response Cache-Control = %q, want no-store", hdr.Get("Cache-Control"))
			}
			return status, body
		}

		t.Run("verifier problems", func(t *testing.T) {
			tests := []struct{ name, verifier string }{
				{"wrong", oauth2.GenerateVerifier()},
				{"missing", ""},
				{"too short", strings.Repeat("a", 42)},
				{"too long", strings.Repeat("a", 129)},
				{"illegal characters", strings.Repeat("a", 42) + "+"},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					code, good := newCode(id)
					status, body := redeem(code, tc.verifier, id, secret, nil)
					wantOAuthError(t, status, body, 400, "invalid_grant")
					// The PKCE session is consumed: the right verifier fails now.
					status, body = redeem(code, good, id, secret, nil)
					wantOAuthError(t, status, body, 400, "invalid_grant")
				})
			}
		})

		t.Run("PKCE downgrade", func(t *testing.T) {
			q := authParams("")
			q.Set("client_id", legacy)
			q.Del("code_challenge")
			q.Del("code_challenge_method")
			code := e.code(b, q).Get("code")
			status, body := redeem(code, oauth2.GenerateVerifier(), legacy, legacySecret, nil)
			wantOAuthError(t, status, body, 400, "invalid_grant")
		})

		t.Run("legacy client without PKCE", func(t *testing.T) {
			q := authParams("")
			q.Set("client_id", legacy)
			q.Del("code_challenge")
			q.Del("code_challenge_method")
			code := e.code(b, q).Get("code")
			if status, body := redeem(code, "", legacy, legacySecret, nil); status != 200 {
				t.Errorf("legacy redemption = %d %v", status, body)
			}
		})

		t.Run("redirect_uri mismatch", func(t *testing.T) {
			code, v := newCode(id)
			status, body := redeem(code, v, id, secret, url.Values{"redirect_uri": {"https://rp.example.test/other"}})
			wantOAuthError(t, status, body, 400, "invalid_grant")
		})

		t.Run("code of another client", func(t *testing.T) {
			code, v := newCode(id)
			status, body := redeem(code, v, otherID, otherSecret, nil)
			wantOAuthError(t, status, body, 400, "invalid_grant")
		})

		t.Run("reuse revokes the first tokens", func(t *testing.T) {
			code, v := newCode(id)
			status, first := redeem(code, v, id, secret, nil)
			if status != 200 {
				t.Fatalf("first redemption = %d %v", status, first)
			}
			status, body := redeem(code, v, id, secret, nil)
			wantOAuthError(t, status, body, 400, "invalid_grant")
			at, rt := first["access_token"].(string), first["refresh_token"].(string)
			if in := e.introspect(at, id, secret); in["active"] != false {
				t.Errorf("access token of a reused code: %v", in)
			}
			if in := e.introspect(rt, id, secret); in["active"] != false {
				t.Errorf("refresh token of a reused code: %v", in)
			}
			req := mustReq("GET", e.issuer+"/userinfo")
			req.Header.Set("Authorization", "Bearer "+at)
			if status, _, _ := e.do(req); status != 401 {
				t.Errorf("userinfo with the revoked token = %d, want 401", status)
			}
		})

		t.Run("20 parallel redemptions", func(t *testing.T) {
			code, v := newCode(id)
			var ok, bad atomic.Int32
			var wg sync.WaitGroup
			for range 20 {
				wg.Go(func() {
					form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {callbackURL}, "code_verifier": {v}}
					req, _ := http.NewRequest("POST", e.issuer+"/oauth2/token", strings.NewReader(form.Encode()))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.SetBasicAuth(id, secret)
					resp, err := e.ts.Client().Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					switch resp.StatusCode {
					case 200:
						ok.Add(1)
					case 400:
						bad.Add(1)
					default:
						t.Errorf("parallel redemption answered %d", resp.StatusCode)
					}
				})
			}
			wg.Wait()
			if ok.Load() != 1 || bad.Load() != 19 {
				t.Errorf("%d successes and %d invalid_grant, want 1 and 19", ok.Load(), bad.Load())
			}
		})

		t.Run("guessed code", func(t *testing.T) {
			status, body := redeem("torii_ac_guess.guess", oauth2.GenerateVerifier(), id, secret, nil)
			wantOAuthError(t, status, body, 400, "invalid_grant")
		})
	})
}

func TestExpiredCode(t *testing.T) { // SEC 16
	e := newEnv(t, backends[0].url(t), func(c *Config, _ *serverOptions) { c.CodeTTL = time.Second })
	e.user("alice@example.com")
	id, secret := e.client(provider.ClientSpec{ID: "webapp", SkipConsent: true})
	conf := e.oauth2Config(id, secret)
	b := e.signedInBrowser(conf, "alice@example.com")
	v := oauth2.GenerateVerifier()
	code := e.code(b, authParams(v)).Get("code")
	time.Sleep(2100 * time.Millisecond)
	_, err := conf.Exchange(e.ctx(), code, oauth2.VerifierOption(v))
	var re *oauth2.RetrieveError
	if !asRetrieveError(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Errorf("expired code: %v, want invalid_grant", err)
	}
}

func asRetrieveError(err error, target **oauth2.RetrieveError) bool {
	re, ok := err.(*oauth2.RetrieveError)
	if ok {
		*target = re
	}
	return ok
}

func TestTokenEndpointBadInput(t *testing.T) { // SEC 20, 23, 24, 25, 55, 56
	forEachBackend(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		id, secret := e.client(provider.ClientSpec{ID: "service", GrantTypes: []string{"client_credentials"}, Scopes: []string{}})
		cc := url.Values{"grant_type": {"client_credentials"}}

		t.Run("wrong secret via basic", func(t *testing.T) {
			status, body, hdr := e.postForm("/oauth2/token", cc, id, "wrong")
			wantOAuthError(t, status, body, 401, "invalid_client")
			if !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Basic") {
				t.Errorf("WWW-Authenticate = %q", hdr.Get("WWW-Authenticate"))
			}
		})
		t.Run("unknown client answers byte-identically", func(t *testing.T) {
			_, wrong, _ := e.postForm("/oauth2/token", cc, id, "wrong")
			_, unknown, _ := e.postForm("/oauth2/token", cc, "ghost", "wrong")
			a, _ := json.Marshal(wrong)
			b, _ := json.Marshal(unknown)
			if string(a) != string(b) {
				t.Errorf("wrong secret %s vs unknown client %s", a, b)
			}
		})
		t.Run("wrong secret in body", func(t *testing.T) {
			status, body, _ := e.postForm("/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {"wrong"}}, "", "")
			wantOAuthError(t, status, body, 401, "invalid_client")
		})

		raw := func(method, path, contentType, body string, basic bool) (int, map[string]any) {
			req, _ := http.NewRequest(method, e.issuer+path, strings.NewReader(body))
			if contentType != "" {
				req.Header.Set("Content-Type", contentType)
			}
			if basic {
				req.SetBasicAuth(id, secret)
			}
			status, m, _ := e.do(req)
			return status, m
		}
		tests := []struct {
			name, method, path, ct, body string
			basic                        bool
			wantStatus                   int
			wantCode                     string
		}{
			{"secret in the query", "POST", "/oauth2/token?client_secret=" + secret, "application/x-www-form-urlencoded", "grant_type=client_credentials&client_id=service", false, 400, "invalid_request"},
			{"header and body credentials", "POST", "/oauth2/token", "application/x-www-form-urlencoded", "grant_type=client_credentials&client_id=service&client_secret=" + url.QueryEscape(secret), true, 400, "invalid_request"},
			{"JSON body", "POST", "/oauth2/token", "application/json", `{"grant_type":"client_credentials"}`, true, 400, "invalid_request"},
			{"no content type", "POST", "/oauth2/token", "", "grant_type=client_credentials", true, 400, "invalid_request"},
			{"repeated grant_type", "POST", "/oauth2/token", "application/x-www-form-urlencoded", "grant_type=client_credentials&grant_type=password", true, 400, "invalid_request"},
			{"unsupported grant", "POST", "/oauth2/token", "application/x-www-form-urlencoded", "grant_type=urn:ietf:params:oauth:grant-type:device_code", true, 400, "unsupported_grant_type"},
			{"implicit grant", "POST", "/oauth2/token", "application/x-www-form-urlencoded", "grant_type=implicit", true, 400, "unsupported_grant_type"},
			{"no grant", "POST", "/oauth2/token", "application/x-www-form-urlencoded", "scope=x", true, 400, "invalid_request"},
			{"bad percent-encoding", "POST", "/oauth2/token", "application/x-www-form-urlencoded", "grant_type=%zz", true, 400, "invalid_request"},
			{"SQL in the grant", "POST", "/oauth2/token", "application/x-www-form-urlencoded", "grant_type=' OR 1=1--", true, 400, "unsupported_grant_type"},
			{"SQL in the refresh token", "POST", "/oauth2/token", "application/x-www-form-urlencoded", "grant_type=refresh_token&refresh_token=" + url.QueryEscape("x'; DROP TABLE oauth2_refresh;--"), true, 400, "unauthorized_client"},
			{"10 kB string", "POST", "/oauth2/token", "application/x-www-form-urlencoded", "grant_type=client_credentials&scope=" + strings.Repeat("a", 10240), true, 400, "invalid_request"},
			{"body over 1 MiB", "POST", "/oauth2/token", "application/x-www-form-urlencoded", "grant_type=client_credentials&x=" + strings.Repeat("a", 1<<20), true, 413, "invalid_request"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				status, body := raw(tc.method, tc.path, tc.ct, tc.body, tc.basic)
				wantOAuthError(t, status, body, tc.wantStatus, tc.wantCode)
			})
		}
		t.Run("GET is not allowed", func(t *testing.T) {
			if status, _ := raw("GET", "/oauth2/token?grant_type=client_credentials", "", "", true); status != http.StatusMethodNotAllowed {
				t.Errorf("GET /oauth2/token = %d, want 405", status)
			}
		})
		t.Run("tables survive injection", func(t *testing.T) {
			if _, err := (&clientCredentialsProbe{e, id, secret}).token(); err != nil {
				t.Errorf("after injection attempts the server no longer issues tokens: %v", err)
			}
		})
	})
}

// TestClientCredentialsNeedsConfidentialClient: a client that may not use
// the client_credentials grant gets 400 unauthorized_client (RFC 6749
// §5.2), whether it is public (with or without the grant in its stored
// grant types) or confidential without the grant (SEC 26).
func TestClientCredentialsNeedsConfidentialClient(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		e.client(provider.ClientSpec{ID: "spa", Public: true, RedirectURIs: []string{callbackURL}})
		webID, webSecret := e.client(provider.ClientSpec{ID: "webapp"})
		// Validate refuses a public client with client_credentials; one
		// may still be in the database (written by an older Torii or by
		// hand).
		err := e.srv.store.CreateClient(t.Context(), &storage.Client{
			ID: "spa-cc", Name: "spa-cc", RedirectURIs: []string{callbackURL}, PostLogoutRedirectURIs: []string{},
			GrantTypes: []string{"authorization_code", "client_credentials"}, ResponseTypes: []string{"code"},
			Scopes: []string{"openid"}, Audience: []string{}, Public: true, TokenFormat: provider.FormatOpaque, IDTokenAlg: provider.AlgRS256,
		})
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name, id, secret string
			form             url.Values
		}{
			{"public client", "", "", url.Values{"client_id": {"spa"}}},
			{"public client with a scope", "", "", url.Values{"client_id": {"spa"}, "scope": {"openid"}}},
			{"public client with the grant stored", "", "", url.Values{"client_id": {"spa-cc"}}},
			{"public client with the grant stored, basic", "spa-cc", "", nil},
			{"confidential client without the grant", webID, webSecret, nil},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				form := url.Values{"grant_type": {"client_credentials"}}
				for k, v := range tc.form {
					form[k] = v
				}
				status, body, _ := e.postForm("/oauth2/token", form, tc.id, tc.secret)
				wantOAuthError(t, status, body, 400, "unauthorized_client")
				if _, ok := body["access_token"]; ok {
					t.Errorf("a token was issued: %v", body)
				}
			})
		}
	})
}

// TestTokenFailureLimit: a client IP whose token requests failed with
// invalid_grant (guessed codes, refresh tokens, passwords) as often as
// TORII_TOKEN_FAILURE_LIMIT allows gets 429 with Retry-After and a JSON
// invalid_request for every token request, a valid one included; another
// IP is not affected, and successful requests spend nothing (SEC 16).
func TestTokenFailureLimit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, func(c *Config, _ *serverOptions) {
			c.TokenFailureLimit = RateLimit{N: 3, Per: time.Hour}
			c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		})
		e.user("alice@example.com")
		id, secret := e.client(provider.ClientSpec{ID: "webapp", SkipConsent: true,
			GrantTypes: []string{"authorization_code", "refresh_token", "password"}})
		svc, svcSecret := e.client(provider.ClientSpec{ID: "service", GrantTypes: []string{"client_credentials"}, Scopes: []string{}})
		tok, _ := e.login(e.oauth2Config(id, secret), e.browser(), "alice@example.com")
		refreshToken := tok.RefreshToken

		// from sends a token request as the client at ip, behind Torii's
		// trusted proxy.
		from := func(ip string, form url.Values, client, sec string) (int, map[string]any, http.Header) {
			req, _ := http.NewRequest("POST", e.issuer+"/oauth2/token", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Forwarded-For", ip)
			req.SetBasicAuth(client, sec)
			return e.do(req)
		}
		clientCredentials := func(ip string) (int, map[string]any, http.Header) {
			return from(ip, url.Values{"grant_type": {"client_credentials"}}, svc, svcSecret)
		}
		refresh := func(ip string) {
			t.Helper()
			status, body, _ := from(ip, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}, id, secret)
			if status != 200 {
				t.Fatalf("refresh from %s = %d %v", ip, status, body)
			}
			refreshToken = body["refresh_token"].(string)
		}
		wantTooMany := func(t *testing.T, status int, body map[string]any, hdr http.Header) {
			t.Helper()
			wantOAuthError(t, status, body, http.StatusTooManyRequests, "invalid_request")
			if secs, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || secs < 1 || secs > 1200 {
				t.Errorf("Retry-After = %q, want 1 to 1200 seconds (3 per hour)", hdr.Get("Retry-After"))
			}
			if d, _ := body["error_description"].(string); !strings.Contains(d, "Too many failed token requests") {
				t.Errorf("error_description = %q", d)
			}
			if hdr.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", hdr.Get("Cache-Control"))
			}
		}

		failures := []struct {
			name string
			ip   string
			fail func(ip string) (int, map[string]any, http.Header)
		}{
			{"wrong codes", "203.0.113.1", func(ip string) (int, map[string]any, http.Header) {
				return from(ip, url.Values{"grant_type": {"authorization_code"}, "code": {"torii_ac_guess." + oauth2.GenerateVerifier()},
					"redirect_uri": {callbackURL}, "code_verifier": {oauth2.GenerateVerifier()}}, id, secret)
			}},
			{"wrong refresh tokens", "203.0.113.2", func(ip string) (int, map[string]any, http.Header) {
				return from(ip, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"torii_rt_guess." + oauth2.GenerateVerifier()}}, id, secret)
			}},
			{"wrong passwords", "203.0.113.3", func(ip string) (int, map[string]any, http.Header) {
				return from(ip, url.Values{"grant_type": {"password"}, "username": {"alice@example.com"}, "password": {"wrong password"}}, id, secret)
			}},
		}
		for _, tc := range failures {
			t.Run(tc.name, func(t *testing.T) {
				for i := range 3 {
					if status, body, _ := tc.fail(tc.ip); status != 400 || body["error"] != "invalid_grant" {
						t.Fatalf("failure %d = %d %v, want 400 invalid_grant", i+1, status, body)
					}
				}
				status, body, hdr := tc.fail(tc.ip)
				wantTooMany(t, status, body, hdr)
				// Every token request from that IP, a valid one too.
				status, body, hdr = clientCredentials(tc.ip)
				wantTooMany(t, status, body, hdr)
				// Another IP is not affected.
				other := tc.ip + "0"
				status, body, _ = tc.fail(other)
				wantOAuthError(t, status, body, 400, "invalid_grant")
				if status, body, _ := clientCredentials(other); status != 200 {
					t.Errorf("client credentials from another IP = %d %v, want 200", status, body)
				}
			})
		}

		t.Run("successes spend nothing", func(t *testing.T) {
			const ip = "198.51.100.7"
			for range 10 {
				if status, body, _ := clientCredentials(ip); status != 200 {
					t.Fatalf("client credentials = %d %v", status, body)
				}
			}
			refresh(ip)
			refresh(ip)
			for i := range 3 {
				status, body, _ := failures[0].fail(ip)
				if status != 400 {
					t.Fatalf("failure %d after successes = %d %v, want 400 invalid_grant", i+1, status, body)
				}
			}
			status, body, hdr := failures[0].fail(ip)
			wantTooMany(t, status, body, hdr)
		})

		t.Run("other errors are not counted", func(t *testing.T) {
			const ip = "198.51.100.8"
			for range 5 {
				status, body, _ := from(ip, url.Values{"grant_type": {"client_credentials"}}, svc, "wrong secret")
				wantOAuthError(t, status, body, 401, "invalid_client")
				status, body, _ = from(ip, url.Values{"grant_type": {"implicit"}}, svc, svcSecret)
				wantOAuthError(t, status, body, 400, "unsupported_grant_type")
			}
			status, body, _ := failures[0].fail(ip)
			wantOAuthError(t, status, body, 400, "invalid_grant")
		})
	})
}

type clientCredentialsProbe struct {
	e          *env
	id, secret string
}

func (p *clientCredentialsProbe) token() (*oauth2.Token, error) {
	status, body, _ := p.e.postForm("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, p.id, p.secret)
	if status != 200 {
		return nil, &oauth2.RetrieveError{ErrorCode: body["error"].(string)}
	}
	return &oauth2.Token{AccessToken: body["access_token"].(string)}, nil
}

func TestRefreshRules(t *testing.T) { // SEC 29, 30
	forEachBackend(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		e.user("alice@example.com")
		id, secret := e.client(provider.ClientSpec{ID: "webapp", SkipConsent: true})
		otherID, otherSecret := e.client(provider.ClientSpec{ID: "other", SkipConsent: true})
		conf := e.oauth2Config(id, secret, "openid", "email", "offline_access")
		refresh := func(rt, client, sec string, extra url.Values) (int, map[string]any) {
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
			for k, v := range extra {
				form[k] = v
			}
			status, body, _ := e.postForm("/oauth2/token", form, client, sec)
			return status, body
		}
		tok, _ := e.login(conf, e.browser(), "alice@example.com")

		status, body := refresh(tok.RefreshToken, otherID, otherSecret, nil)
		wantOAuthError(t, status, body, 400, "invalid_grant")
		status, body = refresh(tok.RefreshToken, id, secret, url.Values{"scope": {"openid email profile"}})
		wantOAuthError(t, status, body, 400, "invalid_scope")
		status, body = refresh(tok.RefreshToken, id, secret, url.Values{"scope": {"openid offline_access"}})
		if status != 200 || body["scope"] != "openid offline_access" {
			t.Fatalf("narrower refresh = %d %v", status, body)
		}

		// A deleted user's refresh tokens die with them.
		tok2, _ := e.login(conf, e.browser(), "alice@example.com")
		u, _ := e.srv.store.UserByLogin(t.Context(), "alice@example.com")
		if err := e.srv.store.DeleteUser(t.Context(), u.ID); err != nil {
			t.Fatal(err)
		}
		status, body = refresh(tok2.RefreshToken, id, secret, nil)
		wantOAuthError(t, status, body, 400, "invalid_grant")
	})
}

func TestIntrospectionAndRevocationRules(t *testing.T) { // SEC 36, 37, 38
	forEachBackend(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		id, secret := e.client(provider.ClientSpec{ID: "a", GrantTypes: []string{"client_credentials"}, Scopes: []string{}})
		bID, bSecret := e.client(provider.ClientSpec{ID: "b", GrantTypes: []string{"client_credentials"}, Scopes: []string{}})
		pub, _ := e.client(provider.ClientSpec{ID: "spa", Public: true, RedirectURIs: []string{callbackURL}})
		issue := func(client, sec string) string {
			_, body, _ := e.postForm("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, client, sec)
			return body["access_token"].(string)
		}
		tokA := issue(id, secret)

		status, body, _ := e.postForm("/oauth2/introspect", url.Values{"token": {tokA}}, "", "")
		wantOAuthError(t, status, body, 401, "invalid_client")
		status, body, _ = e.postForm("/oauth2/introspect", url.Values{"token": {tokA}, "client_id": {pub}}, "", "")
		wantOAuthError(t, status, body, 401, "invalid_client")
		for _, tok := range []string{"garbage", "torii_at_x.y", "", "a.b.c"} {
			status, body, _ := e.postForm("/oauth2/introspect", url.Values{"token": {tok}}, id, secret)
			if tok == "" {
				wantOAuthError(t, status, body, 400, "invalid_request")
				continue
			}
			if status != 200 || body["active"] != false || len(body) != 1 {
				t.Errorf("introspect(%q) = %d %v, want 200 {\"active\":false}", tok, status, body)
			}
		}
		// Any authenticated client may introspect.
		if in := e.introspect(tokA, bID, bSecret); in["active"] != true {
			t.Errorf("introspect by another client = %v", in)
		}

		// Revoking unknown or garbage tokens: 200, twice.
		for range 2 {
			if status, body, _ := e.postForm("/oauth2/revoke", url.Values{"token": {"garbage"}}, id, secret); status != 200 {
				t.Errorf("revoke(garbage) = %d %v", status, body)
			}
		}
		// Client B may not revoke A's token.
		status, body, _ = e.postForm("/oauth2/revoke", url.Values{"token": {tokA}}, bID, bSecret)
		wantOAuthError(t, status, body, 400, "unauthorized_client")
		if in := e.introspect(tokA, id, secret); in["active"] != true {
			t.Errorf("token revoked by another client: %v", in)
		}
		status, body, _ = e.postForm("/oauth2/revoke", url.Values{"token": {tokA}}, id, "wrong")
		wantOAuthError(t, status, body, 401, "invalid_client")
		for range 2 {
			if status, _, _ := e.postForm("/oauth2/revoke", url.Values{"token": {tokA}}, id, secret); status != 200 {
				t.Errorf("revoke own token = %d", status)
			}
		}
		if in := e.introspect(tokA, id, secret); in["active"] != false {
			t.Errorf("revoked token is active: %v", in)
		}
	})
}

func TestUserinfoRules(t *testing.T) { // SEC 39
	e := newEnv(t, backends[0].url(t))
	e.user("alice@example.com")
	id, secret := e.client(provider.ClientSpec{ID: "webapp", SkipConsent: true})
	svc, svcSecret := e.client(provider.ClientSpec{ID: "service", GrantTypes: []string{"client_credentials"}, Scopes: []string{}})
	tok, _ := e.login(e.oauth2Config(id, secret), e.browser(), "alice@example.com")
	_, cc, _ := e.postForm("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, svc, svcSecret)

	tests := []struct {
		name       string
		req        func() *http.Request
		wantStatus int
		wantErr    string
	}{
		{"no token", func() *http.Request { return mustReq("GET", e.issuer+"/userinfo") }, 401, ""},
		{"bad token", func() *http.Request {
			r := mustReq("GET", e.issuer+"/userinfo")
			r.Header.Set("Authorization", "Bearer torii_at_bad.bad")
			return r
		}, 401, "invalid_token"},
		{"token in the URL", func() *http.Request {
			return mustReq("GET", e.issuer+"/userinfo?access_token="+url.QueryEscape(tok.AccessToken))
		}, 400, "invalid_request"},
		{"refresh token as bearer", func() *http.Request {
			r := mustReq("GET", e.issuer+"/userinfo")
			r.Header.Set("Authorization", "Bearer "+tok.RefreshToken)
			return r
		}, 401, "invalid_token"},
		{"client credentials token", func() *http.Request {
			r := mustReq("GET", e.issuer+"/userinfo")
			r.Header.Set("Authorization", "Bearer "+cc["access_token"].(string))
			return r
		}, 403, "insufficient_scope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body, hdr := e.do(tc.req())
			if status != tc.wantStatus {
				t.Errorf("status %d %v, want %d", status, body, tc.wantStatus)
			}
			www := hdr.Get("WWW-Authenticate")
			if tc.wantStatus == 401 && !strings.HasPrefix(www, "Bearer") {
				t.Errorf("WWW-Authenticate = %q", www)
			}
			if tc.wantErr != "" && (body["error"] != tc.wantErr || (tc.wantStatus != 400 && !strings.Contains(www, `error="`+tc.wantErr+`"`))) {
				t.Errorf("error %v / %q, want %s", body, www, tc.wantErr)
			}
		})
	}
}

func TestPromptAndIDTokenHint(t *testing.T) { // SEC 22, 34
	e := newEnv(t, backends[0].url(t))
	e.user("alice@example.com")
	id, secret := e.client(provider.ClientSpec{ID: "webapp", SkipConsent: true})
	conf := e.oauth2Config(id, secret)
	b := e.browser()
	tok, _ := e.login(conf, b, "alice@example.com")
	hint := tok.Extra("id_token").(string)
	op := e.oidcProvider()

	t.Run("prompt=none signed in", func(t *testing.T) {
		q := authParams(oauth2.GenerateVerifier())
		q.Set("prompt", "none")
		q.Set("id_token_hint", hint)
		if got := e.code(b, q); got.Get("code") == "" {
			t.Errorf("prompt=none with a session = %v, want a code", got)
		}
	})
	t.Run("prompt=login asks again", func(t *testing.T) {
		q := authParams(oauth2.GenerateVerifier())
		q.Set("prompt", "login")
		p := e.rawAuthorize(b, q)
		if p.status != http.StatusSeeOther || !strings.Contains(p.resp.Header.Get("Location"), provider.LoginPath) {
			t.Errorf("prompt=login = %d %s, want the login page", p.status, p.resp.Header.Get("Location"))
		}
	})
	t.Run("prompt=login gives a new auth_time", func(t *testing.T) {
		time.Sleep(1100 * time.Millisecond)
		f := newCodeFlow(conf)
		q := e.authorize(b, f.authURL(oauth2.SetAuthURLParam("prompt", "login")), "alice@example.com")
		tok2, err := conf.Exchange(e.ctx(), q.Get("code"), oauth2.VerifierOption(f.verifier))
		if err != nil {
			t.Fatal(err)
		}
		_, c1 := verifyIDToken(t, e, op, id, "RS256", tok)
		_, c2 := verifyIDToken(t, e, op, id, "RS256", tok2)
		if c2.AuthTime <= c1.AuthTime {
			t.Errorf("auth_time after prompt=login = %d, before %d", c2.AuthTime, c1.AuthTime)
		}
	})
	t.Run("max_age=1 forces a login", func(t *testing.T) {
		time.Sleep(2100 * time.Millisecond)
		q := authParams(oauth2.GenerateVerifier())
		q.Set("max_age", "1")
		p := e.rawAuthorize(b, q)
		if p.status != http.StatusSeeOther || !strings.Contains(p.resp.Header.Get("Location"), provider.LoginPath) {
			t.Errorf("max_age=1 = %d %s, want the login page", p.status, p.resp.Header.Get("Location"))
		}
	})

	parts := strings.Split(hint, ".")
	forged := []struct{ name, token string }{
		{"alg none", b64json(map[string]string{"alg": "none"}) + "." + parts[1] + "."},
		{"unknown kid", b64json(map[string]string{"alg": "RS256", "kid": "nope"}) + "." + parts[1] + "." + parts[2]},
		{"HS256", b64json(map[string]string{"alg": "HS256"}) + "." + parts[1] + "." + parts[2]},
		{"jku", b64json(map[string]string{"alg": "RS256", "jku": "https://evil.example/jwks"}) + "." + parts[1] + "." + parts[2]},
	}
	for _, tc := range forged {
		t.Run("forged hint "+tc.name, func(t *testing.T) {
			q := authParams(oauth2.GenerateVerifier())
			q.Set("prompt", "none")
			q.Set("id_token_hint", tc.token)
			got := e.code(b, q)
			if got.Get("code") != "" || got.Get("error") == "" {
				t.Errorf("forged id_token_hint accepted: %v", got)
			}
		})
	}
}

func TestConsentDeny(t *testing.T) {
	e := newEnv(t, backends[0].url(t))
	e.user("alice@example.com")
	id, secret := e.client(provider.ClientSpec{ID: "webapp", Name: "Deny Me"})
	f := newCodeFlow(e.oauth2Config(id, secret))
	b := e.browser()
	p := e.get(b, f.authURL())
	p = e.signIn(b, p, "alice@example.com")
	if !strings.Contains(p.body, "Deny Me") {
		t.Errorf("consent page does not name the client:\n%s", p.body)
	}
	p = e.consent(b, p, "deny")
	q := e.callback(p)
	if q.Get("error") != "access_denied" || q.Get("state") != f.state || q.Get("iss") != e.issuer || q.Get("code") != "" {
		t.Errorf("deny callback = %v", q)
	}
}

func TestFlowBoundToBrowser(t *testing.T) { // SEC 58
	e := newEnv(t, backends[0].url(t))
	e.user("alice@example.com")
	e.user("mallory@example.com")
	id, secret := e.client(provider.ClientSpec{ID: "webapp", SkipConsent: true})
	f := newCodeFlow(e.oauth2Config(id, secret))
	attacker := e.browser()
	p := e.rawAuthorize(attacker, mustParseQuery(t, f.authURL()))
	loginURL := e.issuer + p.resp.Header.Get("Location")
	// The victim opens the attacker's login link and signs in.
	victim := e.browser()
	lp := e.get(victim, loginURL)
	res := e.signIn(victim, lp, "alice@example.com")
	if res.status != http.StatusForbidden || res.resp.Header.Get("Location") != "" {
		t.Errorf("finishing a flow started in another browser = %d (Location %q), want 403", res.status, res.resp.Header.Get("Location"))
	}
}

func mustParseQuery(t *testing.T, u string) url.Values {
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return parsed.Query()
}

func TestNoSecretsInLogs(t *testing.T) { // SEC 61
	e := newEnv(t, backends[0].url(t))
	e.user("alice@example.com")
	id, secret := e.client(provider.ClientSpec{ID: "webapp", GrantTypes: []string{"authorization_code", "refresh_token", "password"}})
	conf := e.oauth2Config(id, secret)
	b := e.browser()
	f := newCodeFlow(conf)
	q := e.authorize(b, f.authURL(), "alice@example.com")
	code := q.Get("code")
	tok, err := conf.Exchange(e.ctx(), code, oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatal(err)
	}
	tok2, err := conf.TokenSource(e.ctx(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	e.introspect(tok2.AccessToken, id, secret)
	conf.Exchange(e.ctx(), code, oauth2.VerifierOption(f.verifier)) // reuse, logged as refused
	conf.PasswordCredentialsToken(e.ctx(), "alice@example.com", "wrong password here")
	e.postForm("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, id, "wrong-secret-value")
	logs := e.logs.String()
	if !strings.Contains(logs, "http request") {
		t.Fatal("no access log captured")
	}
	for name, s := range map[string]string{
		"password": testPassword, "wrong password": "wrong password here", "code": code, "access token": tok.AccessToken,
		"refresh token": tok.RefreshToken, "ID token": tok.Extra("id_token").(string), "client secret": secret,
		"wrong secret": "wrong-secret-value", "verifier": f.verifier, "new access token": tok2.AccessToken,
	} {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("the logs contain the %s", name)
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	e := newEnv(t, backends[0].url(t))
	for _, path := range []string{"/healthz", "/readyz"} {
		if status, _, _ := e.do(mustReq("GET", e.issuer+path)); status != 200 {
			t.Errorf("%s = %d", path, status)
		}
	}
	e.srv.ready.Store(false)
	if status, _, _ := e.do(mustReq("GET", e.issuer+"/readyz")); status != 503 {
		t.Errorf("/readyz while shutting down = %d, want 503", status)
	}
	e.srv.ready.Store(true)
	e.srv.store.Close()
	if status, _, _ := e.do(mustReq("GET", e.issuer+"/readyz")); status != 503 {
		t.Errorf("/readyz with the database closed = %d, want 503", status)
	}
	if status, _, _ := e.do(mustReq("GET", e.issuer+"/healthz")); status != 200 {
		t.Errorf("/healthz with the database closed = %d, want 200", status)
	}
}

func b64json(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}
