package provider

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/ory/fosite"

	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

func TestClientSpecValidate(t *testing.T) {
	base := func() ClientSpec {
		return ClientSpec{ID: "app", RedirectURIs: []string{"https://app.example/cb"}}
	}
	tests := []struct {
		name    string
		mutate  func(*ClientSpec)
		wantErr string
	}{
		{"defaults", func(*ClientSpec) {}, ""},
		{"loopback http", func(s *ClientSpec) {
			s.RedirectURIs = []string{"http://127.0.0.1/cb", "http://[::1]:8080/cb", "http://localhost/cb"}
		}, ""},
		{"native scheme", func(s *ClientSpec) { s.RedirectURIs = []string{"com.example.app:/oauth2redirect"} }, ""},
		{"fragment", func(s *ClientSpec) { s.RedirectURIs = []string{"https://app.example/cb#x"} }, "fragment"},
		{"wildcard", func(s *ClientSpec) { s.RedirectURIs = []string{"https://*.example/cb"} }, "wildcard"},
		{"plain http", func(s *ClientSpec) { s.RedirectURIs = []string{"http://app.example/cb"} }, "loopback"},
		{"javascript", func(s *ClientSpec) { s.RedirectURIs = []string{"javascript:alert(1)"} }, "scheme"},
		{"data", func(s *ClientSpec) { s.RedirectURIs = []string{"data:text/html,hi"} }, "scheme"},
		{"userinfo", func(s *ClientSpec) { s.RedirectURIs = []string{"https://good@evil.example/cb"} }, "user information"},
		{"relative", func(s *ClientSpec) { s.RedirectURIs = []string{"/cb"} }, "absolute"},
		{"space", func(s *ClientSpec) { s.RedirectURIs = []string{"https://app.example/c b"} }, "spaces"},
		{"tab", func(s *ClientSpec) { s.RedirectURIs = []string{"https://app.example/c\tb"} }, "control"},
		{"encoded NUL", func(s *ClientSpec) { s.RedirectURIs = []string{"https://app.example/cb%00"} }, "%00"},
		{"encoded line feed", func(s *ClientSpec) { s.RedirectURIs = []string{"https://app.example/cb%0A"} }, "%00"},
		{"encoded DEL", func(s *ClientSpec) { s.RedirectURIs = []string{"https://app.example/cb%7f"} }, "%00"},
		{"port 0", func(s *ClientSpec) { s.RedirectURIs = []string{"http://127.0.0.1:0/cb"} }, "port"},
		{"port 65536", func(s *ClientSpec) { s.RedirectURIs = []string{"http://127.0.0.1:65536/cb"} }, "port"},
		{"port 99999", func(s *ClientSpec) { s.RedirectURIs = []string{"https://app.example:99999/cb"} }, "port"},
		{"port with a leading zero", func(s *ClientSpec) { s.RedirectURIs = []string{"http://127.0.0.1:051234/cb"} }, "port"},
		{"empty port", func(s *ClientSpec) { s.RedirectURIs = []string{"http://127.0.0.1:/cb"} }, "port"},
		{"empty IPv6 port", func(s *ClientSpec) { s.RedirectURIs = []string{"http://[::1]:/cb"} }, "port"},
		{"post-logout space", func(s *ClientSpec) { s.PostLogoutRedirectURIs = []string{"https://app.example/bye bye"} }, "spaces"},
		{"post-logout encoded NUL", func(s *ClientSpec) { s.PostLogoutRedirectURIs = []string{"https://app.example/bye%00"} }, "%00"},
		{"post-logout bad port", func(s *ClientSpec) { s.PostLogoutRedirectURIs = []string{"https://app.example:0/bye"} }, "port"},
		{"valid ports", func(s *ClientSpec) {
			s.RedirectURIs = []string{"http://127.0.0.1:1/cb", "http://127.0.0.1:65535/cb", "https://app.example:8443/cb", "http://[::1]:51234/cb"}
		}, ""},
		{"encoded characters", func(s *ClientSpec) { s.RedirectURIs = []string{"https://app.example/a%20b%2F%E2%9C%93"} }, ""},
		{"no redirect", func(s *ClientSpec) { s.RedirectURIs = nil }, "redirect-uri"},
		{"short secret", func(s *ClientSpec) { s.Secret = "too-short" }, "32 characters"},
		{"long secret", func(s *ClientSpec) { s.Secret = strings.Repeat("x", 32) }, ""},
		{"public with secret", func(s *ClientSpec) { s.Public = true; s.Secret = strings.Repeat("x", 40) }, "no secret"},
		{"public client credentials", func(s *ClientSpec) { s.Public = true; s.GrantTypes = []string{"client_credentials"} }, "public client"},
		{"public pkce optional", func(s *ClientSpec) { s.Public = true; s.PKCEOptional = true }, "PKCE"},
		{"unknown grant", func(s *ClientSpec) { s.GrantTypes = []string{"implicit"} }, "grant type"},
		{"unknown scope", func(s *ClientSpec) { s.Scopes = []string{"admin"} }, "scope"},
		{"bad alg", func(s *ClientSpec) { s.IDTokenAlg = "none" }, "algorithm"},
		{"HS256", func(s *ClientSpec) { s.IDTokenAlg = "HS256" }, "algorithm"},
		{"bad format", func(s *ClientSpec) { s.TokenFormat = "paseto" }, "token format"},
		{"bad id", func(s *ClientSpec) { s.ID = "a b" }, "client ID"},
		{"sql id", func(s *ClientSpec) { s.ID = "x'; DROP TABLE clients;--" }, "client ID"},
		{"long id", func(s *ClientSpec) { s.ID = strings.Repeat("a", 10000) }, "client ID"},
		{"long name", func(s *ClientSpec) { s.Name = strings.Repeat("n", 10000) }, "name"},
		{"client credentials only", func(s *ClientSpec) {
			s.GrantTypes = []string{"client_credentials"}
			s.RedirectURIs = nil
			s.Scopes = []string{}
		}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := base()
			tc.mutate(&spec)
			err := spec.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var inv *ErrInvalidClient
			if !errors.As(err, &inv) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Validate() = %v, want an ErrInvalidClient mentioning %q", err, tc.wantErr)
			}
		})
	}
}

