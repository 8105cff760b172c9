package storage

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/sqlitedialect"
)

// On SQLite a transaction starts lazily. The token path's transactions
// (mark a code or refresh token used, revoke, insert the new tokens) only
// write, and the writer is SQLite's bottleneck: their statements are
// queued, and at Commit go to the group committer as one unit, which runs
// it inside its batch under a savepoint. Many token transactions then
// share one commit, and none holds the writer while fosite works between
// its statements. A statement that must change exactly one row (the
// single use of a code or a refresh token) carries the error to report
// otherwise; the unit is rolled back to its savepoint and Commit returns
// that error.
//
// Anything else in the transaction (a read, a query through bun, a write
// whose result the caller needs) opens the real writer transaction first
// and replays the queue in it: from then on it is an ordinary transaction.

// liteTx is a lazily started SQLite transaction.
type liteTx struct {
	s     *Store
	queue []unitStmt
	// tx is the writer transaction, once something needed it.
	tx *bun.Tx
	// failed is the error that dooms the transaction: Commit returns it.
	failed error
	done   bool
}

// unitStmt is a queued statement of a transaction.
type unitStmt struct {
	query string
	args  []any
	// notOne, when set, is the error to report when the statement does not
	// change exactly one row.
	notOne error
}

type liteTxKey struct{}

func liteTxOf(ctx context.Context) *liteTx {
	t, _ := ctx.Value(liteTxKey{}).(*liteTx)
	return t
}

// enqueue queues st, or runs it at once in an open transaction.
func (t *liteTx) enqueue(ctx context.Context, st unitStmt) error {
	if t.done {
		return errors.New("storage: transaction already ended")
	}
	if t.tx != nil {
		return t.s.runUnitStmt(ctx, t.tx.Tx, st)
	}
	if t.failed != nil {
		return t.failed
	}
	t.queue = append(t.queue, st)
	return nil
}

// open returns the writer transaction, beginning it and running the queue
// in it on first need. When the queue failed, the transaction is returned
// with the error, and Commit will fail with it.
func (t *liteTx) open(ctx context.Context) (*bun.Tx, error) {
	if t.done {
		return nil, errors.New("storage: transaction already ended")
	}
	if t.tx != nil || t.failed != nil {
		return t.tx, t.failed
	}
	tx, err := t.s.db.BeginTx(ctx, nil)
	if err != nil {
		t.failed = fmt.Errorf("storage: begin: %w", translate(err))
		return nil, t.failed
	}
	t.tx = &tx
	for _, st := range t.queue {
		if err := t.s.runUnitStmt(ctx, tx.Tx, st); err != nil {
			t.failed = err
			break
		}
	}
	t.queue = nil
	return t.tx, t.failed
}

// idb is the transaction for a query made through bun. If it could not be
// begun, the query fails (with errTxFailed) and Commit says why.
func (t *liteTx) idb(ctx context.Context) bun.IDB {
	if tx, _ := t.open(ctx); tx != nil {
		return tx
	}
	return t.s.failedTxDB()
}

func (t *liteTx) commit(ctx context.Context) error {
	if t.done {
		return errors.New("storage: transaction already ended")
	}
	if t.failed != nil {
		return errors.Join(t.failed, t.rollback())
	}
	if t.tx == nil {
		t.done = true
		queue := t.queue
		t.queue = nil
		switch {
		case len(queue) == 0:
			return nil
		case t.s.group != nil:
			return t.s.group.unit(queue)
		}
		// No group committer (an in-memory database): commit it alone.
		t.done = false
		if _, err := t.open(ctx); err != nil {
			return errors.Join(err, t.rollback())
		}
	}
	t.done = true
	if err := t.tx.Commit(); err != nil {
		return translate(err)
	}
	return nil
}

func (t *liteTx) rollback() error {
	if t.done {
		return nil
	}
	t.done = true
	t.queue = nil
	if t.tx == nil {
		return nil
	}
	if err := t.tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return fmt.Errorf("storage: rollback: %w", err)
	}
	return nil
}

// runUnitStmt runs a queued statement in tx and checks its row count.
func (s *Store) runUnitStmt(ctx context.Context, tx *sql.Tx, st unitStmt) error {
	n, err := s.execUnitStmt(ctx, tx, st)
	if err != nil {
		return translate(err)
	}
	if st.notOne != nil && n != 1 {
		return st.notOne
	}
	return nil
}

// execUnitStmt runs a queued statement in tx and returns how many rows it
// changed.
func (s *Store) execUnitStmt(ctx context.Context, tx *sql.Tx, st unitStmt) (int64, error) {
	var res sql.Result
	var err error
	if cached := s.cached(s.db.DB, st.query); cached != nil {
		res, err = tx.StmtContext(ctx, cached).ExecContext(ctx, st.args...)
	} else {
		res, err = tx.ExecContext(ctx, st.query, st.args...)
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// errTxFailed is what a query gets in a SQLite transaction that could not
// begin; Commit returns the reason.
var errTxFailed = errors.New("storage: the transaction could not begin")

// failedTxDB returns a database on which every query fails with
// errTxFailed.
func (s *Store) failedTxDB() bun.IDB {
	s.failedMu.Lock()
	defer s.failedMu.Unlock()
	if s.failed == nil {
		s.failed = bun.NewDB(sql.OpenDB(failingConnector{}), sqlitedialect.New())
	}
	return s.failed
}

type failingConnector struct{}

func (failingConnector) Connect(context.Context) (driver.Conn, error) { return nil, errTxFailed }
func (failingConnector) Driver() driver.Driver                        { return failingDriver{} }

type failingDriver struct{}

func (failingDriver) Open(string) (driver.Conn, error) { return nil, errTxFailed }
