package storage

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"sync"
)

// SQLite has one writer connection, and a commit costs more than the
// statement it commits (the WAL frames of every page the statement
// touched, the WAL index, the locks). Single writing statements made
// outside a transaction — a new access token on every client-credentials
// request, a PKCE session taken on every code redemption — therefore go
// through a group committer: a statement that finds the writer idle runs
// at once; the statements that queue behind it are run in one transaction
// by the committer's goroutine and committed once, and each caller gets its
// own statement's result once that commit is done, never before. A
// batch in which any statement fails is rolled back and its statements are
// run again one by one, so that every caller sees exactly the outcome it
// would have seen alone. PostgreSQL commits in parallel and does not use it.

// maxGroup bounds the statements of one commit.
const maxGroup = 64

// groupCommitter batches the SQLite writer's single statements. A caller
// that finds it idle runs its own statement at once, in its goroutine (no
// hand-off, so a lone request waits for nothing); statements arriving
// meanwhile queue, and that caller hands them to the committer's goroutine,
// which commits them in batches until the queue is empty.
type groupCommitter struct {
	s  *Store
	mu sync.Mutex
	// busy: a caller or the goroutine is running statements; handed: the
	// goroutine has been given the queue.
	busy, handed bool
	stopped      bool // the goroutine has stopped
	queue        []*groupedExec
	wake         chan struct{} // has a value when the queue was handed over
	stop         chan struct{}
	done         chan struct{}

	closeOnce sync.Once
}

// groupedExec is one caller's statement and, once done is closed, its
// result.
type groupedExec struct {
	query string
	args  []any
	// scan, when set, reads the row the statement returns (DELETE ...
	// RETURNING); it runs again if the statement is run again alone.
	scan func(rowScanner) error
	// unit, when set, is a transaction's statements (litetx.go), run under
	// a savepoint in a batch.
	unit []unitStmt
	rows int64
	err  error
	done chan struct{}
}

