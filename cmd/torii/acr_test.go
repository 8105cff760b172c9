package main

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/torii-idp/torii/provider"
)

// idTokenOf redeems the callback's code of flow f and returns the verified
// ID token's claims.
func (e *env) idTokenOf(t *testing.T, conf *oauth2.Config, f *codeFlow, q url.Values) idClaims {
	t.Helper()
	if q.Get("error") != "" || q.Get("code") == "" {
		t.Fatalf("callback = %v, want a code", q)
	}
	tok, err := conf.Exchange(e.ctx(), q.Get("code"), oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	_, c := verifyIDToken(t, e, e.oidcProvider(), conf.ClientID, "RS256", tok)
	return c
}

// TestACRAndAMR: the ID token's amr lists the methods used and acr names
// their class, "pwd" or "mfa" (SEC 22; issue 3 "acr reflects it").
func TestACRAndAMR(t *testing.T) {
	tests := []struct {
		name      string
		otp       string
		extra     []oauth2.AuthCodeOption
		wantPages []string
		wantAMR   []string
		wantACR   string
	}{
		{"otp off", "off", nil, []string{"/login"}, []string{"pwd"}, provider.ACRPassword},
		{"otp off, acr_values=mfa", "off", []oauth2.AuthCodeOption{oauthParam("acr_values", "mfa")},
			[]string{"/login", "/login/code"}, []string{"pwd", "otp"}, provider.ACRMFA},
		{"otp always", "always", nil, []string{"/login", "/login/code"}, []string{"pwd", "otp"}, provider.ACRMFA},
		{"otp always, acr_values=pwd", "always", []oauth2.AuthCodeOption{oauthParam("acr_values", "pwd")},
			[]string{"/login", "/login/code"}, []string{"pwd", "otp"}, provider.ACRMFA},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newMailEnv(t, backends[0].url(t), tc.otp)
			e.user("alice@example.com")
			id, secret := e.client(provider.ClientSpec{ID: "webapp", SkipConsent: true})
			conf := e.oauth2Config(id, secret)
			f := newCodeFlow(conf)
			q, pages := e.authorizeTrace(e.browser(), f.authURL(tc.extra...), "alice@example.com")
			if !slices.Equal(pages, tc.wantPages) {
				t.Errorf("pages shown = %v, want %v", pages, tc.wantPages)
			}
			c := e.idTokenOf(t, conf, f, q)
			if !slices.Equal(c.AMR, tc.wantAMR) || c.ACR != tc.wantACR {
				t.Errorf("amr = %v, acr = %q; want %v, %q", c.AMR, c.ACR, tc.wantAMR, tc.wantACR)
			}
		})
	}
}

// TestStepUpToMFA: with TORII_OTP=off, a browser signed in with the
// password alone is asked for the code when a client sends
// acr_values=mfa; prompt=none then answers login_required instead.
func TestStepUpToMFA(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		e := newMailEnv(t, dbURL, "off")
		e.user("alice@example.com")
		id, secret := e.client(provider.ClientSpec{ID: "webapp", SkipConsent: true})
		conf := e.oauth2Config(id, secret)
		b := e.browser()

		f1 := newCodeFlow(conf)
		c1 := e.idTokenOf(t, conf, f1, e.authorize(b, f1.authURL(), "alice@example.com"))
		if !slices.Equal(c1.AMR, []string{"pwd"}) || c1.ACR != provider.ACRPassword {
			t.Fatalf("first sign-in: amr %v acr %q, want [pwd] pwd", c1.AMR, c1.ACR)
		}

		t.Run("prompt=none cannot step up", func(t *testing.T) {
			q := authParams(oauth2.GenerateVerifier())
			q.Set("client_id", id)
			q.Set("acr_values", "mfa")
			q.Set("prompt", "none")
			got := e.callback(e.rawAuthorize(b, q))
			if got.Get("error") != "login_required" || got.Get("code") != "" {
				t.Errorf("prompt=none acr_values=mfa on a password session = %v, want error=login_required", got)
			}
		})

		time.Sleep(1100 * time.Millisecond)
		f2 := newCodeFlow(conf)
		q, pages := e.authorizeTrace(b, f2.authURL(oauthParam("acr_values", "mfa")), "alice@example.com")
		if !slices.Equal(pages, []string{"/login", "/login/code"}) {
			t.Errorf("step-up pages = %v, want [/login /login/code]", pages)
		}
		c2 := e.idTokenOf(t, conf, f2, q)
		if !slices.Equal(c2.AMR, []string{"pwd", "otp"}) || c2.ACR != provider.ACRMFA || c2.AuthTime <= c1.AuthTime {
			t.Errorf("stepped-up ID token: amr %v acr %q auth_time %d (before %d); want [pwd otp] mfa and a later auth_time",
				c2.AMR, c2.ACR, c2.AuthTime, c1.AuthTime)
		}

		// The stepped-up session now satisfies acr_values=mfa at once.
		f3 := newCodeFlow(conf)
		q3, pages3 := e.authorizeTrace(b, f3.authURL(oauthParam("acr_values", "mfa")), "alice@example.com")
		if len(pages3) != 0 {
			t.Errorf("after the step-up, acr_values=mfa showed %v, want no page", pages3)
		}
		if c3 := e.idTokenOf(t, conf, f3, q3); c3.ACR != provider.ACRMFA || c3.AuthTime != c2.AuthTime {
			t.Errorf("SSO after step-up: acr %q auth_time %d, want mfa %d", c3.ACR, c3.AuthTime, c2.AuthTime)
		}
	})
}

