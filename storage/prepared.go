package storage

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/uptrace/bun"
)

// The token endpoint's hottest queries — a client by ID, a token row by
// signature, a new token row — run as prepared statements: SQLite then
// parses each once per connection instead of once per request, and
// PostgreSQL plans it once. Everything else goes through bun's query
// builder.

// stmts caches prepared statements per pool and query.
type stmts struct {
	mu sync.Mutex
	m  map[*sql.DB]map[string]*sql.Stmt
}

// prepare returns the statement for query on pool, preparing it on first
// use. Queries are written with ? placeholders; on PostgreSQL they become
// $1, $2, …. The mutex is not held while preparing, which needs a
// connection.
func (s *Store) prepare(ctx context.Context, pool *sql.DB, query string) (*sql.Stmt, error) {
	s.stmts.mu.Lock()
	st, ok := s.stmts.m[pool][query]
	s.stmts.mu.Unlock()
	if ok {
		return st, nil
	}
	st, err := pool.PrepareContext(ctx, s.placeholders(query))
	if err != nil {
		return nil, translate(err)
	}
	s.stmts.mu.Lock()
	defer s.stmts.mu.Unlock()
	if s.stmts.m == nil {
		s.stmts.m = map[*sql.DB]map[string]*sql.Stmt{}
	}
	if s.stmts.m[pool] == nil {
		s.stmts.m[pool] = map[string]*sql.Stmt{}
	}
	if prev, ok := s.stmts.m[pool][query]; ok {
		st.Close()
		return prev, nil
	}
	s.stmts.m[pool][query] = st
	return st, nil
}

func (s *Store) placeholders(query string) string {
	if s.dialect != Postgres {
		return query
	}
	// The same few queries run on every request: convert each once.
	if q, ok := pgQueries.Load(query); ok {
		return q.(string)
	}
	q := numberPlaceholders(query)
	pgQueries.Store(query, q)
	return q
}

// pgQueries caches the $n form of the queries (a fixed set, written in
// the code).
var pgQueries sync.Map

// cached returns the statement for query on pool if it was prepared.
func (s *Store) cached(pool *sql.DB, query string) *sql.Stmt {
	s.stmts.mu.Lock()
	defer s.stmts.mu.Unlock()
	return s.stmts.m[pool][query]
}

// prepareAll prepares the hot statements on both pools. Migrate calls it
// once the tables exist, so that transactions never wait to prepare (on
// SQLite the writer's only connection may be the transaction's own).
func (s *Store) prepareAll(ctx context.Context) error {
	queries := []string{selectClient, selectUser, revokeAccess, selectLoginSession, selectLoginSessionUser, selectCodeGrant}
	for _, m := range []map[string]string{insertRequest, selectRequest, deleteRequest, deactivate, takeRequest} {
		for _, q := range m {
			queries = append(queries, q)
		}
	}
	for _, q := range queries {
		for _, pool := range []*sql.DB{s.db.DB, s.rdb.DB} {
			if _, err := s.prepare(ctx, pool, q); err != nil {
				return fmt.Errorf("storage: prepare statements: %w", err)
			}
		}
	}
	return nil
}

// closeStmts closes every prepared statement.
func (s *Store) closeStmts() {
	s.stmts.mu.Lock()
	defer s.stmts.mu.Unlock()
	for _, byQuery := range s.stmts.m {
		for _, st := range byQuery {
			st.Close()
		}
	}
	s.stmts.m = nil
}

