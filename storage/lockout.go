package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// Counter names one lockout counter: a run of consecutive failures, the
// number of locks in that run, and the end of the current lock. Make one
// with PasswordCounter, CodeCounter, DeviceCounter or UnknownLoginCounter.
type Counter struct {
	table, key, id      string
	count, locks, until string
	upsert              bool
	retention           time.Duration
}

// PasswordCounter counts the wrong passwords typed for a user from browsers
// the account does not trust (and from every client of the password grant).
func PasswordCounter(userID string) Counter {
	return Counter{table: "users", key: "id", id: userID, count: "failed_logins", locks: "lockouts", until: "locked_until"}
}

// CodeCounter counts a user's wrong sign-in codes, apart from passwords.
func CodeCounter(userID string) Counter {
	return Counter{table: "users", key: "id", id: userID, count: "failed_otps", locks: "otp_lockouts", until: "otp_locked_until"}
}

// DeviceCounter counts the wrong passwords typed for an account on one
// device trusted for it (Device.ID).
func DeviceCounter(deviceRowID string) Counter {
	return Counter{table: "devices", key: "id", id: deviceRowID, count: "failed_logins", locks: "lockouts", until: "locked_until"}
}

// UnknownLoginCounter counts the attempts on a login name that has no
// account (key: a keyed hash of the name), so that such names lock exactly
// like accounts. Its row is created on first use and kept 30 days after the
// last attempt.
func UnknownLoginCounter(key string) Counter {
	return Counter{table: "login_failures", key: "login_key", id: key, count: "failures", locks: "lockouts",
		until: "locked_until", upsert: true, retention: phantomRetention}
}

// Admission is what AdmitAttempt decided.
type Admission struct {
	// Admitted reports that the attempt was counted and may be checked.
	// When false the counter was locked: nothing was counted, and nothing
	// may be checked.
	Admitted bool
	// Count is the number of consecutive failures counted, this attempt
	// included (admitted attempts only).
	Count int
	// Until is the end of the lock the attempt found (not admitted), or of
	// the lock it set by reaching the threshold (zero otherwise).
	Until time.Time
}

// AdmitAttempt counts one attempt against c before anything is checked,
// atomically, on every node sharing the database: an attempt is counted,
// as a failure until ResetAttempts says otherwise, unless the counter is
// locked at now, in which case nothing is counted and the attempt is not
// admitted. The attempt that brings the count to threshold (or beyond:
// the first attempt after a lock ran out) locks the counter at once, for
// lockFor(n) where n is the number of locks in this run of failures,
// this one included; so of any burst of parallel attempts at most
// threshold are admitted, and the back-off grows per lock, not per
// failure. The caller checks an admitted attempt and calls ResetAttempts
// when it succeeded (which also lifts the lock it may have set).
// ErrNotFound when the counter's row does not exist (UnknownLoginCounter
// creates its own).
func (s *Store) AdmitAttempt(ctx context.Context, c Counter, now time.Time, threshold int, lockFor func(lock int) time.Duration) (Admission, error) {
	now = now.UTC()
	var a Admission
	err := s.InTx(ctx, func(ctx context.Context) error {
		db := s.idb(ctx)
		if c.upsert {
			row := &LoginFailures{LoginKey: c.id, ExpiresAt: now.Add(c.retention)}
			if _, err := db.NewInsert().Model(row).On("CONFLICT (login_key) DO UPDATE").
				Set("expires_at = EXCLUDED.expires_at").Exec(ctx); err != nil {
				return err
			}
		}
		var locks int
		err := db.NewUpdate().TableExpr(c.table).
			Set("? = ? + 1", bun.Ident(c.count), bun.Ident(c.count)).
			Where("? = ?", bun.Ident(c.key), c.id).
			Where("(? IS NULL OR ? <= ?)", bun.Ident(c.until), bun.Ident(c.until), now).
			Returning("?, ?", bun.Ident(c.count), bun.Ident(c.locks)).Scan(ctx, &a.Count, &locks)
		if errors.Is(err, sql.ErrNoRows) {
			// Locked (or no such row): nothing counted.
			var until sql.NullTime
			if err := db.NewSelect().TableExpr(c.table).ColumnExpr("?", bun.Ident(c.until)).
				Where("? = ?", bun.Ident(c.key), c.id).Scan(ctx, nullTime{&until}); err != nil {
				return err
			}
			a = Admission{Until: until.Time}
			return nil
		} else if err != nil {
			return err
		}
		a.Admitted = true
		if a.Count < threshold {
			return nil
		}
		a.Until = now.Add(lockFor(locks + 1))
		_, err = db.NewUpdate().TableExpr(c.table).
			Set("? = ? + 1", bun.Ident(c.locks), bun.Ident(c.locks)).Set("? = ?", bun.Ident(c.until), a.Until).
			Where("? = ?", bun.Ident(c.key), c.id).Exec(ctx)
		return err
	})
	if err != nil {
		return Admission{}, fmt.Errorf("storage: admit attempt on %s: %w", c.table, translate(err))
	}
	return a, nil
}

// ResetAttempts ends c's run of failures after a success: the count, the
// locks and any lock are cleared.
func (s *Store) ResetAttempts(ctx context.Context, c Counter) error {
	_, err := s.idb(ctx).NewUpdate().TableExpr(c.table).
		Set("? = 0", bun.Ident(c.count)).Set("? = 0", bun.Ident(c.locks)).Set("? = NULL", bun.Ident(c.until)).
		Where("? = ?", bun.Ident(c.key), c.id).
		Where("(? <> 0 OR ? <> 0 OR ? IS NOT NULL)", bun.Ident(c.count), bun.Ident(c.locks), bun.Ident(c.until)).Exec(ctx)
	if err != nil {
		return fmt.Errorf("storage: reset attempts on %s: %w", c.table, translate(err))
	}
	return nil
}
