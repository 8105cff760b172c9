package storage

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// Outbox message states.
const (
	OutboxPending = "pending"
	OutboxSent    = "sent"
	OutboxFailed  = "failed"
)

// OutboxMessage is a mail or SMS waiting to be sent, or the record of one
// that was sent or given up on: then its body, the only field that may hold
// a one-time code or a link's token, is erased.
type OutboxMessage struct {
	bun.BaseModel `bun:"table:outbox"`

	ID            string       `bun:"id,pk"`
	Channel       string       `bun:"channel"`
	Recipient     string       `bun:"recipient"`
	Subject       string       `bun:"subject"`
	BodyText      string       `bun:"body_text"`
	BodyHTML      string       `bun:"body_html"`
	Status        string       `bun:"status"`
	Attempts      int          `bun:"attempts"`
	NextAttemptAt time.Time    `bun:"next_attempt_at"`
	ClaimedUntil  sql.NullTime `bun:"claimed_until"`
	ClaimToken    string       `bun:"claim_token"`
	LastError     string       `bun:"last_error"`
	CreatedAt     time.Time    `bun:"created_at"`
	SentAt        sql.NullTime `bun:"sent_at"`
	ExpiresAt     time.Time    `bun:"expires_at"`
}

// outboxRetention is how long outbox rows are kept, sent or not.
const outboxRetention = 7 * 24 * time.Hour

// EnqueueMessage stores a message for sending, inside the transaction ctx
// carries if any: it exists exactly when the action that caused it commits.
func (s *Store) EnqueueMessage(ctx context.Context, m *OutboxMessage) error {
	now := s.nowUTC()
	m.ID = rand.Text()
	m.Status = OutboxPending
	m.CreatedAt = now
	m.NextAttemptAt = now
	m.ExpiresAt = now.Add(outboxRetention)
	if _, err := s.idb(ctx).NewInsert().Model(m).Exec(ctx); err != nil {
		return fmt.Errorf("storage: enqueue message: %w", translate(err))
	}
	return nil
}

// ErrClaimLost is returned by MarkMessageSent and MarkMessageFailed when
// the caller's claim on the message is gone: its lease ran out and another
// claimer took the message, which may then be sent twice.
var ErrClaimLost = errors.New("storage: outbox claim lost")

// ClaimMessage leases the next due message to the caller for lease, or
// returns nil when none is due: no other claimer gets it until the lease
// ends (then it is due again, in case the claimer died). With several
// nodes each message goes to one claimer at a time. One message a claim:
// a lease on a batch would run out while the batch waited behind a slow
// server, and another claimer would send the rest again.
func (s *Store) ClaimMessage(ctx context.Context, lease time.Duration) (*OutboxMessage, error) {
	m := new(OutboxMessage)
	err := s.InTx(ctx, func(ctx context.Context) error {
		now := s.nowUTC()
		q := s.idb(ctx).NewSelect().Model(m).
			Where("status = ?", OutboxPending).Where("next_attempt_at <= ?", now).
			WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
				return q.Where("claimed_until IS NULL").WhereOr("claimed_until < ?", now)
			}).
			Order("next_attempt_at").Limit(1)
		if s.dialect == Postgres {
			q = q.For("UPDATE SKIP LOCKED")
		}
		if err := q.Scan(ctx); err != nil {
			return err
		}
		m.ClaimToken = rand.Text()
		m.ClaimedUntil = sql.NullTime{Time: now.Add(lease), Valid: true}
		_, err := s.idb(ctx).NewUpdate().Model((*OutboxMessage)(nil)).
			Set("claimed_until = ?", m.ClaimedUntil.Time).Set("claim_token = ?", m.ClaimToken).
			Where("id = ?", m.ID).Exec(ctx)
		return err
	})
	if errors.Is(translate(err), ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("storage: claim message: %w", translate(err))
	}
	return m, nil
}

