package storage

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/uptrace/bun"
)

// AuditEvent is one security-relevant action: a sign-in, a password change,
// an admin action. Detail holds a few facts about it, never a password, a
// code, a token or a secret.
type AuditEvent struct {
	bun.BaseModel `bun:"table:audit_events"`

	ID        string    `bun:"id,pk" json:"id"`
	CreatedAt time.Time `bun:"created_at" json:"created_at"`
	// Type is the event's kind, as "sign_in.success" or "admin.user_deleted".
	Type string `bun:"type" json:"type"`
	// Actor is who acted: "user:ID", "client:ID", "cli" or "system"; empty
	// for an unknown party (a failed sign-in).
	Actor string `bun:"actor" json:"actor"`
	// Subject is the ID of the user the action concerns, if any.
	Subject   string `bun:"subject" json:"subject"`
	ClientID  string `bun:"client_id" json:"client_id"`
	IP        string `bun:"ip" json:"ip"`
	UserAgent string `bun:"user_agent" json:"user_agent"`
	RequestID string `bun:"request_id" json:"request_id"`
	// Detail is stored as a JSON object.
	Detail map[string]any `bun:"detail" json:"detail"`
}

// maxUserAgent bounds the user agent kept with an event, in bytes.
const maxUserAgent = 256

// AuditMeta describes the request an action came in: RecordAudit copies it
// into events that leave these fields empty.
type AuditMeta struct {
	IP        string
	UserAgent string
	RequestID string
	// ClientID is the relying party the request serves (a browser sign-in
	// for a pending authorization request), or "".
	ClientID string
}

type auditMetaKey struct{}

type auditActorKey struct{}

// WithAuditMeta returns a context carrying m.
func WithAuditMeta(ctx context.Context, m AuditMeta) context.Context {
	return context.WithValue(ctx, auditMetaKey{}, m)
}

// AuditMetaFrom returns the request metadata ctx carries, or the zero value.
func AuditMetaFrom(ctx context.Context) AuditMeta {
	m, _ := ctx.Value(auditMetaKey{}).(AuditMeta)
	return m
}

// WithAuditClient returns a context whose events name clientID as their
// client (RecordAudit, for events that leave ClientID empty), keeping the
// rest of its AuditMeta.
func WithAuditClient(ctx context.Context, clientID string) context.Context {
	m := AuditMetaFrom(ctx)
	m.ClientID = clientID
	return WithAuditMeta(ctx, m)
}

// WithAuditActor returns a context naming the actor ("user:ID",
// "client:ID", "cli") of the actions done with it: RecordAudit uses it for
// events that leave Actor empty.
func WithAuditActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, auditActorKey{}, actor)
}

// AuditActorFrom returns the actor ctx names, or "".
func AuditActorFrom(ctx context.Context) string {
	a, _ := ctx.Value(auditActorKey{}).(string)
	return a
}

// secretKeys are the substrings of detail keys RecordAudit drops, a guard
// against a caller that would store a password, code, token or secret.
var secretKeys = []string{"password", "secret", "token", "code", "otp", "hash"}

// RecordAudit stores e inside the transaction ctx carries if any, so the
// event exists exactly when the action commits. It sets ID and CreatedAt,
// fills Actor, IP, user agent, request ID and client from ctx (WithAuditActor,
// WithAuditMeta) where e leaves them empty, truncates the user agent to 256
// bytes and drops detail keys that name a secret. The event is logged at
// info level ("audit") once its transaction commits, or at once without
// one; an event rolled back is never logged.
func (s *Store) RecordAudit(ctx context.Context, e *AuditEvent) error {
	m := AuditMetaFrom(ctx)
	if e.Actor == "" {
		e.Actor = AuditActorFrom(ctx)
	}
	if e.IP == "" {
		e.IP = m.IP
	}
	if e.UserAgent == "" {
		e.UserAgent = m.UserAgent
	}
	if e.RequestID == "" {
		e.RequestID = m.RequestID
	}
	if e.ClientID == "" {
		e.ClientID = m.ClientID
	}
	if len(e.UserAgent) > maxUserAgent {
		e.UserAgent = strings.ToValidUTF8(e.UserAgent[:maxUserAgent], "")
	} else if !utf8.ValidString(e.UserAgent) {
		e.UserAgent = strings.ToValidUTF8(e.UserAgent, "")
	}
	for k := range e.Detail {
		lk := strings.ToLower(k)
		for _, bad := range secretKeys {
			if strings.Contains(lk, bad) {
				delete(e.Detail, k)
				break
			}
		}
	}
	if e.Detail == nil {
		e.Detail = map[string]any{}
	}
	e.ID = rand.Text()
	e.CreatedAt = s.nowUTC()
	if _, err := s.idb(ctx).NewInsert().Model(e).Exec(ctx); err != nil {
		return fmt.Errorf("storage: record audit event %s: %w", e.Type, translate(err))
	}
	if p := auditPendingOf(ctx); p != nil {
		p.add(e)
	} else {
		s.logAudit(e)
	}
	return nil
}

