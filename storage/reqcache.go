package storage

import (
	"context"
	"sync"
)

// A protocol request (authorization, token, introspection, userinfo) runs
// in a request cache (WithRequestCache). The cache remembers what the
// request read: fosite reads a request's client five times or more and an
// authorization code twice, and the database answers once. It also carries
// two things the request does not read at once:
//
//   - read-ahead (NoteReads): rows the request will read, known from its
//     form before fosite asks for them. On PostgreSQL, where each statement
//     is a round trip, the first read that can carry them fetches them in
//     the same round trip (a pgx batch); they are served once, to this
//     request's own reads, after fosite's checks.
//   - a PKCE challenge to consume: a redemption reads its challenge and
//     deletes it in its own transaction, together with the code's single
//     use; a redemption that failed deletes it at EndRequest.

type requestCacheKey struct{}

// requestCache holds what one request read, and what it has still to do.
type requestCache struct {
	mu      sync.Mutex
	clients map[string]*Client
	// codes are the active authorization code rows read, by signature.
	codes map[string]*requestRow
	// ahead is what NoteReads named and no read has fetched yet.
	ahead ReadAhead
	// rows are token rows read ahead, by table and signature; users are
	// users read ahead, by ID. Each is served once: a later read sees the
	// database.
	rows  map[string]*requestRow
	users map[string]*User
	// taken are the rows this request read and deleted in one statement,
	// by table and signature: fosite's delete that follows is then done.
	taken map[string]bool
	// oidc is the OpenID Connect session read with a code, oidcFor the
	// code's signature, and oidcDeleted says that the session's delete is
	// queued with the code's use.
	oidc        *requestRow
	oidcFor     string
	oidcDeleted bool
	// pkce is the signature of the PKCE challenge this request read, and
	// pkceState how far its consumption has gone.
	pkce      string
	pkceState pkceState
}

// pkceState is how far a request got in consuming the PKCE challenge it
// read.
type pkceState int

const (
	pkceNone     pkceState = iota
	pkceRead               // read; fosite will ask to delete it
	pkceDeferred           // fosite asked: deleted with the code's use, or at EndRequest
	pkceQueued             // the delete is queued in the redemption's transaction
	pkceDone               // deleted
)

// ReadAhead names rows a request is about to read, known from its form
// before fosite reads them (see NoteReads).
type ReadAhead struct {
	// ClientID is the client of an authorization request: read with the
	// browser's session.
	ClientID string
	// Code and CodeSignature are an authorization code being redeemed, raw
	// and signed: read with the client, together with the code's OpenID
	// Connect session and PKCE challenge.
	Code, CodeSignature string
	// RefreshSignature is a refresh token being rotated: read with the
	// client, together with its user.
	RefreshSignature string
	// AccessSignature is an access token being introspected: read with the
	// client.
	AccessSignature string
}

// NoteReads tells the store, through ctx's request cache, what the
// request is about to read. On PostgreSQL the rows then come with the
// first read that can carry them; elsewhere, or without a request cache,
// it changes nothing but that reading a code also reads its OpenID
// Connect session and PKCE challenge in the same statement.
func NoteReads(ctx context.Context, n ReadAhead) {
	if c := requestCacheOf(ctx); c != nil {
		c.mu.Lock()
		c.ahead = n
		c.mu.Unlock()
	}
}

// WithRequestCache returns a context for the span of one request in which
// the store remembers what the request read. Reading from it never lets a
// code or refresh token be used twice: single use is decided by the
// conditional updates that mark them used.
func WithRequestCache(ctx context.Context) context.Context {
	return context.WithValue(ctx, requestCacheKey{}, &requestCache{
		clients: map[string]*Client{}, codes: map[string]*requestRow{}, rows: map[string]*requestRow{},
		users: map[string]*User{}, taken: map[string]bool{},
	})
}

func requestCacheOf(ctx context.Context) *requestCache {
	c, _ := ctx.Value(requestCacheKey{}).(*requestCache)
	return c
}

// takeTokenReads returns the noted token rows (ClientID cleared) and
// forgets them.
func (c *requestCache) takeTokenReads() ReadAhead {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.ahead
	n.ClientID = ""
	c.ahead = ReadAhead{ClientID: c.ahead.ClientID}
	return n
}

// takeClientRead returns the noted client ID and forgets it.
func (c *requestCache) takeClientRead() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := c.ahead.ClientID
	c.ahead.ClientID = ""
	return id
}

// copyFrom returns a copy of m[key], if any, under c's lock: a caller
// may change what it gets without changing the cache.
func copyFrom[T any](c *requestCache, m map[string]*T, key string) (*T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := m[key]
	if !ok {
		return nil, false
	}
	cp := *v
	return &cp, true
}

