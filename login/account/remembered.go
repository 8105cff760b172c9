package account

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/torii-idp/torii/storage"
)

// Remembered devices: a user who passed the code step may ask not to be
// asked for a code again on that browser for RememberLifetime. The browser
// keeps a token "r1.<ID>.<secret>" (a random 128-bit row ID and a random
// 256-bit secret); the database keeps the row, bound to the user, with only
// the secret's SHA-256. Such a browser still types the password: the
// token replaces the code step only, and only when the relying party did
// not ask for a second factor (the caller's rule, see login).
const (
	rememberPrefix      = "r1."
	rememberIDBytes     = 16
	rememberSecretBytes = 32
)

// RememberLifetime is how long a remembered device skips the code step; 0
// means the choice is off.
func (s *Service) RememberLifetime() time.Duration { return s.cfg.RememberLifetime }

// RememberBrowser records that userID, having just passed the code step in
// a browser (described by userAgent), chose not to be asked for a code on
// it again, and returns the token the browser keeps (in an HttpOnly
// cookie). ErrRememberOff when RememberLifetime is 0.
func (s *Service) RememberBrowser(ctx context.Context, userID, userAgent string) (string, error) {
	if s.cfg.RememberLifetime <= 0 {
		return "", ErrRememberOff
	}
	id, secret := make([]byte, rememberIDBytes), make([]byte, rememberSecretBytes)
	rand.Read(id)
	rand.Read(secret)
	now := s.cfg.Now()
	d := &storage.RememberedDevice{ID: b64url.EncodeToString(id), UserID: userID, UserAgent: userAgent,
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.RememberLifetime)}
	token := rememberPrefix + d.ID + "." + b64url.EncodeToString(secret)
	d.SecretHash = hashToken(b64url.EncodeToString(secret))
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.CreateRememberedDevice(ctx, d); err != nil {
			return err
		}
		return s.audit(ctx, "device.remembered", userID, map[string]any{"device_id": d.ID})
	})
	if err != nil {
		return "", fmt.Errorf("account: remember browser: %w", err)
	}
	return token, nil
}

// ErrRememberOff: remembering devices is turned off (RememberLifetime 0).
var ErrRememberOff = errors.New("account: remembered devices are off")

// parseRemembered splits a remembered-device token into its row ID and
// secret, or answers ok false for anything else.
func parseRemembered(token string) (id, secret string, ok bool) {
	rest, ok := strings.CutPrefix(token, rememberPrefix)
	if !ok || len(token) > 128 {
		return "", "", false
	}
	id, secret, ok = strings.Cut(rest, ".")
	if !ok || len(id) != b64url.EncodedLen(rememberIDBytes) || len(secret) != b64url.EncodedLen(rememberSecretBytes) {
		return "", "", false
	}
	if _, err := b64url.Strict().DecodeString(id); err != nil {
		return "", "", false
	}
	if _, err := b64url.Strict().DecodeString(secret); err != nil {
		return "", "", false
	}
	return id, secret, true
}

// RememberedDeviceID returns the row ID a remembered-device token names
// ("" when it is not one), to mark "this device" in lists. It proves
// nothing.
func RememberedDeviceID(token string) string {
	id, _, ok := parseRemembered(token)
	if !ok {
		return ""
	}
	return id
}

// Remembered reports whether token (a browser's remembered-device token,
// "" for none) lets userID skip the code step now: the choice is on, the
// token's row exists, belongs to userID, has not expired (nor outlived
// the current RememberLifetime since it was made), and the secret matches
// (constant-time). A token of another user's, a forged or forgotten one
// count for nothing. A use is recorded (last_used_at).
func (s *Service) Remembered(ctx context.Context, userID, token string) (bool, error) {
	if s.cfg.RememberLifetime <= 0 || token == "" {
		return false, nil
	}
	id, secret, ok := parseRemembered(token)
	if !ok {
		return false, nil
	}
	d, err := s.store.RememberedDevice(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("account: read remembered device: %w", err)
	}
	now := s.cfg.Now()
	hashOK := subtle.ConstantTimeCompare([]byte(hashToken(secret)), []byte(d.SecretHash)) == 1
	if !hashOK || d.UserID != userID || !now.Before(d.ExpiresAt) || !now.Before(d.CreatedAt.Add(s.cfg.RememberLifetime)) {
		return false, nil
	}
	if err := s.store.TouchRememberedDevice(ctx, id); err != nil {
		return false, fmt.Errorf("account: %w", err)
	}
	return true, nil
}

// RememberedDevices lists userID's remembered devices, most recently used
// first.
func (s *Service) RememberedDevices(ctx context.Context, userID string) ([]*storage.RememberedDevice, error) {
	ds, err := s.store.RememberedDevices(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("account: %w", err)
	}
	return ds, nil
}

// ForgetDevice forgets one of userID's remembered devices: it will be
// asked for a code again. ErrNotFound for an unknown ID or another user's
// device.
func (s *Service) ForgetDevice(ctx context.Context, userID, id string) error {
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.ForgetRememberedDevice(ctx, userID, id); err != nil {
			return err
		}
		return s.audit(ctx, "device.forgotten", userID, map[string]any{"device_id": id})
	})
	if errors.Is(err, storage.ErrNotFound) {
		return ErrNotFound
	} else if err != nil {
		return fmt.Errorf("account: forget device: %w", err)
	}
	return nil
}

// forgetRememberedDevices forgets every remembered device of userID, in
// the transaction ctx carries, because of reason (the event that does it:
// a password change or reset, signing out everywhere, deactivation). The
// one place those events reach, from the pages and the API alike.
func (s *Service) forgetRememberedDevices(ctx context.Context, userID, reason string) error {
	n, err := s.store.ForgetRememberedDevices(ctx, userID)
	if err != nil || n == 0 {
		return err
	}
	return s.audit(ctx, "device.forgotten", userID, map[string]any{"all": true, "count": n, "reason": reason})
}
