// Package iplimit bounds what one client IP address may do: token buckets
// per address, kept in memory (per node) or in a database every node shares
// (NewShared), and the client address of an HTTP request, read from
// X-Forwarded-For only when the peer is a trusted reverse proxy. The sign-in
// pages (login), the JSON API (login/api) and the token endpoint (provider,
// wired by cmd/torii) use it.
package iplimit

import (
	"context"
	"crypto/sha256"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/torii-idp/torii/storage"
)

// Limit is N events per duration Per: a bucket of N tokens that refills
// completely in Per.
type Limit struct {
	N   int
	Per time.Duration
}

// Limiter keeps a token bucket per client IP: in memory (New), or in a
// Shared database (NewShared). Idle buckets are forgotten (a bucket idle
// for Per is full again, like a new one). It is safe for concurrent use.
type Limiter struct {
	limit Limit
	now   func() time.Time

	// shared, when set, holds the buckets, under keys made from name; the
	// buckets map then only remembers, per IP, until when the shared bucket
	// was last seen empty (bucket.blocked), for Wait.
	shared Shared
	name   string
	// givesBack: a failure budget, whose Begin gives events back.
	givesBack bool

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
	// blocked (shared limiters): until when the shared bucket was last
	// seen without an event to spare; guarded by Limiter.mu.
	blocked time.Time
	// lease (shared limiters): events Take spent in the shared bucket
	// ahead of need, this node's to hand out until leaseEnd; guarded by
	// Limiter.mu.
	lease    int
	leaseEnd time.Time
	// leasing: a Take is fetching a lease, and closes leased when done;
	// others wait for it, so that parallel requests do not each take a
	// lease (or each write).
	leasing bool
	leased  chan struct{}
}

// Shared is a database that holds buckets for every node: an event spent
// on one node is spent on all. storage.Store implements it (GCRA buckets,
// one conditional UPSERT per event).
type Shared interface {
	// TakeRate spends one event of key's budget at now when one is left
	// (spent), and returns how long until another one is (zero: now);
	// refused, the wait is never zero.
	TakeRate(ctx context.Context, key []byte, b storage.RateBudget, now time.Time) (spent bool, wait time.Duration, err error)
	// TakeRates spends up to k events, as many as are left, and says how
	// many and until when they stand for; none left: how long until one is.
	TakeRates(ctx context.Context, key []byte, b storage.RateBudget, now time.Time, k int) (storage.RateLease, error)
	// RateWait reports, spending nothing, how long until key's budget has
	// an event at now.
	RateWait(ctx context.Context, key []byte, b storage.RateBudget, now time.Time) (time.Duration, error)
	// ReturnRate gives back one event TakeRate spent.
	ReturnRate(ctx context.Context, key []byte, b storage.RateBudget) error
}

// NewShared returns a limiter of l per IP whose buckets are kept in s,
// shared by every node using s, under keys made from name (one name per
// budget: limiters with the same name and database count together). now
// is the clock (nil means time.Now); l.N and l.Per must be positive.
//
// A fault of s lets the event pass (fails open): every check these limits
// guard needs the same database, and answers 503 while it is away. It is
// for a request budget, whose Take may refuse from memory; a budget whose
// Begin gives events back is NewSharedFailures'.
func NewShared(name string, l Limit, s Shared, now func() time.Time) *Limiter {
	lim := New(l, now)
	lim.shared, lim.name = s, name
	return lim
}

// key is the database key of ip's bucket: a hash of the limiter's name and
// the address, of fixed length.
func (l *Limiter) key(ip netip.Addr) []byte {
	a := ip.As16()
	h := sha256.New()
	h.Write([]byte(l.name))
	h.Write([]byte{0})
	h.Write(a[:])
	return h.Sum(nil)[:16]
}

func (l *Limiter) budget() storage.RateBudget {
	return storage.RateBudget{N: l.limit.N, Per: l.limit.Per}
}

