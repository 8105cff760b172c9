package storagetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/torii-idp/torii/storage"
)

// testAudit checks audit events: written with the transaction that carries
// them, filled from the context, filtered, paged newest first without gaps
// while events are added, and deleted by age.
func testAudit(t *testing.T, s *storage.Store) {
	ctx := storage.WithAuditMeta(t.Context(), storage.AuditMeta{IP: "192.0.2.1", UserAgent: strings.Repeat("é", 300), RequestID: "req-1"})

	t.Run("RolledBack", func(t *testing.T) {
		boom := errors.New("boom")
		err := s.InTx(ctx, func(ctx context.Context) error {
			if err := s.RecordAudit(ctx, &storage.AuditEvent{Type: "test.rolled_back", Subject: "rb"}); err != nil {
				t.Fatal(err)
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx = %v, want %v", err, boom)
		}
		es, err := s.AuditEvents(ctx, storage.AuditQuery{Type: "test.rolled_back", Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 0 {
			t.Errorf("AuditEvents after a rollback = %d events, want 0", len(es))
		}
	})

	t.Run("Committed", func(t *testing.T) {
		actx := storage.WithAuditActor(ctx, "user:admin")
		err := s.InTx(actx, func(ctx context.Context) error {
			return s.RecordAudit(ctx, &storage.AuditEvent{Type: "test.committed", Subject: "c1", ClientID: "app",
				Detail: map[string]any{"channel": "email", "password": "hunter2", "reset_token": "x", "Code": "123456"}})
		})
		if err != nil {
			t.Fatal(err)
		}
		es, err := s.AuditEvents(ctx, storage.AuditQuery{Subject: "c1", Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 1 {
			t.Fatalf("AuditEvents(subject c1) = %d events, want 1", len(es))
		}
		e := es[0]
		if e.Type != "test.committed" || e.Actor != "user:admin" || e.IP != "192.0.2.1" || e.RequestID != "req-1" || e.ClientID != "app" {
			t.Errorf("event = %+v, want type test.committed, actor user:admin, IP 192.0.2.1, request req-1, client app", e)
		}
		if len(e.UserAgent) > 256 || !strings.HasPrefix(e.UserAgent, "éé") || strings.ContainsRune(e.UserAgent, '\uFFFD') {
			t.Errorf("user agent = %d bytes %q, want at most 256 bytes of é", len(e.UserAgent), e.UserAgent)
		}
		if len(e.Detail) != 1 || e.Detail["channel"] != "email" {
			t.Errorf("detail = %v, want only channel=email (secrets dropped)", e.Detail)
		}
		if d := time.Since(e.CreatedAt); d < -time.Minute || d > time.Minute {
			t.Errorf("created_at = %v, want now", e.CreatedAt)
		}
	})

	t.Run("Filters", func(t *testing.T) {
		for _, e := range []storage.AuditEvent{
			{Type: "filt.a", Subject: "fu1"},
			{Type: "filt.b", Subject: "fu1"},
			{Type: "filt.a", Subject: "fu2"},
			{Type: "filtx", Subject: "fu2"},
		} {
			if err := s.RecordAudit(ctx, &e); err != nil {
				t.Fatal(err)
			}
		}
		tests := []struct {
			q    storage.AuditQuery
			want int
		}{
			{storage.AuditQuery{Subject: "fu1"}, 2},
			{storage.AuditQuery{Type: "filt.a"}, 2},
			{storage.AuditQuery{Type: "filt.*"}, 3},
			{storage.AuditQuery{Type: "filt.a", Subject: "fu2"}, 1},
			{storage.AuditQuery{Subject: "fu1", Since: time.Now().Add(time.Hour)}, 0},
			{storage.AuditQuery{Subject: "fu1", Since: time.Now().Add(-time.Hour)}, 2},
		}
		for _, tc := range tests {
			tc.q.Limit = 100
			es, err := s.AuditEvents(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != tc.want {
				t.Errorf("AuditEvents(%+v) = %d events, want %d", tc.q, len(es), tc.want)
			}
		}
	})

	t.Run("Paging", func(t *testing.T) {
		const n = 25
		for i := range n {
			if err := s.RecordAudit(ctx, &storage.AuditEvent{Type: "page.test", Detail: map[string]any{"i": fmt.Sprint(i)}}); err != nil {
				t.Fatal(err)
			}
		}
		seen := map[string]bool{}
		var after *storage.AuditKey
		var prev *storage.AuditEvent
		for page := 0; ; page++ {
			es, err := s.AuditEvents(ctx, storage.AuditQuery{Type: "page.test", Limit: 4, After: after})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range es {
				if seen[e.ID] {
					t.Fatalf("event %s listed twice", e.ID)
				}
				seen[e.ID] = true
				if prev != nil && (e.CreatedAt.After(prev.CreatedAt) || e.CreatedAt.Equal(prev.CreatedAt) && e.ID > prev.ID) {
					t.Fatalf("event %s (%v) after %s (%v): not newest first", e.ID, e.CreatedAt, prev.ID, prev.CreatedAt)
				}
				prev = e
			}
			// Events added while paging are newer than every page to come.
			if page < 3 {
				if err := s.RecordAudit(ctx, &storage.AuditEvent{Type: "page.test", Detail: map[string]any{"late": "yes"}}); err != nil {
					t.Fatal(err)
				}
			}
			if len(es) < 4 {
				break
			}
			last := es[len(es)-1]
			after = &storage.AuditKey{CreatedAt: last.CreatedAt, ID: last.ID}
		}
		if len(seen) < n {
			t.Errorf("paging saw %d events, want at least the %d that existed throughout", len(seen), n)
		}
	})

	t.Run("Retention", func(t *testing.T) {
		if err := s.RecordAudit(ctx, &storage.AuditEvent{Type: "ret.test"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DeleteAuditBefore(ctx, time.Now().Add(-time.Hour), 2); err != nil {
			t.Fatal(err)
		}
		es, err := s.AuditEvents(ctx, storage.AuditQuery{Type: "ret.test", Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 1 {
			t.Fatalf("after deleting events older than an hour: %d events, want 1", len(es))
		}
		n, err := s.DeleteAuditBefore(ctx, time.Now().Add(time.Minute), 2)
		if err != nil {
			t.Fatal(err)
		}
		if n < 30 {
			t.Errorf("DeleteAuditBefore(now+1m) = %d, want every event (at least 30)", n)
		}
		es, err = s.AuditEvents(ctx, storage.AuditQuery{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 0 {
			t.Errorf("after deleting every event: %d events, want 0", len(es))
		}
	})
}
