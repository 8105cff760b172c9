package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrBackupUnsupported is returned by BackupSQLite on a PostgreSQL store:
// back PostgreSQL up with its own tools (pg_dump).
var ErrBackupUnsupported = errors.New("storage: backup: only a SQLite database can be backed up by Torii; use pg_dump for PostgreSQL")

// BackupSQLite writes a consistent copy of the SQLite database to path, a
// file that must not exist (fs.ErrExist otherwise), while the store keeps
// serving: VACUUM INTO reads one snapshot of the database (WAL lets the
// writer go on meanwhile), so the copy holds exactly the transactions
// committed when it began. The copy is written to a temporary file beside
// path, synced, and only then given its name, so path never holds half a
// backup.
func (s *Store) BackupSQLite(ctx context.Context, path string) error {
	if s.dialect != SQLite {
		return ErrBackupUnsupported
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("storage: backup to %s: %w", path, fs.ErrExist)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("storage: backup: %w", err)
	}
	tmpPath := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpPath) // gone after the link below, or a failure
	// VACUUM INTO takes an empty file. It runs on a reader connection: a
	// read transaction that does not hold up the single writer.
	if _, err := s.rdb.ExecContext(ctx, "VACUUM INTO ?", tmpPath); err != nil {
		return fmt.Errorf("storage: backup: vacuum into %s: %w", tmpPath, err)
	}
	f, err := os.Open(tmpPath)
	if err != nil {
		return fmt.Errorf("storage: backup: %w", err)
	}
	err = f.Sync()
	f.Close()
	if err != nil {
		return fmt.Errorf("storage: backup: sync: %w", err)
	}
	// A hard link, unlike a rename, never replaces a file that appeared
	// at path meanwhile.
	if err := os.Link(tmpPath, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("storage: backup to %s: %w", path, fs.ErrExist)
		}
		return fmt.Errorf("storage: backup: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() //nolint:errcheck // best effort: the file itself is synced
		d.Close()
	}
	return nil
}
