package storage

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// LoginSession is a signed-in browser. The cookie holds a random ID; the
// database keeps only its hash, so a database dump cannot hijack sessions.
type LoginSession struct {
	bun.BaseModel `bun:"table:login_sessions"`

	IDHash    string    `bun:"id_hash,pk"`
	Subject   string    `bun:"subject"`
	AuthTime  time.Time `bun:"auth_time"`
	AMR       []string  `bun:"amr"`
	UserAgent string    `bun:"user_agent"`
	// Stage is SessionComplete for a signed-in browser, SessionOTP for one
	// that passed the password step and waits for its one-time code.
	Stage string `bun:"stage"`
	// IDP is the provider the browser signed in through (login/federation),
	// "" for none: the ID token's idp claim.
	IDP       string    `bun:"idp"`
	CreatedAt time.Time `bun:"created_at"`
	ExpiresAt time.Time `bun:"expires_at"`
}

// Session stages.
const (
	SessionComplete = "complete"
	SessionOTP      = "otp"
)

// CreateLoginSession stores a new browser session (complete unless Stage
// says otherwise).
func (s *Store) CreateLoginSession(ctx context.Context, ls *LoginSession) error {
	ls.CreatedAt = s.nowUTC()
	if ls.Stage == "" {
		ls.Stage = SessionComplete
	}
	ls.AuthTime = ls.AuthTime.UTC()
	ls.ExpiresAt = ls.ExpiresAt.UTC()
	if ls.AMR == nil {
		ls.AMR = []string{}
	}
	if _, err := s.idb(ctx).NewInsert().Model(ls).Exec(ctx); err != nil {
		return fmt.Errorf("storage: create login session: %w", translate(err))
	}
	return nil
}

const selectLoginSession = `SELECT id_hash, subject, auth_time, amr, user_agent, stage, idp, created_at, expires_at
FROM login_sessions WHERE id_hash = ? AND expires_at > ?`

// LoginSession returns the unexpired session with the given ID hash, or
// ErrNotFound. Every authorization request reads one: a prepared
// statement.
func (s *Store) LoginSession(ctx context.Context, idHash string) (*LoginSession, error) {
	row, err := s.queryRowPrepared(ctx, selectLoginSession, idHash, s.formatTime(s.nowUTC()))
	if err != nil {
		return nil, fmt.Errorf("storage: get login session: %w", err)
	}
	ls := new(LoginSession)
	err = row.Scan(&ls.IDHash, &ls.Subject, dbTime{&ls.AuthTime}, (*jsonList)(&ls.AMR), &ls.UserAgent, &ls.Stage, &ls.IDP,
		dbTime{&ls.CreatedAt}, dbTime{&ls.ExpiresAt})
	if err != nil {
		return nil, fmt.Errorf("storage: get login session: %w", translate(err))
	}
	return ls, nil
}

// selectLoginSessionUser reads a session and its user in one round trip.
var selectLoginSessionUser = `SELECT ls.id_hash, ls.subject, ls.auth_time, ls.amr, ls.user_agent, ls.stage, ls.idp,
ls.created_at, ls.expires_at, ` + prefixed("u.", userColumns) + `
FROM login_sessions ls JOIN users u ON u.id = ls.subject WHERE ls.id_hash = ? AND ls.expires_at > ?`

// LoginSessionUser returns the unexpired session with the given ID hash
// and its user, or ErrNotFound when either is missing. Every request of a
// signed-in browser reads both: one prepared statement. On PostgreSQL a
// client noted with NoteReads (an authorization request's) comes in the
// same round trip.
func (s *Store) LoginSessionUser(ctx context.Context, idHash string) (*LoginSession, *User, error) {
	ls, u := new(LoginSession), new(User)
	dest := u.scanDest([]any{&ls.IDHash, &ls.Subject, dbTime{&ls.AuthTime}, (*jsonList)(&ls.AMR), &ls.UserAgent,
		&ls.Stage, &ls.IDP, dbTime{&ls.CreatedAt}, dbTime{&ls.ExpiresAt}})
	now := s.formatTime(s.nowUTC())
	if cache := requestCacheOf(ctx); cache != nil && s.dialect == Postgres && !inTx(ctx) {
		if id := cache.takeClientRead(); id != "" {
			if err := s.readWithClient(ctx, cache, id, selectLoginSessionUser, []any{idHash, now}, dest); err != nil {
				return nil, nil, fmt.Errorf("storage: get login session: %w", translate(err))
			}
			return ls, u, nil
		}
	}
	row, err := s.queryRowPrepared(ctx, selectLoginSessionUser, idHash, now)
	if err != nil {
		return nil, nil, fmt.Errorf("storage: get login session: %w", err)
	}
	if err := row.Scan(dest...); err != nil {
		return nil, nil, fmt.Errorf("storage: get login session: %w", translate(err))
	}
	return ls, u, nil
}

