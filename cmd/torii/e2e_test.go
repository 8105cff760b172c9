package main

import (
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/torii-idp/torii/provider"
)

// idClaims are the ID token claims the tests look at.
type idClaims struct {
	Issuer   string   `json:"iss"`
	Subject  string   `json:"sub"`
	Audience []string `json:"aud"`
	Azp      string   `json:"azp"`
	AMR      []string `json:"amr"`
	ACR      string   `json:"acr"`
	AuthTime int64    `json:"auth_time"`
	IssuedAt int64    `json:"iat"`
	Expiry   int64    `json:"exp"`
	Nonce    string   `json:"nonce"`
	AtHash   string   `json:"at_hash"`
	Email    string   `json:"email"`
	Verified bool     `json:"email_verified"`
}

func verifyIDToken(t *testing.T, e *env, p *oidc.Provider, clientID, alg string, tok *oauth2.Token) (*oidc.IDToken, idClaims) {
	t.Helper()
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		t.Fatalf("token response has no id_token")
	}
	v := p.Verifier(&oidc.Config{ClientID: clientID, SupportedSigningAlgs: []string{alg}})
	idt, err := v.Verify(e.ctx(), raw)
	if err != nil {
		t.Fatalf("ID token does not verify: %v", err)
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			t.Errorf("at_hash does not match the access token: %v", err)
		}
	} else {
		t.Error("ID token has no at_hash")
	}
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
	if err != nil || jws.Signatures[0].Protected.KeyID == "" {
		t.Errorf("ID token header has no kid (%v)", err)
	}
	return idt, c
}

