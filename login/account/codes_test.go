package account

import (
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/torii-idp/torii/login/notify"
	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

// forEachClocked runs fn on every backend with a fresh store and a service
// that share one settable clock, so that times the store writes (created_at,
// used_at) and times the service compares agree. cfg's Notifier, Issuer and
// Now are set here.
func forEachClocked(t *testing.T, cfg Config, fn func(t *testing.T, e *flowEnv)) {
	t.Helper()
	backends := []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "torii.db") }},
		{"postgres", func(t *testing.T) string { return storagetest.PostgresURL(t) }},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			clock := storagetest.NewClock(time.Now().UTC().Truncate(time.Second))
			st, err := storage.Open(t.Context(), b.url(t), storage.Options{Now: clock.Now})
			if err != nil {
				t.Fatalf("storage.Open: %v", err)
			}
			t.Cleanup(func() { st.Close() })
			if _, err := st.Migrate(t.Context()); err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			rec := &recorder{}
			c := cfg
			c.Notifier, c.Issuer, c.Now = rec, "https://id.example.test", clock.Now
			fn(t, &flowEnv{s: New(st, c), store: st, rec: rec, clock: clock})
		})
	}
}

// wrongFor returns a well-formed code other than code.
func wrongFor(code string) string {
	if code == "000000" {
		return "111111"
	}
	return "000000"
}

// entryProbe makes n parallel code entries wait until every one of them has
// read the live code (so that none is counted before all are under way), and
// counts how many entries are compared with the code.
type entryProbe struct {
	compared atomic.Int32
	arrived  sync.WaitGroup
	all      chan struct{}
}

// install hooks a probe for n entries into s; remove it with s.testHook = nil
// once the entries are done.
func installProbe(s *Service, n int) *entryProbe {
	p := &entryProbe{all: make(chan struct{})}
	p.arrived.Add(n)
	go func() { p.arrived.Wait(); close(p.all) }()
	s.testHook = func(stage string) {
		switch stage {
		case "code-read":
			p.arrived.Done()
			select {
			case <-p.all:
			case <-time.After(10 * time.Second): // an entry failed early: go on
			}
		case "code-compared":
			p.compared.Add(1)
		}
	}
	return p
}

// parallel runs n calls of fn at once and returns their errors.
func parallel(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = fn(i) })
	}
	wg.Wait()
	return errs
}

// tally counts errors by kind: nil, ErrCodeInvalid, ErrCodeDead,
// *LockedError; anything else fails t.
func tally(t *testing.T, errs []error) (ok, invalid, dead, locked int) {
	t.Helper()
	for i, err := range errs {
		var le *LockedError
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrCodeInvalid):
			invalid++
		case errors.Is(err, ErrCodeDead):
			dead++
		case errors.As(err, &le):
			locked++
		default:
			t.Errorf("entry %d = %v, want nil, ErrCodeInvalid, ErrCodeDead or a LockedError", i, err)
		}
	}
	return ok, invalid, dead, locked
}

