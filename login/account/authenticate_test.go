package account

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

const alicePassword = "correct horse battery"

// aliceService returns a service on a fresh store with a fake clock and one
// user, alice@example.com (username "alice").
func aliceService(t *testing.T, open func(testing.TB) *storage.Store) (*Service, *storage.Store, *storagetest.Clock, *storage.User) {
	t.Helper()
	st := open(t)
	c := newClock()
	s := New(st, Config{Now: c.Now})
	u := mustCreate(t, s, NewUser{Email: "alice@example.com", Username: "alice", Password: alicePassword})
	return s, st, c, u
}

func TestAuthenticate(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		t.Parallel()
		s, st, _, alice := aliceService(t, open)
		ctx := t.Context()
		tests := []struct {
			name, login, password string
			ok                    bool
		}{
			{"email", "alice@example.com", alicePassword, true},
			{"email in upper case", "ALICE@Example.Com", alicePassword, true},
			{"username", "alice", alicePassword, true},
			{"username in another case", " Alice ", alicePassword, true},
			{"wrong password", "alice@example.com", "correct horse batterz", false},
			{"password in another case", "alice", strings.ToUpper(alicePassword), false},
			{"unknown user", "bob@example.com", alicePassword, false},
			{"unknown username", "bob", alicePassword, false},
			{"malformed login", "Alice <alice@example.com>", alicePassword, false},
			{"empty login", "", alicePassword, false},
			{"empty password", "alice", "", false},
			{"10 kB login", strings.Repeat("a", 10_000), alicePassword, false},
			{"10 kB password", "alice", alicePassword + strings.Repeat("x", 10_000), false},
			{"NUL in login", "alice\x00", alicePassword, false},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				u, err := s.Authenticate(ctx, tc.login, tc.password)
				if tc.ok {
					if err != nil || u.ID != alice.ID || u.FailedLogins != 0 {
						t.Fatalf("Authenticate = %+v, %v; want alice", u, err)
					}
					return
				}
				if u != nil || !errors.Is(err, ErrInvalidCredentials) {
					t.Fatalf("Authenticate = %+v, %v; want ErrInvalidCredentials", u, err)
				}
				var le *LockedError
				if errors.As(err, &le) {
					t.Errorf("Authenticate = %v, want no LockedError", err)
				}
				if strings.Contains(err.Error(), "alice") || strings.Contains(err.Error(), "horse") {
					t.Errorf("error %q names the login or password", err)
				}
				// Reset between cases so the wrong ones do not lock alice.
				if err := st.ResetAttempts(ctx, storage.PasswordCounter(alice.ID)); err != nil {
					t.Fatal(err)
				}
			})
		}
	})
}

func TestAuthenticateDisabledAndPasswordless(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		t.Parallel()
		s, st, _, alice := aliceService(t, open)
		ctx := t.Context()
		if _, err := st.DB().NewUpdate().Model((*storage.User)(nil)).Set("disabled = ?", true).Where("id = ?", alice.ID).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if u, err := s.Authenticate(ctx, "alice", alicePassword); u != nil || !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("Authenticate(disabled) = %+v, %v; want ErrInvalidCredentials", u, err)
		}
		if err := st.CreateUser(ctx, &storage.User{ID: "fed", Email: "fed@example.com"}); err != nil {
			t.Fatal(err)
		}
		if u, err := s.Authenticate(ctx, "fed@example.com", ""); u != nil || !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("Authenticate(no password) = %+v, %v; want ErrInvalidCredentials", u, err)
		}
		if err := st.CreateUser(ctx, &storage.User{ID: "bad", Email: "bad@example.com", PasswordHash: "$2a$10$bcrypt"}); err != nil {
			t.Fatal(err)
		}
		_, err := s.Authenticate(ctx, "bad@example.com", "whatever1")
		if err == nil || errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("Authenticate(corrupt hash) = %v, want a server error", err)
		}
	})
}

