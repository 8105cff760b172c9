package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// RememberedDevice is a browser on which its user chose not to be asked for
// a one-time code again for a while. The browser's cookie holds the row's
// ID and a random secret; the row keeps only the secret's hash
// (SecretHash), so a database dump cannot be turned into cookies. Unlike a
// Device (trusted for the lockout, automatically), a remembered device
// skips a factor: deleting the row revokes it.
type RememberedDevice struct {
	bun.BaseModel `bun:"table:remembered_devices"`

	ID         string    `bun:"id,pk"`
	UserID     string    `bun:"user_id"`
	SecretHash string    `bun:"secret_hash"`
	UserAgent  string    `bun:"user_agent"`
	CreatedAt  time.Time `bun:"created_at"`
	LastUsedAt time.Time `bun:"last_used_at"`
	ExpiresAt  time.Time `bun:"expires_at"`
}

// CreateRememberedDevice stores a new remembered device; a zero CreatedAt
// is now, and LastUsedAt is CreatedAt.
func (s *Store) CreateRememberedDevice(ctx context.Context, d *RememberedDevice) error {
	if d.CreatedAt.IsZero() {
		d.CreatedAt = s.nowUTC()
	}
	d.CreatedAt = d.CreatedAt.UTC().Truncate(time.Microsecond)
	d.LastUsedAt, d.ExpiresAt = d.CreatedAt, d.ExpiresAt.UTC()
	if _, err := s.idb(ctx).NewInsert().Model(d).Exec(ctx); err != nil {
		return fmt.Errorf("storage: create remembered device: %w", translate(err))
	}
	return nil
}

// RememberedDevice returns the remembered device with the given ID, or
// ErrNotFound. The caller checks its user, secret and expiry.
func (s *Store) RememberedDevice(ctx context.Context, id string) (*RememberedDevice, error) {
	d := new(RememberedDevice)
	if err := s.idb(ctx).NewSelect().Model(d).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, fmt.Errorf("storage: get remembered device: %w", translate(err))
	}
	return d, nil
}

// TouchRememberedDevice records that the remembered device id was used now.
func (s *Store) TouchRememberedDevice(ctx context.Context, id string) error {
	_, err := s.idb(ctx).NewUpdate().Model((*RememberedDevice)(nil)).Set("last_used_at = ?", s.nowUTC()).
		Where("id = ?", id).Exec(ctx)
	if err != nil {
		return fmt.Errorf("storage: touch remembered device: %w", translate(err))
	}
	return nil
}

// RememberedDevices lists userID's unexpired remembered devices, most
// recently used first.
func (s *Store) RememberedDevices(ctx context.Context, userID string) ([]*RememberedDevice, error) {
	var ds []*RememberedDevice
	err := s.readDB(ctx).NewSelect().Model(&ds).Where("user_id = ?", userID).Where("expires_at > ?", s.nowUTC()).
		Order("last_used_at DESC", "id").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("storage: list remembered devices: %w", translate(err))
	}
	return ds, nil
}

// ForgetRememberedDevice deletes userID's remembered device id, or answers
// ErrNotFound when userID has no such device (another user's is not found
// either).
func (s *Store) ForgetRememberedDevice(ctx context.Context, userID, id string) error {
	res, err := s.idb(ctx).NewDelete().Model((*RememberedDevice)(nil)).Where("id = ?", id).Where("user_id = ?", userID).Exec(ctx)
	if err != nil {
		return fmt.Errorf("storage: forget remembered device: %w", translate(err))
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("storage: forget remembered device: %w", ErrNotFound)
	}
	return nil
}

// ForgetRememberedDevices deletes every remembered device of userID and
// returns how many there were.
func (s *Store) ForgetRememberedDevices(ctx context.Context, userID string) (int64, error) {
	res, err := s.idb(ctx).NewDelete().Model((*RememberedDevice)(nil)).Where("user_id = ?", userID).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("storage: forget remembered devices: %w", translate(err))
	}
	n, _ := res.RowsAffected()
	return n, nil
}
