package storage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/jackc/pgx/v5"
	"github.com/ory/fosite"
	"github.com/uptrace/bun"
)

// Client is a registered OAuth 2.0 client (relying party). It implements
// fosite.Client and fosite.OpenIDConnectClient.
type Client struct {
	bun.BaseModel `bun:"table:clients"`

	ID           string   `bun:"id,pk"`
	Name         string   `bun:"name"`
	SecretHash   []byte   `bun:"secret_hash"`
	RedirectURIs []string `bun:"redirect_uris"`
	// PostLogoutRedirectURIs are where RP-initiated logout may send the
	// browser afterwards, matched exactly.
	PostLogoutRedirectURIs []string `bun:"post_logout_redirect_uris"`
	GrantTypes             []string `bun:"grant_types"`
	ResponseTypes          []string `bun:"response_types"`
	Scopes                 []string `bun:"scopes"`
	Audience               []string `bun:"audience"`
	Public                 bool     `bun:"public"`
	// SkipConsent lets a first-party client skip the consent page.
	SkipConsent bool `bun:"skip_consent"`
	// PKCEOptional exempts a confidential legacy client from PKCE.
	PKCEOptional bool `bun:"pkce_optional"`
	// TokenFormat is "opaque" or "jwt" (RFC 9068 access tokens).
	TokenFormat string `bun:"token_format"`
	// IDTokenAlg is the ID token signing algorithm: RS256, ES256 or EdDSA.
	IDTokenAlg string    `bun:"id_token_alg"`
	CreatedAt  time.Time `bun:"created_at"`
	UpdatedAt  time.Time `bun:"updated_at"`
}

var (
	_ fosite.Client              = (*Client)(nil)
	_ fosite.OpenIDConnectClient = (*Client)(nil)
)

// GetID returns the client ID.
func (c *Client) GetID() string { return c.ID }

// GetHashedSecret returns the keyed hash of the client secret.
func (c *Client) GetHashedSecret() []byte { return c.SecretHash }

// GetRedirectURIs returns the registered redirect URIs.
func (c *Client) GetRedirectURIs() []string { return c.RedirectURIs }

// GetGrantTypes returns the grant types the client may use.
func (c *Client) GetGrantTypes() fosite.Arguments { return c.GrantTypes }

// GetResponseTypes returns the response types the client may use.
func (c *Client) GetResponseTypes() fosite.Arguments { return c.ResponseTypes }

// GetScopes returns the scopes the client may request.
func (c *Client) GetScopes() fosite.Arguments { return c.Scopes }

// IsPublic reports whether the client has no secret.
func (c *Client) IsPublic() bool { return c.Public }

// GetAudience returns the audiences the client may request.
func (c *Client) GetAudience() fosite.Arguments { return c.Audience }

// GetRequestURIs returns nil: request_uri is not supported.
func (c *Client) GetRequestURIs() []string { return nil }

// GetJSONWebKeys returns nil: private_key_jwt is not supported.
func (c *Client) GetJSONWebKeys() *jose.JSONWebKeySet { return nil }

// GetJSONWebKeysURI returns "": private_key_jwt is not supported.
func (c *Client) GetJSONWebKeysURI() string { return "" }

// GetRequestObjectSigningAlgorithm returns "": request objects are not supported.
func (c *Client) GetRequestObjectSigningAlgorithm() string { return "" }

// GetTokenEndpointAuthMethod returns "none" for public clients; confidential
// clients may use client_secret_basic or client_secret_post.
func (c *Client) GetTokenEndpointAuthMethod() string {
	if c.Public {
		return "none"
	}
	return "client_secret_basic"
}

// GetTokenEndpointAuthSigningAlgorithm is unused (no private_key_jwt).
func (c *Client) GetTokenEndpointAuthSigningAlgorithm() string { return "RS256" }

// CreateClient stores a new client. It fails with ErrAlreadyExists when the ID
// is taken.
func (s *Store) CreateClient(ctx context.Context, c *Client) error {
	now := s.nowUTC()
	c.CreatedAt, c.UpdatedAt = now, now
	if _, err := s.idb(ctx).NewInsert().Model(c).Exec(ctx); err != nil {
		return fmt.Errorf("storage: create client %q: %w", c.ID, translate(err))
	}
	return nil
}