func TestAuthorizationCodeFlow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		sub := e.user("alice@example.com")
		id, secret := e.client(provider.ClientSpec{ID: "webapp", Name: "Web App"})
		conf := e.oauth2Config(id, secret)
		op := e.oidcProvider()
		b := e.browser()

		// The whole browser flow: login form, consent, code, exchange.
		f := newCodeFlow(conf)
		before := time.Now().Add(-time.Second).Unix()
		q := e.authorize(b, f.authURL(), "Alice@Example.com")
		if q.Get("state") != f.state || q.Get("iss") != e.issuer || q.Get("code") == "" {
			t.Fatalf("callback = %v", q)
		}
		tok, err := conf.Exchange(e.ctx(), q.Get("code"), oauth2.VerifierOption(f.verifier))
		if err != nil {
			t.Fatalf("Exchange: %v", err)
		}
		if tok.RefreshToken == "" || !strings.HasPrefix(tok.AccessToken, "torii_at_") {
			t.Errorf("tokens: access %q…, refresh present %v", tok.AccessToken[:12], tok.RefreshToken != "")
		}
		idt, c := verifyIDToken(t, e, op, id, "RS256", tok)
		if c.Subject != sub || strings.Contains(c.Subject, "@") {
			t.Errorf("sub = %q, want the opaque user ID %q", c.Subject, sub)
		}
		if c.Nonce != f.nonce || c.Azp != id || !slices.Equal(c.AMR, []string{"pwd"}) || c.AuthTime < before ||
			c.Email != "alice@example.com" || !c.Verified || idt.Issuer != e.issuer || !slices.Equal(c.Audience, []string{id}) {
			t.Errorf("ID token claims = %+v", c)
		}
		if c.Expiry-c.IssuedAt > int64(time.Hour/time.Second) {
			t.Errorf("exp-iat = %ds, longer than the configured 1h", c.Expiry-c.IssuedAt)
		}

		// Single sign-on: a second authorization needs no login and no consent.
		f2 := newCodeFlow(conf)
		p := e.get(b, f2.authURL())
		if q2 := e.callback(p); q2.Get("code") == "" || q2.Get("state") != f2.state {
			t.Errorf("second authorization did not return a code at once: %v", q2)
		}

		// Userinfo, GET and POST.
		ui, err := op.UserInfo(e.ctx(), oauth2.StaticTokenSource(tok))
		if err != nil {
			t.Fatalf("UserInfo: %v", err)
		}
		var uc map[string]any
		ui.Claims(&uc)
		if ui.Subject != sub || ui.Email != "alice@example.com" || !ui.EmailVerified || uc["name"] != "Test alice@example.com" {
			t.Errorf("userinfo = %v", uc)
		}
		req, _ := http.NewRequest("POST", e.issuer+"/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		if status, body, _ := e.do(req); status != 200 || body["sub"] != sub {
			t.Errorf("POST userinfo = %d %v", status, body)
		}

		// Introspection.
		in := e.introspect(tok.AccessToken, id, secret)
		if in["active"] != true || in["sub"] != sub || in["client_id"] != id || in["token_type"] != "Bearer" ||
			!strings.Contains(in["scope"].(string), "openid") {
			t.Errorf("introspect(access) = %v", in)
		}
		if in := e.introspect(tok.RefreshToken, id, secret); in["active"] != true || in["token_use"] != "refresh_token" {
			t.Errorf("introspect(refresh) = %v", in)
		}

		// Refresh rotates the refresh token; the new ID token keeps the
		// identity and auth_time, gets a new iat and no nonce.
		time.Sleep(1100 * time.Millisecond)
		tok2, err := conf.TokenSource(e.ctx(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if tok2.RefreshToken == "" || tok2.RefreshToken == tok.RefreshToken || tok2.AccessToken == tok.AccessToken {
			t.Fatal("refresh did not rotate the tokens")
		}
		_, c2 := verifyIDToken(t, e, op, id, "RS256", tok2)
		if c2.Subject != c.Subject || c2.AuthTime != c.AuthTime || c2.Azp != id || c2.Nonce != "" || c2.IssuedAt <= c.IssuedAt {
			t.Errorf("refreshed ID token = %+v (first %+v)", c2, c)
		}
		// The rotated-away access token is dead, the new one lives.
		if in := e.introspect(tok.AccessToken, id, secret); in["active"] != false || len(in) != 1 {
			t.Errorf("old access token after refresh: %v", in)
		}
		if in := e.introspect(tok2.AccessToken, id, secret); in["active"] != true {
			t.Errorf("new access token: %v", in)
		}

		// Reusing the old refresh token fails and revokes the whole family.
		status, body, _ := e.postForm("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, id, secret)
		wantOAuthError(t, status, body, 400, "invalid_grant")
		if in := e.introspect(tok2.RefreshToken, id, secret); in["active"] != false {
			t.Errorf("new refresh token after reuse of the old one: %v", in)
		}
		if in := e.introspect(tok2.AccessToken, id, secret); in["active"] != false {
			t.Errorf("new access token after reuse of the old refresh token: %v", in)
		}
		if _, err := op.UserInfo(e.ctx(), oauth2.StaticTokenSource(tok2)); err == nil {
			t.Error("userinfo accepted a token of a revoked family")
		}

		// A fresh grant, then revocation (RFC 7009) of its refresh token
		// ends its access token too.
		tok3, _ := e.login(conf, b, "alice@example.com")
		status, body, _ = e.postForm("/oauth2/revoke", url.Values{"token": {tok3.RefreshToken}}, id, secret)
		if status != 200 {
			t.Fatalf("revoke = %d %v", status, body)
		}
		if in := e.introspect(tok3.AccessToken, id, secret); in["active"] != false {
			t.Errorf("access token after revoking its refresh token: %v", in)
		}
		status, body, _ = e.postForm("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok3.RefreshToken}}, id, secret)
		wantOAuthError(t, status, body, 400, "invalid_grant")
	})
}

func TestSigningAlgorithms(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		e.user("bob@example.com")
		op := e.oidcProvider()
		for _, alg := range provider.Algorithms {
			t.Run(alg, func(t *testing.T) {
				id, secret := e.client(provider.ClientSpec{ID: "app-" + strings.ToLower(alg), IDTokenAlg: alg, SkipConsent: true})
				conf := e.oauth2Config(id, secret)
				tok, _ := e.login(conf, e.browser(), "bob@example.com")
				verifyIDToken(t, e, op, id, alg, tok)
				tok2, err := conf.TokenSource(e.ctx(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
				if err != nil {
					t.Fatal(err)
				}
				verifyIDToken(t, e, op, id, alg, tok2)
			})
		}
	})
}

func TestJWTAccessTokens(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		id, secret := e.client(provider.ClientSpec{ID: "api-client", GrantTypes: []string{"client_credentials"}, Scopes: []string{}, TokenFormat: "jwt", IDTokenAlg: "ES256"})
		cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: e.issuer + "/oauth2/token"}
		tok, err := cc.Token(e.ctx())
		if err != nil {
			t.Fatalf("client credentials: %v", err)
		}
		// An RFC 9068 token, verifiable with the JWKS.
		jws, err := jose.ParseSigned(tok.AccessToken, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatalf("access token is not an ES256 JWS: %v", err)
		}
		if typ := jws.Signatures[0].Protected.ExtraHeaders["typ"]; typ != "at+jwt" {
			t.Errorf("typ = %v, want at+jwt", typ)
		}
		ks := oidc.NewRemoteKeySet(e.ctx(), e.issuer+"/.well-known/jwks.json")
		payload, err := ks.VerifySignature(e.ctx(), tok.AccessToken)
		if err != nil {
			t.Fatalf("JWKS does not verify the access token: %v", err)
		}
		for _, claim := range []string{`"iss":"` + e.issuer + `"`, `"sub":"api-client"`, `"client_id":"api-client"`, `"aud":["api-client"]`, `"jti":`, `"exp":`, `"iat":`} {
			if !strings.Contains(string(payload), claim) {
				t.Errorf("access token claims %s lack %s", payload, claim)
			}
		}
		// Still introspectable and revocable.
		if in := e.introspect(tok.AccessToken, id, secret); in["active"] != true || in["sub"] != id {
			t.Errorf("introspect = %v", in)
		}
		if status, _, _ := e.postForm("/oauth2/revoke", url.Values{"token": {tok.AccessToken}}, id, secret); status != 200 {
			t.Fatalf("revoke = %d", status)
		}
		if in := e.introspect(tok.AccessToken, id, secret); in["active"] != false {
			t.Errorf("revoked JWT access token introspects %v", in)
		}
	})
}