func attempts(t *testing.T, st *storage.Store, id string) int {
	t.Helper()
	c, err := st.OneTimeCodeByID(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c.Attempts
}

// noLimits lifts the resend limits and the code lockout, so that a test can
// send many codes and enter many wrong ones.
var noLimits = Config{ResendInterval: -1, ResendMax: 1000, OTPLockoutThreshold: 1000}

// Parallel entries of a sign-in code: no more than OTPMaxAttempts (5) are
// ever compared with it, the right code after the fifth wrong entry fails,
// and of several parallel right entries exactly one succeeds.
func TestSignInCodeParallelEntries(t *testing.T) {
	const n = 30
	tests := []struct {
		name string
		// before is how many wrong entries are made one by one first.
		before int
		// right reports whether burst entry i carries the right code.
		right func(i int) bool
		// check judges the burst's outcome.
		check func(t *testing.T, ok, invalid, dead, locked int, rightOK bool)
	}{
		{
			name: "30 wrong", right: func(int) bool { return false },
			check: func(t *testing.T, ok, invalid, dead, locked int, _ bool) {
				// Entries 1–4 are wrong, the 5th wrong one kills the code,
				// the other 25 are refused uncompared.
				if ok != 0 || invalid != 4 || dead != n-4 || locked != 0 {
					t.Errorf("ok %d, invalid %d, dead %d, locked %d; want 0, 4, %d, 0", ok, invalid, dead, locked, n-4)
				}
			},
		},
		{
			name: "4 wrong, then 29 wrong and the right one", before: 4, right: func(i int) bool { return i == n/2 },
			check: func(t *testing.T, ok, invalid, dead, locked int, rightOK bool) {
				// One entry is left: it is either the right one (success)
				// or a wrong one (the code dies); everything else is dead.
				if ok > 1 || invalid != 0 || locked != 0 || ok+dead != n || (ok == 1) != rightOK {
					t.Errorf("ok %d (right code ok: %v), invalid %d, dead %d, locked %d; want at most the right code to succeed and the rest dead",
						ok, rightOK, invalid, dead, locked)
				}
			},
		},
		{
			name: "5 wrong, then 30 right", before: 5, right: func(int) bool { return true },
			check: func(t *testing.T, ok, invalid, dead, locked int, _ bool) {
				if ok != 0 || dead != n {
					t.Errorf("ok %d, invalid %d, dead %d, locked %d; want all %d dead", ok, invalid, dead, locked, n)
				}
			},
		},
		{
			name: "30 right", right: func(int) bool { return true },
			check: func(t *testing.T, ok, invalid, dead, locked int, _ bool) {
				if ok != 1 || dead != n-1 {
					t.Errorf("ok %d, invalid %d, dead %d, locked %d; want exactly 1 success and %d dead", ok, invalid, dead, locked, n-1)
				}
			},
		},
	}
	forEachClocked(t, noLimits, func(t *testing.T, e *flowEnv) {
		ctx := t.Context()
		u := e.user(t, "par@example.com", "")
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				binding := "attempt-" + string(rune('a'+i))
				if _, err := e.s.StartOTP(ctx, u.ID, binding, notify.Email); err != nil {
					t.Fatal(err)
				}
				code := codeIn(t, e.rec.last(t, u.Email))
				c, err := e.store.LiveOneTimeCode(ctx, u.ID, purposeLogin, binding)
				if err != nil {
					t.Fatal(err)
				}
				for j := range tc.before {
					if err := e.s.CheckOTP(ctx, u.ID, binding, wrongFor(code)); j < 4 && !errors.Is(err, ErrCodeInvalid) || j == 4 && !errors.Is(err, ErrCodeDead) {
						t.Fatalf("wrong entry %d = %v", j+1, err)
					}
				}
				p := installProbe(e.s, n)
				errs := parallel(n, func(i int) error {
					entry := wrongFor(code)
					if tc.right(i) {
						entry = code
					}
					return e.s.CheckOTP(ctx, u.ID, binding, entry)
				})
				e.s.testHook = nil
				ok, invalid, dead, locked := tally(t, errs)
				rightOK := false
				for i, err := range errs {
					if err == nil && tc.right(i) {
						rightOK = true
					}
					if err == nil && !tc.right(i) {
						t.Errorf("entry %d succeeded with a wrong code", i)
					}
				}
				tc.check(t, ok, invalid, dead, locked, rightOK)
				compared := int(p.compared.Load())
				if got := attempts(t, e.store, c.ID); got > 5 || got != tc.before+compared {
					t.Errorf("attempts = %d with %d compared in the burst after %d; want ≤ 5 and every attempt compared once", got, compared, tc.before)
				}
				if tc.before+compared > 5 {
					t.Errorf("%d entries compared with one code, want ≤ 5", tc.before+compared)
				}
				if ok == 0 {
					// Whatever happened, the code is now unusable.
					if err := e.s.CheckOTP(ctx, u.ID, binding, code); !errors.Is(err, ErrCodeDead) {
						t.Errorf("right code after the burst = %v, want ErrCodeDead", err)
					}
				}
				if got := attempts(t, e.store, c.ID); got > 5 {
					t.Errorf("attempts = %d, want ≤ 5", got)
				}
			})
		}
	})
}

