package api

import (
	"errors"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/torii-idp/torii/storage"
)

// ParseSince reads a "since" filter: a duration back from now ("24h") or
// an RFC 3339 time. The CLI's --since and the admin API's since share it.
func ParseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, errors.New("must be a duration such as 24h or an RFC 3339 time")
}

// AdminAuditEvent is an audit event as the admin API shows it.
type AdminAuditEvent struct {
	ID        string         `json:"id"`
	CreatedAt time.Time      `json:"created_at"`
	Type      string         `json:"type"`
	Actor     string         `json:"actor"`
	Subject   string         `json:"subject"`
	ClientID  string         `json:"client_id"`
	IP        string         `json:"ip"`
	UserAgent string         `json:"user_agent"`
	RequestID string         `json:"request_id"`
	Detail    map[string]any `json:"detail"`
}

// auditParams are the audit listing's query parameters.
var auditParams = []string{"limit", "cursor", "user", "type", "since"}

// auditTypePattern is what a type filter may be: a type, or a prefix of
// one followed by *.
var auditTypePattern = regexp.MustCompile(`^[a-z][a-z0-9_.]{0,63}\*?$`)

// adminListAudit answers a page of audit events, newest first, and, when
// more follow, the cursor of the next page.
func (h *Handler) adminListAudit(w http.ResponseWriter, r *http.Request, _ *adminCaller) error {
	q, cursor, err := parseAuditQuery(r.URL.RawQuery, time.Now())
	if err != nil {
		return err
	}
	if cursor != "" {
		after, ok := h.decodeAuditCursor(q, cursor)
		if !ok {
			return invalid(errBadCursor)
		}
		q.After = after
	}
	limit := q.Limit
	q.Limit++ // one more tells whether a next page exists
	es, err := h.accounts.AuditEvents(r.Context(), q)
	if err != nil {
		return err
	}
	var next *string
	if len(es) > limit {
		es = es[:limit]
		c := h.encodeAuditCursor(q, storage.AuditKey{CreatedAt: es[limit-1].CreatedAt, ID: es[limit-1].ID})
		next = &c
	}
	items := make([]AdminAuditEvent, 0, len(es))
	for _, e := range es {
		items = append(items, adminAuditOf(e))
	}
	writeJSON(w, http.StatusOK, struct {
		Items      []AdminAuditEvent `json:"items"`
		NextCursor *string           `json:"next_cursor"`
	}{items, next})
	return nil
}

func adminAuditOf(e *storage.AuditEvent) AdminAuditEvent {
	detail := e.Detail
	if detail == nil {
		detail = map[string]any{}
	}
	return AdminAuditEvent{ID: e.ID, CreatedAt: e.CreatedAt.UTC(), Type: e.Type, Actor: e.Actor, Subject: e.Subject,
		ClientID: e.ClientID, IP: e.IP, UserAgent: e.UserAgent, RequestID: e.RequestID, Detail: detail}
}

// parseAuditQuery reads the audit listing's parameters from a raw query.
func parseAuditQuery(raw string, now time.Time) (storage.AuditQuery, string, error) {
	values, limit, f := listQuery(raw, auditParams)
	if values == nil {
		return storage.AuditQuery{}, "", f.problem()
	}
	q := storage.AuditQuery{Limit: limit}
	if s := values.Get("user"); s != "" {
		if len(s) > 64 || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r > '~' }) {
			f = append(f, FieldError{Field: "user", Message: "is not a user ID"})
		} else {
			q.Subject = s
		}
	}
	if s := values.Get("type"); s != "" {
		if !auditTypePattern.MatchString(s) {
			f = append(f, FieldError{Field: "type", Message: "is not an event type (as sign_in.failure, or admin.* for a prefix)"})
		} else {
			q.Type = s
		}
	}
	if s := values.Get("since"); s != "" {
		t, err := ParseSince(s, now)
		if err != nil {
			f = append(f, FieldError{Field: "since", Message: err.Error()})
		} else {
			q.Since = t
		}
	}
	if p := f.problem(); p != nil {
		return q, "", p
	}
	return q, values.Get("cursor"), nil
}

// auditListingOf names an audit query's user and type filters. since is
// not part of it (a duration moves with the clock); it applies to each
// page as given.
func auditListingOf(q storage.AuditQuery) string { return listingDigest("audit", q.Subject, q.Type) }

// encodeAuditCursor is the cursor that continues q after key.
func (h *Handler) encodeAuditCursor(q storage.AuditQuery, key storage.AuditKey) string {
	return h.sealCursor(cursorPayload{Listing: auditListingOf(q), Created: key.CreatedAt.UTC(), ID: key.ID})
}

// decodeAuditCursor returns the position raw continues q at, or false for
// a cursor that is not one of this listing's.
func (h *Handler) decodeAuditCursor(q storage.AuditQuery, raw string) (*storage.AuditKey, bool) {
	p, ok := h.openCursor(auditListingOf(q), raw)
	if !ok {
		return nil, false
	}
	return &storage.AuditKey{CreatedAt: p.Created, ID: p.ID}, true
}
