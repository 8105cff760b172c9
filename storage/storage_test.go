package storage_test

import (
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

func TestConformanceSQLite(t *testing.T) {
	storagetest.Run(t, storagetest.NewSQLite)
}

func TestConformancePostgres(t *testing.T) {
	storagetest.Run(t, storagetest.NewPostgres)
}

func TestConformanceSQLiteMemory(t *testing.T) {
	storagetest.Run(t, func(t testing.TB) *storage.Store {
		s, err := storage.Open(t.Context(), "sqlite::memory:", storage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if _, err := s.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		url     string
		dialect storage.Dialect
		wantErr bool
	}{
		{"sqlite:torii.db", storage.SQLite, false},
		{"sqlite:///var/lib/torii.db", storage.SQLite, false},
		{"sqlite::memory:", storage.SQLite, false},
		{"postgres://u:p@db:5432/torii?sslmode=disable", storage.Postgres, false},
		{"postgresql://db/torii", storage.Postgres, false},
		{"sqlite:", "", true},
		{"sqlite:a.db?x=1", "", true},
		{"mysql://db/torii", "", true},
		{"", "", true},
		{"postgres://", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			d, _, err := storage.ParseURL(tc.url)
			if (err != nil) != tc.wantErr || d != tc.dialect {
				t.Errorf("ParseURL(%q) = %q, %v; want %q, error %v", tc.url, d, err, tc.dialect, tc.wantErr)
			}
			if err != nil && tc.url != "" && len(tc.url) > 12 && contains(err.Error(), "p@") {
				t.Errorf("error %q repeats the URL's credentials", err)
			}
		})
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestConcurrentMigrate starts several nodes on one empty PostgreSQL
// database at once: every one succeeds and each migration runs once.
func TestConcurrentMigrate(t *testing.T) {
	dbURL := storagetest.PostgresURL(t)
	stores := make([]*storage.Store, 4)
	for i := range stores {
		s, err := storage.Open(t.Context(), dbURL, storage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	applied := make([][]string, len(stores))
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() { applied[i], errs[i] = s.Migrate(t.Context()) })
	}
	wg.Wait()
	migrators := 0
	for i := range stores {
		if errs[i] != nil {
			t.Errorf("node %d: Migrate() = %v", i, errs[i])
		}
		if len(applied[i]) > 0 {
			migrators++
		}
	}
	want, _ := stores[0].PendingMigrations(t.Context())
	if len(want) != 0 {
		t.Errorf("pending after concurrent migration: %v", want)
	}
	if migrators != 1 {
		t.Errorf("%d nodes applied migrations, want exactly one (%v)", migrators, applied)
	}
}

// FillEmailSkeletons fills users without a skeleton oldest first, page by
// page; a user whose skeleton an older one holds, in an earlier page, the
// same page or among users that had one already, keeps none and is
// reported with the holder. A second run changes nothing.
func TestFillEmailSkeletons(t *testing.T) {
	defer func(n int) { *storage.SkeletonFillPage = n }(*storage.SkeletonFillPage)
	*storage.SkeletonFillPage = 2
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		s := open(t)
		ctx := t.Context()
		users := []struct{ id, email, had, skeleton, want string }{
			{"u1", "a@x", "", "A", "A"},
			{"u2", "a2@x", "", "A", ""},
			{"u3", "b@x", "", "B", "B"},
			{"u4", "a3@x", "", "A", ""},
			{"u5", "e@x", "E", "E", "E"}, // stored with a skeleton
			{"u6", "c@x", "", "C", "C"},
			{"u7", "b2@x", "", "B", ""},
			{"u8", "e2@x", "", "E", ""},
			{"u9", "d@x", "", "D", "D"},
		}
		skeletons := map[string]string{}
		for _, u := range users {
			skeletons[u.email] = u.skeleton
			if err := s.CreateUser(ctx, &storage.User{ID: u.id, Email: u.email, EmailSkeleton: u.had, PasswordHash: "$argon2id$fake"}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Millisecond) // created_at apart
		}
		skeleton := func(email string) string { return skeletons[email] }
		want := []storage.SkeletonClash{{UserID: "u2", OtherID: "u1"}, {UserID: "u4", OtherID: "u1"}, {UserID: "u7", OtherID: "u3"}, {UserID: "u8", OtherID: "u5"}}
		for run := 1; run <= 2; run++ {
			clashes, err := s.FillEmailSkeletons(ctx, skeleton)
			if err != nil || !slices.Equal(clashes, want) {
				t.Errorf("run %d: FillEmailSkeletons() = %v, %v; want %v", run, clashes, err, want)
			}
			for _, u := range users {
				if got, err := s.User(ctx, u.id); err != nil || got.EmailSkeleton != u.want {
					t.Errorf("run %d: user %s has skeleton %q (%v), want %q", run, u.id, got.EmailSkeleton, err, u.want)
				}
			}
		}
	})
}

// TestRolesMigration: a database of the release before roles (migrated up
// to 20261206000006) ends, after 20261206000007_roles, with ["admin"] for
// its admins, the empty set for everyone else, and no role column.
func TestRolesMigration(t *testing.T) {
	for _, b := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "torii.db") }},
		{"postgres", func(t *testing.T) string { return storagetest.PostgresURL(t) }},
	} {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			s, err := storage.Open(ctx, b.url(t), storage.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			if err := s.MigrateUpTo(ctx, "20261206000006"); err != nil {
				t.Fatalf("MigrateUpTo(000006) = %v", err)
			}
			now := time.Now().UTC()
			for _, u := range []struct{ id, role string }{{"adm", "admin"}, {"usr", "user"}, {"odd", "operator"}} {
				if _, err := s.DB().ExecContext(ctx, "INSERT INTO users (id, email, role, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
					u.id, u.id+"@example.com", u.role, now, now); err != nil {
					t.Fatalf("insert %s: %v", u.id, err)
				}
			}
			applied, err := s.Migrate(ctx)
			if err != nil || len(applied) == 0 || applied[0] != "20261206000007_roles" {
				t.Fatalf("Migrate() = %v, %v; want 20261206000007_roles first", applied, err)
			}
			for id, want := range map[string][]string{"adm": {"admin"}, "usr": {}, "odd": {}} {
				u, err := s.User(ctx, id)
				if err != nil || u.Roles == nil || !slices.Equal(u.Roles, want) {
					t.Errorf("User(%s).Roles = %#v, %v; want %#v", id, u.Roles, err, want)
				}
			}
			var n int
			err = s.DB().NewSelect().TableExpr("users").ColumnExpr("count(*)").Where("role = 'admin'").Scan(ctx, &n)
			if err == nil {
				t.Errorf("the role column is still there")
			}
		})
	}
}