// Parallel wrong codes spread over several sign-in codes (an attacker with
// the password and several half-signed sessions) do not overshoot the code
// lockout: no more than OTPLockoutThreshold entries are compared, every
// entry is counted, and the account ends up locked.
func TestCodeLockoutParallel(t *testing.T) {
	cfg := Config{ResendInterval: -1, ResendMax: 1000} // the default lockout: 10 wrong codes
	forEachClocked(t, cfg, func(t *testing.T, e *flowEnv) {
		ctx := t.Context()
		u := e.user(t, "lock@example.com", "")
		const codes, perCode = 6, 5
		right := make([]string, codes)
		for i := range codes {
			if _, err := e.s.StartOTP(ctx, u.ID, string(rune('a'+i)), notify.Email); err != nil {
				t.Fatal(err)
			}
			right[i] = codeIn(t, e.rec.last(t, u.Email))
		}
		p := installProbe(e.s, codes*perCode)
		errs := parallel(codes*perCode, func(i int) error {
			return e.s.CheckOTP(ctx, u.ID, string(rune('a'+i%codes)), wrongFor(right[i%codes]))
		})
		e.s.testHook = nil
		ok, _, _, locked := tally(t, errs)
		threshold := e.s.cfg.OTPLockoutThreshold
		if ok != 0 || locked < codes*perCode-threshold {
			t.Errorf("%d succeeded and %d were refused as locked; want 0 and at least %d", ok, locked, codes*perCode-threshold)
		}
		if c := int(p.compared.Load()); c > threshold {
			t.Errorf("%d wrong codes compared in the burst, want ≤ %d", c, threshold)
		}
		got, err := e.store.User(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		// Only admitted entries are counted, and the burst made one lock of
		// the first lock's length: the back-off grows per lock.
		if got.FailedOTPs != threshold || got.OTPLockouts != 1 || !got.OTPLockedUntil.Time.Equal(e.clock.Now().Add(time.Minute)) {
			t.Errorf("failed_otps %d, %d locks, locked until %v; want %d, 1 lock, 1 minute", got.FailedOTPs, got.OTPLockouts, got.OTPLockedUntil, threshold)
		}
		if got.FailedLogins != 0 || got.LockedUntil.Valid {
			t.Errorf("failed_logins = %d, locked until %v; want 0 and no password lock: codes count apart from passwords", got.FailedLogins, got.LockedUntil)
		}
		// No new code is sent while the lock lasts, and a code sent before
		// it is refused even when right.
		var le *LockedError
		if _, err := e.s.StartOTP(ctx, u.ID, "z", notify.Email); !errors.As(err, &le) || !le.Until.Equal(got.OTPLockedUntil.Time) {
			t.Errorf("StartOTP while locked = %v, want a LockedError until %v", err, got.OTPLockedUntil.Time)
		}
		if err := e.s.CheckOTP(ctx, u.ID, "a", right[0]); !errors.As(err, &le) || !le.Until.Equal(got.OTPLockedUntil.Time) {
			t.Errorf("right code while locked = %v, want a LockedError until %v", err, got.OTPLockedUntil.Time)
		}
	})
}

// The 10th consecutive wrong code locks the account; the right code on the
// 10th entry does not (it is admitted, like the 5th password).
func TestCodeLockoutThreshold(t *testing.T) {
	tests := []struct {
		name       string
		tenthRight bool
		want       error
	}{
		{"10th entry wrong", false, &LockedError{}},
		{"10th entry right", true, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			forEachClocked(t, Config{ResendInterval: -1, ResendMax: 1000}, func(t *testing.T, e *flowEnv) {
				ctx := t.Context()
				u := e.user(t, "ten@example.com", "")
				var code string
				for i := range 10 {
					binding := string(rune('a' + i/5))
					if i%5 == 0 {
						if _, err := e.s.StartOTP(ctx, u.ID, binding, notify.Email); err != nil {
							t.Fatal(err)
						}
						code = codeIn(t, e.rec.last(t, u.Email))
					}
					entry := wrongFor(code)
					if i == 9 && tc.tenthRight {
						entry = code
					}
					err := e.s.CheckOTP(ctx, u.ID, binding, entry)
					var le *LockedError
					switch {
					case i < 9 && i%5 < 4 && !errors.Is(err, ErrCodeInvalid),
						i < 9 && i%5 == 4 && !errors.Is(err, ErrCodeDead):
						t.Fatalf("wrong entry %d = %v", i+1, err)
					case i == 9 && tc.want == nil && err != nil,
						i == 9 && tc.want != nil && !errors.As(err, &le):
						t.Fatalf("10th entry = %v, want %v", err, tc.want)
					}
				}
				got, _ := e.store.User(ctx, u.ID)
				if tc.tenthRight && (got.FailedOTPs != 0 || got.OTPLockouts != 0 || got.OTPLockedUntil.Valid) {
					t.Errorf("after the right code: failed_otps %d, %d locks, locked %v; want 0 and no lock", got.FailedOTPs, got.OTPLockouts, got.OTPLockedUntil)
				}
				if !tc.tenthRight && (got.FailedOTPs != 10 || !got.OTPLockedUntil.Time.Equal(e.clock.Now().Add(time.Minute))) {
					t.Errorf("after 10 wrong codes: failed_otps %d, locked until %v; want 10 and 1 minute", got.FailedOTPs, got.OTPLockedUntil)
				}
				if got.LockedUntil.Valid {
					t.Errorf("wrong codes set the password lock (until %v): the code step locks apart", got.LockedUntil)
				}
			})
		})
	}
}