// sharedTake spends one event of ip's shared bucket, and remembers until
// when the bucket is empty when it is (after this event, or before).
func (l *Limiter) sharedTake(ctx context.Context, ip netip.Addr) (time.Duration, bool) {
	now := l.now()
	spent, wait, err := l.shared.TakeRate(ctx, l.key(ip), l.budget(), now)
	if err != nil {
		return 0, true
	}
	if wait > 0 {
		l.noteBlocked(ip, now.Add(wait))
	}
	if spent {
		return 0, true
	}
	return wait, false
}

// leaseSize is how many events Take spends in the shared bucket at once:
// a sixteenth of the budget. Events leased and not handed out are lost to
// the client (the budget errs on the safe side): an address served by
// several nodes may find at most (leaseSize-1) × (nodes-1) events of its
// budget held by other nodes, and never gets more than its budget.
//
// A failure budget is never leased: failures are few, and each is written
// as it happens.
func (l *Limiter) leaseSize() int {
	if l.givesBack {
		return 1
	}
	return max(l.limit.N/16, 1)
}

// sharedLeasedTake is Take on a shared limiter: an event from this node's
// lease of ip's bucket while it lasts, else a new lease of up to
// leaseSize events in one write. A lease is handed out for as long as its
// events stand for in the bucket (RateLease.Until, counted from the
// lease's arrival) or dropped: no window of Per sees more than the budget
// and one lease per node, and a node takes leases no faster than the
// budget refills them. Requests that find a lease being fetched wait for
// it.
//
// On a request budget (nothing is ever given back), an address this node
// saw with no event to spare is refused from memory until the wait it was
// told has passed: the bucket cannot have room sooner, and a client
// hammering past its budget costs no write. (A failure budget asks the
// database: a success on some node may have given an event back.)
func (l *Limiter) sharedLeasedTake(ctx context.Context, ip netip.Addr) (time.Duration, bool) {
	k := l.leaseSize()
	if k == 1 {
		if wait, refused := l.refusedFromMemory(ip); refused {
			return wait, false
		}
		return l.sharedTake(ctx, ip)
	}
	var b *bucket
	for {
		if wait, refused := l.refusedFromMemory(ip); refused {
			return wait, false
		}
		now := l.now()
		l.mu.Lock()
		b = l.bucketLocked(ip, now)
		if b.lease > 0 && now.Before(b.leaseEnd) {
			b.lease--
			l.mu.Unlock()
			return 0, true
		}
		if !b.leasing {
			break
		}
		// Another request is fetching a lease: wait for it (then take
		// from it, or fetch the next one).
		leased := b.leased
		l.mu.Unlock()
		select {
		case <-leased:
		case <-ctx.Done():
			return 0, true // the request is gone; nothing to limit
		}
	}
	b.leasing, b.leased = true, make(chan struct{})
	l.mu.Unlock()
	sent := l.now()
	lease, err := l.shared.TakeRates(ctx, l.key(ip), l.budget(), sent, k)
	arrived := l.now()
	l.mu.Lock()
	close(b.leased)
	b.leasing = false
	if err == nil && lease.Granted > 1 {
		// The lease lasts as long as its events stand for, from its
		// arrival: a slow answer must not arrive expired (and make the
		// next request take another lease at once).
		b = l.bucketLocked(ip, arrived)
		b.lease, b.leaseEnd = lease.Granted-1, arrived.Add(lease.Until.Sub(sent))
	}
	l.mu.Unlock()
	if err != nil {
		return 0, true
	}
	if lease.Granted == 0 {
		l.noteBlocked(ip, sent.Add(lease.Wait))
		return lease.Wait, false
	}
	return 0, true
}

