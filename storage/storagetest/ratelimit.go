package storagetest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/torii-idp/torii/storage"
)

// TakeRate spends a budget of N per Per one event at a time, refuses past
// it with the wait until an event is back, refills with time, takes back
// what ReturnRate returns, and keeps keys apart.
func testRateLimits(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	b := storage.RateBudget{N: 3, Per: time.Minute}
	a, other := []byte("key-a"), []byte("key-b")
	now := time.Date(2026, 12, 7, 1, 2, 3, 0, time.UTC)
	// take returns 0 when the event was spent, else the wait.
	take := func(key []byte, at time.Time) time.Duration {
		t.Helper()
		spent, w, err := s.TakeRate(ctx, key, b, at)
		if err != nil || (!spent && w <= 0) {
			t.Fatalf("TakeRate = %v, %s, %v", spent, w, err)
		}
		if spent {
			return 0
		}
		return w
	}
	if w, err := s.RateWait(ctx, a, b, now); err != nil || w != 0 {
		t.Fatalf("RateWait(new key) = %s, %v; want 0, nil", w, err)
	}
	for i, after := range []time.Duration{0, 0, 20 * time.Second} {
		// The wait after the event spent tells when the next one fits.
		if spent, w, err := s.TakeRate(ctx, a, b, now); err != nil || !spent || w != after {
			t.Fatalf("TakeRate #%d = %v, %s, %v; want spent, %s", i+1, spent, w, err, after)
		}
	}
	tests := []struct {
		name string
		got  func() time.Duration
		want time.Duration
	}{
		{"TakeRate past the budget", func() time.Duration { return take(a, now) }, 20 * time.Second},
		{"RateWait past the budget", func() time.Duration {
			w, err := s.RateWait(ctx, a, b, now)
			if err != nil {
				t.Fatal(err)
			}
			return w
		}, 20 * time.Second},
		{"TakeRate 5s later", func() time.Duration { return take(a, now.Add(5*time.Second)) }, 15 * time.Second},
		{"another key", func() time.Duration { return take(other, now) }, 0},
		{"TakeRate 20s later", func() time.Duration { return take(a, now.Add(20*time.Second)) }, 0},
		{"and again", func() time.Duration { return take(a, now.Add(20*time.Second)) }, 20 * time.Second},
	}
	for _, tc := range tests {
		if got := tc.got(); got != tc.want {
			t.Errorf("%s = %s, want %s", tc.name, got, tc.want)
		}
	}
	// An event given back can be spent again.
	if err := s.ReturnRate(ctx, a, b); err != nil {
		t.Fatalf("ReturnRate = %v", err)
	}
	if w := take(a, now.Add(20*time.Second)); w != 0 {
		t.Errorf("TakeRate after ReturnRate = %s, want 0", w)
	}
	// A bucket idle for the period is full again.
	for i := range 3 {
		if w := take(a, now.Add(2*time.Minute)); w != 0 {
			t.Errorf("TakeRate #%d after 2 minutes = %s, want 0", i+1, w)
		}
	}

	// The clean-up deletes full buckets (tat past) and keeps the others.
	real := time.Now()
	old, live := []byte("old"), []byte("live")
	take(old, real.Add(-time.Hour))
	take(live, real)
	n, err := s.DeleteExpired(ctx, 1)
	if err != nil {
		t.Fatalf("DeleteExpired = %v", err)
	}
	if n["rate_limits"] < 1 {
		t.Errorf("DeleteExpired rate_limits = %d, want at least 1", n["rate_limits"])
	}
	if w, _ := s.RateWait(ctx, live, storage.RateBudget{N: 1, Per: time.Minute}, real); w == 0 {
		t.Error("DeleteExpired deleted a bucket that is not full")
	}
}

// TakeRates spends as many of k events as are left, at least one.
func testTakeRates(t *testing.T, s *storage.Store) {
	b := storage.RateBudget{N: 10, Per: 10 * time.Second}
	now := time.Date(2026, 12, 7, 1, 2, 3, 0, time.UTC)
	tests := []struct {
		name    string
		k       int
		at      time.Duration
		granted int
		wait    time.Duration
	}{
		{"a new key", 4, 0, 4, 0}, // until now + 4 s
		{"four more", 4, 0, 4, 0},
		{"two are left", 4, 0, 2, 0},
		{"none is left", 4, 0, 0, time.Second},
		{"one came back", 4, time.Second, 1, 0},
		{"k above the budget", 50, time.Minute, 10, 0},
	}
	for _, tc := range tests {
		l, err := s.TakeRates(t.Context(), []byte("k"), b, now.Add(tc.at), tc.k)
		if err != nil || l.Granted != tc.granted || l.Wait != tc.wait || (l.Granted > 0) != !l.Until.IsZero() {
			t.Errorf("%s: TakeRates(%d) = %+v, %v; want %d, %s", tc.name, tc.k, l, err, tc.granted, tc.wait)
		}
	}
}

// Of a burst of parallel events on one key, exactly the budget's worth is
// spent.
func testRateLimitRace(t *testing.T, s *storage.Store) {
	b := storage.RateBudget{N: 5, Per: time.Hour}
	now := time.Now()
	var wg sync.WaitGroup
	var passed atomic.Int32
	for range 20 {
		wg.Go(func() {
			spent, _, err := s.TakeRate(t.Context(), []byte("burst"), b, now)
			if err != nil {
				t.Errorf("TakeRate = %v", err)
				return
			}
			if spent {
				passed.Add(1)
			}
		})
	}
	wg.Wait()
	if n := passed.Load(); n != 5 {
		t.Errorf("%d of 20 parallel TakeRate passed, want 5", n)
	}
}
