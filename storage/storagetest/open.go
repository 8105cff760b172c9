// Package storagetest holds the storage conformance suite, which every
// database backend runs, and helpers that open fresh, migrated test databases.
package storagetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver for schema setup

	"github.com/torii-idp/torii/storage"
)

// PostgresEnv names the environment variable that points the tests at a
// PostgreSQL database. Tests that need it skip when it is unset.
const PostgresEnv = "TORII_TEST_POSTGRES_URL"

// Backend is a database the tests can run against.
type Backend struct {
	Name string
	// Open returns a fresh, migrated store that is closed when t ends.
	Open func(t testing.TB) *storage.Store
}

// Backends returns SQLite and PostgreSQL. The PostgreSQL backend's Open skips
// the test when TORII_TEST_POSTGRES_URL is unset.
func Backends() []Backend {
	return []Backend{
		{Name: "sqlite", Open: NewSQLite},
		{Name: "postgres", Open: NewPostgres},
	}
}

// NewSQLite opens a migrated SQLite database in a file under t.TempDir().
func NewSQLite(t testing.TB) *storage.Store {
	t.Helper()
	return open(t, "sqlite:"+filepath.Join(t.TempDir(), "torii.db"))
}

// NewPostgres opens a migrated PostgreSQL database in a schema of its own, so
// tests can run in parallel on one server; the schema is dropped when t ends.
func NewPostgres(t testing.TB) *storage.Store {
	t.Helper()
	return open(t, PostgresURL(t))
}

// PostgresURL returns a URL to a fresh, empty schema on the test server,
// dropped when t ends. It skips t when TORII_TEST_POSTGRES_URL is unset.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(PostgresEnv)
	if base == "" {
		t.Skipf("%s is not set: skipping the PostgreSQL run (set it to a database URL, e.g. postgres://postgres@127.0.0.1:5432/torii_test?sslmode=disable)", PostgresEnv)
	}
	schema := "t_" + strings.ToLower(rand.Text())
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open %s: %v", PostgresEnv, err)
	}
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", PostgresEnv, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func open(t testing.TB, dbURL string) *storage.Store {
	t.Helper()
	ctx := context.Background()
	s, err := storage.Open(ctx, dbURL, storage.Options{})
	if err != nil {
		t.Fatalf("storage.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

// ForEach runs fn as a subtest on every backend.
func ForEach(t *testing.T, fn func(t *testing.T, open func(t testing.TB) *storage.Store)) {
	for _, b := range Backends() {
		t.Run(b.Name, func(t *testing.T) { fn(t, b.Open) })
	}
}
