package storage

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// OneTimeCode is a short code sent by mail or SMS, stored only as a keyed
// hash. UserID is empty for the decoy code of a registration that hit an
// existing address (it verifies nothing); Channel is empty for a decoy
// whose mail was not sent (over the send limits), which CodeSends does not
// count.
type OneTimeCode struct {
	bun.BaseModel `bun:"table:one_time_codes"`

	ID          string         `bun:"id,pk"`
	UserID      sql.NullString `bun:"user_id"`
	Purpose     string         `bun:"purpose"`
	Binding     string         `bun:"binding"`
	Channel     string         `bun:"channel"`
	Destination string         `bun:"destination"`
	CodeHash    []byte         `bun:"code_hash"`
	Attempts    int            `bun:"attempts"`
	CreatedAt   time.Time      `bun:"created_at"`
	ExpiresAt   time.Time      `bun:"expires_at"`
	UsedAt      sql.NullTime   `bun:"used_at"`
	// PurgeAt is when the row may be deleted; it outlives ExpiresAt so that
	// sends are still counted for the resend limits.
	PurgeAt time.Time `bun:"purge_at"`
}

// codeRetention is how long sent codes are remembered for rate limiting.
const codeRetention = 24 * time.Hour

// ReplaceOneTimeCode kills every live code of the same user, purpose and
// binding, then stores c: at most one code per sign-in attempt works.
func (s *Store) ReplaceOneTimeCode(ctx context.Context, c *OneTimeCode) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		now := s.nowUTC()
		q := s.idb(ctx).NewUpdate().Model((*OneTimeCode)(nil)).Set("used_at = ?", now).
			Where("purpose = ?", c.Purpose).Where("binding = ?", c.Binding).Where("used_at IS NULL")
		if c.UserID.Valid {
			q = q.Where("user_id = ?", c.UserID.String)
		} else {
			q = q.Where("user_id IS NULL").Where("id = ?", c.ID)
		}
		if _, err := q.Exec(ctx); err != nil {
			return fmt.Errorf("storage: replace code: %w", translate(err))
		}
		c.CreatedAt = now
		c.ExpiresAt = c.ExpiresAt.UTC()
		c.PurgeAt = now.Add(codeRetention)
		if _, err := s.idb(ctx).NewInsert().Model(c).Exec(ctx); err != nil {
			return fmt.Errorf("storage: store code: %w", translate(err))
		}
		return nil
	})
}

// LiveOneTimeCode returns the unused, unexpired code of user, purpose and
// binding, or ErrNotFound.
func (s *Store) LiveOneTimeCode(ctx context.Context, userID, purpose, binding string) (*OneTimeCode, error) {
	c := new(OneTimeCode)
	err := s.idb(ctx).NewSelect().Model(c).Where("user_id = ?", userID).Where("purpose = ?", purpose).
		Where("binding = ?", binding).Where("used_at IS NULL").Where("expires_at > ?", s.nowUTC()).
		Order("created_at DESC").Limit(1).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("storage: get code: %w", translate(err))
	}
	return c, nil
}

// OneTimeCodeByID returns a code, used or not.
func (s *Store) OneTimeCodeByID(ctx context.Context, id string) (*OneTimeCode, error) {
	c := new(OneTimeCode)
	if err := s.idb(ctx).NewSelect().Model(c).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, fmt.Errorf("storage: get code: %w", translate(err))
	}
	return c, nil
}

// ClaimCodeAttempt counts one entry of a code before the entry is compared,
// in a single conditional statement, and returns the new count (1 to
// maxAttempts). It fails with ErrNotFound, counting nothing, when the code
// is used, expired at now, or has had maxAttempts entries already: then the
// entry must not be compared. Concurrent entries are counted one by one, so
// no more than maxAttempts entries of a code can ever be compared.
func (s *Store) ClaimCodeAttempt(ctx context.Context, id string, maxAttempts int, now time.Time) (int, error) {
	var n int
	err := s.idb(ctx).NewUpdate().Model((*OneTimeCode)(nil)).Set("attempts = attempts + 1").
		Where("id = ?", id).Where("used_at IS NULL").Where("attempts < ?", maxAttempts).
		Where("expires_at > ?", now.UTC()).Returning("attempts").Scan(ctx, &n)
	if err != nil {
		return 0, fmt.Errorf("storage: claim code attempt: %w", translate(err))
	}
	return n, nil
}