// client returns a copy of the client read with this ID, if any.
func (c *requestCache) client(id string) (*Client, bool) { return copyFrom(c, c.clients, id) }

func (c *requestCache) putClient(cl *Client) {
	cp := *cl
	c.mu.Lock()
	c.clients[cl.ID] = &cp
	c.mu.Unlock()
}

// code returns a copy of the active code row read with this signature.
func (c *requestCache) code(signature string) (*requestRow, bool) {
	return copyFrom(c, c.codes, signature)
}

// putCode keeps a code row while it is active: a used code is never served
// from the cache.
func (c *requestCache) putCode(row *requestRow) {
	if !row.Active {
		return
	}
	cp := *row
	c.mu.Lock()
	c.codes[row.Signature] = &cp
	c.mu.Unlock()
}

func (c *requestCache) dropCode(signature string) {
	c.mu.Lock()
	delete(c.codes, signature)
	c.mu.Unlock()
}

// takeRow returns the row of table read ahead with this signature, once.
func (c *requestCache) takeRow(table, signature string) *requestRow {
	c.mu.Lock()
	defer c.mu.Unlock()
	row := c.rows[table+" "+signature]
	delete(c.rows, table+" "+signature)
	return row
}

func (c *requestCache) putRow(table string, row *requestRow) {
	c.mu.Lock()
	c.rows[table+" "+row.Signature] = row
	c.mu.Unlock()
}

// takeUser returns the user read ahead with this ID, once.
func (c *requestCache) takeUser(id string) *User {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.users[id]
	delete(c.users, id)
	return u
}

func (c *requestCache) putUser(u *User) {
	c.mu.Lock()
	c.users[u.ID] = u
	c.mu.Unlock()
}

func (c *requestCache) markTaken(table, signature string) {
	c.mu.Lock()
	c.taken[table+" "+signature] = true
	c.mu.Unlock()
}

func (c *requestCache) wasTaken(table, signature string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.taken[table+" "+signature]
}

// putOIDC keeps the OpenID Connect session read with the code of
// signature.
func (c *requestCache) putOIDC(row *requestRow, codeSignature string) {
	c.mu.Lock()
	c.oidc, c.oidcFor = row, codeSignature
	c.mu.Unlock()
}

// oidcOf returns the OpenID Connect session read with the code of
// signature, if any.
func (c *requestCache) oidcOf(codeSignature string) *requestRow {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.oidcFor != codeSignature {
		return nil
	}
	return c.oidc
}

func (c *requestCache) oidcQueued() {
	c.mu.Lock()
	c.oidcDeleted = true
	c.mu.Unlock()
}

// takeDeletedOIDC returns the OpenID Connect session of key once its
// delete was queued with the code's use, once; fosite's delete that
// follows is then done.
func (c *requestCache) takeDeletedOIDC(key string) *requestRow {
	c.mu.Lock()
	defer c.mu.Unlock()
	row := c.oidc
	if row == nil || !c.oidcDeleted || row.Signature != key {
		return nil
	}
	c.oidc = nil
	c.taken[tableOIDC+" "+key] = true
	return row
}

// readPKCE records that the request read the PKCE challenge of signature.
func (c *requestCache) readPKCE(signature string) {
	c.mu.Lock()
	c.pkce, c.pkceState = signature, pkceRead
	c.mu.Unlock()
}

// pkceStep moves the challenge of signature from one state to the next,
// and reports whether it was in from.
func (c *requestCache) pkceStep(signature string, from, to pkceState) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pkce != signature || c.pkceState != from {
		return false
	}
	c.pkceState = to
	return true
}

// settle ends a transaction for the cache: a delete queued in it is done
// when it committed, and left to EndRequest when it did not.
func (c *requestCache) settle(committed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pkceState == pkceQueued {
		if committed {
			c.pkceState = pkceDone
		} else {
			c.pkceState = pkceDeferred
		}
	}
}

// pendingPKCE returns the signature of a challenge left to EndRequest.
func (c *requestCache) pendingPKCE() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pkceState != pkceDeferred {
		return ""
	}
	return c.pkce
}

// EndRequest does what ctx's request left to its end: it deletes the PKCE
// challenge the request read when no redemption committed its delete, so
// that a code whose verifier failed (or whose redemption failed for any
// other reason once the challenge was read) can never be redeemed (RFC
// 7636 §4.6; fosite deletes the challenge before it compares). Call it
// before answering, outside any transaction.
func (s *Store) EndRequest(ctx context.Context) error {
	c := requestCacheOf(ctx)
	if c == nil {
		return nil
	}
	if sig := c.pendingPKCE(); sig != "" {
		if err := s.deleteRequest(ctx, tablePKCE, sig); err != nil {
			return err
		}
		c.pkceStep(sig, pkceDeferred, pkceDone)
	}
	return nil
}
