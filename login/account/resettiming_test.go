package account

import (
	"slices"
	"testing"
	"time"

	"github.com/torii-idp/torii/login/notify"
	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

// median returns the median of ds (which it sorts).
func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// Forgot-password for an unknown address does the work of a known one (a
// count, a render, a write transaction), so timing does not tell whether
// the address has an account (SECURITY 41). The outbox is the real one, so
// the known path's mail is a real insert.
func TestRequestPasswordResetTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test")
	}
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		st := open(t)
		outbox, err := notify.New(st, notify.Config{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		// No cap: every known request mails, the costliest path.
		s := New(st, Config{Notifier: outbox, Issuer: "https://id.example.test", ResendMax: 1 << 30})
		mustCreate(t, s, NewUser{Email: "tess@example.com", Password: "a quiet walrus sings"})
		const tries = 100
		var unknown, known []time.Duration
		measure := func(email string) time.Duration {
			start := time.Now()
			if err := s.RequestPasswordReset(t.Context(), email); err != nil {
				t.Fatal(err)
			}
			return time.Since(start)
		}
		for i := range tries + 10 {
			u, k := measure("nobody@example.com"), measure("tess@example.com")
			if i >= 10 { // warm-up
				unknown, known = append(unknown, u), append(known, k)
			}
		}
		mu, mk := median(unknown), median(known)
		t.Logf("median unknown address %v, known address %v", mu, mk)
		if d := (mu - mk).Abs(); d > 25*time.Millisecond {
			t.Errorf("median unknown address %v, known address %v: differ by %v, want < 25ms", mu, mk, d)
		}
		// The unknown path must do the known path's database work, not
		// just answer fast: at least half its time.
		if mu < mk/2 {
			t.Errorf("median unknown address %v < half the known address's %v: the unknown path skips work", mu, mk)
		}
	})
}
