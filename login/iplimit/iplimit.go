// Package iplimit bounds what one client IP address may do: token buckets
// per address, kept in memory (so limits are per node), and the client
// address of an HTTP request, read from X-Forwarded-For only when the peer
// is a trusted reverse proxy. The sign-in pages (login) and the token
// endpoint (provider, wired by cmd/torii) use it.
package iplimit

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limit is N events per duration Per: a bucket of N tokens that refills
// completely in Per.
type Limit struct {
	N   int
	Per time.Duration
}

// Limiter keeps a token bucket per client IP. Idle buckets are forgotten
// (a bucket idle for Per is full again, like a new one). It is safe for
// concurrent use.
type Limiter struct {
	limit Limit
	now   func() time.Time

	mu      sync.RWMutex
	buckets map[netip.Addr]*bucket
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
	// inflight counts attempts admitted by Begin whose outcome is not
	// known yet; guarded by Limiter.mu.
	inflight int
}

// New returns a limiter of l per IP; now is the clock (nil means time.Now).
// l.N and l.Per must be positive.
func New(l Limit, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{limit: l, now: now, buckets: map[netip.Addr]*bucket{}}
}

// get returns ip's token bucket, creating a full one.
func (l *Limiter) get(ip netip.Addr) *rate.Limiter {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bucketLocked(ip, now).lim
}

// bucketLocked returns ip's bucket, creating a full one, and now and then
// forgets idle buckets; l.mu is held.
func (l *Limiter) bucketLocked(ip netip.Addr, now time.Time) *bucket {
	if now.Sub(l.swept) > l.limit.Per {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > 2*l.limit.Per && b.inflight == 0 {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b, ok := l.buckets[ip]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(rate.Limit(float64(l.limit.N)/l.limit.Per.Seconds()), l.limit.N)}
		l.buckets[ip] = b
	}
	b.seen = now
	return b
}

// Begin admits one attempt whose outcome is not known yet (a password or
// code about to be checked): only while ip's bucket holds a token for it
// and for every attempt of ip still under way, so that a burst of parallel
// attempts cannot all pass a check made before any of them is counted. The
// caller calls done once the outcome is known: a failure spends a token, a
// success none. When no token is left it returns how long to wait (at
// least a second), and done is nil.
func (l *Limiter) Begin(ip netip.Addr) (done func(failed bool), wait time.Duration, ok bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucketLocked(ip, now)
	if short := float64(b.inflight+1) - b.lim.TokensAt(now); short > 0 {
		perToken := l.limit.Per / time.Duration(l.limit.N)
		return nil, max(time.Duration(math.Ceil(short*float64(perToken))), time.Second), false
	}
	b.inflight++
	return func(failed bool) {
		now := l.now()
		l.mu.Lock()
		defer l.mu.Unlock()
		b.inflight--
		if failed {
			b.lim.AllowN(now, 1)
		}
	}, 0, true
}

// Take spends one event of ip's budget and reports true; when none is
// left it spends nothing and returns how long until one is.
func (l *Limiter) Take(ip netip.Addr) (time.Duration, bool) {
	lim := l.get(ip)
	now := l.now()
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, false
	}
	return 0, true
}

// Wait reports, without spending, how long until ip may have an event:
// zero when it may now. An address that has spent nothing costs a map
// lookup under a read lock and allocates nothing.
func (l *Limiter) Wait(ip netip.Addr) time.Duration {
	l.mu.RLock()
	b := l.buckets[ip]
	l.mu.RUnlock()
	if b == nil {
		return 0
	}
	now := l.now()
	if b.lim.TokensAt(now) >= 1 {
		return 0
	}
	r := b.lim.ReserveN(now, 1)
	d := r.DelayFrom(now)
	r.CancelAt(now)
	return d
}

// Proxies are the reverse proxies whose X-Forwarded-For header names the
// client; empty trusts none (the TCP peer is the client).
type Proxies []netip.Prefix

// ClientIP returns the address of r's client: the TCP peer, or, when the
// peer is a trusted proxy, the nearest address in X-Forwarded-For (read
// from the right) that is not a trusted proxy. An unreadable peer address
// is the unspecified address 0.0.0.0. It allocates nothing.
func (p Proxies) ClientIP(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.IPv4Unspecified()
	}
	peer = peer.Unmap()
	if !p.trusted(peer) {
		return peer
	}
	values := r.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		hops := values[i]
		for {
			hop := hops
			j := strings.LastIndexByte(hops, ',')
			if j >= 0 {
				hop, hops = hops[j+1:], hops[:j]
			}
			a, err := netip.ParseAddr(strings.TrimSpace(hop))
			if err != nil {
				return peer
			}
			a = a.Unmap()
			if !p.trusted(a) {
				return a
			}
			peer = a
			if j < 0 {
				break
			}
		}
	}
	return peer
}

func (p Proxies) trusted(a netip.Addr) bool {
	for _, pfx := range p {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// Failures counts failed requests per client IP, so that a client past its
// budget can be refused before any work is done. It is safe for concurrent
// use.
type Failures struct {
	limiter *Limiter
	proxies Proxies
}

// NewFailures returns a counter of l failures per client IP, with the
// client IP read behind the trusted proxies; now is the clock (nil means
// time.Now). l.N and l.Per must be positive.
func NewFailures(l Limit, trusted []netip.Prefix, now func() time.Time) *Failures {
	return &Failures{limiter: New(l, now), proxies: trusted}
}

// Wait reports how long r's client must wait before its next attempt: zero
// while it has failures left. It spends nothing, and for a client that has
// not failed it allocates nothing.
func (f *Failures) Wait(r *http.Request) time.Duration {
	return f.limiter.Wait(f.proxies.ClientIP(r))
}

// Begin admits an attempt of r's client whose outcome is not known yet
// (see Limiter.Begin).
func (f *Failures) Begin(r *http.Request) (done func(failed bool), wait time.Duration, ok bool) {
	return f.limiter.Begin(f.proxies.ClientIP(r))
}

// Failed counts one failure of r's client.
func (f *Failures) Failed(r *http.Request) {
	f.limiter.Take(f.proxies.ClientIP(r))
}
