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
		if wait, ok := h.requests.Take(r.Context(), h.proxies.ClientIP(r)); !ok {
			return h.tooMany(w, wait)
		}
		if wait := h.failures.Wait(r); wait > 0 {
			return h.tooMany(w, wait)
		}
		return fn(w, r)
	}
}

// failed counts one failed attempt against the client IP after the fact:
// a bad link, whose 256-bit token nobody guesses, so a burst gains
// nothing. Codes and passwords are admitted before they are checked
// (attempt).
func (h *Handler) failed(r *http.Request) {
	h.failures.Failed(r)
}

// attempt admits a password or sign-in code check against the client IP's
// failure budget before the check is made (iplimit.Limiter.Begin), so that
// a burst of parallel attempts cannot all pass a check made before any is
// counted. ok false: the budget is spent, and the caller answers
// tooMany(wait). Otherwise the caller calls done with the outcome: a
// failure spends from the budget, a right password or code does not.
func (h *Handler) attempt(r *http.Request) (done func(failed bool), wait time.Duration, ok bool) {
	return h.failures.Begin(r)
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
