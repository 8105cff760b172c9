package main

import (
	"net/http"
	"net/http/cookiejar"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/torii-idp/torii/login/account"
	"github.com/torii-idp/torii/login/federation"
	"github.com/torii-idp/torii/login/federation/fedtest"
	"github.com/torii-idp/torii/provider"
	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

// fedFakes starts a fake of every provider and configures Torii for them:
// GitHub through TORII_GITHUB_URL (the Enterprise form), Google and
// Facebook through an HTTP client routing their fixed hosts to the fakes.
func fedFakes(t *testing.T) (map[string]*fedtest.Fake, http.RoundTripper, envOption) {
	t.Helper()
	fakes := map[string]*fedtest.Fake{}
	hosts := map[string]*fedtest.Fake{}
	for _, k := range []string{fedtest.GitHub, fedtest.Google, fedtest.Facebook, fedtest.OIDC} {
		fakes[k] = fedtest.New(t, k)
	}
	for _, h := range fedtest.GoogleHosts {
		hosts[h] = fakes[fedtest.Google]
	}
	for _, h := range fedtest.FacebookHosts {
		hosts[h] = fakes[fedtest.Facebook]
	}
	transport := fedtest.Transport(nil, hosts)
	opt := func(c *Config, _ *serverOptions) {
		c.Federation = FederationConfig{
			GoogleClientID: fakes[fedtest.Google].ClientID, GoogleClientSecret: Secret(fakes[fedtest.Google].ClientSecret),
			GitHubClientID: fakes[fedtest.GitHub].ClientID, GitHubClientSecret: Secret(fakes[fedtest.GitHub].ClientSecret),
			GitHubURL:        fakes[fedtest.GitHub].URL(),
			FacebookClientID: fakes[fedtest.Facebook].ClientID, FacebookClientSecret: Secret(fakes[fedtest.Facebook].ClientSecret),
			OIDCIssuer: fakes[fedtest.OIDC].URL(), OIDCClientID: fakes[fedtest.OIDC].ClientID, OIDCClientSecret: Secret(fakes[fedtest.OIDC].ClientSecret),
			OIDCName: "Acme SSO",
		}
		c.federationClient = &http.Client{Transport: transport}
	}
	return fakes, transport, opt
}

// fedBrowser follows every redirect (Torii, the providers) but the one to
// the relying party's callback; node, when set, picks the Torii node of
// each request whose path has it.
func fedBrowser(transport http.RoundTripper, nodeFor func(path string) string) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar: jar,
		Transport: roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			if nodeFor != nil {
				if n := nodeFor(r.URL.Path); n != "" {
					r = r.Clone(r.Context())
					r.Header.Set("X-Test-Node", n)
				}
			}
			return transport.RoundTrip(r)
		}),
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), strings.SplitN(callbackURL, "?", 2)[0]) || len(via) > 15 {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// continueWith presses "Continue with …" on the sign-in page p and
// returns the page the round trip through the provider ends on.
func (e *env) continueWith(b *http.Client, p *page, name string) *page {
	e.t.Helper()
	for _, f := range p.forms(e.t) {
		if strings.HasSuffix(f.action, federation.StartPath(name)) {
			return e.post(b, f)
		}
	}
	e.t.Fatalf("no %q button on %s:\n%s", name, p.url, p.body)
	return nil
}

// fedLogin runs a relying party's authorization through provider name and
// returns the verified ID token.
func (e *env) fedLogin(b *http.Client, name string) (*oidc.IDToken, map[string]any) {
	e.t.Helper()
	idt, claims, _ := e.fedLoginToken(b, name, oidc.ScopeOpenID, "profile", "email")
	return idt, claims
}

// fedLoginToken is fedLogin with the scopes asked for, returning the
// tokens too.
func (e *env) fedLoginToken(b *http.Client, name string, scopes ...string) (*oidc.IDToken, map[string]any, *oauth2.Token) {
	e.t.Helper()
	id, secret := e.client(provider.ClientSpec{ID: "rp-" + name + "-" + oauth2.GenerateVerifier()[:6], Scopes: scopes})
	conf := e.oauth2Config(id, secret, scopes...)
	f := newCodeFlow(conf)
	p := e.get(b, f.authURL())
	if p.status != http.StatusOK || !strings.HasSuffix(p.url.Path, provider.LoginPath) {
		e.t.Fatalf("authorize = %d at %s", p.status, p.url)
	}
	p = e.continueWith(b, p, name)
	if p.status == http.StatusOK && strings.HasSuffix(p.url.Path, provider.ConsentPath) {
		p = e.consent(b, p, "allow")
	}
	q := e.callback(p)
	if q.Get("state") != f.state || q.Get("code") == "" {
		e.t.Fatalf("callback = %v", q)
	}
	tok, err := conf.Exchange(e.ctx(), q.Get("code"), oauth2.VerifierOption(f.verifier))
	if err != nil {
		e.t.Fatalf("Exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := e.oidcProvider().Verifier(&oidc.Config{ClientID: id}).Verify(e.ctx(), raw)
	if err != nil {
		e.t.Fatalf("Verify: %v", err)
	}
	if idt.Nonce != f.nonce {
		e.t.Fatalf("nonce = %q, want %q", idt.Nonce, f.nonce)
	}
	var claims map[string]any
	idt.Claims(&claims)
	return idt, claims, tok
}

func amrOf(claims map[string]any) []string {
	var out []string
	list, _ := claims["amr"].([]any)
	for _, v := range list {
		s, _ := v.(string)
		out = append(out, s)
	}
	return out
}

// Per provider, on SQLite and PostgreSQL: a relying party (x/oauth2 and
// go-oidc) gets Torii's tokens for a new account made through the
// provider, with amr fed, idp and Torii's own sub; the second sign-in is
// the same account.
func TestFederatedEndToEnd(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		fakes, transport, opt := fedFakes(t)
		e := newEnv(t, dbURL, opt)
		t.Cleanup(func() {
			// No upstream token, code or client secret in Torii's logs.
			for _, f := range fakes {
				if strings.Contains(e.logs.String(), f.ClientSecret) {
					t.Errorf("the logs hold %s's client secret", f.Kind)
				}
			}
			if strings.Contains(e.logs.String(), "fake_at_") {
				t.Error("the logs hold an upstream access token")
			}
		})
		for _, name := range []string{federation.GitHub, federation.Google, federation.Facebook, federation.OIDC} {
			t.Run(name, func(t *testing.T) {
				email := "e2e-" + name + "@example.com"
				fakes[name].User.Email, fakes[name].User.Emails = email, []fedtest.Email{{Email: email, Primary: true, Verified: true}}
				if name == federation.Facebook {
					// Facebook's address never counts as verified: the
					// account confirms it first. Start from a link.
					u, err := e.srv.accounts.CreateFederated(t.Context(), accountIdentity("facebook", "1001", email))
					if err != nil {
						t.Fatal(err)
					}
					if _, err := e.srv.store.DB().NewUpdate().Table("users").Set("email_verified = ?", true).Where("id = ?", u.ID).Exec(t.Context()); err != nil {
						t.Fatal(err)
					}
				}
				idt, claims := e.fedLogin(fedBrowser(transport, nil), name)
				if !slices.Equal(amrOf(claims), []string{"fed"}) || claims["idp"] != name || claims["email"] != email {
					t.Errorf("claims = %v", claims)
				}
				u, err := e.srv.accounts.UserByEmail(t.Context(), email)
				if err != nil || idt.Subject != u.ID {
					t.Fatalf("sub = %q, user %+v, %v", idt.Subject, u, err)
				}
				again, _ := e.fedLogin(fedBrowser(transport, nil), name)
				if again.Subject != idt.Subject {
					t.Errorf("second sign-in sub = %q, want %q", again.Subject, idt.Subject)
				}
				// Audit: the link, and each sign-in as sign_in.success
				// with method federated.
				events, err := e.srv.accounts.AuditEvents(t.Context(), storage.AuditQuery{Subject: u.ID, Limit: 50})
				if err != nil {
					t.Fatal(err)
				}
				counts := map[string]int{}
				for _, ev := range events {
					if ev.Type == "sign_in.success" && ev.Detail["method"] == "federated" && ev.Detail["provider"] == name {
						counts["sign_in"]++
						// The relying party the sign-in was for.
						if !strings.HasPrefix(ev.ClientID, "rp-"+name+"-") {
							t.Errorf("federated sign_in.success client_id = %q, want the relying party rp-%s-…", ev.ClientID, name)
						}
					}
					if ev.Type == "identity.linked" && ev.Detail["provider"] == name {
						counts["linked"]++
					}
				}
				if counts["sign_in"] != 2 || counts["linked"] != 1 {
					t.Errorf("audit events = %v, want 2 federated sign-ins and 1 link", counts)
				}
			})
		}
		m, _ := scrape(t, e.issuer+"/metrics")
		if got := m[`torii_sign_ins_total{method="federated",outcome="success"}`]; got != 8 {
			t.Errorf("federated sign-ins counted = %v, want 8", got)
		}
	})
}

// Two nodes on one PostgreSQL: a flow begun on node 0 finishes on node 1
// (the state, its single use and the pending request are in the
// database; the cookie's key is the shared server secret).
func TestFederatedTwoNodes(t *testing.T) {
	fakes, transport, opt := fedFakes(t)
	e := newEnv(t, storagetest.PostgresURL(t), opt)
	other := e.addNode()
	fakes[federation.GitHub].User.Emails = []fedtest.Email{{Email: "nodes@example.com", Primary: true, Verified: true}}
	b := fedBrowser(transport, func(path string) string {
		if strings.HasSuffix(path, "/callback") {
			return strconv.Itoa(other)
		}
		return ""
	})
	_, claims := e.fedLogin(b, federation.GitHub)
	if claims["idp"] != "github" {
		t.Errorf("claims = %v", claims)
	}
	if fakes[federation.GitHub].Redeemed() != 1 {
		t.Errorf("%d codes redeemed at the provider, want 1", fakes[federation.GitHub].Redeemed())
	}
}

// Torii federating Torii: the generic provider is a second Torii started
// in the test; its user signs in to the first through it.
func TestFederatedToriiFederatingTorii(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		upstream := newEnv(t, backendLike(t, dbURL))
		upstream.user("upstream@example.com")
		const secret = "an-operator-chosen-secret-of-32-characters-or-more"
		e := newEnv(t, dbURL, func(c *Config, _ *serverOptions) {
			if _, _, err := upstream.srv.provider.Clients().Register(t.Context(), provider.ClientSpec{
				ID: "downstream-torii", Secret: secret, SkipConsent: true, Scopes: []string{"openid", "profile", "email"},
				RedirectURIs: []string{c.Issuer + federation.CallbackPath(federation.OIDC)},
			}); err != nil {
				t.Fatal(err)
			}
			c.Federation = FederationConfig{OIDCIssuer: upstream.issuer, OIDCClientID: "downstream-torii", OIDCClientSecret: Secret(secret), OIDCName: "Upstream Torii"}
		})
		b := fedBrowser(http.DefaultTransport, nil)
		id, rpSecret := e.client(provider.ClientSpec{ID: "rp"})
		conf := e.oauth2Config(id, rpSecret, oidc.ScopeOpenID, "email")
		f := newCodeFlow(conf)
		p := e.get(b, f.authURL())
		p = e.continueWith(b, p, federation.OIDC)
		// At the upstream Torii: its sign-in form.
		if p.status != http.StatusOK || !strings.HasPrefix(p.url.String(), upstream.issuer+provider.LoginPath) {
			t.Fatalf("upstream sign-in = %d at %s", p.status, p.url)
		}
		p = upstream.signIn(b, p, "upstream@example.com")
		if p.status == http.StatusOK && strings.HasSuffix(p.url.Path, provider.ConsentPath) {
			p = e.consent(b, p, "allow")
		}
		q := e.callback(p)
		tok, err := conf.Exchange(e.ctx(), q.Get("code"), oauth2.VerifierOption(f.verifier))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := tok.Extra("id_token").(string)
		idt, err := e.oidcProvider().Verifier(&oidc.Config{ClientID: id}).Verify(e.ctx(), raw)
		if err != nil {
			t.Fatal(err)
		}
		var claims map[string]any
		idt.Claims(&claims)
		if claims["idp"] != "oidc" || claims["email"] != "upstream@example.com" || !slices.Equal(amrOf(claims), []string{"fed"}) {
			t.Errorf("claims = %v", claims)
		}
		if u, err := e.srv.accounts.UserByEmail(t.Context(), "upstream@example.com"); err != nil || !u.EmailVerified || u.ID != idt.Subject {
			t.Errorf("downstream user = %+v, %v (sub %q)", u, err, idt.Subject)
		}
	})
}