func TestClientCredentials(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		id, secret := e.client(provider.ClientSpec{ID: "service", GrantTypes: []string{"client_credentials"}, Scopes: []string{"profile"}})
		for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
			cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: e.issuer + "/oauth2/token", Scopes: []string{"profile"}, AuthStyle: style}
			tok, err := cc.Token(e.ctx())
			if err != nil {
				t.Fatalf("client credentials (auth style %d): %v", style, err)
			}
			if tok.RefreshToken != "" {
				t.Error("client credentials issued a refresh token")
			}
			if in := e.introspect(tok.AccessToken, id, secret); in["active"] != true || in["sub"] != id || in["scope"] != "profile" {
				t.Errorf("introspect = %v", in)
			}
		}
		// A scope the client may not have.
		status, body, _ := e.postForm("/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"email"}}, id, secret)
		wantOAuthError(t, status, body, 400, "invalid_scope")
		// A client not allowed the grant.
		other, osecret := e.client(provider.ClientSpec{ID: "webapp"})
		status, body, _ = e.postForm("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, other, osecret)
		wantOAuthError(t, status, body, 400, "unauthorized_client")
	})
}

func TestPasswordGrant(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		sub := e.user("carol@example.com")
		e.user("dave@example.com")
		id, secret := e.client(provider.ClientSpec{ID: "first-party", GrantTypes: []string{"password", "refresh_token"}})
		conf := e.oauth2Config(id, secret, "openid", "email", "offline_access")
		tok, err := conf.PasswordCredentialsToken(e.ctx(), "Carol@Example.com", testPassword)
		if err != nil {
			t.Fatalf("password grant: %v", err)
		}
		if in := e.introspect(tok.AccessToken, id, secret); in["active"] != true || in["sub"] != sub {
			t.Errorf("introspect = %v", in)
		}
		if tok.RefreshToken == "" {
			t.Fatal("no refresh token with offline_access")
		}
		if _, err := conf.TokenSource(e.ctx(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
			t.Errorf("refresh of a password-grant token: %v", err)
		}

		grant := func(user, pw string) (int, map[string]any) {
			status, body, _ := e.postForm("/oauth2/token", url.Values{"grant_type": {"password"}, "username": {user}, "password": {pw}, "scope": {"openid"}}, id, secret)
			return status, body
		}
		// Unknown user, wrong password: the same answer.
		s1, b1 := grant("nobody@example.com", "whatever-password")
		s2, b2 := grant("dave@example.com", "wrong-password")
		wantOAuthError(t, s1, b1, 400, "invalid_grant")
		if s1 != s2 || b1["error_description"] != b2["error_description"] {
			t.Errorf("unknown user (%d %v) and wrong password (%d %v) answer differently", s1, b1, s2, b2)
		}
		// Lockout: after 5 wrong passwords the right one fails too, the same way.
		for range 4 {
			grant("dave@example.com", "wrong-password")
		}
		s3, b3 := grant("dave@example.com", testPassword)
		if s3 != s1 || b3["error_description"] != b1["error_description"] {
			t.Errorf("locked account with the right password = %d %v, want the generic failure", s3, b3)
		}
		// A client without the grant.
		other, osecret := e.client(provider.ClientSpec{ID: "webapp"})
		status, body, _ := e.postForm("/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"carol@example.com"}, "password": {testPassword}}, other, osecret)
		wantOAuthError(t, status, body, 400, "unauthorized_client")
	})
}