// prefixed qualifies each of a comma-separated column list with p.
func prefixed(p, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

// DeleteLoginSession ends one browser session. Ending an unknown session is
// not an error.
func (s *Store) DeleteLoginSession(ctx context.Context, idHash string) error {
	if _, err := s.idb(ctx).NewDelete().Model((*LoginSession)(nil)).Where("id_hash = ?", idHash).Exec(ctx); err != nil {
		return fmt.Errorf("storage: delete login session: %w", translate(err))
	}
	return nil
}

// LoginSessions lists a user's unexpired complete sessions, newest first.
func (s *Store) LoginSessions(ctx context.Context, subject string) ([]*LoginSession, error) {
	var ls []*LoginSession
	err := s.readDB(ctx).NewSelect().Model(&ls).Where("subject = ?", subject).Where("stage = ?", SessionComplete).
		Where("expires_at > ?", s.nowUTC()).Order("created_at DESC").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("storage: list login sessions: %w", translate(err))
	}
	return ls, nil
}

// DeleteLoginSessions ends every session of subject except the one whose
// hash is except ("" ends them all).
func (s *Store) DeleteLoginSessions(ctx context.Context, subject, except string) error {
	q := s.idb(ctx).NewDelete().Model((*LoginSession)(nil)).Where("subject = ?", subject)
	if except != "" {
		q = q.Where("id_hash <> ?", except)
	}
	if _, err := q.Exec(ctx); err != nil {
		return fmt.Errorf("storage: delete login sessions: %w", translate(err))
	}
	return nil
}

// AuthRequest is an authorization request waiting for the user to sign in or
// consent. Only its ID travels in URLs; the request itself stays here, bound
// to the browser that started it by BrowserHash.
type AuthRequest struct {
	bun.BaseModel `bun:"table:auth_requests"`

	ID          string    `bun:"id,pk"`
	ClientID    string    `bun:"client_id"`
	Form        string    `bun:"form"`
	BrowserHash string    `bun:"browser_hash"`
	CreatedAt   time.Time `bun:"created_at"`
	ExpiresAt   time.Time `bun:"expires_at"`
}

// CreateAuthRequest stores a pending authorization request.
func (s *Store) CreateAuthRequest(ctx context.Context, ar *AuthRequest) error {
	ar.CreatedAt = s.nowUTC()
	ar.ExpiresAt = ar.ExpiresAt.UTC()
	if _, err := s.idb(ctx).NewInsert().Model(ar).Exec(ctx); err != nil {
		return fmt.Errorf("storage: create auth request: %w", translate(err))
	}
	return nil
}

// AuthRequest returns the unexpired pending request with the given ID, or
// ErrNotFound.
func (s *Store) AuthRequest(ctx context.Context, id string) (*AuthRequest, error) {
	ar := new(AuthRequest)
	err := s.idb(ctx).NewSelect().Model(ar).Where("id = ?", id).Where("expires_at > ?", s.nowUTC()).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("storage: get auth request: %w", translate(err))
	}
	return ar, nil
}

// DeleteAuthRequest removes a pending request once it is answered.
func (s *Store) DeleteAuthRequest(ctx context.Context, id string) error {
	if _, err := s.idb(ctx).NewDelete().Model((*AuthRequest)(nil)).Where("id = ?", id).Exec(ctx); err != nil {
		return fmt.Errorf("storage: delete auth request: %w", translate(err))
	}
	return nil
}

// Consent records the scopes a user granted a client.
type Consent struct {
	bun.BaseModel `bun:"table:consents"`

	Subject   string    `bun:"subject,pk"`
	ClientID  string    `bun:"client_id,pk"`
	Scopes    []string  `bun:"scopes"`
	GrantedAt time.Time `bun:"granted_at"`
}

// Consents lists every consent subject gave, newest first.
func (s *Store) Consents(ctx context.Context, subject string) ([]*Consent, error) {
	var cs []*Consent
	if err := s.readDB(ctx).NewSelect().Model(&cs).Where("subject = ?", subject).Order("granted_at DESC").Scan(ctx); err != nil {
		return nil, fmt.Errorf("storage: list consents: %w", translate(err))
	}
	return cs, nil
}

// DeleteConsent withdraws subject's consent to client. Withdrawing an
// absent consent is not an error.
func (s *Store) DeleteConsent(ctx context.Context, subject, clientID string) error {
	if _, err := s.idb(ctx).NewDelete().Model((*Consent)(nil)).Where("subject = ?", subject).
		Where("client_id = ?", clientID).Exec(ctx); err != nil {
		return fmt.Errorf("storage: delete consent: %w", translate(err))
	}
	return nil
}

// SaveConsent stores (or replaces) the scopes subject granted client.
func (s *Store) SaveConsent(ctx context.Context, c *Consent) error {
	c.GrantedAt = s.nowUTC()
	_, err := s.idb(ctx).NewInsert().Model(c).
		On("CONFLICT (subject, client_id) DO UPDATE").
		Set("scopes = EXCLUDED.scopes").Set("granted_at = EXCLUDED.granted_at").Exec(ctx)
	if err != nil {
		return fmt.Errorf("storage: save consent: %w", translate(err))
	}
	return nil
}

// Consent returns what subject granted client, or ErrNotFound.
func (s *Store) Consent(ctx context.Context, subject, clientID string) (*Consent, error) {
	c := new(Consent)
	err := s.idb(ctx).NewSelect().Model(c).Where("subject = ?", subject).Where("client_id = ?", clientID).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("storage: get consent: %w", translate(err))
	}
	return c, nil
}