const selectClient = `SELECT id, name, secret_hash, redirect_uris, post_logout_redirect_uris, grant_types,
response_types, scopes, audience, public, skip_consent, pkce_optional, token_format, id_token_alg,
created_at, updated_at FROM clients WHERE id = ?`

type requestCacheKey struct{}

// requestCache holds what one request has read, and what it has taken.
type requestCache struct {
	mu      sync.Mutex
	clients map[string]*Client
	// codes are the active authorization code rows read, by signature:
	// fosite reads a code twice in one redemption.
	codes map[string]*requestRow
	// taken are the rows this request read and deleted in one statement,
	// by table and signature: fosite's delete that follows is then done.
	taken map[string]bool
	// grant is the grant this request redeems (NoteGrant), until it is
	// read; oidc is the OpenID Connect session read with a code, and
	// oidcFor the code signature it was read with.
	grant   *Grant
	oidc    *requestRow
	oidcFor string
	// oidcDeleted: the session's delete is queued with the code's use.
	oidcDeleted bool
	// refresh is the refresh token row read ahead with the client, served
	// once.
	refresh *requestRow
}

// Grant names what a token request redeems, known from its form before
// fosite reads it: an authorization code (raw, and its signature) or a
// refresh token (its signature).
type Grant struct {
	Code, CodeSignature string
	RefreshSignature    string
}

// NoteGrant tells the store, through ctx's request cache, what the
// request redeems. On PostgreSQL the client's read then reads the grant
// in the same round trip; reading a code reads its OpenID Connect session
// in the same statement, and marking the code used deletes that session in
// the same transaction. Without a request cache it does nothing.
func NoteGrant(ctx context.Context, g Grant) {
	if cache := requestCacheOf(ctx); cache != nil {
		cache.mu.Lock()
		cache.grant = &g
		cache.mu.Unlock()
	}
}

// WithRequestCache returns a context for the span of one request in which
// the store remembers what the request read: each client once (a token
// exchange reads its client five times or more) and each authorization
// code once (fosite reads it twice; its single use is still decided by the
// conditional update that marks it used).
func WithRequestCache(ctx context.Context) context.Context {
	return context.WithValue(ctx, requestCacheKey{}, &requestCache{
		clients: map[string]*Client{}, codes: map[string]*requestRow{}, taken: map[string]bool{},
	})
}

func requestCacheOf(ctx context.Context) *requestCache {
	c, _ := ctx.Value(requestCacheKey{}).(*requestCache)
	return c
}

// takeGrant returns the noted grant, once.
func (c *requestCache) takeGrant() *Grant {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.grant
	c.grant = nil
	return g
}

// Client returns the client with the given ID, or ErrNotFound. It runs on
// every token request, as a prepared statement.
func (s *Store) Client(ctx context.Context, id string) (*Client, error) {
	cache := requestCacheOf(ctx)
	if cache != nil {
		cache.mu.Lock()
		c, ok := cache.clients[id]
		cache.mu.Unlock()
		if ok {
			cp := *c
			return &cp, nil
		}
	}
	c, err := s.readClient(ctx, id)
	if err == nil && cache != nil {
		cp := *c
		cache.mu.Lock()
		cache.clients[id] = &cp
		cache.mu.Unlock()
	}
	return c, err
}

func (s *Store) readClient(ctx context.Context, id string) (*Client, error) {
	if s.dialect == Postgres && !inTx(ctx) {
		if cache := requestCacheOf(ctx); cache != nil {
			if g := cache.takeGrant(); g != nil {
				return s.readClientAndGrant(ctx, cache, id, g)
			}
		}
	}
	row, err := s.queryRowPrepared(ctx, selectClient, id)
	if err != nil {
		return nil, fmt.Errorf("storage: get client: %w", err)
	}
	c, err := scanClient(row)
	if err != nil {
		return nil, fmt.Errorf("storage: get client: %w", translate(err))
	}
	return c, nil
}

