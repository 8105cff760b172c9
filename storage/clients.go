package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
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
	IDTokenAlg string `bun:"id_token_alg"`
	// AllowedCORSOrigins are the browser origins (scheme://host[:port])
	// whose scripts may call the token endpoint for this client (CORS).
	AllowedCORSOrigins []string `bun:"allowed_cors_origins"`
	// LogoURI is the client's logo (RFC 7591 logo_uri), shown on the
	// sign-in pages, or "".
	LogoURI string `bun:"logo_uri"`
	// ClientURI is the client's home page (RFC 7591 client_uri), linked
	// from the authorization error page, or "".
	ClientURI string    `bun:"client_uri"`
	CreatedAt time.Time `bun:"created_at"`
	UpdatedAt time.Time `bun:"updated_at"`
}

// AllowsOrigin reports whether origin is one of the client's CORS origins.
func (c *Client) AllowsOrigin(origin string) bool {
	return slices.Contains(c.AllowedCORSOrigins, origin)
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
allowed_cors_origins, logo_uri, client_uri, created_at, updated_at FROM clients WHERE id = ?`

// Client returns the client with the given ID, or ErrNotFound. It runs on
// every token request, as a prepared statement.
func (s *Store) Client(ctx context.Context, id string) (*Client, error) {
	cache := requestCacheOf(ctx)
	if cache != nil {
		if c, ok := cache.client(id); ok {
			return c, nil
		}
	}
	c, err := s.readClient(ctx, cache, id)
	if err == nil && cache != nil {
		cache.putClient(c)
	}
	return c, err
}

func (s *Store) readClient(ctx context.Context, cache *requestCache, id string) (*Client, error) {
	if s.dialect == Postgres && cache != nil && !inTx(ctx) {
		if n := cache.takeTokenReads(); n != (ReadAhead{}) {
			return s.readClientAhead(ctx, cache, id, n)
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
		&c.Public, &c.SkipConsent, &c.PKCEOptional, &c.TokenFormat, &c.IDTokenAlg, (*jsonList)(&c.AllowedCORSOrigins),
		&c.LogoURI, &c.ClientURI, dbTime{&c.CreatedAt}, dbTime{&c.UpdatedAt})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// selectUserOfRefresh reads the user of a refresh token.
var selectUserOfRefresh = "SELECT " + userColumns + " FROM users WHERE id = (SELECT subject FROM " + tableRefresh +
	" WHERE signature = ?)"

// readClientAhead reads the client and the token rows n names in one
// round trip (PostgreSQL), and keeps the rows in the request cache for
// fosite's reads that follow. Reading them before the client is
// authenticated changes nothing: they are only served to this request's
// own reads, after fosite's checks.
func (s *Store) readClientAhead(ctx context.Context, cache *requestCache, id string, n ReadAhead) (*Client, error) {
	var b pgx.Batch
	b.Queue(s.placeholders(selectClient), id)
	if n.CodeSignature != "" {
		b.Queue(s.placeholders(selectCodeGrant), n.CodeSignature, oidcKey(n.Code), n.CodeSignature)
	}
	if n.RefreshSignature != "" {
		b.Queue(s.placeholders(selectRequest[tableRefresh]), n.RefreshSignature)
		b.Queue(s.placeholders(selectUserOfRefresh), n.RefreshSignature)
	}
	if n.AccessSignature != "" {
		b.Queue(s.placeholders(selectRequest[tableAccess]), n.AccessSignature)
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
		if n.CodeSignature != "" {
			rows, err := br.Query()
			if err != nil {
				return err
			}
			_, err = s.cacheCodeGrant(cache, n.CodeSignature, rows)
			rows.Close()
			if err != nil && !errors.Is(err, ErrNotFound) { // not found: fosite's own read says so
				return err
			}
		}
		if n.RefreshSignature != "" {
			if err := cacheRowAhead(cache, tableRefresh, br.QueryRow()); err != nil {
				return err
			}
			u := new(User)
			if err := br.QueryRow().Scan(u.scanDest(nil)...); err == nil {
				cache.putUser(u)
			} else if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		if n.AccessSignature != "" {
			return cacheRowAhead(cache, tableAccess, br.QueryRow())
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: get client: %w", translate(err))
	}
	return c, nil
}

// readWithClient runs a query of one row on PostgreSQL, scanning it into
// dest, and reads the client id in the same round trip into the request
// cache. No row is ErrNotFound; an unknown client is left to fosite's own
// read.
func (s *Store) readWithClient(ctx context.Context, cache *requestCache, id, query string, args, dest []any) error {
	var b pgx.Batch
	b.Queue(s.placeholders(query), args...)
	b.Queue(s.placeholders(selectClient), id)
	return s.pgBatch(ctx, &b, func(br pgx.BatchResults) error {
		err := br.QueryRow().Scan(dest...)
		if errors.Is(err, pgx.ErrNoRows) {
			err = ErrNotFound
		}
		c, cerr := scanClient(br.QueryRow())
		if cerr == nil {
			cache.putClient(c)
		} else if !errors.Is(cerr, pgx.ErrNoRows) && err == nil {
			err = cerr
		}
		return err
	})
}

// cacheRowAhead keeps a token row read ahead; no row is kept as nothing.
func cacheRowAhead(cache *requestCache, table string, row rowScanner) error {
	r, err := scanRow(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	} else if err != nil {
		return err
	}
	cache.putRow(table, r)
	return nil
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

// OriginRegistered reports whether some client lists origin among its
// CORS origins. origin must be a canonical origin (scheme://host[:port],
// the form clients are registered with), which holds no quote, % or _,
// so its quoted form matches exactly one JSON array member.
func (s *Store) OriginRegistered(ctx context.Context, origin string) (bool, error) {
	if strings.ContainsAny(origin, `"%_\`) {
		return false, nil
	}
	ok, err := s.readDB(ctx).NewSelect().Model((*Client)(nil)).
		Where("allowed_cors_origins LIKE ?", `%"`+origin+`"%`).Exists(ctx)
	if err != nil {
		return false, fmt.Errorf("storage: look up origin: %w", translate(err))
	}
	return ok, nil
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
