// Package storage keeps every piece of Torii's state in a SQL database through
// uptrace/bun: SQLite (pure Go, the embedded default) or PostgreSQL.
//
// Store implements fosite's storage interfaces (clients, authorization codes,
// PKCE, OpenID Connect sessions, access and refresh tokens, revocation,
// transactions) and the queries of the login and account code. Tokens are
// stored by signature, never in the clear.
package storage

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Errors returned by Store methods. Callers test them with errors.Is.
var (
	ErrNotFound      = errors.New("storage: not found")
	ErrAlreadyExists = errors.New("storage: already exists")
)

// Dialect names the SQL database behind a Store.
type Dialect string

// The supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Options tune how a database is opened. The zero value is fine.
type Options struct {
	// MaxOpenConns bounds the connection pool; 0 picks a default per dialect.
	MaxOpenConns int
	// BusyTimeout is how long SQLite waits for a lock before it fails;
	// 0 means 10 seconds.
	BusyTimeout time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// AuditLog receives one info line per audit event recorded (see
	// RecordAudit); nil logs none.
	AuditLog *slog.Logger
}

// Store is Torii's database. It is safe for concurrent use.
//
// On SQLite it holds two pools over the same file: db, a single writer
// connection (writes queue in Go instead of sleeping in SQLite's busy
// handler), and rdb, a pool of readers (WAL lets them read while the writer
// writes). On PostgreSQL both are the same pool.
type Store struct {
	db      *bun.DB
	rdb     *bun.DB
	dialect Dialect
	now     func() time.Time
	stmts   stmts

	auditLog *slog.Logger

	stopCheckpoints context.CancelFunc // SQLite: ends the background checkpoints
	checkpointsDone chan struct{}
	group           *groupCommitter // SQLite: batches single writes into shared commits

	failedMu sync.Mutex
	failed   *bun.DB // SQLite: where a transaction that could not begin sends its queries; guarded by failedMu
}

// Open connects to the database named by rawURL:
//
//	sqlite:PATH          a SQLite file (created when missing), WAL mode
//	sqlite::memory:      a private in-memory SQLite database
//	postgres://...       PostgreSQL (also postgresql://)
//
// It does not apply migrations; call Migrate.
func Open(ctx context.Context, rawURL string, opts Options) (*Store, error) {
	dialect, dsn, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	s := &Store{dialect: dialect, now: opts.Now, auditLog: opts.AuditLog}
	if s.now == nil {
		s.now = time.Now
	}
	switch dialect {
	case SQLite:
		// A background checkpointer (checkpoints) copies the WAL into the
		// database file, fsync included, outside the single writer's way.
		// Under constant writes it never catches up fully, and only the
		// writer, which no write can overtake, can finish a checkpoint and
		// let the WAL start over: it does at 2,000 pages (8 MiB), of which
		// the background has copied most. At 10,000 pages that commit
		// stalled every writer long enough to double the p99 of token
		// issuance (60 ms against 31 ms), at 1,000 it cost throughput.
		// temp_store=MEMORY keeps the sub-journal of the group committer's
		// savepoints in memory: past 64 KiB SQLite spilled it to a
		// temporary file, and those writes were 9 % of a refresh's CPU.
		writer, err := sql.Open("sqlite", dsn+sqlitePragmas(opts.BusyTimeout)+"&_pragma=wal_autocheckpoint(2000)&_pragma=temp_store(2)")
		if err != nil {
			return nil, fmt.Errorf("storage: open sqlite: %w", err)
		}
		writer.SetMaxOpenConns(1)
		writer.SetMaxIdleConns(1)
		writer.SetConnMaxIdleTime(0)
		s.db = bun.NewDB(writer, sqlitedialect.New())
		readers, err := sql.Open("sqlite", dsn+sqlitePragmas(opts.BusyTimeout))
		if err != nil {
			writer.Close()
			return nil, fmt.Errorf("storage: open sqlite: %w", err)
		}
		n := opts.MaxOpenConns
		if n == 0 {
			n = 4
		}
		readers.SetMaxOpenConns(n)
		readers.SetMaxIdleConns(n)
		readers.SetConnMaxIdleTime(0)
		s.rdb = bun.NewDB(readers, sqlitedialect.New())
	case Postgres:
		sqldb, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("storage: open postgres: %w", err)
		}
		n := opts.MaxOpenConns
		if n == 0 {
			n = 32
		}
		sqldb.SetMaxOpenConns(n)
		sqldb.SetMaxIdleConns(n)
		sqldb.SetConnMaxIdleTime(5 * time.Minute)
		s.db = bun.NewDB(sqldb, pgdialect.New())
		s.rdb = s.db
	}
	if err := s.db.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("storage: connect to %s: %w", dialect, err)
	}
	if dialect == SQLite {
		cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		s.stopCheckpoints, s.checkpointsDone = cancel, make(chan struct{})
		// Small and often: at 1 s the writer's own checkpoints found more
		// left to copy, and the p99 of token issuance doubled.
		go s.checkpoints(cctx, 200*time.Millisecond)
		s.group = newGroupCommitter(s)
	}
	return s, nil
}

