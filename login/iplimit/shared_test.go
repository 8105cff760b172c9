package iplimit

import (
	"context"
	"net/http/httptest"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

// Shared limiters on one database are one budget: two of them stand for
// two nodes. Every event counts on both, a parallel burst of Begin across
// both admits the budget's worth, a success gives its event back, and Wait
// answers from the database once this node saw the address refused.
func TestShared(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(t testing.TB) *storage.Store) {
		s := open(t)
		c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
		limit := Limit{N: 3, Per: time.Minute}
		a, b := NewShared("test", limit, s, c.Now), NewShared("test", limit, s, c.Now)
		apart := NewShared("other", limit, s, c.Now)
		ip := netip.MustParseAddr("203.0.113.7")
		ctx := t.Context()

		for i, l := range []*Limiter{a, b, a} {
			if w, ok := l.Take(ctx, ip); !ok || w != 0 {
				t.Fatalf("Take #%d = %s, %v; want 0, true", i+1, w, ok)
			}
		}
		if w := b.Wait(ctx, ip); w != 0 {
			t.Errorf("Wait at a node that saw no refusal = %s, want 0 (it does not ask the database)", w)
		}
		if w, ok := b.Take(ctx, ip); ok || w != 20*time.Second {
			t.Errorf("Take past the shared budget = %s, %v; want 20s, false", w, ok)
		}
		if w := b.Wait(ctx, ip); w != 20*time.Second {
			t.Errorf("Wait after a refusal = %s, want 20s", w)
		}
		if w, ok := apart.Take(ctx, ip); !ok || w != 0 {
			t.Errorf("Take on another budget = %s, %v; want 0, true", w, ok)
		}
		if w, ok := a.Take(ctx, netip.MustParseAddr("198.51.100.9")); !ok || w != 0 {
			t.Errorf("Take from another address = %s, %v; want 0, true", w, ok)
		}
		c.t = c.t.Add(20 * time.Second)
		if w := b.Wait(ctx, ip); w != 0 {
			t.Errorf("Wait once an event is back = %s, want 0", w)
		}

		// Begin: attempts under way on both nodes hold their events.
		c.t = c.t.Add(time.Hour)
		var wg sync.WaitGroup
		var admitted atomic.Int32
		var dones sync.Map
		for i := range 10 {
			l := []*Limiter{a, b}[i%2]
			wg.Go(func() {
				if done, _, ok := l.Begin(ctx, ip); ok {
					admitted.Add(1)
					dones.Store(i, done)
				}
			})
		}
		wg.Wait()
		if n := admitted.Load(); n != 3 {
			t.Fatalf("%d of 10 parallel Begin on two nodes admitted, want 3", n)
		}
		var outcomes []func(bool)
		dones.Range(func(_, v any) bool { outcomes = append(outcomes, v.(func(bool))); return true })
		if _, wait, ok := a.Begin(ctx, ip); ok || wait != 20*time.Second {
			t.Errorf("Begin with three under way = %s, %v; want 20s, refused", wait, ok)
		}
		outcomes[0](false) // a success gives its event back
		if _, _, ok := b.Begin(ctx, ip); !ok {
			t.Error("Begin after a success = refused, want admitted")
		}
		outcomes[1](true)
		outcomes[2](true)
		if _, wait, ok := b.Begin(ctx, ip); ok || wait != 20*time.Second {
			t.Errorf("Begin after two failures with one under way = %s, %v; want 20s, refused", wait, ok)
		}
	})
}

// The token endpoint's failure budget: failures at one node refuse the
// address at the other once it fails there too, and Wait still allocates
// nothing for an address that has not been refused.
func TestSharedFailures(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(t testing.TB) *storage.Store) {
		s := open(t)
		limit := Limit{N: 2, Per: time.Hour}
		a := NewSharedFailures("token", limit, nil, s, nil)
		b := NewSharedFailures("token", limit, nil, s, nil)
		r := httptest.NewRequest("POST", "/oauth2/token", nil)
		r.RemoteAddr = "203.0.113.7:1234"
		a.Failed(r)
		a.Failed(r)
		if w := b.Wait(r); w != 0 {
			t.Fatalf("Wait at the other node before it saw a failure = %s, want 0", w)
		}
		b.Failed(r) // refused in the database: b learns the address is out
		if w := b.Wait(r); w < 29*time.Minute {
			t.Errorf("Wait at the other node after its first failure = %s, want about 30m", w)
		}
		fresh := httptest.NewRequest("POST", "/oauth2/token", nil)
		fresh.RemoteAddr = "198.51.100.9:1234"
		if n := testing.AllocsPerRun(100, func() { a.Wait(fresh) }); n != 0 {
			t.Errorf("Wait(an address that never failed) allocates %.0f times, want 0", n)
		}
	})
}

