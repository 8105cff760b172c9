package storage

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	fositestorage "github.com/ory/fosite/storage"
	"github.com/uptrace/bun"
)

// The fosite interfaces the Store implements; compose.Compose type-asserts
// them at start and would panic on a missing method.
var (
	_ fosite.ClientManager               = (*Store)(nil)
	_ oauth2.CoreStorage                 = (*Store)(nil)
	_ oauth2.TokenRevocationStorage      = (*Store)(nil)
	_ openid.OpenIDConnectRequestStorage = (*Store)(nil)
	_ pkce.PKCERequestStorage            = (*Store)(nil)
	_ fositestorage.Transactional        = (*Store)(nil)
)

// Token tables: one per kind of fosite request, all of the same shape.
const (
	tableCode    = "oauth2_code"
	tableOIDC    = "oauth2_oidc"
	tablePKCE    = "oauth2_pkce"
	tableAccess  = "oauth2_access"
	tableRefresh = "oauth2_refresh"
)

// requestRow is a stored fosite request: the authorization it stands for,
// keyed by the signature of the token (never the token itself).
type requestRow struct {
	bun.BaseModel `bun:"alias:r"`

	Signature       string    `bun:"signature,pk"`
	RequestID       string    `bun:"request_id"`
	ClientID        string    `bun:"client_id"`
	Subject         string    `bun:"subject"`
	Active          bool      `bun:"active"`
	RequestedAt     time.Time `bun:"requested_at"`
	ExpiresAt       time.Time `bun:"expires_at"`
	Scopes          []string  `bun:"scopes"`
	GrantedScopes   []string  `bun:"granted_scopes"`
	Audience        []string  `bun:"audience"`
	GrantedAudience []string  `bun:"granted_audience"`
	Form            string    `bun:"form"`
	Session         string    `bun:"session"`
	AccessSignature string    `bun:"access_signature"`
}

// tokenType maps a table to the fosite token type whose expiry bounds its rows.
func tokenType(table string) fosite.TokenType {
	switch table {
	case tableAccess:
		return fosite.AccessToken
	case tableRefresh:
		return fosite.RefreshToken
	default:
		return fosite.AuthorizeCode
	}
}

func (s *Store) toRow(table, signature string, r fosite.Requester) (*requestRow, error) {
	sess, err := json.Marshal(r.GetSession())
	if err != nil {
		return nil, fmt.Errorf("storage: encode session: %w", err)
	}
	row := &requestRow{
		Signature:       signature,
		RequestID:       r.GetID(),
		ClientID:        r.GetClient().GetID(),
		Active:          true,
		RequestedAt:     r.GetRequestedAt().UTC(),
		Scopes:          nonNil(r.GetRequestedScopes()),
		GrantedScopes:   nonNil(r.GetGrantedScopes()),
		Audience:        nonNil(r.GetRequestedAudience()),
		GrantedAudience: nonNil(r.GetGrantedAudience()),
		Form:            r.GetRequestForm().Encode(),
		Session:         string(sess),
	}
	if r.GetSession() != nil {
		row.Subject = r.GetSession().GetSubject()
		row.ExpiresAt = r.GetSession().GetExpiresAt(tokenType(table)).UTC()
	}
	if row.ExpiresAt.IsZero() {
		// A request without an expiry still needs one for the clean-up; fosite
		// checks lifetimes itself, so this only bounds how long a row is kept.
		row.ExpiresAt = s.nowUTC().Add(24 * time.Hour)
	}
	return row, nil
}

func nonNil(a []string) []string {
	if a == nil {
		return []string{}
	}
	return a
}