// checkpoints runs a passive WAL checkpoint every interval until ctx ends:
// committed pages are copied into the database file while writers go on,
// and a page written many times between two checkpoints is copied once.
func (s *Store) checkpoints(ctx context.Context, interval time.Duration) {
	defer close(s.checkpointsDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// A failure (the database busy or gone) is retried next time; the
		// writer's own auto-checkpoint bounds the WAL meanwhile.
		s.rdb.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
	}
}

// ParseURL checks a database URL and returns its dialect and the driver's
// data source name. Error messages never repeat a password from the URL.
func ParseURL(rawURL string) (Dialect, string, error) {
	switch {
	case rawURL == "sqlite::memory:":
		// A named in-memory database shared by the pool's connections.
		return SQLite, "file:/torii-" + rand.Text() + "?vfs=memdb", nil
	case strings.HasPrefix(rawURL, "sqlite:"):
		path := strings.TrimPrefix(rawURL, "sqlite:")
		path = strings.TrimPrefix(path, "//")
		if path == "" {
			return "", "", errors.New("storage: sqlite URL needs a path, as in sqlite:torii.db")
		}
		if strings.ContainsAny(path, "?#") {
			return "", "", errors.New("storage: sqlite path must not contain '?' or '#'")
		}
		return SQLite, "file:" + path + "?", nil
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		u, err := url.Parse(rawURL)
		if err != nil || u.Host == "" {
			return "", "", errors.New("storage: malformed postgres URL")
		}
		return Postgres, rawURL, nil
	default:
		return "", "", errors.New("storage: database URL must start with sqlite: or postgres://")
	}
}

func sqlitePragmas(busy time.Duration) string {
	if busy == 0 {
		busy = 10 * time.Second
	}
	// _txlock=immediate takes the write lock at BEGIN, so two writers never
	// dead-lock upgrading read locks; busy_timeout makes the loser wait.
	return fmt.Sprintf("&_txlock=immediate&_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)"+
		"&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)", busy.Milliseconds())
}

// Dialect reports which database the store talks to.
func (s *Store) Dialect() Dialect { return s.dialect }

// DB exposes the underlying bun handle, for tests and migrations.
func (s *Store) DB() *bun.DB { return s.db }

// Close closes the connection pools.
func (s *Store) Close() error {
	if s.group != nil {
		s.group.close()
	}
	if s.stopCheckpoints != nil {
		s.stopCheckpoints()
		<-s.checkpointsDone
	}
	s.closeStmts()
	err := s.db.Close()
	if s.rdb != s.db {
		err = errors.Join(err, s.rdb.Close())
	}
	// A transaction may fail to begin while the store closes, and make
	// the failing database then.
	s.failedMu.Lock()
	if s.failed != nil {
		err = errors.Join(err, s.failed.Close())
	}
	s.failedMu.Unlock()
	return err
}

// Ping reports whether the database answers; a database that does not
// is ErrUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("storage: ping: %w", translate(err))
	}
	var one int
	if err := s.rdb.NewRaw("SELECT 1").Scan(ctx, &one); err != nil {
		return fmt.Errorf("storage: ping: %w", translate(err))
	}
	return nil
}

// idb returns the transaction carried by ctx, or the database's writer.
// Every write goes through it. On SQLite the writer is one connection: a
// write made while a transaction is open must use that transaction's
// context, or it waits for the transaction to end.
func (s *Store) idb(ctx context.Context) bun.IDB {
	if t := liteTxOf(ctx); t != nil {
		return t.idb(ctx)
	}
	if t := pgTxOf(ctx); t != nil {
		return t.idb(ctx)
	}
	return s.db
}

// rdb returns the transaction carried by ctx, or the readers' pool, for
// queries that only read.
func (s *Store) readDB(ctx context.Context) bun.IDB {
	if t := liteTxOf(ctx); t != nil {
		return t.idb(ctx)
	}
	if t := pgTxOf(ctx); t != nil {
		return t.idb(ctx)
	}
	return s.rdb
}

// inTx reports whether ctx carries a transaction.
func inTx(ctx context.Context) bool {
	return liteTxOf(ctx) != nil || pgTxOf(ctx) != nil
}

