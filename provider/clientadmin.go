package provider

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/torii-idp/torii/storage"
)

// ClientMetadata is how a client is shown, by the CLI and the admin API:
// its registration metadata in the names of RFC 7591 (and Torii's own for
// what RFC 7591 has no name for), never the secret's hash. ClientSecret is
// set only in the answer that created or rotated the secret.
type ClientMetadata struct {
	ClientID                 string    `json:"client_id"`
	ClientSecret             string    `json:"client_secret,omitempty"`
	ClientName               string    `json:"client_name"`
	RedirectURIs             []string  `json:"redirect_uris"`
	PostLogoutRedirectURIs   []string  `json:"post_logout_redirect_uris"`
	AllowedCORSOrigins       []string  `json:"allowed_cors_origins"`
	GrantTypes               []string  `json:"grant_types"`
	ResponseTypes            []string  `json:"response_types"`
	Scope                    string    `json:"scope"`
	TokenEndpointAuthMethod  string    `json:"token_endpoint_auth_method"`
	SkipConsent              bool      `json:"skip_consent"`
	PKCE                     string    `json:"pkce"`
	AccessTokenFormat        string    `json:"access_token_format"`
	IDTokenSignedResponseAlg string    `json:"id_token_signed_response_alg"`
	LogoURI                  string    `json:"logo_uri,omitempty"`
	ClientURI                string    `json:"client_uri,omitempty"`
	CreatedAt                time.Time `json:"created_at"`
}

// The token endpoint authentication methods of ClientMetadata: a
// confidential client's, and a public client's.
const (
	AuthMethodBasic = "client_secret_basic"
	AuthMethodNone  = "none"
)

// MetadataOf shows c; secret is the plain secret when it was just made.
func MetadataOf(c *storage.Client, secret string) ClientMetadata {
	auth := AuthMethodBasic
	if c.Public {
		auth = AuthMethodNone
	}
	pkce := "required"
	if c.PKCEOptional {
		pkce = "optional"
	}
	return ClientMetadata{
		ClientID: c.ID, ClientSecret: secret, ClientName: c.Name, RedirectURIs: nonNil(c.RedirectURIs),
		PostLogoutRedirectURIs: nonNil(c.PostLogoutRedirectURIs), AllowedCORSOrigins: nonNil(c.AllowedCORSOrigins),
		GrantTypes: nonNil(c.GrantTypes), ResponseTypes: nonNil(c.ResponseTypes), Scope: strings.Join(c.Scopes, " "),
		TokenEndpointAuthMethod: auth, SkipConsent: c.SkipConsent, PKCE: pkce,
		AccessTokenFormat: c.TokenFormat, IDTokenSignedResponseAlg: c.IDTokenAlg, LogoURI: c.LogoURI, ClientURI: c.ClientURI,
		CreatedAt: c.CreatedAt.UTC(),
	}
}

// SpecOf is the specification c was registered with, but its secret.
func SpecOf(c *storage.Client) ClientSpec {
	return ClientSpec{
		ID: c.ID, Name: c.Name, RedirectURIs: slices.Clone(c.RedirectURIs),
		PostLogoutRedirectURIs: slices.Clone(c.PostLogoutRedirectURIs), CORSOrigins: slices.Clone(c.AllowedCORSOrigins),
		GrantTypes: slices.Clone(c.GrantTypes), Scopes: nonNil(slices.Clone(c.Scopes)), Public: c.Public,
		SkipConsent: c.SkipConsent, PKCEOptional: c.PKCEOptional, TokenFormat: c.TokenFormat, IDTokenAlg: c.IDTokenAlg,
		LogoURI: c.LogoURI, ClientURI: c.ClientURI,
	}
}

