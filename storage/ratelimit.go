package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Rate budgets shared by every node (login/iplimit on PostgreSQL). Each
// budget of n events per period is a GCRA bucket (the generic cell rate
// algorithm, equivalent to a token bucket of n tokens refilled over the
// period) held in one row: tat, the "theoretical arrival time", moves one
// interval (period/n) forward per event spent, never from a point before
// now, and an event may be spent while tat stays within the period of now.
// So every event is one conditional UPSERT, atomic on every node: of a
// burst of parallel events exactly the budget's worth pass. Times are Unix
// nanoseconds of the caller's clock (the nodes' clocks must agree, as they
// must for token expiry anyway).

const (
	// takeRate spends one interval, when the result stays within the
	// period: a new row starts at now + interval (a full bucket less one).
	takeRate = `INSERT INTO rate_limits (key, tat) VALUES (?, ?) ON CONFLICT (key) DO UPDATE
SET tat = (CASE WHEN rate_limits.tat > ? THEN rate_limits.tat ELSE ? END) + ?
WHERE (CASE WHEN rate_limits.tat > ? THEN rate_limits.tat ELSE ? END) + ? <= ?
RETURNING tat`
	// takeRates spends up to k intervals, as many as fit within the
	// period (at least one), and records how many in granted.
	takeRates = `INSERT INTO rate_limits (key, tat, granted) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE
SET granted = CASE WHEN (? - (CASE WHEN rate_limits.tat > ? THEN rate_limits.tat ELSE ? END)) / ? < ?
		THEN (? - (CASE WHEN rate_limits.tat > ? THEN rate_limits.tat ELSE ? END)) / ? ELSE ? END,
	tat = (CASE WHEN rate_limits.tat > ? THEN rate_limits.tat ELSE ? END) + ? * (CASE
		WHEN (? - (CASE WHEN rate_limits.tat > ? THEN rate_limits.tat ELSE ? END)) / ? < ?
		THEN (? - (CASE WHEN rate_limits.tat > ? THEN rate_limits.tat ELSE ? END)) / ? ELSE ? END)
WHERE (? - (CASE WHEN rate_limits.tat > ? THEN rate_limits.tat ELSE ? END)) / ? >= 1
RETURNING granted, tat`
	selectRate = `SELECT tat FROM rate_limits WHERE key = ?`
	returnRate = `UPDATE rate_limits SET tat = tat - ? WHERE key = ?`
)

// RateBudget is n events per Per, the same for every key it is used with.
type RateBudget struct {
	N   int
	Per time.Duration
}

func (b RateBudget) interval() int64 { return int64(b.Per) / int64(max(b.N, 1)) }

// TakeRate spends one event of key's budget b at now when one is left
// (spent), and returns how long from now until another one is: zero when
// one is left now. Refused (not spent), the wait is never zero.
func (s *Store) TakeRate(ctx context.Context, key []byte, b RateBudget, now time.Time) (spent bool, wait time.Duration, err error) {
	n, iv := now.UnixNano(), b.interval()
	st, err := s.prepare(ctx, s.db.DB, takeRate)
	if err != nil {
		return false, 0, fmt.Errorf("storage: take rate: %w", err)
	}
	var tat int64
	err = st.QueryRowContext(ctx, key, n+iv, n, n, iv, n, n, iv, n+int64(b.Per)).Scan(&tat)
	if err == nil {
		return true, rateWait(tat, b, n), nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return false, 0, fmt.Errorf("storage: take rate: %w", translate(err))
	}
	// Refused: nothing was written; read how far ahead the bucket is.
	if tat, err = s.rateTAT(ctx, key); err != nil {
		return false, 0, err
	}
	return false, max(rateWait(tat, b, n), 1), nil
}

// RateLease is what TakeRates spent.
type RateLease struct {
	// Granted is how many events were spent (0: none was left).
	Granted int
	// Until is the end of the time the events stand for in the bucket
	// (its new theoretical arrival time): a node hands them out until
	// then, so that it takes its next lease no sooner than the budget
	// refills what it took.
	Until time.Time
	// Wait is how long until an event is left, when none was.
	Wait time.Duration
}