// BeginTX starts a transaction and returns a context carrying it; every
// Store method called with that context runs inside it. It implements
// fosite's storage.Transactional. On PostgreSQL the transaction is
// pipelined (pgtx.go); on SQLite it starts lazily (litetx.go).
func (s *Store) BeginTX(ctx context.Context) (context.Context, error) {
	if inTx(ctx) {
		return nil, errors.New("storage: transaction already open")
	}
	ctx = context.WithValue(ctx, auditPendingKey{}, new(auditPending))
	if s.dialect == Postgres {
		t, err := s.beginPG(ctx)
		if err != nil {
			return nil, fmt.Errorf("storage: begin: %w", err)
		}
		return context.WithValue(ctx, pgTxKey{}, t), nil
	}
	return context.WithValue(ctx, liteTxKey{}, &liteTx{s: s}), nil
}

// Commit commits the transaction carried by ctx.
func (s *Store) Commit(ctx context.Context) error {
	var err error
	if t := pgTxOf(ctx); t != nil {
		err = t.commit(ctx)
	} else if t := liteTxOf(ctx); t != nil {
		err = t.commit(ctx)
	} else {
		return errors.New("storage: commit without a transaction")
	}
	if c := requestCacheOf(ctx); c != nil {
		c.settle(err == nil)
	}
	s.settleAudit(ctx, err == nil)
	if err != nil {
		return fmt.Errorf("storage: commit: %w", err)
	}
	return nil
}

// Rollback aborts the transaction carried by ctx.
func (s *Store) Rollback(ctx context.Context) error {
	if c := requestCacheOf(ctx); c != nil {
		c.settle(false)
	}
	s.settleAudit(ctx, false)
	if t := pgTxOf(ctx); t != nil {
		return t.rollback(ctx)
	}
	if t := liteTxOf(ctx); t != nil {
		return t.rollback()
	}
	return errors.New("storage: rollback without a transaction")
}

// InTx runs fn in a transaction, or inside the one ctx already carries.
func (s *Store) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if inTx(ctx) {
		return fn(ctx)
	}
	txCtx, err := s.BeginTX(ctx)
	if err != nil {
		return err
	}
	if err := fn(txCtx); err != nil {
		if rbErr := s.Rollback(txCtx); rbErr != nil {
			return errors.Join(err, rbErr)
		}
		return err
	}
	return s.Commit(txCtx)
}

// translate maps driver errors to the package's sentinel errors.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if isUnavailable(err) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505":
			return fmt.Errorf("%w: %s", ErrAlreadyExists, pgErr.ConstraintName)
		case "40001", "40P01":
			return fmt.Errorf("%w: %s", ErrConflict, pgErr.Code)
		}
		return err
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		switch liteErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return ErrAlreadyExists
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return fmt.Errorf("%w: database is busy", ErrConflict)
		}
	}
	return err
}

// ErrConflict reports a transaction that lost a race with another one; the
// caller may retry.
var ErrConflict = errors.New("storage: concurrent update")

// ErrUnavailable reports that the database could not be reached or is
// shutting down: a fault of the moment, for which callers answer 503.
var ErrUnavailable = errors.New("storage: database unavailable")

// IsUnavailable reports whether err, however wrapped (fmt.Errorf's %w,
// errors.Join, fosite's RFC6749Error.WithWrap), says the database was away:
// ErrUnavailable, or a driver's connection failure that never passed
// through the store's translation. Every door answers it with 503 and
// Retry-After: the request may succeed in a moment, and nothing it asked
// for was done.
func IsUnavailable(err error) bool {
	return err != nil && (errors.Is(err, ErrUnavailable) || isUnavailable(err))
}

// isUnavailable recognises connection-level failures of both drivers: a
// connection that broke or could not be made (driver.ErrBadConn, pgconn's
// connect and network errors, a connection closed under a statement or a
// COMMIT), a pool that could not hand one out in time
// (context.DeadlineExceeded), the server refusing or ending sessions
// (SQLSTATE class 08; 57P01 admin shutdown, 57P02 crash shutdown, 57P03
// cannot connect now; 53300 too many connections), and a closed pool.
func isUnavailable(err error) bool {
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "sql: database is closed") {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return true
	}
	if pgconn.SafeToRetry(err) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08: connection exception; 57P0x: the server is shutting
		// down; 53300: too many connections.
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P0") || pgErr.Code == "53300"
	}
	return false
}

// now returns the store's clock, in UTC and at microsecond precision (what
// both databases keep).
func (s *Store) nowUTC() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

func bunIdent(name string) bun.Ident { return bun.Ident(name) }
