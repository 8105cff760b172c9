package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/torii-idp/torii/provider"
	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

// TestRotateKeysSchedule: serve's key loop checks at once and then every
// interval, rotates each key once it is TORII_KEY_ROTATION old (one new key
// per algorithm, not one per check), and stops with its context.
func TestRotateKeysSchedule(t *testing.T) {
	const maxAge = 90 * 24 * time.Hour
	forEachBackend(t, func(t *testing.T, dbURL string) {
		clk := storagetest.NewClock(time.Now().UTC())
		store, err := storage.Open(t.Context(), dbURL, storage.Options{Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		if _, err := store.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		keys := provider.NewKeys(store, provider.KeysConfig{Now: clk.Now})
		if err := keys.Ensure(t.Context()); err != nil {
			t.Fatal(err)
		}
		count := func() (n int, next int) {
			t.Helper()
			infos, err := keys.List(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for _, ki := range infos {
				if ki.State == provider.KeyNext {
					next++
				}
			}
			return len(infos), next
		}
		logs := &syncBuffer{}
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			rotateKeys(ctx, keys, slog.New(slog.NewTextHandler(logs, nil)), maxAge, 10*time.Millisecond)
		}()
		defer func() {
			stop()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Error("rotateKeys did not return after its context ended")
			}
		}()

		// Young keys: checks come and go, nothing rotates.
		time.Sleep(100 * time.Millisecond)
		if n, _ := count(); n != len(provider.Algorithms) {
			t.Fatalf("young keys: %d keys after some checks, want %d", n, len(provider.Algorithms))
		}
		// Due: the next check rotates each algorithm once.
		clk.Advance(maxAge)
		deadline := time.Now().Add(10 * time.Second)
		for n, _ := count(); n < 2*len(provider.Algorithms); n, _ = count() {
			if time.Now().After(deadline) {
				t.Fatalf("keys %s old were not rotated within 10s: %d keys", maxAge, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
		if n, next := count(); n != 2*len(provider.Algorithms) || next != len(provider.Algorithms) {
			t.Errorf("after rotation and more checks: %d keys, %d next; want one new (next) key per algorithm", n, next)
		}
		if got := strings.Count(logs.String(), "rotated signing key on schedule"); got != len(provider.Algorithms) {
			t.Errorf("logged %d rotations, want %d:\n%s", got, len(provider.Algorithms), logs.String())
		}
	})
}

// TestKeyRotationConfig: TORII_KEY_ROTATION is an age of at least a day, or
// off (zero: serve starts no key loop).
func TestKeyRotationConfig(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  time.Duration
	}{
		{"2160h", 90 * 24 * time.Hour},
		{"24h", 24 * time.Hour},
		{"off", 0},
	} {
		s := settings()
		for _, x := range s {
			x.value = x.def
			if x.env == "TORII_KEY_ROTATION" {
				x.value = tc.value
			}
		}
		if cfg, err := loadConfig(s); err != nil || cfg.KeyRotation != tc.want {
			t.Errorf("TORII_KEY_ROTATION=%s: KeyRotation = %s, %v; want %s", tc.value, cfg.KeyRotation, err, tc.want)
		}
	}
}
