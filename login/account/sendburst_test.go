package account

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/torii-idp/torii/login/notify"
)

// A burst of parallel code requests for one account (as from several
// nodes at once) sends no more codes than the cap: the limits' check and
// the record of the send are one transaction under a lock on the account
// and the address (limitedSend), not a count read before any of them
// was written.
func TestSendLimitsHoldUnderABurst(t *testing.T) {
	forEachClocked(t, Config{}, func(t *testing.T, e *flowEnv) {
		ctx := t.Context()
		u := e.user(t, "burst@example.com", "")
		max := e.s.cfg.ResendMax
		const burst = 12
		var (
			wg              sync.WaitGroup
			mu              sync.Mutex
			started, capped int
			others          []error
		)
		for i := range burst {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// A binding per request: each is the first code of its
				// sign-in attempt, held back by the caps only.
				_, err := e.s.StartOTP(ctx, u.ID, fmt.Sprintf("attempt-%d", i), notify.Email)
				var rl *RateLimitError
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					started++
				case errors.As(err, &rl):
					capped++
				default:
					others = append(others, err)
				}
			}()
		}
		wg.Wait()
		if len(others) > 0 {
			t.Fatalf("unexpected errors: %v", others)
		}
		if started != max || capped != burst-max {
			t.Errorf("%d parallel requests: %d codes sent, %d refused; want %d sent (the cap) and %d refused", burst, started, capped, max, burst-max)
		}
		if n := e.rec.count(); n != max {
			t.Errorf("%d messages enqueued, want %d", n, max)
		}
	})
}
