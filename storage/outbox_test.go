package storage_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

// openWithClock opens a fresh, migrated store on backend whose time is c.
func openWithClock(t *testing.T, backend string, c *storagetest.Clock) *storage.Store {
	t.Helper()
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "torii.db")
	if backend == "postgres" {
		dbURL = storagetest.PostgresURL(t)
	}
	s, err := storage.Open(t.Context(), dbURL, storage.Options{Now: c.Now})
	if err != nil {
		t.Fatalf("storage.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

func TestOutboxClaimLease(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			c := storagetest.NewClock(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
			s := openWithClock(t, backend, c)
			ctx := t.Context()
			if err := s.EnqueueMessage(ctx, &storage.OutboxMessage{Channel: "email", Recipient: "a@example.com", BodyText: "code 123456"}); err != nil {
				t.Fatal(err)
			}

			first, err := s.ClaimMessage(ctx, time.Minute)
			if err != nil || first == nil {
				t.Fatalf("ClaimMessage = %v, %v; want the message", first, err)
			}
			if again, err := s.ClaimMessage(ctx, time.Minute); err != nil || again != nil {
				t.Fatalf("ClaimMessage during the lease = %+v, %v; want none", again, err)
			}

			// The lease runs out; another claimer takes the message.
			c.Advance(61 * time.Second)
			second, err := s.ClaimMessage(ctx, time.Minute)
			if err != nil || second == nil || second.ClaimToken == first.ClaimToken {
				t.Fatalf("ClaimMessage after the lease = %+v, %v; want the message under a new token", second, err)
			}

			if err := s.MarkMessageSent(ctx, first); !errors.Is(err, storage.ErrClaimLost) {
				t.Errorf("MarkMessageSent(lost claim) = %v, want ErrClaimLost", err)
			}
			if err := s.MarkMessageFailed(ctx, first, "boom", c.Now().Add(time.Minute), false); !errors.Is(err, storage.ErrClaimLost) {
				t.Errorf("MarkMessageFailed(lost claim) = %v, want ErrClaimLost", err)
			}
			m, err := s.OutboxMessageByID(ctx, first.ID)
			if err != nil {
				t.Fatal(err)
			}
			if m.Status != storage.OutboxPending || m.Attempts != 0 || m.BodyText == "" || m.ClaimToken != second.ClaimToken {
				t.Errorf("after the lost claim's updates: %+v; want it untouched, held by the new claim", m)
			}

			if err := s.MarkMessageSent(ctx, second); err != nil {
				t.Errorf("MarkMessageSent(held claim) = %v", err)
			}
			if m, _ = s.OutboxMessageByID(ctx, first.ID); m.Status != storage.OutboxSent || m.Attempts != 1 || m.BodyText != "" {
				t.Errorf("after MarkMessageSent: %+v; want sent, one attempt, body erased", m)
			}
		})
	}
}
