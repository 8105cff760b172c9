package storage_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestAuditLogAfterCommit: an event's log line is written once its
// transaction commits, and never for one rolled back.
func TestAuditLogAfterCommit(t *testing.T) {
	urls := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "torii.db") },
		"postgres": func(t *testing.T) string { return storagetest.PostgresURL(t) },
	}
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			var buf lockedBuffer
			s, err := storage.Open(t.Context(), urls[name](t), storage.Options{AuditLog: slog.New(slog.NewTextHandler(&buf, nil))})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			if _, err := s.Migrate(t.Context()); err != nil {
				t.Fatal(err)
			}
			ctx := storage.WithAuditMeta(t.Context(), storage.AuditMeta{RequestID: "req-42"})
			boom := errors.New("boom")
			err = s.InTx(ctx, func(ctx context.Context) error {
				if err := s.RecordAudit(ctx, &storage.AuditEvent{Type: "test.rolled_back"}); err != nil {
					t.Fatal(err)
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("InTx = %v, want %v", err, boom)
			}
			err = s.InTx(ctx, func(ctx context.Context) error {
				if err := s.RecordAudit(ctx, &storage.AuditEvent{Type: "test.committed", Subject: "u1"}); err != nil {
					return err
				}
				if strings.Contains(buf.String(), "test.committed") {
					t.Error("the event was logged before its transaction committed")
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.RecordAudit(ctx, &storage.AuditEvent{Type: "test.alone"}); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			if strings.Contains(out, "test.rolled_back") {
				t.Errorf("a rolled-back event was logged: %s", out)
			}
			for _, want := range []string{"msg=audit type=test.committed", "subject=u1", "request_id=req-42", "type=test.alone"} {
				if !strings.Contains(out, want) {
					t.Errorf("log = %q, want %q in it", out, want)
				}
			}
		})
	}
}
