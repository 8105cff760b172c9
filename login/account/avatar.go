package account

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // decoder
	"image/png"
	"net/http"

	_ "golang.org/x/image/webp" // decoder

	"github.com/torii-idp/torii/storage"
)

// Avatar limits.
const (
	MaxAvatarBytes = 1 << 20
	maxAvatarSide  = 4096
)

var errAvatarType = &ValidationError{Field: "avatar", Message: "The picture must be a PNG, JPEG or WebP image of at most 1 MiB and 4096×4096 pixels."}

// SetAvatar stores the user's picture. Only PNG, JPEG and WebP are
// accepted, by their content (not their name), and only if they decode;
// the picture is re-encoded as PNG, which drops any metadata or trailing
// bytes, so what Torii serves back is always a plain image and never
// something a browser could run.
func (s *Service) SetAvatar(ctx context.Context, userID string, data []byte) error {
	if len(data) == 0 || len(data) > MaxAvatarBytes {
		return errAvatarType
	}
	switch http.DetectContentType(data) {
	case "image/png", "image/jpeg", "image/webp":
	default:
		return errAvatarType
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil || cfg.Width < 1 || cfg.Height < 1 || cfg.Width > maxAvatarSide || cfg.Height > maxAvatarSide {
		return errAvatarType
	}
	switch format {
	case "png", "jpeg", "webp":
	default:
		return errAvatarType
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return errAvatarType
	}
	var out bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&out, img); err != nil {
		return fmt.Errorf("account: encode avatar: %w", err)
	}
	if _, err := s.Get(ctx, userID); err != nil {
		return err
	}
	b := out.Bytes()
	if err := s.store.SaveAvatar(ctx, &storage.Avatar{UserID: userID, PNG: b, ETag: etagOf(b)}); err != nil {
		return fmt.Errorf("account: save avatar: %w", err)
	}
	return nil
}

// Avatar returns the user's picture as PNG and its ETag; ErrNotFound when
// there is none.
func (s *Service) Avatar(ctx context.Context, userID string) ([]byte, string, error) {
	if !validID(userID) {
		return nil, "", ErrNotFound
	}
	a, err := s.store.Avatar(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, "", ErrNotFound
	} else if err != nil {
		return nil, "", fmt.Errorf("account: avatar: %w", err)
	}
	return a.PNG, a.ETag, nil
}

// RemoveAvatar deletes the user's picture.
func (s *Service) RemoveAvatar(ctx context.Context, userID string) error {
	if err := s.store.DeleteAvatar(ctx, userID); err != nil {
		return fmt.Errorf("account: remove avatar: %w", err)
	}
	return nil
}
