package storage

import (
	"errors"
	"path/filepath"
	"testing"
)

// TestLiteTxCannotBegin: a lazy SQLite transaction whose writer
// transaction cannot begin (here, the store is closed) fails every query
// made in it and its commit, with the reason.
func TestLiteTxCannotBegin(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "tx.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	txCtx, err := s.BeginTX(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Queued, not run yet.
	if err := s.execDeferred(txCtx, "DELETE FROM clients WHERE id = ?", "x"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var n int
	err = s.idb(txCtx).NewRaw("SELECT count(*) FROM clients").Scan(ctx, &n)
	if !errors.Is(err, errTxFailed) {
		t.Errorf("query in a transaction that could not begin = %v, want errTxFailed", err)
	}
	if err := s.Commit(txCtx); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Commit = %v, want ErrUnavailable (the database is closed)", err)
	}
	if err := s.Rollback(txCtx); err != nil {
		t.Errorf("Rollback after the failed commit = %v, want nil", err)
	}
}
