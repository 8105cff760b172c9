package iplimit

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"
)

// clock is a settable clock.
type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

func TestLimiter(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	l := New(Limit{N: 3, Per: time.Minute}, c.Now)
	a, b := netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("198.51.100.9")
	if w := l.Wait(t.Context(), a); w != 0 {
		t.Fatalf("Wait(new address) = %s, want 0", w)
	}
	for i := range 3 {
		if w, ok := l.Take(t.Context(), a); !ok || w != 0 {
			t.Fatalf("Take #%d = %s, %v; want 0, true", i+1, w, ok)
		}
	}
	// Empty: one event back in Per/N = 20 s.
	if w, ok := l.Take(t.Context(), a); ok || w != 20*time.Second {
		t.Errorf("Take past the budget = %s, %v; want 20s, false", w, ok)
	}
	if w := l.Wait(t.Context(), a); w != 20*time.Second {
		t.Errorf("Wait past the budget = %s, want 20s", w)
	}
	if w := l.Wait(t.Context(), b); w != 0 {
		t.Errorf("Wait(another address) = %s, want 0", w)
	}
	// Neither a refused Take nor Wait spent anything.
	c.t = c.t.Add(20 * time.Second)
	if w := l.Wait(t.Context(), a); w != 0 {
		t.Errorf("Wait after 20s = %s, want 0", w)
	}
	if _, ok := l.Take(t.Context(), a); !ok {
		t.Error("Take after 20s refused")
	}
	if _, ok := l.Take(t.Context(), a); ok {
		t.Error("second Take after 20s allowed")
	}
	// Idle buckets are forgotten, and a forgotten bucket is a full one.
	c.t = c.t.Add(3 * time.Minute)
	l.Take(t.Context(), b)
	l.mu.RLock()
	_, kept := l.buckets[a]
	l.mu.RUnlock()
	if kept {
		t.Error("an idle bucket was not forgotten")
	}
}

func TestClientIP(t *testing.T) {
	trusted := Proxies{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	tests := []struct {
		name    string
		proxies Proxies
		remote  string
		xff     []string
		want    string
	}{
		{"peer", trusted, "203.0.113.7:1234", nil, "203.0.113.7"},
		{"untrusted peer's header ignored", trusted, "203.0.113.7:1234", []string{"198.51.100.9"}, "203.0.113.7"},
		{"no proxies trusted", nil, "10.0.0.1:1234", []string{"198.51.100.9"}, "10.0.0.1"},
		{"trusted proxy", trusted, "10.0.0.1:1234", []string{"198.51.100.9"}, "198.51.100.9"},
		{"IPv6 proxy", trusted, "[::1]:1234", []string{"198.51.100.9"}, "198.51.100.9"},
		{"rightmost untrusted", trusted, "10.0.0.1:1234", []string{"192.0.2.1, 198.51.100.9, 10.0.0.2"}, "198.51.100.9"},
		{"several headers", trusted, "10.0.0.1:1234", []string{"192.0.2.1, 198.51.100.9", "10.0.0.3,10.0.0.2"}, "198.51.100.9"},
		{"spoofed left part ignored", trusted, "10.0.0.1:1234", []string{"1.2.3.4", "198.51.100.9"}, "198.51.100.9"},
		{"garbage stops at the last proxy", trusted, "10.0.0.1:1234", []string{"198.51.100.9, junk, 10.0.0.2"}, "10.0.0.2"},
		{"empty header", trusted, "10.0.0.1:1234", []string{""}, "10.0.0.1"},
		{"no header", trusted, "10.0.0.1:1234", nil, "10.0.0.1"},
		{"all trusted", trusted, "10.0.0.1:1234", []string{"10.0.0.3, 10.0.0.2"}, "10.0.0.3"},
		{"IPv4-mapped", trusted, "[::ffff:203.0.113.7]:1234", nil, "203.0.113.7"},
		{"unreadable peer", trusted, "somewhere", nil, "0.0.0.0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/oauth2/token", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := tc.proxies.ClientIP(r); got != netip.MustParseAddr(tc.want) {
				t.Errorf("ClientIP(%s, X-Forwarded-For %q) = %s, want %s", tc.remote, tc.xff, got, tc.want)
			}
		})
	}
}

