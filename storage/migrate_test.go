package storage_test

import (
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

// execSQL runs query on the database at dbURL over a connection of its own.
func execSQL(t *testing.T, dbURL, query string, args ...any) {
	t.Helper()
	dialect, dsn, err := storage.ParseURL(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	driver := "sqlite"
	if dialect == storage.Postgres {
		driver = "pgx"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(t.Context(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// TestMigrationStatus: before Migrate every migration is pending and the
// status creates nothing; after it every one is applied with its time; a
// migration recorded by a newer binary is reported as unknown, and Migrate
// then refuses with a SchemaNewerError and applies nothing.
func TestMigrationStatus(t *testing.T) {
	for _, b := range []struct {
		name string
		url  func(testing.TB) string
	}{
		{"sqlite", func(t testing.TB) string { return "sqlite:" + filepath.Join(t.TempDir(), "torii.db") }},
		{"postgres", storagetest.PostgresURL},
	} {
		t.Run(b.name, func(t *testing.T) {
			dbURL := b.url(t)
			ctx := t.Context()
			s, err := storage.Open(ctx, dbURL, storage.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })

			before, err := s.MigrationStatus(ctx)
			if err != nil {
				t.Fatalf("MigrationStatus() before Migrate = %v", err)
			}
			if len(before.Applied) != 0 || len(before.Unknown) != 0 || len(before.Pending) < 13 ||
				before.Pending[0] != "20261123000001_init" || !slices.IsSorted(before.Pending) {
				t.Fatalf("MigrationStatus() before Migrate = %+v, want every migration pending, in order", before)
			}
			if again, _ := s.MigrationStatus(ctx); !slices.Equal(again.Pending, before.Pending) {
				t.Errorf("second MigrationStatus() = %+v, want the same", again)
			}

			start := time.Now().Add(-2 * time.Second)
			applied, err := s.Migrate(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(applied, before.Pending) {
				t.Errorf("Migrate() applied %v, want %v", applied, before.Pending)
			}
			after, err := s.MigrationStatus(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(after.Pending) != 0 || len(after.Unknown) != 0 || len(after.Applied) != len(before.Pending) {
				t.Fatalf("MigrationStatus() after Migrate = %+v, want every migration applied", after)
			}
			for i, a := range after.Applied {
				if a.Name != before.Pending[i] || a.AppliedAt.Before(start) || a.AppliedAt.After(time.Now().Add(2*time.Second)) {
					t.Errorf("applied[%d] = %+v, want %s applied now", i, a, before.Pending[i])
				}
			}

			execSQL(t, dbURL, "INSERT INTO torii_migrations (name, group_id, migrated_at) VALUES ('29991231000001', 99, CURRENT_TIMESTAMP)")
			newer, err := s.MigrationStatus(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(newer.Unknown) != 1 || newer.Unknown[0].Name != "29991231000001" || len(newer.Applied) != len(after.Applied) {
				t.Errorf("MigrationStatus() with a newer migration = %+v, want it unknown", newer)
			}
			_, err = s.Migrate(ctx)
			var sn *storage.SchemaNewerError
			if !errors.As(err, &sn) || !slices.Equal(sn.Unknown, []string{"29991231000001"}) ||
				!strings.Contains(err.Error(), "older than the database") || strings.Contains(err.Error(), "\n") {
				t.Errorf("Migrate() on a newer schema = %v, want a one-line SchemaNewerError naming 29991231000001", err)
			}
		})
	}
}
