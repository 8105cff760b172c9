package main

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/torii-idp/torii/provider"
)

// The token endpoint benchmarks run in-process: requests go straight to the
// handler, so they measure Torii (fosite, hashing, signing, SQLite), not
// the network. Run them with
//
//	go test -run '^$' -bench Token -benchmem ./cmd/torii

func tokenRequest(form url.Values, id, secret string) *http.Request {
	req := httptest.NewRequest("POST", "/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	return req
}

func serveToken(b *testing.B, e *env, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	e.srv.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("token endpoint = %d %s", rec.Code, rec.Body)
	}
	return rec
}

func BenchmarkTokenClientCredentials(b *testing.B) {
	for _, format := range []string{"opaque", "jwt"} {
		b.Run(format, func(b *testing.B) {
			e := newEnv(b, backends[0].url(b))
			id, secret := e.client(provider.ClientSpec{ID: "svc", GrantTypes: []string{"client_credentials"}, Scopes: []string{}, TokenFormat: format, IDTokenAlg: "ES256"})
			form := url.Values{"grant_type": {"client_credentials"}}
			b.ReportAllocs()
			for b.Loop() {
				serveToken(b, e, tokenRequest(form, id, secret))
			}
		})
	}
}

func BenchmarkTokenRefresh(b *testing.B) {
	e := newEnv(b, backends[0].url(b))
	e.user("bench@example.com")
	id, secret := e.client(provider.ClientSpec{ID: "webapp", SkipConsent: true, IDTokenAlg: os.Getenv("BENCH_ALG")})
	tok, _ := e.login(e.oauth2Config(id, secret), e.browser(), "bench@example.com")
	rt := tok.RefreshToken
	b.ReportAllocs()
	for b.Loop() {
		rec := serveToken(b, e, tokenRequest(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, id, secret))
		rt = jsonField(b, rec, "refresh_token")
	}
}

func BenchmarkTokenAuthorizationCode(b *testing.B) {
	e := newEnv(b, backends[0].url(b))
	e.user("bench@example.com")
	id, secret := e.client(provider.ClientSpec{ID: "webapp", SkipConsent: true})
	conf := e.oauth2Config(id, secret)
	browser := e.browser()
	e.login(conf, browser, "bench@example.com")
	noFollow := *browser
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		v := oauth2.GenerateVerifier()
		code := e.callback(e.get(&noFollow, e.issuer+"/oauth2/auth?"+authParams(v).Encode())).Get("code")
		req := tokenRequest(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {callbackURL}, "code_verifier": {v}}, id, secret)
		b.StartTimer()
		serveToken(b, e, req)
	}
}

func jsonField(b *testing.B, rec *httptest.ResponseRecorder, field string) string {
	var m map[string]any
	if err := jsonDecode(rec.Body, &m); err != nil {
		b.Fatal(err)
	}
	s, _ := m[field].(string)
	return s
}