// Take on a shared limiter leases a sixteenth of the budget per write:
// two nodes taking in turn still get exactly the budget, no more.
func TestSharedLease(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(t testing.TB) *storage.Store) {
		s := open(t)
		c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
		limit := Limit{N: 32, Per: time.Minute} // leases of 2
		a, b := NewShared("lease", limit, s, c.Now), NewShared("lease", limit, s, c.Now)
		ip := netip.MustParseAddr("203.0.113.7")
		passed := 0
		for i := range 40 {
			if _, ok := []*Limiter{a, b}[i%2].Take(t.Context(), ip); ok {
				passed++
			}
		}
		if passed != 32 {
			t.Errorf("%d of 40 Take on two nodes passed, want 32", passed)
		}
		if w, err := s.RateWait(t.Context(), a.key(ip), a.budget(), c.Now()); err != nil || w != limit.Per/32 {
			t.Errorf("RateWait after the budget = %s, %v; want %s", w, err, limit.Per/32)
		}
		// A lease not handed out in its time is dropped.
		c.t = c.t.Add(time.Hour)
		if _, ok := a.Take(t.Context(), ip); !ok {
			t.Fatal("Take an hour later = refused")
		}
		c.t = c.t.Add(time.Minute)
		a.mu.RLock()
		lease, end := a.buckets[ip].lease, a.buckets[ip].leaseEnd
		a.mu.RUnlock()
		if lease != 1 || c.t.Before(end) {
			t.Fatalf("lease = %d until %s at %s, want 1 that ran out", lease, end, c.t)
		}
	})
}

// BenchmarkTake is the cost of the request budget every page request
// spends, from many goroutines and one address: in memory, and shared on
// each database with the leases a large budget gets (a write per sixteenth
// of it) and without (a budget under 32: one write per request).
func BenchmarkTake(b *testing.B) {
	ip := netip.MustParseAddr("203.0.113.7")
	run := func(b *testing.B, l *Limiter) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				l.Take(b.Context(), ip)
			}
		})
	}
	// Budgets no run exhausts: what is measured is the spending.
	large, small := Limit{N: 1_000_000_000, Per: time.Second}, Limit{N: 31, Per: time.Nanosecond * 31}
	b.Run("memory", func(b *testing.B) { run(b, New(large, nil)) })
	for _, be := range storagetest.Backends() {
		if be.Name == "postgres" && os.Getenv(storagetest.PostgresEnv) == "" {
			continue
		}
		s := be.Open(b) // once: b.Run calls its function once per round
		b.Run(be.Name+"/leases", func(b *testing.B) { run(b, NewShared("bench-"+strconv.Itoa(b.N), large, s, nil)) })
		b.Run(be.Name+"/a write each", func(b *testing.B) { run(b, NewShared("each-"+strconv.Itoa(b.N), small, s, nil)) })
	}
}

// countingShared counts the writes a shared limiter makes.
type countingShared struct {
	Shared
	writes atomic.Int32
}

func (c *countingShared) TakeRate(ctx context.Context, key []byte, b storage.RateBudget, now time.Time) (bool, time.Duration, error) {
	c.writes.Add(1)
	return c.Shared.TakeRate(ctx, key, b, now)
}

func (c *countingShared) TakeRates(ctx context.Context, key []byte, b storage.RateBudget, now time.Time, k int) (storage.RateLease, error) {
	c.writes.Add(1)
	return c.Shared.TakeRates(ctx, key, b, now, k)
}

// A request budget refuses an address from memory once the database said
// it has nothing to spare, until the wait it said: hammering past the
// budget costs no write.
func TestSharedRefusedFromMemory(t *testing.T) {
	s := &countingShared{Shared: storagetest.NewSQLite(t)}
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	l := NewShared("requests", Limit{N: 3, Per: time.Minute}, s, c.Now)
	ip := netip.MustParseAddr("203.0.113.7")
	for range 3 {
		if _, ok := l.Take(t.Context(), ip); !ok {
			t.Fatal("Take within the budget refused")
		}
	}
	for i := range 10 {
		if w, ok := l.Take(t.Context(), ip); ok || w != 20*time.Second {
			t.Fatalf("Take #%d past the budget = %s, %v; want 20s, false", i+1, w, ok)
		}
	}
	if n := s.writes.Load(); n != 3 {
		t.Errorf("%d writes for 3 events spent and 10 refused, want 3", n)
	}
	c.t = c.t.Add(20 * time.Second)
	if _, ok := l.Take(t.Context(), ip); !ok {
		t.Error("Take once an event is back = refused")
	}
}