// refusedFromMemory reports, on a request budget, whether ip is to be
// refused without asking the database (see sharedLeasedTake), and the
// wait.
func (l *Limiter) refusedFromMemory(ip netip.Addr) (time.Duration, bool) {
	if l.givesBack {
		return 0, false
	}
	now := l.now()
	l.mu.RLock()
	b := l.buckets[ip]
	var blocked time.Time
	if b != nil {
		blocked = b.blocked
	}
	l.mu.RUnlock()
	if now.Before(blocked) {
		return blocked.Sub(now), true
	}
	return 0, false
}

// noteBlocked remembers that ip's shared bucket has no event to spare
// until until.
func (l *Limiter) noteBlocked(ip netip.Addr, until time.Time) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bucketLocked(ip, now).blocked = until
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
			if now.Sub(b.seen) > 2*l.limit.Per && b.inflight == 0 && !b.leasing {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b, ok := l.buckets[ip]
	if !ok {
		b = &bucket{}
		if l.shared == nil {
			b.lim = rate.NewLimiter(rate.Limit(float64(l.limit.N)/l.limit.Per.Seconds()), l.limit.N)
		}
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
//
// On a shared limiter the attempt spends its event at once, in the shared
// bucket (so attempts under way on every node hold theirs), and a success
// gives it back.
func (l *Limiter) Begin(ctx context.Context, ip netip.Addr) (done func(failed bool), wait time.Duration, ok bool) {
	if l.shared != nil {
		wait, ok := l.sharedTake(ctx, ip)
		if !ok {
			return nil, max(wait, time.Second), false
		}
		return func(failed bool) {
			if !failed {
				// A fault leaves the event spent: the budget errs on the
				// safe side.
				_ = l.shared.ReturnRate(context.WithoutCancel(ctx), l.key(ip), l.budget())
			}
		}, 0, true
	}
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
func (l *Limiter) Take(ctx context.Context, ip netip.Addr) (time.Duration, bool) {
	if l.shared != nil {
		return l.sharedLeasedTake(ctx, ip)
	}
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
//
// A shared limiter asks the database only for an address this node saw
// without an event to spare (a refused Take or Begin) within the wait it
// was told: otherwise it answers zero at once. So an address that spent
// its budget on other nodes passes here until its first refusal on this
// node; the events themselves (Take, Begin) are always counted in the
// database.
func (l *Limiter) Wait(ctx context.Context, ip netip.Addr) time.Duration {
	l.mu.RLock()
	b := l.buckets[ip]
	var blocked time.Time
	if b != nil {
		blocked = b.blocked
	}
	l.mu.RUnlock()
	if b == nil {
		return 0
	}
	now := l.now()
	if l.shared != nil {
		if !now.Before(blocked) {
			return 0
		}
		wait, err := l.shared.RateWait(ctx, l.key(ip), l.budget(), now)
		if err != nil {
			return 0
		}
		l.noteBlocked(ip, now.Add(wait))
		return wait
	}
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

// NewSharedFailures is NewFailures with the counts kept in s, shared by
// every node (see NewShared).
func NewSharedFailures(name string, l Limit, trusted []netip.Prefix, s Shared, now func() time.Time) *Failures {
	lim := NewShared(name, l, s, now)
	lim.givesBack = true
	return &Failures{limiter: lim, proxies: trusted}
}

// Wait reports how long r's client must wait before its next attempt: zero
// while it has failures left. It spends nothing, and for a client that has
// not failed it allocates nothing.
func (f *Failures) Wait(r *http.Request) time.Duration {
	return f.limiter.Wait(r.Context(), f.proxies.ClientIP(r))
}

// Begin admits an attempt of r's client whose outcome is not known yet
// (see Limiter.Begin).
func (f *Failures) Begin(r *http.Request) (done func(failed bool), wait time.Duration, ok bool) {
	return f.limiter.Begin(r.Context(), f.proxies.ClientIP(r))
}

// Failed counts one failure of r's client.
func (f *Failures) Failed(r *http.Request) {
	f.limiter.Take(r.Context(), f.proxies.ClientIP(r))
}
