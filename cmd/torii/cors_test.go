package main

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/torii-idp/torii/login/api"
	"github.com/torii-idp/torii/provider"
)

func TestCORSOriginValidation(t *testing.T) {
	tests := []struct {
		origin, want string
		ok           bool
	}{
		{"https://app.example", "https://app.example", true},
		{"HTTPS://App.Example:443/", "https://app.example", true},
		{"https://app.example:8443", "https://app.example:8443", true},
		{"http://127.0.0.1:5173", "http://127.0.0.1:5173", true},
		{"http://localhost:3000", "http://localhost:3000", true},
		{"http://[::1]:3000", "http://[::1]:3000", true},
		{"http://app.example", "", false},
		{"*", "", false},
		{"https://*.example", "", false},
		{"https://app.example/path", "", false},
		{"https://app.example?x=1", "", false},
		{"https://app.example#f", "", false},
		{"https://user@app.example", "", false},
		{"https://app.example:99999", "", false},
		{"https://app.example:0443", "", false},
		{"javascript:alert(1)", "", false},
		{"null", "", false},
		{"", "", false},
		{"https://app_x.example", "", false},
		{`https://app.example"`, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.origin, func(t *testing.T) {
			spec := provider.ClientSpec{ID: "spa", Public: true, RedirectURIs: []string{"https://app.example/cb"}, CORSOrigins: []string{tc.origin}}
			err := spec.Validate()
			var inv *provider.ErrInvalidClient
			switch {
			case tc.ok && (err != nil || spec.CORSOrigins[0] != tc.want):
				t.Errorf("Validate(%q) = %v, origin %q; want %q", tc.origin, err, spec.CORSOrigins, tc.want)
			case !tc.ok && !errors.As(err, &inv):
				t.Errorf("Validate(%q) = %v, want ErrInvalidClient", tc.origin, err)
			}
		})
	}
}

// CORS answers: only registered origins, on the token endpoint only the
// requesting client's, never "*", never with credentials.
func TestCORS(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		const spaOrigin, backOrigin, evil = "https://spa.example", "https://back.example", "https://evil.example"
		e.client(provider.ClientSpec{ID: "spa", Public: true, RedirectURIs: []string{"https://spa.example/cb"}, CORSOrigins: []string{spaOrigin}})
		id, secret := e.client(provider.ClientSpec{ID: "back", GrantTypes: []string{"client_credentials"}, Scopes: []string{}, CORSOrigins: []string{backOrigin}})

		preflight := func(path, origin string) http.Header {
			req, _ := http.NewRequest("OPTIONS", e.issuer+path, nil)
			req.Header.Set("Origin", origin)
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
			status, _, h := e.do(req)
			if status != http.StatusNoContent {
				t.Errorf("preflight %s from %s = %d, want 204", path, origin, status)
			}
			return h
		}
		for _, path := range []string{"/oauth2/token", "/oauth2/revoke", "/userinfo", api.Prefix + "/account", api.Prefix + "/register"} {
			h := preflight(path, spaOrigin)
			if h.Get("Access-Control-Allow-Origin") != spaOrigin || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
				!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") || h.Get("Access-Control-Allow-Credentials") != "" {
				t.Errorf("preflight %s from a registered origin: %v", path, h)
			}
			for _, origin := range []string{evil, "null", "https://spa.example.evil.example"} {
				if h := preflight(path, origin); h.Get("Access-Control-Allow-Origin") != "" {
					t.Errorf("preflight %s from %s allowed: %v", path, origin, h)
				}
			}
		}
		// No CORS on the introspection endpoint (servers call it, never
		// scripts): its preflight is refused.
		req, _ := http.NewRequest("OPTIONS", e.issuer+"/oauth2/introspect", nil)
		req.Header.Set("Origin", spaOrigin)
		if status, _, h := e.do(req); status != http.StatusMethodNotAllowed || h.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("introspection preflight = %d %v, want 405 without CORS", status, h)
		}

		// The token endpoint: the requesting client's origins only.
		token := func(origin string) http.Header {
			req, _ := http.NewRequest("POST", e.issuer+"/oauth2/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", origin)
			req.SetBasicAuth(id, secret)
			status, body, h := e.do(req)
			if status != 200 {
				t.Fatalf("token = %d %v", status, body)
			}
			return h
		}
		if h := token(backOrigin); h.Get("Access-Control-Allow-Origin") != backOrigin || !strings.Contains(h.Get("Vary"), "Origin") {
			t.Errorf("token from the client's own origin: %v", h)
		}
		for _, origin := range []string{spaOrigin, evil} {
			if h := token(origin); h.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("token from %s (not this client's) carries Access-Control-Allow-Origin %q", origin, h.Get("Access-Control-Allow-Origin"))
			}
		}
		// Userinfo and the API: any registered origin.
		for _, path := range []string{"/userinfo", api.Prefix + "/account"} {
			for origin, want := range map[string]string{spaOrigin: spaOrigin, backOrigin: backOrigin, evil: ""} {
				req, _ := http.NewRequest("GET", e.issuer+path, nil)
				req.Header.Set("Origin", origin)
				req.Header.Set("Authorization", "Bearer nonsense")
				_, _, h := e.do(req)
				if got := h.Get("Access-Control-Allow-Origin"); got != want {
					t.Errorf("%s from %s: Access-Control-Allow-Origin %q, want %q", path, origin, got, want)
				}
				if want != "" && !strings.Contains(h.Get("Access-Control-Expose-Headers"), "WWW-Authenticate") {
					t.Errorf("%s: WWW-Authenticate not exposed to scripts: %v", path, h)
				}
			}
		}
	})
}

// The CLI registers and prints canonical origins.
func TestCLICORSOrigin(t *testing.T) {
	cliEnv(t)
	code, out, stderr := torii(t, "clients", "create", "--id", "spa", "--public", "--redirect-uri", "https://app.example/cb",
		"--cors-origin", "HTTPS://App.Example:443", "--cors-origin", "http://127.0.0.1:5173")
	if code != 0 || !strings.Contains(out, `"allowed_cors_origins": [`) || !strings.Contains(out, `"https://app.example"`) || !strings.Contains(out, `"http://127.0.0.1:5173"`) {
		t.Errorf("clients create --cors-origin = %d\n%s\n%s", code, out, stderr)
	}
}