func failures(t *testing.T, s *Service, id string) (int, time.Time) {
	t.Helper()
	u, err := s.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return u.FailedLogins, u.LockedUntil.Time
}

func TestLockoutSequence(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		t.Parallel()
		s, _, c, alice := aliceService(t, open)
		ctx := t.Context()
		wrong := func(login string) error {
			t.Helper()
			u, err := s.Authenticate(ctx, login, "wrong password")
			if u != nil || !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("Authenticate(wrong) = %+v, %v", u, err)
			}
			return err
		}
		// Failures count per account, whatever name and case were typed.
		for _, login := range []string{"alice", "ALICE", "alice@example.com", "Alice@Example.com"} {
			wrong(login)
		}
		if n, until := failures(t, s, alice.ID); n != 4 || !until.IsZero() {
			t.Fatalf("after 4 failures: count %d, locked until %v; want 4, not locked", n, until)
		}
		start := c.Now()
		wrong("alice")
		n, until := failures(t, s, alice.ID)
		if n != 5 || !until.Equal(start.Add(time.Minute)) {
			t.Fatalf("after 5 failures: count %d, locked until %v; want 5, %v", n, until, start.Add(time.Minute))
		}

		// Locked: even the right password fails, with the unlock time, and
		// the attempt is not counted.
		c.Advance(30 * time.Second)
		u, err := s.Authenticate(ctx, "alice", alicePassword)
		var le *LockedError
		if u != nil || !errors.Is(err, ErrInvalidCredentials) || !errors.As(err, &le) || !le.Until.Equal(until) {
			t.Fatalf("Authenticate(right, locked) = %+v, %v; want LockedError until %v", u, err, until)
		}
		wrong("alice")
		if n, _ := failures(t, s, alice.ID); n != 5 {
			t.Errorf("attempts while locked were counted: %d, want 5", n)
		}

		// Each failure after a lock expires doubles it, up to the cap.
		for i, want := range []time.Duration{2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour} {
			c.Advance(time.Hour + time.Second)
			now := c.Now()
			wrong("alice")
			n, until := failures(t, s, alice.ID)
			if n != 6+i || !until.Equal(now.Add(want)) {
				t.Fatalf("failure %d: count %d, lock %v; want %d, %v", 6+i, n, until.Sub(now), 6+i, want)
			}
		}

		// After the lock, the right password works and resets everything.
		c.Advance(time.Hour + time.Second)
		u, err = s.Authenticate(ctx, "alice@example.com", alicePassword)
		if err != nil || u.ID != alice.ID {
			t.Fatalf("Authenticate(right, lock expired) = %+v, %v", u, err)
		}
		if n, until := failures(t, s, alice.ID); n != 0 || !until.IsZero() {
			t.Errorf("after success: count %d, locked until %v; want 0, none", n, until)
		}
		// And the count starts again from zero.
		for range 4 {
			wrong("alice")
		}
		if n, until := failures(t, s, alice.ID); n != 4 || !until.IsZero() {
			t.Errorf("after 4 new failures: count %d, locked until %v; want 4, not locked", n, until)
		}
	})
}

// burstProbe makes n parallel attempts all look the account up before any
// is counted, and every admitted one wait, before it compares, until every
// attempt has been admitted or refused; it counts the comparisons.
type burstProbe struct {
	lookedUp, decided sync.WaitGroup
	compared          atomic.Int32
}

func installBurstProbe(s *Service, n int) *burstProbe {
	p := new(burstProbe)
	p.lookedUp.Add(n)
	p.decided.Add(n)
	s.testHook = func(stage string) {
		switch stage {
		case "looked-up":
			p.lookedUp.Done()
			p.lookedUp.Wait()
		case "counted", "refused":
			p.decided.Done()
		case "compared":
			p.compared.Add(1)
			p.decided.Wait()
		}
	}
	return p
}