// UseOneTimeCode marks a live code used; ErrNotFound when a concurrent
// request used it first (so a code works exactly once).
func (s *Store) UseOneTimeCode(ctx context.Context, id string) error {
	res, err := s.idb(ctx).NewUpdate().Model((*OneTimeCode)(nil)).Set("used_at = ?", s.nowUTC()).
		Where("id = ?", id).Where("used_at IS NULL").Exec(ctx)
	if err != nil {
		return fmt.Errorf("storage: use code: %w", translate(err))
	}
	return oneRow(res, "use code")
}

// CodeSends returns when codes were sent since t, oldest first: those of
// user (any purpose) and, separately, those to destination of the same
// kind — codes of accounts when userID is set, messages without an account
// (the notice to the owner of an address someone tried to register) when
// it is empty. Kept apart, anonymous callers cannot use up the budget of an
// address's own sign-in codes. A code with no Channel (a decoy that was
// never sent) is not a send.
func (s *Store) CodeSends(ctx context.Context, userID, destination string, t time.Time) (byUser, byDestination []time.Time, err error) {
	var rows []struct {
		UserID      sql.NullString `bun:"user_id"`
		Destination string         `bun:"destination"`
		CreatedAt   time.Time      `bun:"created_at"`
	}
	err = s.idb(ctx).NewSelect().Model((*OneTimeCode)(nil)).Column("user_id", "destination", "created_at").
		WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
			return q.Where("user_id = ?", userID).WhereOr("destination = ?", destination)
		}).Where("created_at >= ?", t.UTC()).Where("channel <> ''").Order("created_at").Scan(ctx, &rows)
	if err != nil {
		return nil, nil, fmt.Errorf("storage: count codes: %w", translate(err))
	}
	for _, r := range rows {
		if r.UserID.Valid && r.UserID.String == userID {
			byUser = append(byUser, r.CreatedAt)
		}
		if r.Destination == destination && r.UserID.Valid == (userID != "") {
			byDestination = append(byDestination, r.CreatedAt)
		}
	}
	return byUser, byDestination, nil
}

// ActionToken is a single-use link token (password reset, email
// verification) or registration ticket, stored as a hash.
type ActionToken struct {
	bun.BaseModel `bun:"table:action_tokens"`

	TokenHash string         `bun:"token_hash,pk"`
	UserID    sql.NullString `bun:"user_id"`
	Purpose   string         `bun:"purpose"`
	// CodeID links a registration ticket to its verification code.
	CodeID    string       `bun:"code_id"`
	CreatedAt time.Time    `bun:"created_at"`
	ExpiresAt time.Time    `bun:"expires_at"`
	UsedAt    sql.NullTime `bun:"used_at"`
}

// CreateActionToken stores a token.
func (s *Store) CreateActionToken(ctx context.Context, t *ActionToken) error {
	t.CreatedAt = s.nowUTC()
	t.ExpiresAt = t.ExpiresAt.UTC()
	if _, err := s.idb(ctx).NewInsert().Model(t).Exec(ctx); err != nil {
		return fmt.Errorf("storage: create token: %w", translate(err))
	}
	return nil
}

// ActionToken returns a token by hash and purpose, used or not.
func (s *Store) ActionToken(ctx context.Context, hash, purpose string) (*ActionToken, error) {
	t := new(ActionToken)
	if err := s.idb(ctx).NewSelect().Model(t).Where("token_hash = ?", hash).Where("purpose = ?", purpose).Scan(ctx); err != nil {
		return nil, fmt.Errorf("storage: get token: %w", translate(err))
	}
	return t, nil
}

// UseActionToken marks an unused, unexpired token used; ErrNotFound when
// it is unknown, used (also by a concurrent request) or expired.
func (s *Store) UseActionToken(ctx context.Context, hash, purpose string) error {
	now := s.nowUTC()
	res, err := s.idb(ctx).NewUpdate().Model((*ActionToken)(nil)).Set("used_at = ?", now).
		Where("token_hash = ?", hash).Where("purpose = ?", purpose).Where("used_at IS NULL").
		Where("expires_at > ?", now).Exec(ctx)
	if err != nil {
		return fmt.Errorf("storage: use token: %w", translate(err))
	}
	return oneRow(res, "use token")
}

// KillActionTokens uses up every unused token of user for purpose.
func (s *Store) KillActionTokens(ctx context.Context, userID, purpose string) error {
	if _, err := s.idb(ctx).NewUpdate().Model((*ActionToken)(nil)).Set("used_at = ?", s.nowUTC()).
		Where("user_id = ?", userID).Where("purpose = ?", purpose).Where("used_at IS NULL").Exec(ctx); err != nil {
		return fmt.Errorf("storage: kill tokens: %w", translate(err))
	}
	return nil
}

