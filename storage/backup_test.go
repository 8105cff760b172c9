package storage_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

// TestBackupSQLite copies a SQLite database while a writer inserts users:
// the copy opens, passes integrity_check, and has every user committed
// before the backup began; an existing target is refused and left alone;
// PostgreSQL is refused.
func TestBackupSQLite(t *testing.T) {
	s := storagetest.NewSQLite(t)
	ctx := t.Context()
	var committed atomic.Int64
	create := func(i int64) error {
		return s.CreateUser(ctx, &storage.User{ID: fmt.Sprintf("u%05d", i), Email: fmt.Sprintf("u%05d@example.com", i), PasswordHash: "$argon2id$fake"})
	}
	for i := range int64(50) {
		if err := create(i); err != nil {
			t.Fatal(err)
		}
		committed.Store(i + 1)
	}

	stopWriting := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := committed.Load(); ; i++ {
			select {
			case <-stopWriting:
				return
			default:
			}
			if err := create(i); err != nil {
				t.Errorf("CreateUser during the backup: %v", err)
				return
			}
			committed.Store(i + 1)
		}
	})
	before := committed.Load()
	path := filepath.Join(t.TempDir(), "backup.db")
	err := s.BackupSQLite(ctx, path)
	close(stopWriting)
	wg.Wait()
	if err != nil {
		t.Fatalf("BackupSQLite() = %v", err)
	}

	b, err := storage.Open(ctx, "sqlite:"+path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var check string
	if err := b.DB().QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check of the backup = %q, %v", check, err)
	}
	for i := range before {
		if _, err := b.User(ctx, fmt.Sprintf("u%05d", i)); err != nil {
			t.Fatalf("user u%05d, committed before the backup, is not in it: %v", i, err)
		}
	}
	if pending, err := b.PendingMigrations(ctx); err != nil || len(pending) != 0 {
		t.Errorf("the backup's pending migrations = %v, %v; want none", pending, err)
	}

	other := filepath.Join(t.TempDir(), "other.db")
	os.WriteFile(other, []byte("keep me"), 0o600)
	if err := s.BackupSQLite(ctx, other); !errors.Is(err, fs.ErrExist) {
		t.Errorf("BackupSQLite(existing file) = %v, want fs.ErrExist", err)
	}
	if got, _ := os.ReadFile(other); string(got) != "keep me" {
		t.Errorf("the existing file now holds %q", got)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*.tmp")); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}

	t.Run("postgres", func(t *testing.T) {
		pg := storagetest.NewPostgres(t)
		if err := pg.BackupSQLite(t.Context(), filepath.Join(t.TempDir(), "pg.db")); !errors.Is(err, storage.ErrBackupUnsupported) {
			t.Errorf("BackupSQLite() on PostgreSQL = %v, want ErrBackupUnsupported", err)
		}
	})
}