// TestFailuresWaitAllocatesNothing: the check every request makes before
// its work costs no allocation, behind a proxy or not, for a client that
// has failed (within its budget) or not.
func TestFailuresWaitAllocatesNothing(t *testing.T) {
	f := NewFailures(Limit{N: 100, Per: time.Minute}, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, nil)
	direct := httptest.NewRequest("POST", "/oauth2/token", nil)
	direct.RemoteAddr = "203.0.113.7:1234"
	proxied := httptest.NewRequest("POST", "/oauth2/token", nil)
	proxied.RemoteAddr = "10.0.0.1:1234"
	proxied.Header.Set("X-Forwarded-For", "192.0.2.1, 198.51.100.9")
	failed := httptest.NewRequest("POST", "/oauth2/token", nil)
	failed.RemoteAddr = "192.0.2.99:1234"
	f.Failed(failed)
	tests := []struct {
		name string
		req  *http.Request
	}{{"direct", direct}, {"proxied", proxied}, {"failed once", failed}}
	for _, tc := range tests {
		if n := testing.AllocsPerRun(100, func() { f.Wait(tc.req) }); n != 0 {
			t.Errorf("Wait(%s) allocates %.0f times, want 0", tc.name, n)
		}
		if w := f.Wait(tc.req); w != 0 {
			t.Errorf("Wait(%s) = %s, want 0", tc.name, w)
		}
	}
}

// BenchmarkFailuresWait is the cost the token endpoint adds to every
// request, from many goroutines at once.
func BenchmarkFailuresWait(b *testing.B) {
	f := NewFailures(Limit{N: 100, Per: time.Minute}, nil, nil)
	r := httptest.NewRequest("POST", "/oauth2/token", nil)
	r.RemoteAddr = "203.0.113.7:1234"
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			f.Wait(r)
		}
	})
}

// Begin holds a token for every attempt under way: of parallel attempts
// only the budget's worth is admitted; a failure spends its token, a
// success gives it back; and the wait is until enough tokens are back.
func TestBegin(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	l := New(Limit{N: 3, Per: time.Minute}, c.Now)
	ip := netip.MustParseAddr("203.0.113.7")
	var dones []func(bool)
	for i := range 3 {
		done, wait, ok := l.Begin(t.Context(), ip)
		if !ok || wait != 0 {
			t.Fatalf("Begin #%d = %s, %v; want admitted", i+1, wait, ok)
		}
		dones = append(dones, done)
	}
	// Three under way: a fourth waits, though no token is spent yet.
	if done, wait, ok := l.Begin(t.Context(), ip); ok || done != nil || wait != 20*time.Second {
		t.Fatalf("Begin with three under way = %s, %v; want 20s, refused", wait, ok)
	}
	dones[0](false) // a success spends nothing
	if _, _, ok := l.Begin(t.Context(), ip); !ok {
		t.Fatal("Begin after a success = refused, want admitted")
	}
	dones[1](true)
	dones[2](true)
	// Two failures spent, one attempt still under way: nothing left.
	if _, wait, ok := l.Begin(t.Context(), ip); ok || wait != 20*time.Second {
		t.Errorf("Begin after two failures with one under way = %s, %v; want 20s, refused", wait, ok)
	}
	if w := l.Wait(t.Context(), ip); w != 0 {
		t.Errorf("Wait = %s, want 0: one token is left", w)
	}
	c.t = c.t.Add(20 * time.Second)
	if _, _, ok := l.Begin(t.Context(), ip); !ok {
		t.Error("Begin once a token came back = refused, want admitted")
	}
	// Another address has its own budget.
	if _, _, ok := l.Begin(t.Context(), netip.MustParseAddr("198.51.100.9")); !ok {
		t.Error("Begin from another address = refused")
	}
}