func TestKeyRotation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		e.user("erin@example.com")
		id, secret := e.client(provider.ClientSpec{ID: "webapp", SkipConsent: true})
		conf := e.oauth2Config(id, secret)
		op := e.oidcProvider()
		tok1, _ := e.login(conf, e.browser(), "erin@example.com")
		raw1 := tok1.Extra("id_token").(string)

		added, err := e.srv.provider.Keys().Rotate(e.t.Context())
		if err != nil || len(added) != 3 {
			t.Fatalf("Rotate = %v, %v", added, err)
		}
		tok2, _ := e.login(conf, e.browser(), "erin@example.com")
		raw2 := tok2.Extra("id_token").(string)
		kid := func(raw string) string {
			jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
			if err != nil {
				t.Fatal(err)
			}
			return jws.Signatures[0].Protected.KeyID
		}
		var newRS string
		for _, k := range added {
			if k.Alg == "RS256" {
				newRS = k.KID
			}
		}
		if kid(raw2) != newRS || kid(raw1) == newRS {
			t.Errorf("kids: before %s, after %s, new key %s", kid(raw1), kid(raw2), newRS)
		}
		// A fresh relying party still verifies the old token and the new one.
		op2 := e.oidcProvider()
		for i, raw := range []string{raw1, raw2} {
			if _, err := op2.Verifier(&oidc.Config{ClientID: id}).Verify(e.ctx(), raw); err != nil {
				t.Errorf("token %d does not verify after rotation: %v", i+1, err)
			}
		}
		_ = op
		// The JWKS publishes both generations: 6 keys, unique kids.
		var set jose.JSONWebKeySet
		status, _, _ := e.do(mustReq("GET", e.issuer+"/.well-known/jwks.json"))
		if status != 200 {
			t.Fatal("JWKS unavailable")
		}
		resp, err := e.ts.Client().Get(e.issuer + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := jsonDecode(resp.Body, &set); err != nil || len(set.Keys) != 6 {
			t.Errorf("JWKS after rotation has %d keys (%v), want 6", len(set.Keys), err)
		}
	})
}