// toRequest rebuilds a fosite request from a row, decoding the session into
// the prototype fosite hands in.
func (s *Store) toRequest(ctx context.Context, row *requestRow, session fosite.Session) (*fosite.Request, error) {
	client, err := s.Client(ctx, row.ClientID)
	if err != nil {
		return nil, err
	}
	form, err := url.ParseQuery(row.Form)
	if err != nil {
		return nil, fmt.Errorf("storage: decode form: %w", err)
	}
	if session != nil {
		if err := json.Unmarshal([]byte(row.Session), session); err != nil {
			return nil, fmt.Errorf("storage: decode session: %w", err)
		}
	}
	return &fosite.Request{
		ID:                row.RequestID,
		RequestedAt:       row.RequestedAt,
		Client:            client,
		RequestedScope:    row.Scopes,
		GrantedScope:      row.GrantedScopes,
		RequestedAudience: row.Audience,
		GrantedAudience:   row.GrantedAudience,
		Form:              form,
		Session:           session,
	}, nil
}

// The columns of every token table, in the order the statements use.
const requestColumns = `signature, request_id, client_id, subject, active, requested_at, expires_at, scopes,
granted_scopes, audience, granted_audience, form, session, access_signature`

// Token rows are written and read on every token request: prepared
// statements, one per table.
var (
	insertRequest = map[string]string{}
	selectRequest = map[string]string{}
	deleteRequest = map[string]string{}
	deactivate    = map[string]string{}
	// takeRequest reads and deletes a row in one statement.
	takeRequest = map[string]string{}
)

const revokeAccess = "DELETE FROM " + tableAccess + " WHERE request_id = ?"

func init() {
	for _, t := range []string{tableCode, tableOIDC, tablePKCE, tableAccess, tableRefresh} {
		insertRequest[t] = "INSERT INTO " + t + " (" + requestColumns + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
		selectRequest[t] = "SELECT " + requestColumns + " FROM " + t + " WHERE signature = ?"
		deleteRequest[t] = "DELETE FROM " + t + " WHERE signature = ?"
		deactivate[t] = "UPDATE " + t + " SET active = ? WHERE signature = ? AND active = ?"
	}
	for _, t := range []string{tablePKCE, tableOIDC} {
		takeRequest[t] = "DELETE FROM " + t + " WHERE signature = ? RETURNING " + requestColumns
	}
}

func (s *Store) createRequest(ctx context.Context, table, signature string, r fosite.Requester, accessSignature string) error {
	row, err := s.toRow(table, signature, r)
	if err != nil {
		return err
	}
	err = s.execDeferred(ctx, insertRequest[table], row.Signature, row.RequestID, row.ClientID, row.Subject, row.Active,
		s.formatTime(row.RequestedAt), s.formatTime(row.ExpiresAt), encodeList(row.Scopes), encodeList(row.GrantedScopes),
		encodeList(row.Audience), encodeList(row.GrantedAudience), row.Form, row.Session, accessSignature)
	if err != nil {
		return fmt.Errorf("storage: create %s: %w", table, translate(err))
	}
	return nil
}

func (s *Store) getRow(ctx context.Context, table, signature string) (*requestRow, error) {
	cache := requestCacheOf(ctx)
	if cache != nil {
		if table == tableCode {
			if row, ok := cache.code(signature); ok {
				return row, nil
			}
		}
		if row := cache.takeRow(table, signature); row != nil {
			return row, nil
		}
		if table == tableCode && !inTx(ctx) {
			if n := cache.takeTokenReads(); n.CodeSignature == signature && n.Code != "" {
				return s.getCodeGrant(ctx, cache, signature, n.Code)
			}
		}
	}
	q, err := s.queryRowPrepared(ctx, selectRequest[table], signature)
	if err != nil {
		return nil, fmt.Errorf("storage: get %s: %w", table, err)
	}
	row, err := scanRow(q)
	if err != nil {
		return nil, fmt.Errorf("storage: get %s: %w", table, translate(err))
	}
	if table == tableCode && cache != nil {
		cache.putCode(row)
	}
	return row, nil
}

// selectCodeGrant reads an authorization code, the OpenID Connect session
// of its raw value and its PKCE challenge in one statement.
var selectCodeGrant = "SELECT 'code', " + requestColumns + " FROM " + tableCode + " WHERE signature = ? UNION ALL " +
	"SELECT 'oidc', " + requestColumns + " FROM " + tableOIDC + " WHERE signature = ? UNION ALL " +
	"SELECT 'pkce', " + requestColumns + " FROM " + tablePKCE + " WHERE signature = ?"

