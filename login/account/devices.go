package account

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/torii-idp/torii/storage"
)

// Device tokens (OWASP's "device cookies"): a browser that completed a
// sign-in of an account carries a token naming it, signed with the server
// secret "device"; the database says for which accounts it is trusted, so
// trust is revoked by deleting rows. The token itself holds no account and
// no secret beyond its MAC: a browser used for several accounts carries one
// token.
const (
	deviceTokenPrefix = "d1."
	deviceIDBytes     = 16
)

var b64url = base64.RawURLEncoding

// deviceMAC is the MAC of a device ID under the device key.
func (s *Service) deviceMAC(ctx context.Context, id string) ([]byte, error) {
	key, err := s.secret(ctx, "device")
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("device:"))
	m.Write([]byte(id))
	return m.Sum(nil), nil
}

// deviceID returns the device ID that token names when its MAC is right,
// or "" for anything else (no token, garbage, a forged or truncated one).
func (s *Service) deviceID(ctx context.Context, token string) (string, error) {
	rest, ok := strings.CutPrefix(token, deviceTokenPrefix)
	if !ok || len(token) > 128 {
		return "", nil
	}
	id, sig, ok := strings.Cut(rest, ".")
	if !ok || b64url.DecodedLen(len(id)) != deviceIDBytes {
		return "", nil
	}
	got, err := b64url.Strict().DecodeString(sig)
	if err != nil {
		return "", nil
	}
	want, err := s.deviceMAC(ctx, id)
	if err != nil {
		return "", err
	}
	if !hmac.Equal(got, want) {
		return "", nil
	}
	return id, nil
}

// trustedDevice returns the device row that makes token trusted for
// userID, or nil when token is no valid device token or its browser is not
// (or no longer) trusted for that account.
func (s *Service) trustedDevice(ctx context.Context, token, userID string) (*storage.Device, error) {
	if token == "" {
		return nil, nil
	}
	id, err := s.deviceID(ctx, token)
	if err != nil || id == "" {
		return nil, err
	}
	d, err := s.store.Device(ctx, id, userID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("account: read device: %w", err)
	}
	if !d.ExpiresAt.After(s.cfg.Now()) {
		return nil, nil
	}
	return d, nil
}

// RememberDevice records that the browser carrying token (its device
// token, or "" or anything invalid when it has none) completed a sign-in
// of userID, and returns the device token the browser should keep: the
// same one when it was valid, a new one otherwise. From then on, for
// DeviceLifetime after its last completed sign-in, wrong passwords typed
// in that browser for that account are counted on the device, not on the
// account (see AuthenticateOnDevice). userAgent is kept to list the device.
func (s *Service) RememberDevice(ctx context.Context, userID, token, userAgent string) (string, error) {
	id, err := s.deviceID(ctx, token)
	if err != nil {
		return "", err
	}
	if id == "" {
		raw := make([]byte, deviceIDBytes)
		rand.Read(raw)
		id = b64url.EncodeToString(raw)
		mac, err := s.deviceMAC(ctx, id)
		if err != nil {
			return "", err
		}
		token = deviceTokenPrefix + id + "." + b64url.EncodeToString(mac)
	}
	if err := s.store.TrustDevice(ctx, id, userID, userAgent, s.cfg.Now().Add(s.cfg.DeviceLifetime)); err != nil {
		return "", fmt.Errorf("account: remember device: %w", err)
	}
	return token, nil
}

// DeviceLifetime is how long a browser stays trusted after it last
// completed a sign-in (Config.DeviceLifetime).
func (s *Service) DeviceLifetime() time.Duration { return s.cfg.DeviceLifetime }
