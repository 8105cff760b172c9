package login

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/torii-idp/torii/templates"
)

// Limit is N events per duration Per.
type Limit struct {
	N   int
	Per time.Duration
}

// ipLimiter keeps a token bucket per client IP, in memory: limits are per
// node (documented in the README). Idle buckets are forgotten.
type ipLimiter struct {
	limit Limit
	now   func() time.Time

	mu      sync.Mutex
	buckets map[netip.Addr]*bucket
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
	// inflight counts attempts admitted by begin whose outcome is not
	// known yet; guarded by ipLimiter.mu.
	inflight int
}

func newIPLimiter(l Limit, now func() time.Time) *ipLimiter {
	return &ipLimiter{limit: l, now: now, buckets: map[netip.Addr]*bucket{}}
}

// get returns ip's token bucket, creating a full one.
func (l *ipLimiter) get(ip netip.Addr) *rate.Limiter {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bucketLocked(ip, now).lim
}

// bucketLocked returns ip's bucket, creating a full one, and forgets idle
// buckets now and then; l.mu is held.
func (l *ipLimiter) bucketLocked(ip netip.Addr, now time.Time) *bucket {
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

// take spends one event; when none is left it returns how long to wait.
func (l *ipLimiter) take(ip netip.Addr) (time.Duration, bool) {
	lim := l.get(ip)
	now := l.now()
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, false
	}
	return 0, true
}

// begin admits one attempt whose outcome is not known yet (a password or
// code about to be checked): it is admitted only while the bucket holds a
// token for it and for every attempt still under way, so a burst of
// parallel attempts cannot all pass a check made before any is counted.
// The caller calls done once the outcome is known: a failure spends a
// token, a success spends none. When no token is left it returns how long
// to wait, and done is nil.
func (l *ipLimiter) begin(ip netip.Addr) (done func(failed bool), wait time.Duration, ok bool) {
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

// wait reports, without spending, how long until an event is allowed.
func (l *ipLimiter) wait(ip netip.Addr) time.Duration {
	lim := l.get(ip)
	now := l.now()
	if lim.TokensAt(now) >= 1 {
		return 0
	}
	r := lim.ReserveN(now, 1)
	d := r.DelayFrom(now)
	r.CancelAt(now)
	return d
}

// clientIP is the address of the browser: the TCP peer, or, when the peer
// is a trusted proxy, the nearest untrusted address in X-Forwarded-For.
func (h *Handler) clientIP(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.IPv4Unspecified()
	}
	peer = peer.Unmap()
	if !h.trusted(peer) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		a = a.Unmap()
		if !h.trusted(a) {
			return a
		}
		peer = a
	}
	return peer
}

func (h *Handler) trusted(a netip.Addr) bool {
	for _, p := range h.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// limited wraps the sign-in, code, registration, reset and account-action
// handlers: every
// request spends from the client IP's request budget, and a client IP out
// of its failure budget is refused too. Beyond either: 429 with
// Retry-After.
func (h *Handler) limited(fn func(w http.ResponseWriter, r *http.Request) error) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		ip := h.clientIP(r)
		if wait, ok := h.requests.take(ip); !ok {
			return h.tooMany(w, wait)
		}
		if wait := h.failures.wait(ip); wait > 0 {
			return h.tooMany(w, wait)
		}
		return fn(w, r)
	}
}

// failed counts one failed attempt (bad link, wrong verification code)
// against the client IP, after the fact.
func (h *Handler) failed(r *http.Request) {
	h.failures.take(h.clientIP(r))
}

// attempt admits a password or sign-in code check against the client IP's
// failure budget before the check is made (ipLimiter.begin), so that a
// burst of parallel attempts cannot all pass a check made before any is
// counted. ok false: the budget is spent, and the caller answers
// tooMany(wait). Otherwise the caller calls done with the outcome: a
// failure spends from the budget, a right password or code does not.
func (h *Handler) attempt(r *http.Request) (done func(failed bool), wait time.Duration, ok bool) {
	return h.failures.begin(h.clientIP(r))
}

// tooMany answers 429 with Retry-After and a page saying when to retry.
func (h *Handler) tooMany(w http.ResponseWriter, wait time.Duration) error {
	secs := int(math.Ceil(wait.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	return h.render(w, http.StatusTooManyRequests, "error.html", templates.ErrorPage{
		Title:   "Too many attempts",
		Message: "Too many attempts from your network. Wait " + humanWait(wait) + " and try again.",
	})
}

// humanWait renders a wait like "30 seconds" or "4 minutes".
func humanWait(d time.Duration) string {
	if d < 50*time.Second {
		s := max(int(math.Ceil(d.Seconds())), 1)
		if s == 1 {
			return "1 second"
		}
		return strconv.Itoa(s) + " seconds"
	}
	m := int(math.Ceil(d.Minutes()))
	if m == 1 {
		return "1 minute"
	}
	return strconv.Itoa(m) + " minutes"
}
