package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/markbates/goth"
	"github.com/markbates/goth/providers/facebook"
	"github.com/markbates/goth/providers/github"
	"github.com/markbates/goth/providers/google"
	"github.com/markbates/goth/providers/openidConnect"
	"golang.org/x/oauth2"
)

// Google's fixed endpoints (goth's google provider uses the same).
const (
	googleIssuer = "https://accounts.google.com"
	googleJWKS   = "https://www.googleapis.com/oauth2/v3/certs"
	// facebookTokenURL is goth's facebook provider's token endpoint.
	facebookTokenURL = "https://graph.facebook.com/oauth/access_token"
)

func (s *Service) callback(name string) string {
	return strings.TrimSuffix(s.cfg.Issuer, "/") + CallbackPath(name)
}

func (s *Service) exchangeConfig(c Credentials, name string, ep oauth2.Endpoint, scopes []string) *oauth2.Config {
	ep.AuthStyle = oauth2.AuthStyleInParams
	return &oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, RedirectURL: s.callback(name), Endpoint: ep, Scopes: scopes}
}

// google: goth's provider for the authorization URL and the profile; the
// ID token from the token response, verified against Google's JWKS, gives
// the subject and email_verified.
func (s *Service) google() *upstream {
	scopes := []string{"openid", "email", "profile"}
	p := google.New(s.cfg.Google.ClientID, s.cfg.Google.ClientSecret, s.callback(Google), scopes...)
	p.HTTPClient = s.client
	keys := oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), s.client), googleJWKS)
	rd := &ready{
		goth:     p,
		oauth:    s.exchangeConfig(s.cfg.Google, Google, google.Endpoint, scopes),
		verifier: oidc.NewVerifier(googleIssuer, keys, &oidc.Config{ClientID: s.cfg.Google.ClientID, Now: s.cfg.Now}),
	}
	rd.profile = func(ctx context.Context, tok *oauth2.Token, idt *oidc.IDToken) (Identity, error) {
		gu, err := p.FetchUser(&google.Session{AccessToken: tok.AccessToken})
		if err != nil {
			return Identity{}, err
		}
		var claims struct {
			Email         string `json:"email"`
			EmailVerified bool   `json:"email_verified"`
		}
		if err := idt.Claims(&claims); err != nil {
			return Identity{}, err
		}
		id := Identity{Subject: idt.Subject, Email: claims.Email, EmailVerified: claims.EmailVerified && claims.Email != "",
			Name: gu.Name, Picture: gu.AvatarURL}
		if gu.UserID != "" && gu.UserID != idt.Subject {
			return Identity{}, errors.New("userinfo id is not the id token's subject")
		}
		if id.Email == "" {
			id.Email = gu.Email
		}
		return id, nil
	}
	return &upstream{name: Google, label: "Google", oidc: true, setup: func(context.Context) (*ready, error) { return rd, nil }}
}

// githubURLs returns the OAuth and API base URLs for base ("" for
// github.com).
func githubURLs(base string) (oauthBase, api string) {
	base = strings.TrimSuffix(base, "/")
	if base == "" || base == "https://github.com" {
		return "https://github.com", "https://api.github.com"
	}
	return base, base + "/api/v3"
}

// github: goth's provider for the authorization URL and the profile; the
// email is the primary verified address from /user/emails. The scopes are
// passed to goth as one string so that goth does not read /user/emails
// itself (it fails the sign-in when there is no verified primary address;
// Torii treats that as an unverified email instead).
func (s *Service) github() (*upstream, error) {
	oauthBase, api := githubURLs(s.cfg.GitHubURL)
	ep := oauth2.Endpoint{AuthURL: oauthBase + "/login/oauth/authorize", TokenURL: oauthBase + "/login/oauth/access_token"}
	emailsURL := api + "/user/emails"
	p := github.NewCustomisedURL(s.cfg.GitHub.ClientID, s.cfg.GitHub.ClientSecret, s.callback(GitHub),
		ep.AuthURL, ep.TokenURL, api+"/user", emailsURL, "read:user user:email")
	p.HTTPClient = s.client
	rd := &ready{goth: p, oauth: s.exchangeConfig(s.cfg.GitHub, GitHub, ep, []string{"read:user", "user:email"})}
	rd.profile = func(ctx context.Context, tok *oauth2.Token, _ *oidc.IDToken) (Identity, error) {
		gu, err := p.FetchUser(&github.Session{AccessToken: tok.AccessToken})
		if err != nil {
			return Identity{}, err
		}
		id := Identity{Subject: gu.UserID, Name: gu.Name, Picture: gu.AvatarURL}
		if id.Name == "" {
			id.Name = gu.NickName
		}
		if id.Subject == "0" {
			id.Subject = ""
		}
		id.Email, err = s.githubPrimaryEmail(ctx, emailsURL, tok.AccessToken)
		if err != nil {
			return Identity{}, err
		}
		id.EmailVerified = id.Email != ""
		return id, nil
	}
	return &upstream{name: GitHub, label: "GitHub", setup: func(context.Context) (*ready, error) { return rd, nil }}, nil
}