// Email and phone verification codes have the same atomic attempt limit as
// sign-in codes, and so does the decoy code of a taken address.
func TestVerificationCodesParallelEntries(t *testing.T) {
	const n = 30
	forEachClocked(t, noLimits, func(t *testing.T, e *flowEnv) {
		ctx := t.Context()
		t.Run("email, 30 wrong", func(t *testing.T) {
			ticket, err := e.s.Register(ctx, NewUser{Email: "mia@example.com", Password: "a quiet walrus sings"})
			if err != nil {
				t.Fatal(err)
			}
			code := codeIn(t, e.rec.last(t, "mia@example.com"))
			p := installProbe(e.s, n)
			errs := parallel(n, func(int) error {
				_, err := e.s.VerifyEmailCode(ctx, ticket, wrongFor(code))
				return err
			})
			e.s.testHook = nil
			if ok, invalid, dead, _ := tally(t, errs); ok != 0 || invalid != 4 || dead != n-4 {
				t.Errorf("ok %d, invalid %d, dead %d; want 0, 4, %d", ok, invalid, dead, n-4)
			}
			if c := p.compared.Load(); c != 5 {
				t.Errorf("%d entries compared, want 5", c)
			}
			if _, err := e.s.VerifyEmailCode(ctx, ticket, code); !errors.Is(err, ErrCodeDead) {
				t.Errorf("right code after 5 wrong = %v, want ErrCodeDead", err)
			}
			u, _ := e.store.UserByLogin(ctx, "mia@example.com")
			if u.EmailVerified {
				t.Error("email verified by a dead code")
			}
		})
		t.Run("email, 30 right", func(t *testing.T) {
			ticket, err := e.s.Register(ctx, NewUser{Email: "ned@example.com", Password: "a quiet walrus sings"})
			if err != nil {
				t.Fatal(err)
			}
			code := codeIn(t, e.rec.last(t, "ned@example.com"))
			installProbe(e.s, n)
			errs := parallel(n, func(int) error {
				_, err := e.s.VerifyEmailCode(ctx, ticket, code)
				return err
			})
			e.s.testHook = nil
			if ok, _, dead, _ := tally(t, errs); ok != 1 || dead != n-1 {
				t.Errorf("ok %d, dead %d; want exactly 1 success and %d dead", ok, dead, n-1)
			}
		})
		t.Run("phone, 30 wrong then right", func(t *testing.T) {
			u := e.user(t, "oli@example.com", "")
			if _, err := e.s.StartPhoneVerification(ctx, u.ID, "+15557770002"); err != nil {
				t.Fatal(err)
			}
			code := codeIn(t, e.rec.last(t, "+15557770002"))
			p := installProbe(e.s, n)
			errs := parallel(n, func(int) error { return e.s.VerifyPhone(ctx, u.ID, wrongFor(code)) })
			e.s.testHook = nil
			if ok, invalid, dead, _ := tally(t, errs); ok != 0 || invalid != 4 || dead != n-4 {
				t.Errorf("ok %d, invalid %d, dead %d; want 0, 4, %d", ok, invalid, dead, n-4)
			}
			if c := p.compared.Load(); c != 5 {
				t.Errorf("%d entries compared, want 5", c)
			}
			if err := e.s.VerifyPhone(ctx, u.ID, code); !errors.Is(err, ErrCodeDead) {
				t.Errorf("right code after 5 wrong = %v, want ErrCodeDead", err)
			}
		})
		t.Run("phone, 30 right", func(t *testing.T) {
			u := e.user(t, "pia@example.com", "")
			if _, err := e.s.StartPhoneVerification(ctx, u.ID, "+15557770003"); err != nil {
				t.Fatal(err)
			}
			code := codeIn(t, e.rec.last(t, "+15557770003"))
			installProbe(e.s, n)
			errs := parallel(n, func(int) error { return e.s.VerifyPhone(ctx, u.ID, code) })
			e.s.testHook = nil
			if ok, _, dead, _ := tally(t, errs); ok != 1 || dead != n-1 {
				t.Errorf("ok %d, dead %d; want exactly 1 success and %d dead", ok, dead, n-1)
			}
			if got, _ := e.store.User(ctx, u.ID); got.Phone != "+15557770003" || !got.PhoneVerified {
				t.Errorf("phone %q verified %v, want the new number verified", got.Phone, got.PhoneVerified)
			}
		})
		t.Run("decoy, 30 entries", func(t *testing.T) {
			ticket, err := e.s.Register(ctx, NewUser{Email: "mia@example.com", Password: "another quiet walrus"})
			if err != nil {
				t.Fatal(err)
			}
			errs := parallel(n, func(i int) error {
				_, err := e.s.VerifyEmailCode(ctx, ticket, "123456")
				return err
			})
			if ok, invalid, dead, _ := tally(t, errs); ok != 0 || invalid != 4 || dead != n-4 {
				t.Errorf("ok %d, invalid %d, dead %d; want 0, 4, %d (as for a real code)", ok, invalid, dead, n-4)
			}
			tok, err := e.store.ActionToken(ctx, hashToken(ticket), tokenRegistration)
			if err != nil {
				t.Fatal(err)
			}
			if got := attempts(t, e.store, tok.CodeID); got != 5 {
				t.Errorf("decoy attempts = %d, want 5", got)
			}
		})
	})
}
