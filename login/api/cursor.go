package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
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

// listingDigest names a listing by its filters and order (never its
// limit or position): a cursor continues only the listing it came from.
func listingDigest(parts ...any) string {
	b, _ := json.Marshal(parts)
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// listingOf names a user query's listing.
func listingOf(q storage.UserQuery) string {
	return listingDigest(q.Sort, q.Search, q.Role, q.Active, q.Verified)
}

// sealCursor signs p (its Listing set by the caller) into a cursor.
func (h *Handler) sealCursor(p cursorPayload) string {
	b, _ := json.Marshal(p)
	payload := base64.RawURLEncoding.EncodeToString(b)
	return payload + "." + h.cursorTag(payload)
}

// openCursor checks raw's tag and listing and returns its position, or
// false for a cursor that is not one of listing's.
func (h *Handler) openCursor(listing, raw string) (*cursorPayload, bool) {
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
	if json.Unmarshal(b, &p) != nil || p.Listing != listing || p.ID == "" {
		return nil, false
	}
	return &p, true
}

// encodeCursor is the cursor that continues q after key.
func (h *Handler) encodeCursor(q storage.UserQuery, key storage.UserKey) string {
	p := cursorPayload{Listing: listingOf(q), Created: key.CreatedAt.UTC(), ID: key.ID}
	if q.Sort == storage.SortEmail || q.Sort == storage.SortEmailDesc {
		p.Email = key.Email
	}
	return h.sealCursor(p)
}

// decodeCursor returns the position raw continues q at, or false for a
// cursor that is not one of this listing's.
func (h *Handler) decodeCursor(q storage.UserQuery, raw string) (*storage.UserKey, bool) {
	p, ok := h.openCursor(listingOf(q), raw)
	if !ok {
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

// listQuery reads a listing's raw query string: every parameter must be
// one of allowed and given once (else a validation problem naming it);
// limit, when given, must be 1 to maxPageSize (default defaultPageSize).
func listQuery(raw string, allowed []string) (url.Values, int, fields) {
	values, err := url.ParseQuery(raw)
	if err != nil {
		return nil, 0, fields{{Field: "query", Message: "could not be read (a bare ; or a bad % escape)"}}
	}
	var f fields
	for name, vs := range values {
		switch {
		case !slices.Contains(allowed, name):
			f = append(f, FieldError{Field: "query", Message: "unknown parameter; use " + strings.Join(allowed, ", ")})
		case len(vs) > 1:
			f = append(f, FieldError{Field: name, Message: "is given more than once"})
		}
	}
	if len(f) > 0 {
		return nil, 0, f
	}
	limit := defaultPageSize
	if s := values.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPageSize || s[0] == '+' {
			f = append(f, FieldError{Field: "limit", Message: "must be a whole number from 1 to " + strconv.Itoa(maxPageSize)})
		} else {
			limit = n
		}
	}
	if len(values.Get("cursor")) > maxCursorBytes {
		f = append(f, errBadCursor)
	}
	return values, limit, f
}

// errBadCursor names a cursor that does not continue the listing asked.
var errBadCursor = FieldError{Field: "cursor", Message: "is not a cursor of this listing; start again without one"}
