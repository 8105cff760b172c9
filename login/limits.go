package login

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/torii-idp/torii/login/iplimit"
	"github.com/torii-idp/torii/templates"
)

// Limit is N events per duration Per.
type Limit = iplimit.Limit

// limited wraps the sign-in, code, registration, reset and account-action
// handlers: every
// request spends from the client IP's request budget, and a client IP out
// of its failure budget is refused too. Beyond either: 429 with
// Retry-After.
func (h *Handler) limited(fn func(w http.ResponseWriter, r *http.Request) error) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if wait, ok := h.requests.Take(h.proxies.ClientIP(r)); !ok {
			return h.tooMany(w, wait)
		}
		if wait := h.failures.Wait(r); wait > 0 {
			return h.tooMany(w, wait)
		}
		return fn(w, r)
	}
}

// failed counts one failed attempt (wrong password or code, bad link)
// against the client IP.
func (h *Handler) failed(r *http.Request) {
	h.failures.Failed(r)
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