func numberPlaceholders(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// txStmt returns query as a statement of the transaction tx: the cached
// one when prepared, else one prepared on the transaction's connection (and
// closed with it).
func (s *Store) txStmt(ctx context.Context, tx *bun.Tx, query string) (*sql.Stmt, error) {
	if st := s.cached(s.db.DB, query); st != nil {
		return tx.StmtContext(ctx, st), nil
	}
	st, err := tx.PrepareContext(ctx, s.placeholders(query))
	if err != nil {
		return nil, translate(err)
	}
	return st, nil
}

// execPrepared runs a writing statement, inside ctx's transaction if any.
func (s *Store) execPrepared(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if t := liteTxOf(ctx); t != nil {
		tx, err := t.open(ctx)
		if err != nil {
			return nil, err
		}
		st, err := s.txStmt(ctx, tx, query)
		if err != nil {
			return nil, err
		}
		return st.ExecContext(ctx, args...)
	}
	if t := pgTxOf(ctx); t != nil {
		n, err := t.exec(ctx, s.placeholders(query), args)
		return rowsResult(n), err
	}
	if s.group != nil {
		return s.group.exec(query, args)
	}
	st, err := s.prepare(ctx, s.db.DB, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// execDeferred runs a writing statement whose outcome the caller does not
// wait for. In a transaction it is queued (pgtx.go, litetx.go), and its
// error may come from a later statement or from Commit.
func (s *Store) execDeferred(ctx context.Context, query string, args ...any) error {
	return s.execExpect(ctx, unitStmt{query: query, args: args})
}

// execOne runs a writing statement that must change exactly one row, and
// returns notOne when it does not. In a transaction it is queued, and
// notOne comes from the next statement or Commit; elsewhere it comes at
// once.
func (s *Store) execOne(ctx context.Context, notOne error, query string, args ...any) error {
	return s.execExpect(ctx, unitStmt{query: query, args: args, notOne: notOne})
}

func (s *Store) execExpect(ctx context.Context, st unitStmt) error {
	if t := liteTxOf(ctx); t != nil {
		return t.enqueue(ctx, st)
	}
	if t := pgTxOf(ctx); t != nil {
		return t.enqueue(s.placeholders(st.query), st.args, st.notOne)
	}
	res, err := s.execPrepared(ctx, st.query, st.args...)
	if err != nil {
		return translate(err)
	}
	if st.notOne != nil {
		if n, _ := res.RowsAffected(); n != 1 {
			return st.notOne
		}
	}
	return nil
}

// rowScanner is a row to scan: an *sql.Row, or one of a pipelined
// transaction.
type rowScanner interface{ Scan(dest ...any) error }

// pgRow is a row to read in a pipelined transaction: Scan sends the
// transaction's queue and the query.
type pgRow struct {
	ctx   context.Context
	t     *pgTx
	query string
	args  []any
}

func (r pgRow) Scan(dest ...any) error {
	err := r.t.queryRow(r.ctx, r.query, r.args, dest)
	if errors.Is(err, pgx.ErrNoRows) {
		return sql.ErrNoRows
	}
	return err
}

// queryRowPrepared runs a reading statement: inside ctx's transaction if
// any, else on the readers' pool.
func (s *Store) queryRowPrepared(ctx context.Context, query string, args ...any) (rowScanner, error) {
	return s.queryRow(ctx, s.rdb.DB, query, args)
}

// queryRowWriter runs a statement that writes and returns a row: inside
// ctx's transaction if any, else on the writer.
func (s *Store) queryRowWriter(ctx context.Context, query string, args ...any) (rowScanner, error) {
	if s.group != nil && !inTx(ctx) {
		return groupRow{g: s.group, query: query, args: args}, nil
	}
	return s.queryRow(ctx, s.db.DB, query, args)
}

// groupRow is a row returned by a statement of the group committer: Scan
// runs the statement.
type groupRow struct {
	g     *groupCommitter
	query string
	args  []any
}

func (r groupRow) Scan(dest ...any) error {
	return r.g.queryRow(r.query, r.args, func(row rowScanner) error { return row.Scan(dest...) })
}

func (s *Store) queryRow(ctx context.Context, pool *sql.DB, query string, args []any) (rowScanner, error) {
	if t := liteTxOf(ctx); t != nil {
		tx, err := t.open(ctx)
		if err != nil {
			return nil, err
		}
		st, err := s.txStmt(ctx, tx, query)
		if err != nil {
			return nil, err
		}
		return st.QueryRowContext(ctx, args...), nil
	}
	if t := pgTxOf(ctx); t != nil {
		return pgRow{ctx: ctx, t: t, query: s.placeholders(query), args: args}, nil
	}
	st, err := s.prepare(ctx, pool, query)
	if err != nil {
		return nil, err
	}
	return st.QueryRowContext(ctx, args...), nil
}

// jsonList decodes a JSON text column holding a list of strings.
type jsonList []string

func (l *jsonList) Scan(src any) error {
	var raw []byte
	switch v := src.(type) {
	case nil:
		*l = []string{}
		return nil
	case string:
		raw = []byte(v)
	case []byte:
		raw = v
	default:
		return fmt.Errorf("storage: cannot read %T as a list", src)
	}
	out, err := decodeList(raw)
	if err != nil {
		return fmt.Errorf("storage: decode list: %w", err)
	}
	*l = out
	return nil
}

// decodeList reads a JSON array of strings. Every token and client read
// decodes several (scopes, audiences, redirect URIs, grant types), nearly
// always plain ones: a list without escapes is split by hand, anything
// else goes through encoding/json.
func decodeList(raw []byte) ([]string, error) {
	if s, ok := splitPlainList(raw); ok {
		return s, nil
	}
	var out []string
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, err
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

// splitPlainList splits ["a","b"] (no backslash anywhere, no space
// outside the strings) and reports whether raw had that form.
func splitPlainList(raw []byte) ([]string, bool) {
	if len(raw) < 2 || raw[0] != '[' || raw[len(raw)-1] != ']' || bytes.IndexByte(raw, '\\') >= 0 {
		return nil, false
	}
	rest := raw[1 : len(raw)-1]
	out := make([]string, 0, bytes.Count(rest, []byte{','})+1)
	for len(rest) > 0 {
		if rest[0] != '"' {
			return nil, false
		}
		end := bytes.IndexByte(rest[1:], '"')
		if end < 0 {
			return nil, false
		}
		item := rest[1 : 1+end]
		for _, c := range item {
			if c < 0x20 {
				return nil, false // invalid JSON: let encoding/json say so
			}
		}
		if !utf8.Valid(item) {
			return nil, false
		}
		out = append(out, string(item))
		rest = rest[2+end:]
		if len(rest) == 0 {
			break
		}
		if rest[0] != ',' || len(rest) == 1 {
			return nil, false
		}
		rest = rest[1:]
	}
	return out, true
}

// dbTime reads a timestamp column from either driver.
type dbTime struct{ t *time.Time }

func (d dbTime) Scan(src any) error {
	switch v := src.(type) {
	case time.Time:
		*d.t = v.UTC()
		return nil
	case string:
		return d.parse(v)
	case []byte:
		return d.parse(string(v))
	case nil:
		*d.t = time.Time{}
		return nil
	}
	return fmt.Errorf("storage: cannot read %T as a time", src)
}

func (d dbTime) parse(s string) error {
	for _, layout := range []string{"2006-01-02 15:04:05.999999999-07:00", time.RFC3339Nano, "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			*d.t = t.UTC()
			return nil
		}
	}
	return fmt.Errorf("storage: cannot parse time %q", s)
}

// encodeList encodes a list for a JSON text column.
func encodeList(l []string) string {
	if l == nil {
		return "[]"
	}
	b, _ := json.Marshal(l)
	return string(b)
}

// formatTime renders a time the way bun writes timestamps, so that rows
// written by either path compare alike.
func (s *Store) formatTime(t time.Time) any {
	if s.dialect == Postgres {
		return t.UTC()
	}
	return t.UTC().Format("2006-01-02 15:04:05.999999-07:00")
}

// nullString scans a text column that may be NULL into a string (NULL
// reads as "").
type nullString struct{ s *string }

func (n nullString) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*n.s = ""
	case string:
		*n.s = v
	case []byte:
		*n.s = string(v)
	default:
		return fmt.Errorf("storage: cannot read %T as text", src)
	}
	return nil
}

// nullTime reads a nullable timestamp column from either driver.
type nullTime struct{ t *sql.NullTime }

func (n nullTime) Scan(src any) error {
	if src == nil {
		*n.t = sql.NullTime{}
		return nil
	}
	var t time.Time
	if err := (dbTime{&t}).Scan(src); err != nil {
		return err
	}
	*n.t = sql.NullTime{Time: t, Valid: true}
	return nil
}