// testClock is a clock the tests move forward.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// TestJWKSCacheCoversKeyActivation: a relying party that caches the JWKS as
// long as its Cache-Control allows can verify every token: a rotated key
// starts signing only after the last JWKS served without it, by any node,
// has expired from every cache (issue 14 item 6, SECURITY R11).
func TestJWKSCacheCoversKeyActivation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		clk := &testClock{}
		// serve's key settings, on a clock the test moves.
		e := newEnv(t, dbURL, func(_ *Config, so *serverOptions) { so.Keys = provider.KeysConfig{Now: clk.Now} })
		other := e.addNode()
		jwks := func(node int) (maxAge time.Duration, kids string) {
			req := mustReq("GET", e.issuer+"/.well-known/jwks.json")
			req.Header.Set("X-Test-Node", strconv.Itoa(node))
			resp, err := e.ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			cc := resp.Header.Get("Cache-Control")
			age, ok := strings.CutPrefix(cc, "public, max-age=")
			secs, err := strconv.Atoi(age)
			if !ok || err != nil || secs <= 0 {
				t.Fatalf("JWKS Cache-Control = %q, want public, max-age=N", cc)
			}
			body, _ := io.ReadAll(resp.Body)
			return time.Duration(secs) * time.Second, string(body)
		}
		maxAge, _ := jwks(0)

		added, err := e.srv.provider.Keys().Rotate(t.Context(), provider.AlgRS256)
		if err != nil || len(added) != 1 {
			t.Fatalf("Rotate = %v, %v", added, err)
		}
		key := added[0]
		// The other node serves its key set as it last read it; find the
		// last moment it serves a JWKS without the new key.
		var lastWithout time.Time
		for {
			now := clk.Now()
			age, doc := jwks(other)
			if strings.Contains(doc, key.KID) {
				break
			}
			lastWithout, maxAge = now, max(maxAge, age)
			if now.Sub(key.CreatedAt) > time.Hour {
				t.Fatalf("an hour after the rotation the other node still serves a JWKS without the new key")
			}
			clk.Advance(time.Second)
		}
		if expired := lastWithout.Add(maxAge); key.SignsFrom.Before(expired) {
			t.Errorf("key %s created %s starts signing %s after, but a JWKS without it (served %s after, max-age %s) is cached until %s after",
				key.KID, key.CreatedAt.Format(time.RFC3339), key.SignsFrom.Sub(key.CreatedAt), lastWithout.Sub(key.CreatedAt), maxAge, expired.Sub(key.CreatedAt))
		}
		// SignsFrom is when the key really starts signing.
		state := func() string {
			infos, err := e.srv.provider.Keys().List(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for _, ki := range infos {
				if ki.KID == key.KID {
					return ki.State
				}
			}
			return "missing"
		}
		clk.Advance(key.SignsFrom.Sub(clk.Now()) - time.Second)
		if s := state(); s != "next" {
			t.Errorf("a second before %s the new key is %q, want next", key.SignsFrom, s)
		}
		clk.Advance(time.Second)
		if s := state(); s != provider.KeyActive {
			t.Errorf("at %s the new key is %q, want active", key.SignsFrom, s)
		}
	})
}

// TestRestart checks that keys, tokens and revocations survive a restart
// on the same database (SECURITY R2, R4).
func TestRestart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		e.user("frank@example.com")
		id, secret := e.client(provider.ClientSpec{ID: "webapp", SkipConsent: true})
		conf := e.oauth2Config(id, secret)
		b := e.browser()
		tok, _ := e.login(conf, b, "frank@example.com")
		revoked, _ := e.login(conf, e.browser(), "frank@example.com")
		if status, _, _ := e.postForm("/oauth2/revoke", url.Values{"token": {revoked.RefreshToken}}, id, secret); status != 200 {
			t.Fatal("revoke failed")
		}
		used, _ := e.login(conf, e.browser(), "frank@example.com")
		if _, err := conf.TokenSource(e.ctx(), &oauth2.Token{RefreshToken: used.RefreshToken}).Token(); err != nil {
			t.Fatal(err)
		}
		before := jwksKIDs(t, e)

		e.restart()
		if after := jwksKIDs(t, e); after != before {
			t.Errorf("JWKS changed across restart: %s → %s", before, after)
		}
		if in := e.introspect(tok.AccessToken, id, secret); in["active"] != true {
			t.Errorf("token from before the restart: %v", in)
		}
		if in := e.introspect(revoked.AccessToken, id, secret); in["active"] != false {
			t.Errorf("revoked token after restart: %v", in)
		}
		if _, err := e.oidcProvider().Verifier(&oidc.Config{ClientID: id}).Verify(e.ctx(), tok.Extra("id_token").(string)); err != nil {
			t.Errorf("ID token from before the restart: %v", err)
		}
		// A rotated-away refresh token is still recognised as reuse.
		status, body, _ := e.postForm("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {used.RefreshToken}}, id, secret)
		wantOAuthError(t, status, body, 400, "invalid_grant")
		// The browser session survives too: no login needed.
		f := newCodeFlow(conf)
		if q := e.callback(e.get(b, f.authURL(oauth2.SetAuthURLParam("prompt", "none")))); q.Get("code") == "" {
			t.Errorf("prompt=none after restart = %v, want a code", q)
		}
	})
}