// backendLike returns a fresh database of dbURL's kind.
func backendLike(t *testing.T, dbURL string) string {
	if strings.HasPrefix(dbURL, "postgres") {
		return storagetest.PostgresURL(t)
	}
	return backends[0].url(t)
}

func accountIdentity(provider, subject, email string) account.Identity {
	return account.Identity{Provider: provider, Subject: subject, Email: email}
}

// The account API lists linked identities and unlinks them, refusing the
// last way to sign in; the account page shows them.
func TestFederatedAccountAPI(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		fakes, transport, opt := fedFakes(t)
		e := newEnv(t, dbURL, opt)
		fakes[federation.GitHub].User.Emails = []fedtest.Email{{Email: "api@example.com", Primary: true, Verified: true}}
		b := fedBrowser(transport, nil)
		idt, _, tok := e.fedLoginToken(b, federation.GitHub, oidc.ScopeOpenID, "email", "account")
		call := func(method, path string) (int, map[string]any) {
			req := mustReq(method, e.issuer+path)
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			status, body, _ := e.do(req)
			return status, body
		}
		status, body := call(http.MethodGet, "/api/v1/account/identities")
		items, _ := body["items"].([]any)
		if status != http.StatusOK || len(items) != 1 || items[0].(map[string]any)["provider"] != "github" || items[0].(map[string]any)["subject"] != "1001" {
			t.Fatalf("GET identities = %d %v", status, body)
		}
		if status, body := call(http.MethodDelete, "/api/v1/account/identities/github/1001"); status != http.StatusConflict || body["type"] != "urn:torii:problem:conflict" {
			t.Errorf("unlink the last way to sign in = %d %v, want 409 conflict", status, body)
		}
		if status, _ := call(http.MethodDelete, "/api/v1/account/identities/google/1001"); status != http.StatusNotFound {
			t.Errorf("unlink an identity not linked = %d, want 404", status)
		}
		if err := e.srv.accounts.Link(t.Context(), idt.Subject, account.Identity{Provider: "google", Subject: "g-1"}); err != nil {
			t.Fatal(err)
		}
		if status, _ := call(http.MethodDelete, "/api/v1/account/identities/github/1001"); status != http.StatusNoContent {
			t.Errorf("unlink with another identity left = %d, want 204", status)
		}
		if status, _ := call(http.MethodDelete, "/api/v1/account/identities/google/g-1"); status != http.StatusConflict {
			t.Errorf("unlink the remaining one = %d, want 409", status)
		}
		p := e.get(b, e.issuer+"/account")
		if p.status != http.StatusOK || !strings.Contains(p.body, "Linked sign-in providers") || !strings.Contains(p.body, "Link another: GitHub") {
			t.Errorf("account page = %d:\n%s", p.status, p.body)
		}
	})
}
