package main

import (
	"context"
	"net/url"
	"strings"

	"github.com/torii-idp/torii/login/federation"
	"github.com/torii-idp/torii/storage"
)

// FederationConfig configures sign-in through upstream providers
// (login/federation). A provider is on when its client ID is set.
type FederationConfig struct {
	GoogleClientID     string
	GoogleClientSecret Secret
	GitHubClientID     string
	GitHubClientSecret Secret
	// GitHubURL is github.com's or a GitHub Enterprise Server's base URL.
	GitHubURL            string
	FacebookClientID     string
	FacebookClientSecret Secret
	OIDCIssuer           string
	OIDCClientID         string
	OIDCClientSecret     Secret
	OIDCName             string
	// OTP is "" (the code step follows TORII_OTP) or "skip".
	OTP string
}

// federationSettings are the providers' settings, in --help order.
func federationSettings() []*setting {
	return []*setting{
		{env: "TORII_GOOGLE_CLIENT_ID", flag: "google-client-id", def: "", usage: "OAuth client ID registered at Google: adds \"Continue with Google\" (callback ISSUER/login/federated/google/callback)"},
		{env: "TORII_GOOGLE_CLIENT_SECRET", flag: "google-client-secret", def: "", usage: "OAuth client secret of --google-client-id"},
		{env: "TORII_GITHUB_CLIENT_ID", flag: "github-client-id", def: "", usage: "OAuth app client ID registered at GitHub: adds \"Continue with GitHub\" (callback ISSUER/login/federated/github/callback)"},
		{env: "TORII_GITHUB_CLIENT_SECRET", flag: "github-client-secret", def: "", usage: "client secret of --github-client-id"},
		{env: "TORII_GITHUB_URL", flag: "github-url", def: "https://github.com", usage: "GitHub's base URL; another one is a GitHub Enterprise Server (URL/login/oauth/..., API at URL/api/v3)"},
		{env: "TORII_FACEBOOK_CLIENT_ID", flag: "facebook-client-id", def: "", usage: "Facebook app ID: adds \"Continue with Facebook\" (callback ISSUER/login/federated/facebook/callback)"},
		{env: "TORII_FACEBOOK_CLIENT_SECRET", flag: "facebook-client-secret", def: "", usage: "app secret of --facebook-client-id"},
		{env: "TORII_OIDC_ISSUER", flag: "oidc-issuer", def: "", usage: "issuer URL of an OpenID Connect provider (found by discovery): adds \"Continue with NAME\" (callback ISSUER/login/federated/oidc/callback)"},
		{env: "TORII_OIDC_CLIENT_ID", flag: "oidc-client-id", def: "", usage: "client ID registered at --oidc-issuer"},
		{env: "TORII_OIDC_CLIENT_SECRET", flag: "oidc-client-secret", def: "", usage: "client secret of --oidc-client-id"},
		{env: "TORII_OIDC_NAME", flag: "oidc-name", def: "Single sign-on", usage: "label of the OpenID Connect provider's button (\"Continue with NAME\")"},
		{env: "TORII_FEDERATED_OTP", flag: "federated-otp", def: "", usage: "code step after a sign-in through a provider: unset follows --otp; skip trusts the provider (a client may still ask with acr_values=mfa)"},
	}
}

// loadFederation reads the providers' settings: a provider with some of
// its settings but not all is an error naming the missing one.
func loadFederation(c *FederationConfig, val func(string) string, bad func(env, format string, args ...any)) {
	c.GoogleClientID, c.GoogleClientSecret = val("TORII_GOOGLE_CLIENT_ID"), Secret(val("TORII_GOOGLE_CLIENT_SECRET"))
	c.GitHubClientID, c.GitHubClientSecret = val("TORII_GITHUB_CLIENT_ID"), Secret(val("TORII_GITHUB_CLIENT_SECRET"))
	c.GitHubURL = strings.TrimSuffix(val("TORII_GITHUB_URL"), "/")
	c.FacebookClientID, c.FacebookClientSecret = val("TORII_FACEBOOK_CLIENT_ID"), Secret(val("TORII_FACEBOOK_CLIENT_SECRET"))
	c.OIDCIssuer, c.OIDCClientID, c.OIDCClientSecret = strings.TrimSuffix(val("TORII_OIDC_ISSUER"), "/"), val("TORII_OIDC_CLIENT_ID"), Secret(val("TORII_OIDC_CLIENT_SECRET"))
	c.OIDCName = val("TORII_OIDC_NAME")
	pairs := []struct{ id, secret string }{
		{"TORII_GOOGLE_CLIENT_ID", "TORII_GOOGLE_CLIENT_SECRET"},
		{"TORII_GITHUB_CLIENT_ID", "TORII_GITHUB_CLIENT_SECRET"},
		{"TORII_FACEBOOK_CLIENT_ID", "TORII_FACEBOOK_CLIENT_SECRET"},
	}
	for _, p := range pairs {
		switch {
		case val(p.id) != "" && val(p.secret) == "":
			bad(p.secret, "is required with %s", p.id)
		case val(p.id) == "" && val(p.secret) != "":
			bad(p.id, "is required with %s", p.secret)
		}
	}
	oidc := []string{"TORII_OIDC_ISSUER", "TORII_OIDC_CLIENT_ID", "TORII_OIDC_CLIENT_SECRET"}
	set := 0
	for _, env := range oidc {
		if val(env) != "" {
			set++
		}
	}
	if set > 0 && set < len(oidc) {
		for _, env := range oidc {
			if val(env) == "" {
				bad(env, "is required with the other TORII_OIDC_* settings (issuer, client ID and secret)")
			}
		}
	}
	if c.OIDCIssuer != "" {
		if u, err := url.Parse(c.OIDCIssuer); err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" ||
			(u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
			bad("TORII_OIDC_ISSUER", "%q must be an https URL (http only on a loopback host) without query", c.OIDCIssuer)
		}
	}
	if u, err := url.Parse(c.GitHubURL); err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" ||
		(u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
		bad("TORII_GITHUB_URL", "%q must be an https URL (http only on a loopback host)", c.GitHubURL)
	}
	if n := len([]rune(c.OIDCName)); n == 0 || n > 64 {
		bad("TORII_OIDC_NAME", "must have 1 to 64 characters")
	}
	switch c.OTP = val("TORII_FEDERATED_OTP"); c.OTP {
	case "", "skip":
	default:
		bad("TORII_FEDERATED_OTP", "%q must be skip or unset", c.OTP)
	}
}

// newFederation builds the providers for serve.
func newFederation(ctx context.Context, cfg Config, store *storage.Store) (*federation.Service, error) {
	f := cfg.Federation
	return federation.New(ctx, federation.Config{
		Issuer:     cfg.Issuer,
		Google:     federation.Credentials{ClientID: f.GoogleClientID, ClientSecret: f.GoogleClientSecret.Reveal()},
		GitHub:     federation.Credentials{ClientID: f.GitHubClientID, ClientSecret: f.GitHubClientSecret.Reveal()},
		GitHubURL:  f.GitHubURL,
		Facebook:   federation.Credentials{ClientID: f.FacebookClientID, ClientSecret: f.FacebookClientSecret.Reveal()},
		OIDC:       federation.Credentials{ClientID: f.OIDCClientID, ClientSecret: f.OIDCClientSecret.Reveal()},
		OIDCIssuer: f.OIDCIssuer,
		OIDCName:   f.OIDCName,
		HTTPClient: cfg.federationClient,
	}, store)
}