// TestPromptNoneErrors: prompt=none never shows a page; it answers
// login_required without a session and consent_required when the client
// has no consent yet (SEC 22).
func TestPromptNoneErrors(t *testing.T) {
	e := newEnv(t, backends[0].url(t))
	e.user("alice@example.com")
	_, secret := e.client(provider.ClientSpec{ID: "webapp"})
	e.client(provider.ClientSpec{ID: "other", Name: "Other App"})
	signedIn := e.signedInBrowser(e.oauth2Config("webapp", secret, "openid", "email"), "alice@example.com")
	tests := []struct {
		name      string
		b         *http.Client
		client    string
		scope     string
		wantError string
	}{
		{"not signed in", e.browser(), "webapp", "openid email", "login_required"},
		{"signed in, client never allowed", signedIn, "other", "openid email", "consent_required"},
		{"signed in, more scopes than allowed", signedIn, "webapp", "openid email profile", "consent_required"},
		{"signed in and allowed", signedIn, "webapp", "openid email", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := authParams(oauth2.GenerateVerifier())
			q.Set("client_id", tc.client)
			q.Set("scope", tc.scope)
			q.Set("prompt", "none")
			p := e.rawAuthorize(tc.b, q)
			if p.status != http.StatusSeeOther {
				t.Fatalf("status %d, want 303 to the client:\n%s", p.status, p.body)
			}
			got := e.callback(p)
			if got.Get("error") != tc.wantError || (tc.wantError != "") == (got.Get("code") != "") {
				t.Errorf("callback = %v, want error=%q", got, tc.wantError)
			}
			if got.Get("state") != q.Get("state") || got.Get("iss") != e.issuer {
				t.Errorf("callback state %q iss %q", got.Get("state"), got.Get("iss"))
			}
		})
	}
}

// TestReauthenticationIncludesCode: with TORII_OTP=always, prompt=login
// and max_age=1 force the whole sign-in again, password and code, and the
// new ID token has a later auth_time (SEC 22).
func TestReauthenticationIncludesCode(t *testing.T) {
	tests := []struct {
		name  string
		wait  time.Duration
		extra oauth2.AuthCodeOption
	}{
		{"prompt=login", 1100 * time.Millisecond, oauthParam("prompt", "login")},
		{"max_age=1", 2100 * time.Millisecond, oauthParam("max_age", "1")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The default 30 s resend interval: a new sign-in's first code
			// is not held back by it.
			e := newMailEnv(t, backends[0].url(t), "always")
			e.user("alice@example.com")
			id, secret := e.client(provider.ClientSpec{ID: "webapp", SkipConsent: true})
			conf := e.oauth2Config(id, secret)
			b := e.browser()
			f1 := newCodeFlow(conf)
			c1 := e.idTokenOf(t, conf, f1, e.authorize(b, f1.authURL(), "alice@example.com"))

			// Single sign-on without the parameter.
			if _, pages := e.authorizeTrace(b, newCodeFlow(conf).authURL(), "alice@example.com"); len(pages) != 0 {
				t.Fatalf("SSO showed %v, want no page", pages)
			}
			time.Sleep(tc.wait)
			f2 := newCodeFlow(conf)
			q, pages := e.authorizeTrace(b, f2.authURL(tc.extra), "alice@example.com")
			if !slices.Equal(pages, []string{"/login", "/login/code"}) {
				t.Errorf("pages = %v, want [/login /login/code]", pages)
			}
			c2 := e.idTokenOf(t, conf, f2, q)
			if c2.AuthTime <= c1.AuthTime || !slices.Equal(c2.AMR, []string{"pwd", "otp"}) || c2.ACR != provider.ACRMFA {
				t.Errorf("after %s: auth_time %d (before %d), amr %v, acr %q", tc.name, c2.AuthTime, c1.AuthTime, c2.AMR, c2.ACR)
			}
		})
	}
}

// TestDiscoveryClaims: claims_supported lists each claim once and names
// acr and amr; acr_values_supported names both classes.
func TestDiscoveryClaims(t *testing.T) {
	e := newEnv(t, backends[0].url(t))
	status, doc, _ := e.do(mustReq("GET", e.issuer+"/.well-known/openid-configuration"))
	if status != 200 {
		t.Fatalf("discovery = %d", status)
	}
	var claims []string
	for _, c := range doc["claims_supported"].([]any) {
		claims = append(claims, c.(string))
	}
	seen := map[string]bool{}
	for _, c := range claims {
		if seen[c] {
			t.Errorf("claims_supported lists %q twice: %v", c, claims)
		}
		seen[c] = true
	}
	if !seen["acr"] || !seen["amr"] {
		t.Errorf("claims_supported = %v, want acr and amr", claims)
	}
	if got := fmt.Sprint(doc["acr_values_supported"]); got != "[pwd mfa]" {
		t.Errorf("acr_values_supported = %s, want [pwd mfa]", got)
	}
}
