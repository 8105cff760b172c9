package storage

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
)

// On PostgreSQL a transaction's statements are pipelined. Every statement
// is a round trip, and on a server sharing its cores with Torii a round
// trip costs the server more than the statement: a token transaction
// (BEGIN, mark the grant used, revoke, two inserts, COMMIT) was six of
// them. BEGIN and the writes whose outcome nobody waits for (a token row
// inserted or deleted) are queued instead, and go to the server together
// with the next statement whose answer is needed, or with COMMIT. A write
// that must change exactly one row (a code's or refresh token's single
// use) is queued too, rewritten to fail on the server otherwise
// (oneRowQuery), which aborts everything queued behind it: that
// transaction is now one round trip.
//
// Statements still run in the order they were made, so a transaction reads
// what it wrote and takes its locks in the same order. What changes is when
// a queued write's error is seen: by the statement that sends it, or by
// Commit. A transaction that failed can only roll back.

// pgTx is a pipelined PostgreSQL transaction on one connection of the
// pool, held until it ends.
type pgTx struct {
	conn  bun.Conn
	queue []pgStmt
	// begun is set once BEGIN reached the server; before that, rolling back
	// is only forgetting the queue.
	begun bool
	// failed is the error that ended the transaction on the server.
	failed error
	done   bool
}

type pgStmt struct {
	query string
	args  []any
	// notOne, when set, is the error to report when the statement does not
	// change exactly one row (see oneRowQuery).
	notOne error
}

// oneRowQuery makes an UPDATE or DELETE fail on the server unless it
// changes exactly one row, with a division by zero (SQLSTATE 22012): the
// failure then aborts what is queued behind it (the rest of the
// transaction and its COMMIT) in the same round trip, so a code's or
// refresh token's single use is checked without waiting for the answer.
func oneRowQuery(query string) string {
	return "WITH one AS (" + query + " RETURNING 1) SELECT 1 / (count(*) = 1)::int FROM one"
}

type pgTxKey struct{}

func (s *Store) beginPG(ctx context.Context) (*pgTx, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, translate(err)
	}
	return &pgTx{conn: conn, queue: []pgStmt{{query: "BEGIN"}}}, nil
}

func pgTxOf(ctx context.Context) *pgTx {
	t, _ := ctx.Value(pgTxKey{}).(*pgTx)
	return t
}

// enqueue queues a write whose outcome the caller does not wait for; one
// with notOne set fails the transaction unless it changes exactly one row.
func (t *pgTx) enqueue(query string, args []any, notOne error) error {
	if t.failed != nil {
		return t.failed
	}
	if notOne != nil {
		query = oneRowQuery(query)
	}
	t.queue = append(t.queue, pgStmt{query: query, args: args, notOne: notOne})
	return nil
}

// send runs the queue and then last, if any, in one round trip, and hands
// last's result to read. A failed statement fails the transaction.
func (t *pgTx) send(ctx context.Context, last *pgStmt, read func(pgx.BatchResults) error) error {
	if t.failed != nil {
		return t.failed
	}
	if t.done {
		return errors.New("storage: transaction already ended")
	}
	if len(t.queue) == 0 && last == nil {
		return nil
	}
	var b pgx.Batch
	for _, st := range t.queue {
		b.Queue(st.query, st.args...)
	}
	if last != nil {
		b.Queue(last.query, last.args...)
	}
	queue := t.queue
	t.queue = nil
	var notOne error
	err := t.conn.Raw(func(dc any) error {
		pc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("storage: unexpected PostgreSQL driver connection %T", dc)
		}
		br := pc.Conn().SendBatch(ctx, &b)
		var err error
		for i := 0; i < len(queue) && err == nil; i++ {
			_, err = br.Exec()
			var pgErr *pgconn.PgError
			if queue[i].notOne != nil && errors.As(err, &pgErr) && pgErr.Code == "22012" {
				notOne = queue[i].notOne
			}
		}
		if err == nil && last != nil {
			err = read(br)
		}
		return errors.Join(err, br.Close())
	})
	// BEGIN reached the server even when a later statement failed.
	t.begun = true
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return err // an answer, not a failure
	case notOne != nil:
		t.failed = notOne
		return t.failed
	case err != nil:
		t.failed = translate(err)
		return t.failed
	}
	return nil
}

// exec runs query after the queue and returns how many rows it changed.
func (t *pgTx) exec(ctx context.Context, query string, args []any) (int64, error) {
	var n int64
	err := t.send(ctx, &pgStmt{query: query, args: args}, func(br pgx.BatchResults) error {
		tag, err := br.Exec()
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

// queryRow runs query after the queue and scans its one row into dest.
func (t *pgTx) queryRow(ctx context.Context, query string, args []any, dest []any) error {
	return t.send(ctx, &pgStmt{query: query, args: args}, func(br pgx.BatchResults) error {
		return br.QueryRow().Scan(dest...)
	})
}

// idb sends the queue, so that a query made through bun on the
// transaction's connection comes after it, and returns the connection. A
// failure is reported by the query (the server refuses it) and by Commit.
func (t *pgTx) idb(ctx context.Context) bun.IDB {
	t.send(ctx, nil, nil)
	return t.conn
}

func (t *pgTx) commit(ctx context.Context) error {
	if t.done {
		return errors.New("storage: transaction already ended")
	}
	err := t.send(ctx, &pgStmt{query: "COMMIT"}, func(br pgx.BatchResults) error {
		_, err := br.Exec()
		return err
	})
	if err != nil {
		return errors.Join(err, t.rollback(ctx))
	}
	t.done = true
	return t.conn.Close()
}

func (t *pgTx) rollback(ctx context.Context) error {
	if t.done {
		return nil
	}
	t.done = true
	t.queue = nil
	if !t.begun {
		return t.conn.Close()
	}
	if _, err := t.conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); err != nil {
		// A connection whose transaction may still be open must not go back
		// to the pool: close it, and the pool drops it.
		t.conn.Raw(func(dc any) error {
			if pc, ok := dc.(*stdlib.Conn); ok {
				pc.Conn().Close(context.WithoutCancel(ctx))
			}
			return nil
		})
		return errors.Join(fmt.Errorf("storage: rollback: %w", err), t.conn.Close())
	}
	return t.conn.Close()
}

// pgBatch sends b on a connection of the pool, outside any transaction,
// in one round trip, and hands the results to read.
func (s *Store) pgBatch(ctx context.Context, b *pgx.Batch, read func(pgx.BatchResults) error) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		pc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("storage: unexpected PostgreSQL driver connection %T", dc)
		}
		br := pc.Conn().SendBatch(ctx, b)
		return errors.Join(read(br), br.Close())
	})
}
