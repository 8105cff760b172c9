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

			first, err := s.ClaimMessages(ctx, 10, time.Minute)
			if err != nil || len(first) != 1 {
				t.Fatalf("ClaimMessages = %d messages, %v; want 1", len(first), err)
			}
			if again, err := s.ClaimMessages(ctx, 10, time.Minute); err != nil || len(again) != 0 {
				t.Fatalf("ClaimMessages during the lease = %d messages, %v; want none", len(again), err)
			}

			// The lease runs out; another claimer takes the message.
			c.Advance(61 * time.Second)
			second, err := s.ClaimMessages(ctx, 10, time.Minute)
			if err != nil || len(second) != 1 || second[0].ClaimToken == first[0].ClaimToken {
				t.Fatalf("ClaimMessages after the lease = %+v, %v; want the message under a new token", second, err)
			}

			if err := s.MarkMessageSent(ctx, first[0]); !errors.Is(err, storage.ErrClaimLost) {
				t.Errorf("MarkMessageSent(lost claim) = %v, want ErrClaimLost", err)
			}
			if err := s.MarkMessageFailed(ctx, first[0], "boom", c.Now().Add(time.Minute), false); !errors.Is(err, storage.ErrClaimLost) {
				t.Errorf("MarkMessageFailed(lost claim) = %v, want ErrClaimLost", err)
			}
			m, err := s.OutboxMessageByID(ctx, first[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			if m.Status != storage.OutboxPending || m.Attempts != 0 || m.BodyText == "" || m.ClaimToken != second[0].ClaimToken {
				t.Errorf("after the lost claim's updates: %+v; want it untouched, held by the new claim", m)
			}

			if err := s.MarkMessageSent(ctx, second[0]); err != nil {
				t.Errorf("MarkMessageSent(held claim) = %v", err)
			}
			if m, _ = s.OutboxMessageByID(ctx, first[0].ID); m.Status != storage.OutboxSent || m.Attempts != 1 || m.BodyText != "" {
				t.Errorf("after MarkMessageSent: %+v; want sent, one attempt, body erased", m)
			}
		})
	}
}