func newGroupCommitter(s *Store) *groupCommitter {
	g := &groupCommitter{s: s, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go g.run()
	return g
}

// exec runs a statement, alone or in a batch, and returns once it is
// committed. The statement runs even if the caller's context ends
// meanwhile (as one already sent to the database would), so that what the
// caller is told is what happened.
func (g *groupCommitter) exec(query string, args []any) (sql.Result, error) {
	e := &groupedExec{query: query, args: args, done: make(chan struct{})}
	g.do(e)
	if e.err != nil {
		return nil, e.err
	}
	return rowsResult(e.rows), nil
}

// queryRow runs a statement that writes and returns one row, alone or in
// a batch, and returns scan's outcome once the statement is committed.
func (g *groupCommitter) queryRow(query string, args []any, scan func(rowScanner) error) error {
	e := &groupedExec{query: query, args: args, scan: scan, done: make(chan struct{})}
	g.do(e)
	return e.err
}

// unit runs a transaction's queued statements, alone or in a batch, and
// returns once they are committed. A statement that must change exactly
// one row and does not undoes the unit and yields its error.
func (g *groupCommitter) unit(stmts []unitStmt) error {
	e := &groupedExec{unit: stmts, done: make(chan struct{})}
	g.do(e)
	return e.err
}

func (g *groupCommitter) do(e *groupedExec) {
	g.mu.Lock()
	if g.busy {
		g.queue = append(g.queue, e)
		g.mu.Unlock()
		<-e.done
	} else {
		g.busy = true
		g.mu.Unlock()
		e.rows, e.err = g.execAlone(e)
		g.mu.Lock()
		handOver := len(g.queue) > 0
		g.busy, g.handed = handOver, handOver
		stopped := g.stopped
		g.mu.Unlock()
		switch {
		case handOver && stopped:
			// The goroutine is gone (the store is closing): drain here.
			for g.next() {
			}
		case handOver:
			select {
			case g.wake <- struct{}{}:
			default:
			}
		}
	}
}

// run commits the batches handed over until close, then finishes what is
// queued.
func (g *groupCommitter) run() {
	defer close(g.done)
	for {
		select {
		case <-g.wake:
		case <-g.stop:
			g.mu.Lock()
			g.stopped = true
			g.handed = g.handed || len(g.queue) > 0 // nothing may be left waiting
			g.mu.Unlock()
			for g.next() {
			}
			return
		}
		for g.next() {
		}
	}
}

// next commits one batch of the queue handed over; it reports whether
// there was any. With the queue empty it gives the writer back.
func (g *groupCommitter) next() bool {
	g.mu.Lock()
	if !g.handed {
		g.mu.Unlock()
		return false
	}
	n := min(len(g.queue), maxGroup)
	if n == 0 {
		g.busy, g.handed = false, false
		g.mu.Unlock()
		return false
	}
	batch := g.queue[:n:n]
	g.queue = g.queue[n:]
	g.mu.Unlock()
	if n == 1 || !g.commitTogether(batch) {
		for _, e := range batch {
			e.rows, e.err = g.execAlone(e)
		}
	}
	for _, e := range batch {
		close(e.done)
	}
	return true
}

// commitTogether runs batch in one transaction and reports whether every
// statement and the commit succeeded.
func (g *groupCommitter) commitTogether(batch []*groupedExec) bool {
	ctx := context.Background()
	// Statements are prepared before the transaction takes the writer's
	// only connection: preparing needs a connection too.
	stmts := make([]*sql.Stmt, len(batch))
	for i, e := range batch {
		if e.unit != nil {
			for _, u := range e.unit {
				if _, err := g.s.prepare(ctx, g.s.db.DB, u.query); err != nil {
					return false
				}
			}
			continue
		}
		st, err := g.s.prepare(ctx, g.s.db.DB, e.query)
		if err != nil {
			return false
		}
		stmts[i] = st
	}
	tx, err := g.s.db.DB.BeginTx(ctx, nil)
	if err != nil {
		return false
	}
	rows := make([]int64, len(batch))
	errs := make([]error, len(batch))
	for i, e := range batch {
		if e.unit != nil {
			undone, err := g.runUnit(ctx, tx, e.unit)
			if err != nil {
				tx.Rollback()
				return false
			}
			errs[i] = undone
			continue
		}
		st := tx.StmtContext(ctx, stmts[i])
		if e.scan != nil {
			// No row is an answer (nothing to take), not a failure.
			if err := e.scan(st.QueryRowContext(ctx, e.args...)); errors.Is(err, sql.ErrNoRows) {
				errs[i] = err
			} else if err != nil {
				tx.Rollback()
				return false
			}
			continue
		}
		res, err := st.ExecContext(ctx, e.args...)
		if err != nil {
			tx.Rollback()
			return false
		}
		rows[i], _ = res.RowsAffected()
	}
	if err := tx.Commit(); err != nil {
		tx.Rollback()
		return false
	}
	for i, e := range batch {
		e.rows, e.err = rows[i], errs[i]
	}
	return true
}

// runUnit runs a unit in the batch transaction tx. When a statement that
// must change one row does not, the unit is undone and undone is that
// statement's error; err is a failure that fails the batch.
//
// Undoing takes a savepoint, and a savepoint costs the writer: SAVEPOINT
// and RELEASE are statements, and every page the unit changes is first
// copied to the sub-journal. A unit needs one only when such a statement
// comes after another: when it comes first (a refresh's rotation) and
// changes no row, nothing was written. Should it change more than one,
// the batch fails and each unit runs again in a transaction of its own.
func (g *groupCommitter) runUnit(ctx context.Context, tx *sql.Tx, unit []unitStmt) (undone, err error) {
	guarded := slices.ContainsFunc(unit[min(1, len(unit)):], func(st unitStmt) bool { return st.notOne != nil })
	if guarded {
		if _, err := tx.ExecContext(ctx, "SAVEPOINT unit"); err != nil {
			return nil, err
		}
	}
	for _, st := range unit {
		n, err := g.s.execUnitStmt(ctx, tx, st)
		if err != nil {
			return nil, err
		}
		if st.notOne == nil || n == 1 {
			continue
		}
		switch {
		case guarded:
			if _, err := tx.ExecContext(ctx, "ROLLBACK TO unit"); err != nil {
				return nil, err
			}
		case n > 1: // unguarded, so this is the first statement
			return nil, errUnitUndo
		}
		undone = st.notOne
		break
	}
	if guarded {
		if _, err := tx.ExecContext(ctx, "RELEASE unit"); err != nil {
			return nil, err
		}
	}
	return undone, nil
}

// errUnitUndo fails a batch whose unit must be undone without a savepoint.
var errUnitUndo = errors.New("storage: unit to undo without a savepoint")

// execAlone runs one statement in its own (implicit) transaction, or a
// unit in its own transaction.
func (g *groupCommitter) execAlone(e *groupedExec) (int64, error) {
	ctx := context.Background()
	if e.unit != nil {
		tx, err := g.s.db.DB.BeginTx(ctx, nil)
		if err != nil {
			return 0, translate(err)
		}
		for _, st := range e.unit {
			if err := g.s.runUnitStmt(ctx, tx, st); err != nil {
				tx.Rollback()
				return 0, err
			}
		}
		return 0, translate(tx.Commit())
	}
	st, err := g.s.prepare(ctx, g.s.db.DB, e.query)
	if err != nil {
		return 0, err
	}
	if e.scan != nil {
		return 0, e.scan(st.QueryRowContext(ctx, e.args...))
	}
	res, err := st.ExecContext(ctx, e.args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// close finishes the queued statements and stops the goroutine; closing
// again does nothing.
func (g *groupCommitter) close() {
	g.closeOnce.Do(func() { close(g.stop) })
	<-g.done
}

// rowsResult is the sql.Result of a grouped statement or of one in a
// pipelined PostgreSQL transaction: a row count, no insert ID.
type rowsResult int64

func (r rowsResult) LastInsertId() (int64, error) { return 0, errNoInsertID }
func (r rowsResult) RowsAffected() (int64, error) { return int64(r), nil }

var errNoInsertID = errors.New("storage: no insert ID (Torii's tables have none)")
