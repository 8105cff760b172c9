package main

import (
	"database/sql"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/torii-idp/torii/storage"
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

// migrateStatus runs migrate --status and decodes its output.
func migrateStatus(t *testing.T) (applied []migrationJSON, pending []string, unknown []migrationJSON) {
	t.Helper()
	code, out, stderr := torii(t, "migrate", "--status")
	if code != 0 {
		t.Fatalf("migrate --status = %d: %s", code, stderr)
	}
	var st struct {
		Applied []migrationJSON `json:"applied"`
		Pending []string        `json:"pending"`
		Unknown []migrationJSON `json:"unknown"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Applied == nil || st.Pending == nil || st.Unknown == nil {
		t.Fatalf("migrate --status printed %s (%v), want JSON with applied, pending and unknown arrays", out, err)
	}
	return st.Applied, st.Pending, st.Unknown
}

// TestMigrateStatus: migrate --status lists every migration pending on a
// new database and changes nothing, then every one applied with its time;
// on a database that has a migration this binary does not know (a newer
// Torii migrated it), migrate, serve and the other commands refuse with
// exit status 2 and one line naming it, while migrate --status reports it.
func TestMigrateStatus(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		cliEnv(t)
		t.Setenv("TORII_DATABASE_URL", dbURL)
		t.Setenv("TORII_ADDR", "127.0.0.1:0")
		t.Setenv("TORII_ADMIN_ADDR", "off")

		applied, pending, unknown := migrateStatus(t)
		if len(applied) != 0 || len(unknown) != 0 || len(pending) == 0 || pending[0] != "20261123000001_init" {
			t.Fatalf("status of a new database = %v %v %v, want every migration pending", applied, pending, unknown)
		}
		if _, again, _ := migrateStatus(t); len(again) != len(pending) {
			t.Errorf("migrate --status changed the database: pending %v, then %v", pending, again)
		}

		start := time.Now().Add(-2 * time.Second)
		if code, out, stderr := torii(t, "migrate"); code != 0 || strings.Count(out, "applied ") != len(pending) {
			t.Fatalf("migrate = %d %s %s, want %d applied", code, out, stderr, len(pending))
		}
		applied, after, unknown := migrateStatus(t)
		if len(after) != 0 || len(unknown) != 0 || len(applied) != len(pending) {
			t.Fatalf("status after migrate = %v %v %v, want every migration applied", applied, after, unknown)
		}
		for i, a := range applied {
			if a.Name != pending[i] || a.AppliedAt.Before(start) || a.AppliedAt.After(time.Now().Add(2*time.Second)) {
				t.Errorf("applied[%d] = %+v, want %s with the time it was applied", i, a, pending[i])
			}
		}

		execSQL(t, dbURL, "INSERT INTO torii_migrations (name, group_id, migrated_at) VALUES ('29991231000001', 99, CURRENT_TIMESTAMP)")
		for _, args := range [][]string{{"migrate"}, {"serve"}, {"clients", "list"}} {
			code, out, stderr := torii(t, args...)
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if code != 2 || out != "" || len(lines) != 1 || !strings.Contains(stderr, "29991231000001") ||
				!strings.Contains(stderr, "this binary is older than the database") {
				t.Errorf("torii %v on a newer schema = %d, stdout %q, stderr %q; want 2 and one line naming 29991231000001", args, code, out, stderr)
			}
		}
		applied, after, unknown = migrateStatus(t)
		if len(applied) != len(pending) || len(after) != 0 || len(unknown) != 1 || unknown[0].Name != "29991231000001" {
			t.Errorf("status of a newer schema = %v %v %v, want the unknown migration listed", applied, after, unknown)
		}
	})
}