// logAudit writes e's log line. It logs without the request's context: the
// event names its request ID itself.
func (s *Store) logAudit(e *AuditEvent) {
	if s.auditLog == nil {
		return
	}
	s.auditLog.LogAttrs(context.Background(), slog.LevelInfo, "audit",
		slog.String("type", e.Type), slog.String("actor", e.Actor), slog.String("subject", e.Subject),
		slog.String("client_id", e.ClientID), slog.String("request_id", e.RequestID))
}

// auditPending holds the events a transaction recorded, logged when it
// commits.
type auditPending struct {
	mu     sync.Mutex
	events []*AuditEvent
}

type auditPendingKey struct{}

func (p *auditPending) add(e *AuditEvent) {
	p.mu.Lock()
	p.events = append(p.events, e)
	p.mu.Unlock()
}

func auditPendingOf(ctx context.Context) *auditPending {
	p, _ := ctx.Value(auditPendingKey{}).(*auditPending)
	return p
}

// settleAudit logs the events of the transaction ctx carries when it
// committed, and forgets them either way.
func (s *Store) settleAudit(ctx context.Context, committed bool) {
	p := auditPendingOf(ctx)
	if p == nil {
		return
	}
	p.mu.Lock()
	events := p.events
	p.events = nil
	p.mu.Unlock()
	if committed {
		for _, e := range events {
			s.logAudit(e)
		}
	}
}

// AuditKey is an event's position in the newest-first order of
// AuditEvents.
type AuditKey struct {
	CreatedAt time.Time
	ID        string
}

// AuditQuery selects a page of events for AuditEvents.
type AuditQuery struct {
	// Subject, when set, keeps the events about this user.
	Subject string
	// Type, when set, keeps the events of this type; "admin.*" keeps every
	// type that starts with "admin.".
	Type string
	// Since, when set, keeps the events at or after it.
	Since time.Time
	// Limit is the most events returned; it must be positive.
	Limit int
	// After, when set, starts the page after the event at this position
	// (keyset pagination: events recorded meanwhile are newer, so they never
	// shift a later page).
	After *AuditKey
}

// AuditEvents returns a page of events matching q, newest first (ties
// broken by ID, descending).
func (s *Store) AuditEvents(ctx context.Context, q AuditQuery) ([]*AuditEvent, error) {
	if q.Limit <= 0 {
		return nil, fmt.Errorf("storage: audit events: limit %d", q.Limit)
	}
	var es []*AuditEvent
	sel := s.readDB(ctx).NewSelect().Model(&es)
	if q.Subject != "" {
		sel = sel.Where("subject = ?", q.Subject)
	}
	if prefix, ok := strings.CutSuffix(q.Type, "*"); ok {
		sel = sel.Where(`type LIKE ? ESCAPE '\'`, escapeLike(prefix)+"%")
	} else if q.Type != "" {
		sel = sel.Where("type = ?", q.Type)
	}
	if !q.Since.IsZero() {
		sel = sel.Where("created_at >= ?", q.Since.UTC())
	}
	if q.After != nil {
		at := q.After.CreatedAt.UTC()
		sel = sel.WhereGroup(" AND ", func(g *bun.SelectQuery) *bun.SelectQuery {
			return g.Where("created_at < ?", at).WhereOr("created_at = ? AND id < ?", at, q.After.ID)
		})
	}
	sel = sel.OrderExpr("created_at DESC").OrderExpr("id DESC").Limit(int64(q.Limit))
	if err := sel.Scan(ctx); err != nil {
		return nil, fmt.Errorf("storage: audit events: %w", translate(err))
	}
	return es, nil
}

// DeleteAuditBefore deletes the events recorded before t, in batches of at
// most batch rows per statement, and returns how many it deleted.
func (s *Store) DeleteAuditBefore(ctx context.Context, t time.Time, batch int) (int64, error) {
	if batch <= 0 {
		batch = 1000
	}
	var total int64
	for {
		sub := s.db.NewSelect().TableExpr("audit_events").Column("id").Where("created_at < ?", t.UTC()).Limit(int64(batch))
		res, err := s.db.NewDelete().TableExpr("audit_events").Where("id IN (?)", sub).Exec(ctx)
		if err != nil {
			return total, fmt.Errorf("storage: delete audit events: %w", translate(err))
		}
		n, _ := res.RowsAffected()
		total += n
		if n < int64(batch) {
			return total, nil
		}
	}
}