// TakeRates spends up to k events of key's budget b at now, as many as are
// left (at least one); when none is left it spends nothing and says how
// long until one is. A node takes several events in one write and hands
// them out itself, to write less often.
func (s *Store) TakeRates(ctx context.Context, key []byte, b RateBudget, now time.Time, k int) (RateLease, error) {
	k = min(max(k, 1), max(b.N, 1))
	n, iv, end, kk := now.UnixNano(), b.interval(), now.UnixNano()+int64(b.Per), int64(k)
	st, err := s.prepare(ctx, s.db.DB, takeRates)
	if err != nil {
		return RateLease{}, fmt.Errorf("storage: take rate: %w", err)
	}
	avail := []any{end, n, n, iv}                                                // (end - base) / interval
	grant := append(append(append(append([]any{}, avail...), kk), avail...), kk) // min(avail, k)
	args := []any{key, n + kk*iv, kk}
	args = append(args, grant...)
	args = append(args, n, n, iv)
	args = append(args, grant...)
	args = append(args, avail...)
	var l RateLease
	var tat int64
	err = st.QueryRowContext(ctx, args...).Scan(&l.Granted, &tat)
	if err == nil {
		l.Until = time.Unix(0, tat)
		return l, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return RateLease{}, fmt.Errorf("storage: take rate: %w", translate(err))
	}
	if tat, err = s.rateTAT(ctx, key); err != nil {
		return RateLease{}, err
	}
	return RateLease{Wait: max(rateWait(tat, b, n), 1)}, nil
}

// RateWait reports, spending nothing, how long until key's budget b has an
// event at now: zero when it has one.
func (s *Store) RateWait(ctx context.Context, key []byte, b RateBudget, now time.Time) (time.Duration, error) {
	tat, err := s.rateTAT(ctx, key)
	if err != nil {
		return 0, err
	}
	return rateWait(tat, b, now.UnixNano()), nil
}

// ReturnRate gives back one event that TakeRate spent from key's budget b
// (an attempt that turned out not to count).
func (s *Store) ReturnRate(ctx context.Context, key []byte, b RateBudget) error {
	st, err := s.prepare(ctx, s.db.DB, returnRate)
	if err != nil {
		return fmt.Errorf("storage: return rate: %w", err)
	}
	if _, err := st.ExecContext(ctx, b.interval(), key); err != nil {
		return fmt.Errorf("storage: return rate: %w", translate(err))
	}
	return nil
}

// rateTAT reads key's tat; zero for a key without a row (a full bucket).
func (s *Store) rateTAT(ctx context.Context, key []byte) (int64, error) {
	st, err := s.prepare(ctx, s.db.DB, selectRate)
	if err != nil {
		return 0, fmt.Errorf("storage: read rate: %w", err)
	}
	var tat int64
	if err := st.QueryRowContext(ctx, key).Scan(&tat); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("storage: read rate: %w", translate(err))
	}
	return tat, nil
}

// rateWait is how long after now (Unix nanoseconds) one more event of b
// fits a bucket at tat.
func rateWait(tat int64, b RateBudget, now int64) time.Duration {
	return max(time.Duration(max(tat, now)+b.interval()-now-int64(b.Per)), 0)
}

// deleteFullRates deletes the buckets that are full again (tat past), in
// batches; it returns how many.
func (s *Store) deleteFullRates(ctx context.Context, batch int) (int64, error) {
	now := s.now().UnixNano()
	var total int64
	for {
		sub := s.db.NewSelect().TableExpr("rate_limits").Column("key").Where("tat < ?", now).Limit(int64(batch))
		res, err := s.db.NewDelete().TableExpr("rate_limits").Where("key IN (?)", sub).Exec(ctx)
		if err != nil {
			return total, fmt.Errorf("storage: delete full rate buckets: %w", translate(err))
		}
		n, _ := res.RowsAffected()
		total += n
		if n < int64(batch) {
			return total, nil
		}
	}
}