// A burst of parallel attempts on one account (SECURITY 46): at most the
// threshold's worth is compared, right password or not; every later one is
// the same *LockedError; the count stops at the threshold, and the burst
// locks the account once, for the first lock's length (the back-off grows
// per lock, not per failure counted in one burst).
func TestLockoutBurst(t *testing.T) {
	tests := []struct {
		name  string
		n     int
		right func(i int) bool
	}{
		{"50 wrong", 50, func(int) bool { return false }},
		{"150 wrong", 150, func(int) bool { return false }},
		{"50 right", 50, func(int) bool { return true }},
		{"150 with every tenth right", 150, func(i int) bool { return i%10 == 0 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
				t.Parallel()
				s, _, c, alice := aliceService(t, open)
				p := installBurstProbe(s, tc.n)
				errs := make([]error, tc.n)
				var wg sync.WaitGroup
				for i := range tc.n {
					pw := "wrong password"
					if tc.right(i) {
						pw = alicePassword
					}
					wg.Go(func() { _, errs[i] = s.Authenticate(t.Context(), "alice", pw) })
				}
				wg.Wait()
				s.testHook = nil
				threshold := s.cfg.LockoutThreshold
				if got := int(p.compared.Load()); got > threshold {
					t.Errorf("%d passwords compared in a burst of %d, want ≤ %d", got, tc.n, threshold)
				}
				var ok, wrong, locked int
				var until time.Time
				for i, err := range errs {
					var le *LockedError
					switch {
					case err == nil:
						ok++
						if !tc.right(i) {
							t.Errorf("attempt %d succeeded with a wrong password", i)
						}
					case errors.As(err, &le):
						locked++
						if !until.IsZero() && !le.Until.Equal(until) {
							t.Errorf("attempt %d locked until %v, another until %v: answers differ", i, le.Until, until)
						}
						until = le.Until
					case errors.Is(err, ErrInvalidCredentials):
						wrong++
					default:
						t.Errorf("attempt %d = %v", i, err)
					}
				}
				if ok+wrong != threshold || locked != tc.n-threshold {
					t.Errorf("%d succeeded, %d wrong, %d locked; want %d compared and %d locked", ok, wrong, locked, threshold, tc.n-threshold)
				}
				if want := c.Now().Add(time.Minute); !until.Equal(want) {
					t.Errorf("locked until %v, want %v (the first lock)", until, want)
				}
				u, err := s.Get(t.Context(), alice.ID)
				if err != nil {
					t.Fatal(err)
				}
				if ok == 0 && (u.FailedLogins != threshold || u.Lockouts != 1 || !u.LockedUntil.Time.Equal(until)) {
					t.Errorf("after the burst: %d failures, %d locks, locked until %v; want %d, 1, %v", u.FailedLogins, u.Lockouts, u.LockedUntil.Time, threshold, until)
				}
			})
		})
	}
}

// Past the threshold nothing is compared and the right password gets the
// same answer as a wrong one.
func TestLockedAnswersAlike(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		t.Parallel()
		s, _, _, _ := aliceService(t, open)
		ctx := t.Context()
		for range s.cfg.LockoutThreshold {
			if _, err := s.Authenticate(ctx, "alice", "wrong password"); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatal(err)
			}
		}
		p := installBurstProbe(s, 50)
		errs := make([]error, 50)
		var wg sync.WaitGroup
		for i := range 50 {
			pw := "wrong password"
			if i%2 == 0 {
				pw = alicePassword
			}
			wg.Go(func() { _, errs[i] = s.Authenticate(ctx, "alice", pw) })
		}
		wg.Wait()
		s.testHook = nil
		if got := p.compared.Load(); got != 0 {
			t.Errorf("%d passwords compared on a locked account, want 0", got)
		}
		for i, err := range errs {
			if err == nil || err.Error() != errs[0].Error() {
				t.Errorf("attempt %d = %v, attempt 0 = %v; want the same LockedError", i, err, errs[0])
			}
			var le, le0 *LockedError
			if !errors.As(err, &le) || !errors.As(errs[0], &le0) || !le.Until.Equal(le0.Until) {
				t.Errorf("attempt %d = %v, want a LockedError until the same time as attempt 0", i, err)
			}
		}
	})
}