func scanClient(row rowScanner) (*Client, error) {
	c := new(Client)
	err := row.Scan(&c.ID, &c.Name, &c.SecretHash, (*jsonList)(&c.RedirectURIs), (*jsonList)(&c.PostLogoutRedirectURIs),
		(*jsonList)(&c.GrantTypes), (*jsonList)(&c.ResponseTypes), (*jsonList)(&c.Scopes), (*jsonList)(&c.Audience),
		&c.Public, &c.SkipConsent, &c.PKCEOptional, &c.TokenFormat, &c.IDTokenAlg, dbTime{&c.CreatedAt}, dbTime{&c.UpdatedAt})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// readClientAndGrant reads the client and the grant the request redeems
// in one round trip (PostgreSQL), and keeps the grant's rows in the
// request cache for fosite's reads that follow. Reading them before the
// client is authenticated changes nothing: they are only served to this
// request's own reads, after fosite's checks.
func (s *Store) readClientAndGrant(ctx context.Context, cache *requestCache, id string, g *Grant) (*Client, error) {
	var b pgx.Batch
	b.Queue(s.placeholders(selectClient), id)
	switch {
	case g.CodeSignature != "":
		b.Queue(s.placeholders(selectCodeWithOIDC), g.CodeSignature, oidcKey(g.Code))
	case g.RefreshSignature != "":
		b.Queue(s.placeholders(selectRequest[tableRefresh]), g.RefreshSignature)
	}
	var c *Client
	err := s.pgBatch(ctx, &b, func(br pgx.BatchResults) error {
		var err error
		if c, err = scanClient(br.QueryRow()); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				err = ErrNotFound
			}
			return err
		}
		switch {
		case g.CodeSignature != "":
			rows, err := br.Query()
			if err != nil {
				return err
			}
			defer rows.Close()
			_, err = s.cacheCodeWithOIDC(cache, g.CodeSignature, rows)
			if errors.Is(err, ErrNotFound) {
				err = nil // fosite's own read says so
			}
			return err
		case g.RefreshSignature != "":
			row, err := scanRow(br.QueryRow())
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			} else if err != nil {
				return err
			}
			cache.mu.Lock()
			cache.refresh = row
			cache.mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: get client: %w", translate(err))
	}
	return c, nil
}

// Clients lists every client, ordered by ID.
func (s *Store) Clients(ctx context.Context) ([]*Client, error) {
	var cs []*Client
	if err := s.readDB(ctx).NewSelect().Model(&cs).Order("id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("storage: list clients: %w", translate(err))
	}
	return cs, nil
}

// UpdateClient replaces a stored client's fields.
func (s *Store) UpdateClient(ctx context.Context, c *Client) error {
	c.UpdatedAt = s.nowUTC()
	res, err := s.idb(ctx).NewUpdate().Model(c).WherePK().ExcludeColumn("created_at").Exec(ctx)
	if err != nil {
		return fmt.Errorf("storage: update client %q: %w", c.ID, translate(err))
	}
	return oneRow(res, "update client")
}

// DeleteClient removes a client and, through foreign keys, its tokens,
// codes, consents and pending requests.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	res, err := s.idb(ctx).NewDelete().Model((*Client)(nil)).Where("id = ?", id).Exec(ctx)
	if err != nil {
		return fmt.Errorf("storage: delete client %q: %w", id, translate(err))
	}
	return oneRow(res, "delete client")
}

// GetClient implements fosite.ClientManager.
func (s *Store) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	c, err := s.Client(ctx, id)
	if err != nil {
		return nil, toFosite(err)
	}
	return c, nil
}

// ClientAssertionJWTValid implements fosite.ClientManager. Torii does not
// accept client assertions (private_key_jwt), so no JTI is ever known.
func (s *Store) ClientAssertionJWTValid(ctx context.Context, jti string) error {
	return nil
}

// SetClientAssertionJWT implements fosite.ClientManager; see
// ClientAssertionJWTValid.
func (s *Store) SetClientAssertionJWT(ctx context.Context, jti string, exp time.Time) error {
	return nil
}