// TestTwoNodes runs two Torii nodes on one database behind one issuer
// (SECURITY R5).
func TestTwoNodes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		b2 := e.addNode()
		e.user("gina@example.com")
		id, secret := e.client(provider.ClientSpec{ID: "webapp", SkipConsent: true})
		conf := e.oauth2Config(id, secret)
		tok, _ := e.login(conf, e.browser(), "gina@example.com")
		if in := e.introspectVia(b2, tok.AccessToken, id, secret); in["active"] != true {
			t.Errorf("node 2 does not know node 1's token: %v", in)
		}
		status, rotated, _ := e.postFormVia(b2, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, id, secret)
		if status != 200 {
			t.Fatalf("refresh on node 2 = %d %v", status, rotated)
		}
		status, body, _ := e.postFormVia(0, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, id, secret)
		wantOAuthError(t, status, body, 400, "invalid_grant")
		for _, k := range []string{"access_token", "refresh_token"} {
			if in := e.introspectVia(b2, rotated[k].(string), id, secret); in["active"] != false {
				t.Errorf("reuse on node 1 did not revoke node 2's %s: %v", k, in)
			}
		}
	})
}

func jwksKIDs(t *testing.T, e *env) string {
	t.Helper()
	resp, err := e.ts.Client().Get(e.issuer + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := jsonDecode(resp.Body, &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.KeyID)
	}
	slices.Sort(kids)
	return strings.Join(kids, ",")
}

// TestDatabaseOutage: with the database gone, the protocol endpoints and the
// login page fail closed with 503, never a token, never a panic (SECURITY R9).
func TestDatabaseOutage(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		e.user("hal@example.com")
		id, secret := e.client(provider.ClientSpec{ID: "webapp", GrantTypes: []string{"authorization_code", "refresh_token", "client_credentials"}, SkipConsent: true})
		conf := e.oauth2Config(id, secret)
		tok, _ := e.login(conf, e.browser(), "hal@example.com")
		e.srv.store.Close()

		status, body, _ := e.postForm("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, id, secret)
		wantOAuthError(t, status, body, 503, "temporarily_unavailable")
		status, body, _ = e.postForm("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, id, secret)
		wantOAuthError(t, status, body, 503, "temporarily_unavailable")
		status, body, _ = e.postForm("/oauth2/introspect", url.Values{"token": {tok.AccessToken}}, id, secret)
		wantOAuthError(t, status, body, 503, "temporarily_unavailable")
		status, body, _ = e.postForm("/oauth2/revoke", url.Values{"token": {tok.AccessToken}}, id, secret)
		wantOAuthError(t, status, body, 503, "temporarily_unavailable")
		req := mustReq("GET", e.issuer+"/userinfo")
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		if status, _, _ := e.do(req); status != 503 {
			t.Errorf("userinfo = %d, want 503", status)
		}
		if p := e.get(e.browser(), e.issuer+"/login"); p.status != 200 {
			// The bare login page needs no database.
			t.Errorf("GET /login = %d", p.status)
		}
		p := e.get(e.browser(), newCodeFlow(conf).authURL())
		if p.status != 503 && p.status != 400 {
			t.Errorf("authorization with the database down = %d, want a 503 page", p.status)
		}
		if strings.Contains(e.logs.String(), "panic") {
			t.Error("a handler panicked")
		}
	})
}

// TestConcurrentLoad: 100 parallel token requests on the SQLite default
// all succeed: no "database is locked" (SECURITY R12).
func TestConcurrentLoad(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		e.user("ivy@example.com")
		id, secret := e.client(provider.ClientSpec{ID: "app", GrantTypes: []string{"password", "refresh_token", "client_credentials"}})
		conf := e.oauth2Config(id, secret, "openid", "offline_access")
		var refresh []string
		for range 20 {
			tok, err := conf.PasswordCredentialsToken(e.ctx(), "ivy@example.com", testPassword)
			if err != nil {
				t.Fatal(err)
			}
			refresh = append(refresh, tok.RefreshToken)
		}
		var wg sync.WaitGroup
		var failed atomic.Int32
		for i := range 100 {
			wg.Go(func() {
				form := url.Values{"grant_type": {"client_credentials"}}
				if i < len(refresh) {
					form = url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh[i]}}
				}
				req, _ := http.NewRequest("POST", e.issuer+"/oauth2/token", strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(id, secret)
				resp, err := e.ts.Client().Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
				}
			})
		}
		wg.Wait()
		if n := failed.Load(); n > 0 {
			t.Errorf("%d of 100 parallel token requests failed", n)
		}
		if strings.Contains(e.logs.String(), "database is locked") {
			t.Error("SQLite reported a locked database")
		}
	})
}

