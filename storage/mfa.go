package storage

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// MFAChallenge is a password-grant sign-in waiting for its one-time code:
// the password was right and the code step applies. Its token travels to
// the client (mfa_token); only the token's SHA-256 is stored. It is single
// use, bound to the client that presented the password, and lives at most
// as long as a one-time code.
type MFAChallenge struct {
	bun.BaseModel `bun:"table:mfa_challenges"`

	TokenHash string `bun:"token_hash,pk"`
	UserID    string `bun:"user_id"`
	ClientID  string `bun:"client_id"`
	// Scope and Audience are what the password grant asked for, granted
	// when the code is right (space-separated).
	Scope     string       `bun:"scope"`
	Audience  string       `bun:"audience"`
	CreatedAt time.Time    `bun:"created_at"`
	ExpiresAt time.Time    `bun:"expires_at"`
	UsedAt    sql.NullTime `bun:"used_at"`
}

// CreateMFAChallenge stores a new challenge.
func (s *Store) CreateMFAChallenge(ctx context.Context, c *MFAChallenge) error {
	c.CreatedAt = s.nowUTC()
	c.ExpiresAt = c.ExpiresAt.UTC()
	if _, err := s.idb(ctx).NewInsert().Model(c).Exec(ctx); err != nil {
		return fmt.Errorf("storage: create mfa challenge: %w", translate(err))
	}
	return nil
}

// LiveMFAChallenge returns the unused, unexpired challenge whose token has
// hash tokenHash, or ErrNotFound.
func (s *Store) LiveMFAChallenge(ctx context.Context, tokenHash string) (*MFAChallenge, error) {
	c := new(MFAChallenge)
	err := s.idb(ctx).NewSelect().Model(c).Where("token_hash = ?", tokenHash).Where("used_at IS NULL").
		Where("expires_at > ?", s.nowUTC()).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("storage: get mfa challenge: %w", translate(err))
	}
	return c, nil
}

// UseMFAChallenge marks a live challenge used, so that its token works
// once: ErrNotFound when it was used (or killed) already or has expired.
// It also ends a challenge whose code died (too many wrong entries).
func (s *Store) UseMFAChallenge(ctx context.Context, tokenHash string) error {
	res, err := s.idb(ctx).NewUpdate().Model((*MFAChallenge)(nil)).Set("used_at = ?", s.nowUTC()).
		Where("token_hash = ?", tokenHash).Where("used_at IS NULL").Where("expires_at > ?", s.nowUTC()).Exec(ctx)
	if err != nil {
		return fmt.Errorf("storage: use mfa challenge: %w", translate(err))
	}
	return oneRow(res, "use mfa challenge")
}