// KillOneTimeCodes uses up every live code of user for purpose.
func (s *Store) KillOneTimeCodes(ctx context.Context, userID, purpose string) error {
	if _, err := s.idb(ctx).NewUpdate().Model((*OneTimeCode)(nil)).Set("used_at = ?", s.nowUTC()).
		Where("user_id = ?", userID).Where("purpose = ?", purpose).Where("used_at IS NULL").Exec(ctx); err != nil {
		return fmt.Errorf("storage: kill codes: %w", translate(err))
	}
	return nil
}

// Avatar is a user's picture, re-encoded as PNG.
type Avatar struct {
	bun.BaseModel `bun:"table:avatars"`

	UserID    string    `bun:"user_id,pk"`
	PNG       []byte    `bun:"png"`
	ETag      string    `bun:"etag"`
	UpdatedAt time.Time `bun:"updated_at"`
}

// SaveAvatar stores (or replaces) a user's avatar and records its ETag on
// the user.
func (s *Store) SaveAvatar(ctx context.Context, a *Avatar) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		a.UpdatedAt = s.nowUTC()
		if _, err := s.idb(ctx).NewInsert().Model(a).On("CONFLICT (user_id) DO UPDATE").
			Set("png = EXCLUDED.png").Set("etag = EXCLUDED.etag").Set("updated_at = EXCLUDED.updated_at").Exec(ctx); err != nil {
			return fmt.Errorf("storage: save avatar: %w", translate(err))
		}
		res, err := s.idb(ctx).NewUpdate().Model((*User)(nil)).Set("avatar_etag = ?", a.ETag).
			Set("updated_at = ?", a.UpdatedAt).Where("id = ?", a.UserID).Exec(ctx)
		if err != nil {
			return fmt.Errorf("storage: save avatar: %w", translate(err))
		}
		return oneRow(res, "save avatar")
	})
}

// Avatar returns a user's avatar, or ErrNotFound.
func (s *Store) Avatar(ctx context.Context, userID string) (*Avatar, error) {
	a := new(Avatar)
	if err := s.readDB(ctx).NewSelect().Model(a).Where("user_id = ?", userID).Scan(ctx); err != nil {
		return nil, fmt.Errorf("storage: get avatar: %w", translate(err))
	}
	return a, nil
}

// DeleteAvatar removes a user's avatar.
func (s *Store) DeleteAvatar(ctx context.Context, userID string) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		if _, err := s.idb(ctx).NewDelete().Model((*Avatar)(nil)).Where("user_id = ?", userID).Exec(ctx); err != nil {
			return fmt.Errorf("storage: delete avatar: %w", translate(err))
		}
		_, err := s.idb(ctx).NewUpdate().Model((*User)(nil)).Set("avatar_etag = ''").Set("updated_at = ?", s.nowUTC()).
			Where("id = ?", userID).Exec(ctx)
		return err
	})
}

// RevokeClientTokens revokes every token client holds for subject.
func (s *Store) RevokeClientTokens(ctx context.Context, subject, clientID string) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		if _, err := s.idb(ctx).NewDelete().ModelTableExpr(tableAccess).Where("subject = ?", subject).
			Where("client_id = ?", clientID).Exec(ctx); err != nil {
			return fmt.Errorf("storage: revoke tokens: %w", translate(err))
		}
		if _, err := s.idb(ctx).NewUpdate().ModelTableExpr(tableRefresh).Set("active = ?", false).
			Where("subject = ?", subject).Where("client_id = ?", clientID).Exec(ctx); err != nil {
			return fmt.Errorf("storage: revoke tokens: %w", translate(err))
		}
		return nil
	})
}

// CountActionTokensSince counts user's tokens of purpose created since t.
func (s *Store) CountActionTokensSince(ctx context.Context, userID, purpose string, t time.Time) (int, error) {
	n, err := s.idb(ctx).NewSelect().Model((*ActionToken)(nil)).Where("user_id = ?", userID).
		Where("purpose = ?", purpose).Where("created_at >= ?", t.UTC()).Count(ctx)
	if err != nil {
		return 0, fmt.Errorf("storage: count tokens: %w", translate(err))
	}
	return int(n), nil
}

// phantomRetention is how long failed sign-ins with an unknown login name
// are remembered.
const phantomRetention = 30 * 24 * time.Hour

// LoginFailures is the lockout state of a login name that has no account:
// attempts on it are counted and locked like a real account's, so that a
// lock tells nothing about whether the account exists.
type LoginFailures struct {
	bun.BaseModel `bun:"table:login_failures"`

	LoginKey    string       `bun:"login_key,pk"`
	Failures    int          `bun:"failures"`
	Lockouts    int          `bun:"lockouts"`
	LockedUntil sql.NullTime `bun:"locked_until"`
	ExpiresAt   time.Time    `bun:"expires_at"`
}
