package storage

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// Device is a browser trusted for one account: it completed a sign-in of
// that account (OWASP's "device cookie"). Its wrong passwords are counted
// here (DeviceCounter), apart from the account's lockout, which shuts out
// every other browser. One browser (DeviceID, from its signed cookie) has
// one row per account it signed in to.
type Device struct {
	bun.BaseModel `bun:"table:devices"`

	// ID names the row (DeviceCounter); DeviceID names the browser.
	ID           string       `bun:"id,pk"`
	DeviceID     string       `bun:"device_id"`
	UserID       string       `bun:"user_id"`
	UserAgent    string       `bun:"user_agent"`
	FailedLogins int          `bun:"failed_logins"`
	Lockouts     int          `bun:"lockouts"`
	LockedUntil  sql.NullTime `bun:"locked_until"`
	CreatedAt    time.Time    `bun:"created_at"`
	LastUsedAt   time.Time    `bun:"last_used_at"`
	ExpiresAt    time.Time    `bun:"expires_at"`
}

// Device returns the device deviceID trusted for userID, or ErrNotFound.
// The caller checks ExpiresAt against its clock; the clean-up deletes
// expired devices.
func (s *Store) Device(ctx context.Context, deviceID, userID string) (*Device, error) {
	d := new(Device)
	err := s.idb(ctx).NewSelect().Model(d).Where("device_id = ?", deviceID).Where("user_id = ?", userID).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("storage: get device: %w", translate(err))
	}
	return d, nil
}

// TrustDevice records that browser deviceID completed a sign-in of userID:
// it is trusted for that account until expires (a device already trusted
// keeps its row and failure count, and its trust is extended).
func (s *Store) TrustDevice(ctx context.Context, deviceID, userID, userAgent string, expires time.Time) error {
	now := s.nowUTC()
	d := &Device{ID: uuid.NewString(), DeviceID: deviceID, UserID: userID, UserAgent: userAgent,
		CreatedAt: now, LastUsedAt: now, ExpiresAt: expires.UTC()}
	_, err := s.idb(ctx).NewInsert().Model(d).On("CONFLICT (device_id, user_id) DO UPDATE").
		Set("user_agent = EXCLUDED.user_agent").Set("last_used_at = EXCLUDED.last_used_at").
		Set("expires_at = EXCLUDED.expires_at").Exec(ctx)
	if err != nil {
		return fmt.Errorf("storage: trust device: %w", translate(err))
	}
	return nil
}

// Devices lists the unexpired devices trusted for userID, most recently
// used first.
func (s *Store) Devices(ctx context.Context, userID string) ([]*Device, error) {
	var ds []*Device
	err := s.idb(ctx).NewSelect().Model(&ds).Where("user_id = ?", userID).Where("expires_at > ?", s.nowUTC()).
		Order("last_used_at DESC").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("storage: list devices: %w", translate(err))
	}
	return ds, nil
}

// ForgetDevices revokes every device trusted for userID: from then on its
// browsers count as unknown ones.
func (s *Store) ForgetDevices(ctx context.Context, userID string) error {
	if _, err := s.idb(ctx).NewDelete().Model((*Device)(nil)).Where("user_id = ?", userID).Exec(ctx); err != nil {
		return fmt.Errorf("storage: forget devices: %w", translate(err))
	}
	return nil
}