// githubPrimaryEmail returns the primary verified address from GitHub's
// emails API, or "" when there is none.
func (s *Service) githubPrimaryEmail(ctx context.Context, emailsURL, accessToken string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, emailsURL, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/vnd.github+json")
	resp, err := s.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("github emails: status %d", resp.StatusCode)
	}
	var emails []struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&emails); err != nil {
		return "", fmt.Errorf("github emails: %w", err)
	}
	for _, e := range emails {
		if e.Primary && e.Verified {
			return e.Email, nil
		}
	}
	return "", nil
}

// facebook: goth's provider; Facebook's email never counts as verified.
func (s *Service) facebook() *upstream {
	p := facebook.New(s.cfg.Facebook.ClientID, s.cfg.Facebook.ClientSecret, s.callback(Facebook), "email", "public_profile")
	p.HTTPClient = s.client
	ep := oauth2.Endpoint{AuthURL: "https://www.facebook.com/dialog/oauth", TokenURL: facebookTokenURL}
	rd := &ready{goth: p, oauth: s.exchangeConfig(s.cfg.Facebook, Facebook, ep, []string{"email", "public_profile"})}
	rd.profile = func(ctx context.Context, tok *oauth2.Token, _ *oidc.IDToken) (Identity, error) {
		fu, err := p.FetchUser(&facebook.Session{AccessToken: tok.AccessToken})
		if err != nil {
			return Identity{}, err
		}
		return Identity{Subject: fu.UserID, Email: fu.Email, Name: fu.Name, Picture: fu.AvatarURL}, nil
	}
	return &upstream{name: Facebook, label: "Facebook", setup: func(context.Context) (*ready, error) { return rd, nil }}
}

// generic: discovery with go-oidc (through the configured client), goth's
// openidConnect provider built from the discovered endpoints, and the ID
// token verified by go-oidc before goth reads it.
func (s *Service) generic() *upstream {
	var o once
	c := s.cfg.OIDC
	scopes := []string{"openid", "email", "profile"}
	setup := func(ctx context.Context) (*ready, error) {
		return o.get(ctx, func(ctx context.Context) (*ready, error) {
			// The key set fetches keys later, outside this request.
			dctx := oidc.ClientContext(context.WithoutCancel(ctx), s.client)
			op, err := oidc.NewProvider(dctx, s.cfg.OIDCIssuer)
			if err != nil {
				return nil, upstreamErr(KindProvider, err)
			}
			var meta struct {
				UserInfo string `json:"userinfo_endpoint"`
			}
			op.Claims(&meta)
			ep := op.Endpoint()
			p, err := openidConnect.NewCustomisedURL(c.ClientID, c.ClientSecret, s.callback(OIDC), ep.AuthURL, ep.TokenURL,
				s.cfg.OIDCIssuer, meta.UserInfo, "", scopes...)
			if err != nil {
				return nil, fail(KindProvider, err)
			}
			p.HTTPClient = s.client
			p.SetName(OIDC)
			rd := &ready{goth: p, oauth: s.exchangeConfig(c, OIDC, ep, scopes),
				verifier: op.VerifierContext(dctx, &oidc.Config{ClientID: c.ClientID, Now: s.cfg.Now})}
			rd.oauth.Endpoint.AuthStyle = oauth2.AuthStyleAutoDetect
			rd.profile = func(ctx context.Context, tok *oauth2.Token, idt *oidc.IDToken) (Identity, error) {
				raw, _ := tok.Extra("id_token").(string)
				gu, err := p.FetchUser(&openidConnect.Session{AccessToken: tok.AccessToken, IDToken: raw, ExpiresAt: tok.Expiry})
				if err != nil {
					return Identity{}, err
				}
				var claims struct {
					Email         string `json:"email"`
					EmailVerified *bool  `json:"email_verified"`
				}
				idt.Claims(&claims)
				id := Identity{Subject: gu.UserID, Email: gu.Email, Name: gu.Name, Picture: gu.AvatarURL}
				switch {
				case claims.EmailVerified != nil && claims.Email == id.Email:
					id.EmailVerified = *claims.EmailVerified
				default:
					v, _ := gu.RawData["email_verified"].(bool)
					id.EmailVerified = v
				}
				id.EmailVerified = id.EmailVerified && id.Email != ""
				return id, nil
			}
			return rd, nil
		})
	}
	return &upstream{name: OIDC, label: s.cfg.OIDCName, oidc: true, setup: setup}
}

var _ goth.Provider = (*github.Provider)(nil)