// getCodeGrant reads the code row by signature with the OpenID Connect
// session of the raw code and the code's PKCE challenge, keeps them in the
// request cache, and returns the code row.
func (s *Store) getCodeGrant(ctx context.Context, cache *requestCache, signature, code string) (*requestRow, error) {
	st, err := s.prepare(ctx, s.rdb.DB, selectCodeGrant)
	if err != nil {
		return nil, fmt.Errorf("storage: get %s: %w", tableCode, err)
	}
	rows, err := st.QueryContext(ctx, signature, oidcKey(code), signature)
	if err != nil {
		return nil, fmt.Errorf("storage: get %s: %w", tableCode, translate(err))
	}
	defer rows.Close()
	row, err := s.cacheCodeGrant(cache, signature, rows)
	if err != nil {
		return nil, fmt.Errorf("storage: get %s: %w", tableCode, translate(err))
	}
	return row, nil
}

// cacheCodeGrant reads the rows of selectCodeGrant into the request
// cache and returns the code row, or ErrNotFound. The code's OpenID
// Connect session and PKCE challenge are kept only with an active code.
func (s *Store) cacheCodeGrant(cache *requestCache, signature string, rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}) (*requestRow, error) {
	var codeRow, oidcRow, pkceRow *requestRow
	for rows.Next() {
		var kind string
		row, err := scanRow(prefixScanner{rows, &kind})
		if err != nil {
			return nil, err
		}
		switch kind {
		case "code":
			codeRow = row
		case "oidc":
			oidcRow = row
		case "pkce":
			pkceRow = row
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if codeRow == nil {
		return nil, ErrNotFound
	}
	if codeRow.Active {
		cache.putCode(codeRow)
		if oidcRow != nil {
			cache.putOIDC(oidcRow, signature)
		}
		if pkceRow != nil {
			cache.putRow(tablePKCE, pkceRow)
		}
	}
	return codeRow, nil
}

// prefixScanner scans a row whose first column is read into first.
type prefixScanner struct {
	rows  rowScanner
	first *string
}

func (p prefixScanner) Scan(dest ...any) error {
	return p.rows.Scan(append([]any{p.first}, dest...)...)
}

func scanRow(q interface{ Scan(dest ...any) error }) (*requestRow, error) {
	row := new(requestRow)
	err := q.Scan(&row.Signature, &row.RequestID, &row.ClientID, &row.Subject, &row.Active, dbTime{&row.RequestedAt},
		dbTime{&row.ExpiresAt}, (*jsonList)(&row.Scopes), (*jsonList)(&row.GrantedScopes), (*jsonList)(&row.Audience),
		(*jsonList)(&row.GrantedAudience), &row.Form, &row.Session, &row.AccessSignature)
	if err != nil {
		return nil, err
	}
	return row, nil
}

// getRequest loads a request; an inactive row yields the request together
// with inactiveErr, as fosite's contracts require.
func (s *Store) getRequest(ctx context.Context, table, signature string, session fosite.Session, inactiveErr error) (fosite.Requester, error) {
	row, err := s.getRow(ctx, table, signature)
	if err != nil {
		return nil, toFosite(err)
	}
	return s.rowRequest(ctx, row, session, inactiveErr)
}

// takeRequest reads and deletes a request in one statement, for rows that
// fosite deletes right after reading them (a PKCE challenge, an OpenID
// Connect session): one round trip instead of two, and no moment in
// which two redemptions both read the row. Within a request cache, the
// delete fosite then asks for is already done.
func (s *Store) takeRequest(ctx context.Context, table, signature string, session fosite.Session) (fosite.Requester, error) {
	q, err := s.queryRowWriter(ctx, takeRequest[table], signature)
	if err != nil {
		return nil, toFosite(fmt.Errorf("storage: take %s: %w", table, err))
	}
	row, err := scanRow(q)
	if err != nil {
		return nil, toFosite(fmt.Errorf("storage: take %s: %w", table, translate(err)))
	}
	if cache := requestCacheOf(ctx); cache != nil {
		cache.markTaken(table, signature)
	}
	return s.rowRequest(ctx, row, session, nil)
}

// deleteTaken deletes a row unless this request took it already.
func (s *Store) deleteTaken(ctx context.Context, table, signature string) error {
	if cache := requestCacheOf(ctx); cache != nil && cache.wasTaken(table, signature) {
		return nil
	}
	return s.deleteRequest(ctx, table, signature)
}

func (s *Store) rowRequest(ctx context.Context, row *requestRow, session fosite.Session, inactiveErr error) (fosite.Requester, error) {
	req, err := s.toRequest(ctx, row, session)
	if err != nil {
		return nil, toFosite(err)
	}
	if !row.Active && inactiveErr != nil {
		return req, inactiveErr
	}
	return req, nil
}

func (s *Store) deleteRequest(ctx context.Context, table, signature string) error {
	if err := s.execDeferred(ctx, deleteRequest[table], signature); err != nil {
		return fmt.Errorf("storage: delete %s: %w", table, translate(err))
	}
	return nil
}

// CreateAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage.
func (s *Store) CreateAuthorizeCodeSession(ctx context.Context, signature string, r fosite.Requester) error {
	return s.createRequest(ctx, tableCode, signature, r, "")
}

// GetAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage. A used code
// yields its request together with fosite.ErrInvalidatedAuthorizeCode.
func (s *Store) GetAuthorizeCodeSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	return s.getRequest(ctx, tableCode, signature, session, fosite.ErrInvalidatedAuthorizeCode)
}

// ErrCodeAlreadyUsed is returned by InvalidateAuthorizeCodeSession (or by
// the Commit of its transaction) when another request redeemed the code
// first, or consumed its PKCE challenge.
var ErrCodeAlreadyUsed = errors.New("storage: authorization code already used")

// errPKCEConsumed is a redemption whose PKCE challenge another request
// consumed between this request's read and its use of the code: a
// redemption whose verifier failed.
var errPKCEConsumed = fmt.Errorf("%w: its PKCE challenge was consumed by another request", ErrCodeAlreadyUsed)

// InvalidateAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage. It
// marks the code used, and fails with ErrCodeAlreadyUsed when a concurrent
// redemption got there first, so a code is redeemed at most once. The
// code's OpenID Connect session, read with it, and its PKCE challenge,
// read by this request, are deleted in the same transaction; the
// challenge must still be there, or the redemption fails.
func (s *Store) InvalidateAuthorizeCodeSession(ctx context.Context, signature string) error {
	cache := requestCacheOf(ctx)
	if cache != nil {
		cache.dropCode(signature)
	}
	err := s.execOne(ctx, ErrCodeAlreadyUsed, deactivate[tableCode], false, signature, true)
	if err != nil && !errors.Is(err, ErrCodeAlreadyUsed) {
		return fmt.Errorf("storage: invalidate code: %w", err)
	} else if err != nil {
		return err
	}
	if cache == nil {
		return nil
	}
	if oidc := cache.oidcOf(signature); oidc != nil {
		if err := s.deleteRequest(ctx, tableOIDC, oidc.Signature); err != nil {
			return err
		}
		cache.oidcQueued()
	}
	// A PKCE challenge is keyed by its code's signature.
	if cache.pkceStep(signature, pkceDeferred, pkceQueued) {
		err := s.execOne(ctx, errPKCEConsumed, deleteRequest[tablePKCE], signature)
		if !inTx(ctx) {
			cache.settle(err == nil || errors.Is(err, errPKCEConsumed))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// oidcKey hashes the raw authorization code fosite uses as the key of
// OpenID Connect sessions, so the code itself is never stored.
func oidcKey(code string) string {
	sum := sha256.Sum256([]byte(code))
	return hex.EncodeToString(sum[:])
}

// CreateOpenIDConnectSession implements openid.OpenIDConnectRequestStorage.
func (s *Store) CreateOpenIDConnectSession(ctx context.Context, code string, r fosite.Requester) error {
	return s.createRequest(ctx, tableOIDC, oidcKey(code), r, "")
}

// GetOpenIDConnectSession implements openid.OpenIDConnectRequestStorage. It
// consumes the session: fosite reads it only to redeem the code, which
// is already used by then, and deletes it right after.
func (s *Store) GetOpenIDConnectSession(ctx context.Context, code string, r fosite.Requester) (fosite.Requester, error) {
	key := oidcKey(code)
	// Read with the code, and deleted when the code was marked used.
	if cache := requestCacheOf(ctx); cache != nil {
		if row := cache.takeDeletedOIDC(key); row != nil {
			return s.rowRequest(ctx, row, r.GetSession(), nil)
		}
	}
	return s.takeRequest(ctx, tableOIDC, key, r.GetSession())
}

// DeleteOpenIDConnectSession implements openid.OpenIDConnectRequestStorage.
func (s *Store) DeleteOpenIDConnectSession(ctx context.Context, code string) error {
	return s.deleteTaken(ctx, tableOIDC, oidcKey(code))
}

// CreatePKCERequestSession implements pkce.PKCERequestStorage.
func (s *Store) CreatePKCERequestSession(ctx context.Context, signature string, r fosite.Requester) error {
	return s.createRequest(ctx, tablePKCE, signature, r, "")
}

// GetPKCERequestSession implements pkce.PKCERequestStorage. fosite reads
// the challenge to redeem its code and deletes it right after, before it
// checks the verifier, so that a code whose verifier failed once can never
// be redeemed.
//
// In a request cache the read is only a read, and the delete fosite then
// asks for waits: it goes into the redemption's transaction as a
// statement that must delete the row (so a concurrent request that
// consumed the challenge fails this redemption, as the code's own single
// use does), or, when no redemption commits, to EndRequest. Without a
// request cache the challenge is read and deleted in one statement.
func (s *Store) GetPKCERequestSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	cache := requestCacheOf(ctx)
	if cache == nil {
		return s.takeRequest(ctx, tablePKCE, signature, session)
	}
	r, err := s.getRequest(ctx, tablePKCE, signature, session, nil)
	if err != nil {
		return nil, err
	}
	cache.readPKCE(signature)
	return r, nil
}

// DeletePKCERequestSession implements pkce.PKCERequestStorage. The delete of
// a challenge this request read waits (see GetPKCERequestSession).
func (s *Store) DeletePKCERequestSession(ctx context.Context, signature string) error {
	if cache := requestCacheOf(ctx); cache != nil && cache.pkceStep(signature, pkceRead, pkceDeferred) {
		return nil
	}
	return s.deleteTaken(ctx, tablePKCE, signature)
}

// CreateAccessTokenSession implements oauth2.AccessTokenStorage.
func (s *Store) CreateAccessTokenSession(ctx context.Context, signature string, r fosite.Requester) error {
	return s.createRequest(ctx, tableAccess, signature, r, "")
}

// GetAccessTokenSession implements oauth2.AccessTokenStorage. Revoked access
// tokens are deleted, so they are simply not found.
func (s *Store) GetAccessTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	return s.getRequest(ctx, tableAccess, signature, session, nil)
}

// DeleteAccessTokenSession implements oauth2.AccessTokenStorage.
func (s *Store) DeleteAccessTokenSession(ctx context.Context, signature string) error {
	return s.deleteRequest(ctx, tableAccess, signature)
}

// CreateRefreshTokenSession implements oauth2.RefreshTokenStorage.
func (s *Store) CreateRefreshTokenSession(ctx context.Context, signature, accessSignature string, r fosite.Requester) error {
	return s.createRequest(ctx, tableRefresh, signature, r, accessSignature)
}

// GetRefreshTokenSession implements oauth2.RefreshTokenStorage. A used or
// revoked refresh token yields its request with fosite.ErrInactiveToken, which
// makes fosite treat the call as reuse and revoke the token family.
func (s *Store) GetRefreshTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	return s.getRequest(ctx, tableRefresh, signature, session, fosite.ErrInactiveToken)
}

// DeleteRefreshTokenSession implements oauth2.RefreshTokenStorage.
func (s *Store) DeleteRefreshTokenSession(ctx context.Context, signature string) error {
	return s.deleteRequest(ctx, tableRefresh, signature)
}

// ErrRefreshTokenUsed is returned by RotateRefreshToken when a concurrent
// request rotated the same refresh token first.
var ErrRefreshTokenUsed = errors.New("storage: refresh token already used")

// errRefreshRace is a lost rotation race as fosite wants it reported.
var errRefreshRace = fmt.Errorf("%w: %w", ErrRefreshTokenUsed, fosite.ErrSerializationFailure)

// RotateRefreshToken implements oauth2.RefreshTokenStorage: the presented
// refresh token becomes inactive (kept, so that a later reuse is detected) and
// the access tokens of its family are revoked. Only one of several concurrent
// rotations of one token succeeds; the others get ErrRefreshTokenUsed.
func (s *Store) RotateRefreshToken(ctx context.Context, requestID, signature string) error {
	err := s.execOne(ctx, errRefreshRace, deactivate[tableRefresh], false, signature, true)
	if err != nil && !errors.Is(err, ErrRefreshTokenUsed) {
		return fmt.Errorf("storage: rotate refresh token: %w", err)
	} else if err != nil {
		return err
	}
	return s.RevokeAccessToken(ctx, requestID)
}

// RevokeRefreshToken implements oauth2.TokenRevocationStorage: every refresh
// token of the request (the whole rotation family) becomes inactive.
func (s *Store) RevokeRefreshToken(ctx context.Context, requestID string) error {
	if _, err := s.idb(ctx).NewUpdate().ModelTableExpr(tableRefresh).
		Set("active = ?", false).Where("request_id = ?", requestID).Exec(ctx); err != nil {
		return fmt.Errorf("storage: revoke refresh tokens: %w", translate(err))
	}
	return nil
}

// RevokeAccessToken implements oauth2.TokenRevocationStorage: every access
// token of the request is deleted.
func (s *Store) RevokeAccessToken(ctx context.Context, requestID string) error {
	if err := s.execDeferred(ctx, revokeAccess, requestID); err != nil {
		return fmt.Errorf("storage: revoke access tokens: %w", translate(err))
	}
	return nil
}

// RevokeSubjectTokens revokes every access and refresh token issued to
// subject, for example when the user is deleted or disabled.
func (s *Store) RevokeSubjectTokens(ctx context.Context, subject string) error {
	return s.RevokeOtherSubjectTokens(ctx, subject, "")
}

// RevokeOtherSubjectTokens revokes every access and refresh token issued
// to subject but those of the grant keepRequestID ("" keeps none): after a
// password change through the API, the caller's own grant stays valid.
func (s *Store) RevokeOtherSubjectTokens(ctx context.Context, subject, keepRequestID string) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		del := s.idb(ctx).NewDelete().ModelTableExpr(tableAccess).Where("subject = ?", subject)
		upd := s.idb(ctx).NewUpdate().ModelTableExpr(tableRefresh).Set("active = ?", false).Where("subject = ?", subject)
		if keepRequestID != "" {
			del = del.Where("request_id <> ?", keepRequestID)
			upd = upd.Where("request_id <> ?", keepRequestID)
		}
		if _, err := del.Exec(ctx); err != nil {
			return fmt.Errorf("storage: revoke tokens: %w", translate(err))
		}
		if _, err := upd.Exec(ctx); err != nil {
			return fmt.Errorf("storage: revoke tokens: %w", translate(err))
		}
		return nil
	})
}

// toFosite maps storage errors to the sentinels fosite understands.
func toFosite(err error) error {
	if errors.Is(err, ErrNotFound) || errors.Is(err, sql.ErrNoRows) {
		return fosite.ErrNotFound.WithWrap(err)
	}
	return err
}
