package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"github.com/torii-idp/torii/storage"
)

// A listing cursor is the position after the last user of a page, with
// the listing it belongs to, as base64url JSON and an HMAC-SHA256 tag over
// it under CursorKey: "<payload>.<tag>". It is opaque to clients; one they
// altered, forged, or carried over to another filter or order is refused.

// maxCursorBytes bounds a cursor parameter.
const maxCursorBytes = 512

type cursorPayload struct {
	// Listing identifies the filters and order (listingOf).
	Listing string    `json:"l"`
	Created time.Time `json:"c"`
	Email   string    `json:"e,omitempty"`
	ID      string    `json:"i"`
}

// listingOf names a query's filters and order, not its limit or position:
// a cursor continues only the listing it came from.
func listingOf(q storage.UserQuery) string {
	b, _ := json.Marshal([]any{q.Sort, q.Search, q.Role, q.Active, q.Verified})
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// encodeCursor is the cursor that continues q after key.
func (h *Handler) encodeCursor(q storage.UserQuery, key storage.UserKey) string {
	p := cursorPayload{Listing: listingOf(q), Created: key.CreatedAt.UTC(), ID: key.ID}
	if q.Sort == storage.SortEmail || q.Sort == storage.SortEmailDesc {
		p.Email = key.Email
	}
	b, _ := json.Marshal(p)
	payload := base64.RawURLEncoding.EncodeToString(b)
	return payload + "." + h.cursorTag(payload)
}

// decodeCursor returns the position raw continues q at, or false for a
// cursor that is not one of this listing's.
func (h *Handler) decodeCursor(q storage.UserQuery, raw string) (*storage.UserKey, bool) {
	payload, tag, ok := strings.Cut(raw, ".")
	if !ok || len(raw) > maxCursorBytes || len(h.cursorKey) == 0 ||
		!hmac.Equal([]byte(tag), []byte(h.cursorTag(payload))) {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil, false
	}
	var p cursorPayload
	if json.Unmarshal(b, &p) != nil || p.Listing != listingOf(q) || p.ID == "" {
		return nil, false
	}
	return &storage.UserKey{CreatedAt: p.Created, Email: p.Email, ID: p.ID}, true
}

func (h *Handler) cursorTag(payload string) string {
	m := hmac.New(sha256.New, h.cursorKey)
	m.Write([]byte("torii admin cursor v1\x00"))
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