// TestNoNonce: a code flow without a nonce succeeds and its ID token has
// none (SECURITY 18).
func TestNoNonce(t *testing.T) {
	e := newEnv(t, backends[0].url(t))
	e.user("jo@example.com")
	id, secret := e.client(provider.ClientSpec{ID: "webapp", SkipConsent: true})
	conf := e.oauth2Config(id, secret)
	b := e.browser()
	v := oauth2.GenerateVerifier()
	q := e.authorize(b, conf.AuthCodeURL("state-without-nonce", oauth2.S256ChallengeOption(v)), "jo@example.com")
	tok, err := conf.Exchange(e.ctx(), q.Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	_, c := verifyIDToken(t, e, e.oidcProvider(), id, "RS256", tok)
	if c.Nonce != "" {
		t.Errorf("nonce = %q, want none", c.Nonce)
	}
}

// The password grant never skips the code step while it applies
// (TORII_OTP=always, or acr_values=mfa on the request): the right password
// then gets mfa_required and no token; a wrong one invalid_grant.
func TestPasswordGrantNeverSkipsCodeStep(t *testing.T) {
	tests := []struct {
		name, otp string
		acr       []string
		wantOK    bool
	}{
		{"otp off", "off", nil, true},
		{"otp off, acr_values=pwd", "off", []string{"pwd"}, true},
		{"otp always", "always", nil, false},
		{"otp always, acr_values=pwd", "always", []string{"pwd"}, false},
		{"otp off, acr_values=mfa", "off", []string{"mfa"}, false},
		{"otp off, acr_values=pwd mfa", "off", []string{"pwd mfa"}, false},
		{"otp off, acr_values pwd then mfa", "off", []string{"pwd", "mfa"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, backends[0].url(t), func(c *Config, _ *serverOptions) { c.OTP = tc.otp })
			e.user("carol@example.com")
			id, secret := e.client(provider.ClientSpec{ID: "first-party", GrantTypes: []string{"password"}})
			form := url.Values{"grant_type": {"password"}, "username": {"carol@example.com"}, "password": {testPassword}, "scope": {"openid"}}
			if tc.acr != nil {
				form["acr_values"] = tc.acr
			}
			status, body, _ := e.postForm("/oauth2/token", form, id, secret)
			if tc.wantOK {
				if status != 200 || body["access_token"] == nil {
					t.Fatalf("password grant = %d %v, want tokens", status, body)
				}
				return
			}
			if status != 403 || body["error"] != "mfa_required" || body["access_token"] != nil || body["id_token"] != nil {
				t.Fatalf("right password while the code step applies = %d %v, want 403 mfa_required and no token", status, body)
			}
			form.Set("password", "wrong password")
			status, body, _ = e.postForm("/oauth2/token", form, id, secret)
			wantOAuthError(t, status, body, 400, "invalid_grant")
		})
	}
}

// The password grant goes through the same admission as the sign-in page
// (SECURITY 46): a burst of parallel wrong passwords counts the threshold's
// worth and locks once; then the right password fails like the others.
func TestPasswordGrantBurst(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		sub := e.user("dave@example.com")
		id, secret := e.client(provider.ClientSpec{ID: "first-party", GrantTypes: []string{"password"}})
		var wg sync.WaitGroup
		for range 30 {
			wg.Go(func() {
				status, body, _ := e.postForm("/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"dave@example.com"},
					"password": {"wrong password"}}, id, secret)
				wantOAuthError(t, status, body, 400, "invalid_grant")
			})
		}
		wg.Wait()
		u, err := e.srv.store.User(e.ctx(), sub)
		if err != nil {
			t.Fatal(err)
		}
		if u.FailedLogins != 5 || u.Lockouts != 1 || !u.LockedUntil.Valid {
			t.Errorf("after 30 parallel wrong passwords: %d failures, %d locks, locked %v; want 5, 1, locked", u.FailedLogins, u.Lockouts, u.LockedUntil.Valid)
		}
		status, body, _ := e.postForm("/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"dave@example.com"},
			"password": {testPassword}}, id, secret)
		wantOAuthError(t, status, body, 400, "invalid_grant")
	})
}