// MarkMessageSent records a delivery and erases the body. It changes
// nothing and returns ErrClaimLost when the claim was lost (the lease ran
// out and another claimer took the message).
func (s *Store) MarkMessageSent(ctx context.Context, m *OutboxMessage) error {
	res, err := s.idb(ctx).NewUpdate().Model((*OutboxMessage)(nil)).
		Set("status = ?", OutboxSent).Set("sent_at = ?", s.nowUTC()).Set("attempts = attempts + 1").
		Set("body_text = ''").Set("body_html = ''").Set("claimed_until = NULL").Set("last_error = ''").
		Where("id = ?", m.ID).Where("claim_token = ?", m.ClaimToken).Exec(ctx)
	if err != nil {
		return fmt.Errorf("storage: mark message sent: %w", translate(err))
	}
	return claimHeld(res, "storage: mark message sent")
}

// MarkMessageFailed records a failed attempt: the message is due again at
// next, or, when giveUp, stays failed for operators to see (body erased).
// Like MarkMessageSent it returns ErrClaimLost when the claim was lost.
func (s *Store) MarkMessageFailed(ctx context.Context, m *OutboxMessage, reason string, next time.Time, giveUp bool) error {
	q := s.idb(ctx).NewUpdate().Model((*OutboxMessage)(nil)).
		Set("attempts = attempts + 1").Set("last_error = ?", truncate(reason, 500)).
		Set("next_attempt_at = ?", next.UTC()).Set("claimed_until = NULL")
	if giveUp {
		q = q.Set("status = ?", OutboxFailed).Set("body_text = ''").Set("body_html = ''")
	}
	res, err := q.Where("id = ?", m.ID).Where("claim_token = ?", m.ClaimToken).Exec(ctx)
	if err != nil {
		return fmt.Errorf("storage: mark message failed: %w", translate(err))
	}
	return claimHeld(res, "storage: mark message failed")
}

// claimHeld turns an update of no row, made under a claim token, into
// ErrClaimLost.
func claimHeld(res sql.Result, op string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", op, ErrClaimLost)
	}
	return nil
}

// OutboxMessageByID returns one message, for tests and operators.
func (s *Store) OutboxMessageByID(ctx context.Context, id string) (*OutboxMessage, error) {
	m := new(OutboxMessage)
	if err := s.readDB(ctx).NewSelect().Model(m).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, fmt.Errorf("storage: get message: %w", translate(err))
	}
	return m, nil
}

// OutboxMessages lists messages in the given status, oldest first.
func (s *Store) OutboxMessages(ctx context.Context, status string) ([]*OutboxMessage, error) {
	var ms []*OutboxMessage
	if err := s.readDB(ctx).NewSelect().Model(&ms).Where("status = ?", status).Order("created_at").Scan(ctx); err != nil {
		return nil, fmt.Errorf("storage: list messages: %w", translate(err))
	}
	return ms, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// OutboxBacklog is how many messages wait to be sent (pending, whether due
// or waiting for a retry) and how long the oldest due one has waited past
// its due time (zero when none is due).
func (s *Store) OutboxBacklog(ctx context.Context) (pending int, oldestDue time.Duration, err error) {
	n, err := s.readDB(ctx).NewSelect().Model((*OutboxMessage)(nil)).Where("status = ?", OutboxPending).Count(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("storage: outbox backlog: %w", translate(err))
	}
	now := s.nowUTC()
	var due []OutboxMessage
	err = s.readDB(ctx).NewSelect().Model(&due).Column("next_attempt_at").
		Where("status = ?", OutboxPending).Where("next_attempt_at <= ?", now).
		Order("next_attempt_at").Limit(1).Scan(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("storage: outbox backlog: %w", translate(err))
	}
	if len(due) == 1 {
		oldestDue = now.Sub(due[0].NextAttemptAt)
	}
	return int(n), max(oldestDue, 0), nil
}