// Update changes a registered client: change edits the specification it
// was registered with, which is then validated as at registration (a
// *ErrInvalidClient leaves the client as it was). The ID and the secret
// cannot change here, nor whether the client is public. ErrNotFound
// (storage's) for an unknown client.
func (p *Clients) Update(ctx context.Context, id string, change func(*ClientSpec)) (*storage.Client, error) {
	if !clientIDPattern.MatchString(id) {
		return nil, fmt.Errorf("provider: update client: %w", storage.ErrNotFound)
	}
	var updated *storage.Client
	err := p.store.InTx(ctx, func(ctx context.Context) error {
		c, err := p.store.Client(ctx, id)
		if err != nil {
			return err
		}
		spec := SpecOf(c)
		change(&spec)
		switch {
		case spec.ID != c.ID:
			return invalid("the client ID cannot change")
		case spec.Public != c.Public:
			return invalid("a client cannot change between public and confidential; register a new one")
		case spec.Secret != "":
			return invalid("the secret changes only by rotation")
		}
		if err := spec.Validate(); err != nil {
			return err
		}
		c.Name, c.RedirectURIs, c.PostLogoutRedirectURIs = spec.Name, nonNil(spec.RedirectURIs), nonNil(spec.PostLogoutRedirectURIs)
		c.AllowedCORSOrigins = nonNil(slices.Compact(slices.Sorted(slices.Values(spec.CORSOrigins))))
		c.GrantTypes, c.Scopes, c.SkipConsent, c.PKCEOptional = spec.GrantTypes, spec.Scopes, spec.SkipConsent, spec.PKCEOptional
		c.TokenFormat, c.IDTokenAlg = spec.TokenFormat, spec.IDTokenAlg
		c.LogoURI, c.ClientURI = spec.LogoURI, spec.ClientURI
		if err := p.store.UpdateClient(ctx, c); err != nil {
			return err
		}
		updated = c
		return p.audit(ctx, "admin.client_updated", c.ID)
	})
	if err != nil {
		return nil, err
	}
	return updated, nil
}

// RotateSecret gives a confidential client a new generated secret and
// returns it: the only time it is shown. The old secret stops working at
// once; tokens already issued stay valid.
func (p *Clients) RotateSecret(ctx context.Context, id string) (*storage.Client, string, error) {
	if !clientIDPattern.MatchString(id) {
		return nil, "", fmt.Errorf("provider: rotate secret: %w", storage.ErrNotFound)
	}
	var (
		c      *storage.Client
		secret string
	)
	err := p.store.InTx(ctx, func(ctx context.Context) error {
		var err error
		if c, err = p.store.Client(ctx, id); err != nil {
			return err
		}
		if c.Public {
			return invalid("a public client has no secret")
		}
		secret = newClientSecret()
		c.SecretHash, _ = p.hasher.Hash(ctx, []byte(secret))
		if err := p.store.UpdateClient(ctx, c); err != nil {
			return err
		}
		return p.audit(ctx, "admin.client_secret_rotated", c.ID)
	})
	if err != nil {
		return nil, "", err
	}
	return c, secret, nil
}

// List returns every client, ordered by ID.
func (p *Clients) List(ctx context.Context) ([]*storage.Client, error) {
	return p.store.Clients(ctx)
}

// Get returns a client; ErrNotFound (storage's) for an unknown one.
func (p *Clients) Get(ctx context.Context, id string) (*storage.Client, error) {
	if !clientIDPattern.MatchString(id) {
		return nil, fmt.Errorf("provider: client: %w", storage.ErrNotFound)
	}
	return p.store.Client(ctx, id)
}

// Delete removes a client with its tokens, codes and consents; ErrNotFound
// (storage's) for an unknown one.
func (p *Clients) Delete(ctx context.Context, id string) error {
	if !clientIDPattern.MatchString(id) {
		return fmt.Errorf("provider: delete client: %w", storage.ErrNotFound)
	}
	return p.store.InTx(ctx, func(ctx context.Context) error {
		if err := p.store.DeleteClient(ctx, id); err != nil {
			return err
		}
		return p.audit(ctx, "admin.client_deleted", id)
	})
}

// audit records an administrator's action on a client, in the
// transaction ctx carries; the actor is the one ctx names
// (storage.WithAuditActor).
func (p *Clients) audit(ctx context.Context, typ, clientID string) error {
	return p.store.RecordAudit(ctx, &storage.AuditEvent{Type: typ, Actor: storage.AuditActorFrom(ctx), ClientID: clientID})
}

// newClientSecret is a generated 256-bit secret.
func newClientSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// IsInvalidClient reports whether err refuses a client specification.
func IsInvalidClient(err error) bool {
	var inv *ErrInvalidClient
	return errors.As(err, &inv)
}