// Unknown login names are admitted and locked like accounts, bursts too.
func TestLockoutBurstUnknownLogin(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		t.Parallel()
		s, _, c, _ := aliceService(t, open)
		const n = 50
		installBurstProbe(s, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { _, errs[i] = s.Authenticate(t.Context(), "nobody@example.com", "wrong password") })
		}
		wg.Wait()
		s.testHook = nil
		var locked int
		for _, err := range errs {
			var le *LockedError
			if errors.As(err, &le) {
				locked++
				if !le.Until.Equal(c.Now().Add(time.Minute)) {
					t.Errorf("unknown login locked until %v, want the first lock", le.Until)
				}
			} else if !errors.Is(err, ErrInvalidCredentials) {
				t.Errorf("attempt = %v", err)
			}
		}
		if locked != n-s.cfg.LockoutThreshold {
			t.Errorf("%d of %d attempts on an unknown login refused as locked, want %d", locked, n, n-s.cfg.LockoutThreshold)
		}
	})
}

// Unknown users take as long as wrong passwords (a dummy hash is checked):
// over 100 pairs of tries the median difference is under 25 ms (SECURITY 40),
// or a tenth of one hash's median when the machine is so loaded that a
// hash takes over 250 ms (the bound scales with the noise, as the medians
// do); and an unknown user costs at least 0.8 of one argon2id hash, so
// the test fails if the dummy hash is skipped, however fast the machine.
func TestAuthenticateTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test")
	}
	st := storagetest.NewSQLite(t)
	s := New(st, Config{LockoutThreshold: 1000})
	mustCreate(t, s, NewUser{Email: "alice@example.com", Password: alicePassword})
	tries := 100
	if raceEnabled {
		tries = 40 // each hash takes about 75 ms: keep the test under 20 s
	}
	var unknown, wrong, hash []time.Duration
	for range tries {
		start := time.Now()
		if _, err := s.Authenticate(t.Context(), "nobody@example.com", "wrong password"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatal(err)
		}
		unknown = append(unknown, time.Since(start))
		start = time.Now()
		if _, err := s.Authenticate(t.Context(), "alice@example.com", "wrong password"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatal(err)
		}
		wrong = append(wrong, time.Since(start))
		// One hash measured between every pair, so that load from other
		// packages' tests weighs on all three medians alike.
		hash = append(hash, HashCost())
	}
	// The difference is taken pair by pair (the two tries of a pair run
	// back to back, under the same load from other packages' tests), then
	// its median: a burst of load during some pairs does not tilt it.
	// (Before the medians, which sort their slices.)
	diffs := make([]time.Duration, tries)
	for i := range tries {
		diffs[i] = unknown[i] - wrong[i]
	}
	md := median(diffs)
	mu, mw, mh := median(unknown), median(wrong), median(hash)
	t.Logf("median unknown user %v, wrong password %v, one hash %v; median difference per pair %v", mu, mw, mh, md)
	if d, bound := md.Abs(), max(25*time.Millisecond, mh/10); d > bound {
		t.Errorf("median unknown user %v, wrong password %v: a pair differs by %v (median), want < %v", mu, mw, d, bound)
	}
	if min := mh * 8 / 10; mu < min {
		t.Errorf("median unknown user %v < 0.8 × one argon2id hash (%v): no dummy hash is checked", mu, mh)
	}
}

// barrier makes n goroutines wait at a named stage until all have reached it.
func barrier(n int, stages ...string) func(string) {
	wgs := map[string]*sync.WaitGroup{}
	for _, s := range stages {
		wg := new(sync.WaitGroup)
		wg.Add(n)
		wgs[s] = wg
	}
	return func(stage string) {
		if wg := wgs[stage]; wg != nil {
			wg.Done()
			wg.Wait()
		}
	}
}