func TestClientsRegisterAndAuthenticate(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		s := open(t)
		ctx := t.Context()
		cs, err := NewClients(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		c, secret, err := cs.Register(ctx, ClientSpec{ID: "app", RedirectURIs: []string{"https://app.example/cb"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(secret) < 43 {
			t.Errorf("generated secret %d chars, want ≥ 43 (256 bits)", len(secret))
		}
		if strings.Contains(string(c.SecretHash), secret) || len(c.SecretHash) != 32 {
			t.Errorf("secret stored in the clear or not as a 32-byte hash")
		}
		if _, _, err := cs.Register(ctx, ClientSpec{ID: "app", RedirectURIs: []string{"https://app.example/cb"}}); err == nil {
			t.Error("registering a taken ID succeeded")
		}
		if _, _, err := cs.Register(ctx, ClientSpec{ID: "spa", Public: true, RedirectURIs: []string{"http://127.0.0.1/cb"}}); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateUser(ctx, &storage.User{ID: "user-id", Email: "u@example.com"}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := cs.Register(ctx, ClientSpec{ID: "user-id", GrantTypes: []string{"client_credentials"}}); err == nil {
			t.Error("a client ID equal to a user ID was accepted")
		}

		form := func(v url.Values) *http.Request {
			r := httptest.NewRequest("POST", "/oauth2/token", strings.NewReader(v.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.ParseForm()
			return r
		}
		basic := func(id, sec string) *http.Request {
			r := form(url.Values{"grant_type": {"client_credentials"}})
			r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(sec))
			return r
		}
		tests := []struct {
			name    string
			req     *http.Request
			wantErr error
		}{
			{"basic", basic("app", secret), nil},
			{"post", form(url.Values{"client_id": {"app"}, "client_secret": {secret}}), nil},
			{"public none", form(url.Values{"client_id": {"spa"}}), nil},
			{"public basic empty secret", basic("spa", ""), nil},
			{"wrong secret basic", basic("app", secret+"x"), fosite.ErrInvalidClient},
			{"wrong secret post", form(url.Values{"client_id": {"app"}, "client_secret": {"nope"}}), fosite.ErrInvalidClient},
			{"unknown client", basic("ghost", secret), fosite.ErrInvalidClient},
			{"no secret", form(url.Values{"client_id": {"app"}}), fosite.ErrInvalidClient},
			{"public with a secret", form(url.Values{"client_id": {"spa"}, "client_secret": {"x"}}), fosite.ErrInvalidClient},
			{"nothing", form(url.Values{}), fosite.ErrInvalidClient},
			{"both methods", func() *http.Request {
				r := form(url.Values{"client_id": {"app"}, "client_secret": {secret}})
				r.SetBasicAuth("app", secret)
				return r
			}(), fosite.ErrInvalidRequest},
			{"secret in URL", func() *http.Request {
				r := form(url.Values{"client_id": {"app"}})
				r.URL.RawQuery = "client_secret=" + url.QueryEscape(secret)
				return r
			}(), fosite.ErrInvalidRequest},
			{"assertion", form(url.Values{"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {"x.y.z"}}), fosite.ErrInvalidRequest},
			{"sql in id", basic("' OR 1=1--", "x"), fosite.ErrInvalidClient},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				got, err := cs.authenticate(ctx, tc.req, tc.req.PostForm)
				if tc.wantErr == nil {
					if err != nil || got == nil {
						t.Fatalf("authenticate = %v, %v; want a client", got, err)
					}
					return
				}
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("authenticate = %v, want %v", err, tc.wantErr)
				}
			})
		}
	})
}

// TestLoopbackLookalikes: plain http is for loopback hosts only, and a host
// that merely starts (or ends) with a loopback name or address is not one
// (SEC 5, issue 14 item 8a).
func TestLoopbackLookalikes(t *testing.T) {
	tests := []struct {
		uri string
		ok  bool
	}{
		{"http://127.0.0.1/cb", true},
		{"http://127.0.0.1:8080/cb", true},
		{"http://127.1.2.3/cb", true},
		{"http://[::1]/cb", true},
		{"http://localhost/cb", true},
		{"http://localhost:3000/cb", true},
		{"http://localhost.attacker.example/cb", false},
		{"http://127.0.0.1.nip.io/cb", false},
		{"http://127.0.0.1.attacker.example:8080/cb", false},
		{"http://localhostattacker.example/cb", false},
		{"http://attacker-localhost/cb", false},
		{"http://app.localhost/cb", false},
		{"http://attacker.example/127.0.0.1/cb", false},
		{"http://attacker.example/?localhost", false},
		{"http://127.1/cb", false},
		{"http://2130706433/cb", false},
		{"http://0x7f000001/cb", false},
		{"http://0.0.0.0/cb", false},
		{"http://[::]/cb", false},
		{"http://10.0.0.1/cb", false},
	}
	for _, tc := range tests {
		t.Run(tc.uri, func(t *testing.T) {
			spec := ClientSpec{ID: "app", Public: true, RedirectURIs: []string{tc.uri}}
			err := spec.Validate()
			if tc.ok && err != nil {
				t.Errorf("Validate(%q) = %v, want nil", tc.uri, err)
			}
			var inv *ErrInvalidClient
			if !tc.ok && (!errors.As(err, &inv) || !strings.Contains(err.Error(), "loopback")) {
				t.Errorf("Validate(%q) = %v, want an ErrInvalidClient about loopback addresses", tc.uri, err)
			}
		})
	}
	t.Run("Register stores none of them", func(t *testing.T) {
		s := storagetest.NewSQLite(t)
		clients, err := NewClients(t.Context(), s)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range tests {
			if tc.ok {
				continue
			}
			spec := ClientSpec{ID: "lookalike", Public: true, RedirectURIs: []string{"http://127.0.0.1/cb", tc.uri}}
			var inv *ErrInvalidClient
			if _, _, err := clients.Register(t.Context(), spec); !errors.As(err, &inv) {
				t.Errorf("Register(%q) = %v, want an ErrInvalidClient", tc.uri, err)
			}
			if _, err := s.Client(t.Context(), "lookalike"); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("after Register(%q) the client exists (%v)", tc.uri, err)
			}
		}
	})
}

func TestRedirectURIRegistered(t *testing.T) {
	registered := []string{"http://127.0.0.1/cb", "http://[::1]:8080/cb", "http://localhost/cb", "https://app.example/cb", "com.example.app:/cb"}
	tests := []struct {
		requested string
		want      bool
	}{
		{"http://127.0.0.1/cb", true},
		{"http://127.0.0.1:51234/cb", true},
		{"http://127.0.0.1:1/cb", true},
		{"http://127.0.0.1:65535/cb", true},
		{"http://[::1]:8080/cb", true},
		{"http://[::1]/cb", true},
		{"http://[::1]:9/cb", true},
		{"http://localhost/cb", true},
		{"https://app.example/cb", true},
		{"com.example.app:/cb", true},

		{"http://x@127.0.0.1:51234/cb", false},
		{"http://x@127.0.0.1/cb", false},
		{"http://@127.0.0.1/cb", false},
		{"http://127.0.0.1:0/cb", false},
		{"http://127.0.0.1:65536/cb", false},
		{"http://127.0.0.1:99999/cb", false},
		{"http://127.0.0.1:051234/cb", false},
		{"http://127.0.0.1:/cb", false},
		{"http://127.0.0.1:-1/cb", false},
		{"http://127.0.0.1:1a/cb", false},
		{"http://127.0.0.1:51234:1/cb", false},
		{"http://[::1]:/cb", false},
		{"http://[::1]x/cb", false},
		{"http://[::1%25lo]:8080/cb", false},
		{"http://[127.0.0.1]/cb", false},
		{"http://[::ffff:127.0.0.1]/cb", false},
		{"HTTP://127.0.0.1:51234/cb", false},
		{"https://127.0.0.1:51234/cb", false},
		{"http://127.0.0.1:51234/c%62", false},
		{"http://127.0.0.1:51234/cb?", false},
		{"http://127.0.0.1:51234/cb?x=1", false},
		{"http://127.0.0.1:51234/cb#x", false},
		{"http://127.0.0.1:51234/cb/", false},
		{"http://127.0.0.1:51234", false},
		{"http://127.0.0.2:51234/cb", false},
		{"http://localhost:51234/cb", false},
		{"http://127.0.0.1.evil.example:51234/cb", false},
		{"https://app.example:443/cb", false},
		{"https://APP.example/cb", false},
		{"", false},
	}
	for _, tc := range tests {
		if got := redirectURIRegistered(tc.requested, registered); got != tc.want {
			t.Errorf("redirectURIRegistered(%q) = %v, want %v", tc.requested, got, tc.want)
		}
	}
}

// logo_uri and client_uri: https, or http on a loopback host; each bad one
// refused with its exact message.
func TestClientSpecWebURLs(t *testing.T) {
	tests := []struct {
		name, logo, home string
		wantErr          string
	}{
		{"none", "", "", ""},
		{"https", "https://app.example/logo.png", "https://app.example/", ""},
		{"loopback http", "http://127.0.0.1:8080/logo.png", "http://localhost/", ""},
		{"plain http logo", "http://app.example/logo.png", "", `invalid client: logo URI "http://app.example/logo.png" must be https (plain http only on a loopback host)`},
		{"plain http home", "", "http://app.example/", `invalid client: client URI "http://app.example/" must be https (plain http only on a loopback host)`},
		{"javascript", "", "javascript:alert(1)", `invalid client: client URI "javascript:alert(1)" is not an absolute URL with a host`},
		{"data", "data:image/png;base64,AAAA", "", `invalid client: logo URI "data:image/png;base64,AAAA" is not an absolute URL with a host`},
		{"relative", "/logo.png", "", `invalid client: logo URI "/logo.png" is not an absolute URL with a host`},
		{"user info", "https://me@app.example/logo.png", "", `invalid client: logo URI "https://me@app.example/logo.png" must not contain user information`},
		{"fragment", "", "https://app.example/#top", `invalid client: client URI "https://app.example/#top" must not have a fragment`},
		{"space", "https://app.example/my logo.png", "", `invalid client: logo URI "https://app.example/my logo.png" must not contain spaces or control characters`},
		{"encoded NUL", "https://app.example/logo%00.png", "", `invalid client: logo URI "https://app.example/logo%00.png" must not contain spaces or control characters`},
		{"bad port", "https://app.example:0/logo.png", "", `invalid client: logo URI "https://app.example:0/logo.png": the port must be a number from 1 to 65535 without leading zeros`},
		{"too long", "https://app.example/" + strings.Repeat("a", 2048), "", `invalid client: logo URI must have at most 2048 characters`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := ClientSpec{ID: "app", RedirectURIs: []string{"https://app.example/cb"}, LogoURI: tc.logo, ClientURI: tc.home}
			err := spec.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.wantErr {
				t.Errorf("Validate() = %q, want %q", got, tc.wantErr)
			}
		})
	}
}
