package storage_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

// TestOutagePostgres: with the server stopped (pg_ctl stop -m fast), every
// kind of call fails with ErrUnavailable — a query, BEGIN, a pipelined
// write, and COMMIT of a transaction begun before the stop — and the same
// Store works again once the server is back, without reopening.
func TestOutagePostgres(t *testing.T) {
	c := storagetest.NewCluster(t)
	ctx := t.Context()
	s, err := storage.Open(ctx, c.URL(), storage.Options{})
	if err != nil {
		t.Fatalf("storage.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if _, err := s.User(ctx, "nobody"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("User(nobody) = %v, want ErrNotFound", err)
	}

	// A transaction open on the server when it stops.
	inFlight, err := s.BeginTX(ctx)
	if err != nil {
		t.Fatalf("BeginTX: %v", err)
	}
	if _, err := s.User(inFlight, "nobody"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("User(nobody) in a transaction = %v, want ErrNotFound", err)
	}
	c.Stop()

	req := fosite.NewAccessRequest(&fosite.DefaultSession{})
	req.Client = &fosite.DefaultClient{ID: "c"}
	tests := []struct {
		name string
		call func() error
	}{
		{"commit of a transaction begun before", func() error {
			if err := s.CreateAccessTokenSession(inFlight, "sig-inflight", req); err != nil {
				s.Rollback(inFlight)
				return err
			}
			return s.Commit(inFlight)
		}},
		{"query", func() error { _, err := s.User(ctx, "nobody"); return err }},
		{"write", func() error { return s.CreateAccessTokenSession(ctx, "sig-1", req) }},
		{"ping", func() error { return s.Ping(ctx) }},
		{"transaction", func() error {
			return s.InTx(ctx, func(ctx context.Context) error {
				return s.CreateAccessTokenSession(ctx, "sig-2", req)
			})
		}},
		{"begin and commit", func() error {
			tx, err := s.BeginTX(ctx)
			if err != nil {
				return err
			}
			if err := s.CreateAccessTokenSession(tx, "sig-3", req); err != nil {
				s.Rollback(tx)
				return err
			}
			return s.Commit(tx)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, storage.ErrUnavailable) {
				t.Errorf("%s with the server stopped = %v, want ErrUnavailable", tt.name, err)
			}
		})
	}

	c.Start()
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := s.User(ctx, "nobody")
		if errors.Is(err, storage.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("User(nobody) 15 s after the server returned = %v, want ErrNotFound", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping after the server returned = %v", err)
	}
}
