package storagetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/torii-idp/torii/storage"
)

// lockFor is the back-off the lockout tests use: the n-th lock of a run
// lasts n minutes, so a test can tell which lock it got.
func lockFor(n int) time.Duration { return time.Duration(n) * time.Minute }

// counterKinds makes one counter of each kind on s, for a fresh user each.
func counterKinds(t *testing.T, s *storage.Store, prefix string) []struct {
	name string
	c    storage.Counter
} {
	t.Helper()
	ctx := t.Context()
	var kinds []struct {
		name string
		c    storage.Counter
	}
	add := func(name string, c storage.Counter) {
		kinds = append(kinds, struct {
			name string
			c    storage.Counter
		}{name, c})
	}
	for i, kind := range []string{"password", "code", "device"} {
		id := fmt.Sprintf("%s-%d", prefix, i)
		if err := s.CreateUser(ctx, newUser(id, id+"@example.com")); err != nil {
			t.Fatal(err)
		}
		switch kind {
		case "password":
			add(kind, storage.PasswordCounter(id))
		case "code":
			add(kind, storage.CodeCounter(id))
		case "device":
			if err := s.TrustDevice(ctx, "browser-1", id, "UA", time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			d, err := s.Device(ctx, "browser-1", id)
			if err != nil {
				t.Fatal(err)
			}
			add(kind, storage.DeviceCounter(d.ID))
		}
	}
	add("unknown login", storage.UnknownLoginCounter("hmac-of-nobody-"+prefix))
	return kinds
}

// AdmitAttempt counts before anything is checked, locks at the threshold,
// refuses while locked without counting, admits one attempt per expired
// lock, grows the back-off per lock, and ResetAttempts ends the run; for
// every kind of counter.
func testAdmitAttempt(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	const threshold = 3
	for _, k := range counterKinds(t, s, "seq") {
		t.Run(k.name, func(t *testing.T) {
			now := time.Now().UTC().Truncate(time.Second)
			admit := func(wantAdmitted bool, wantCount int, wantUntil time.Time) {
				t.Helper()
				a, err := s.AdmitAttempt(ctx, k.c, now, threshold, lockFor)
				if err != nil {
					t.Fatalf("AdmitAttempt = %v", err)
				}
				if a.Admitted != wantAdmitted || (wantAdmitted && a.Count != wantCount) || !a.Until.Equal(wantUntil) {
					t.Fatalf("AdmitAttempt at %v = %+v, want admitted %v, count %d, until %v", now, a, wantAdmitted, wantCount, wantUntil)
				}
			}
			admit(true, 1, time.Time{})
			admit(true, 2, time.Time{})
			lock1 := now.Add(lockFor(1))
			admit(true, 3, lock1) // reaches the threshold: locks at once
			admit(false, 0, lock1)
			now = now.Add(30 * time.Second)
			admit(false, 0, lock1) // still locked, nothing counted

			// One attempt per expired lock, and the next lock is longer.
			now = lock1
			lock2 := now.Add(lockFor(2))
			admit(true, 4, lock2)
			admit(false, 0, lock2)
			now = lock2.Add(time.Second)
			lock3 := now.Add(lockFor(3))
			admit(true, 5, lock3)

			// A success ends the run: the next lock is the first again.
			if err := s.ResetAttempts(ctx, k.c); err != nil {
				t.Fatal(err)
			}
			admit(true, 1, time.Time{})
			admit(true, 2, time.Time{})
			admit(true, 3, now.Add(lockFor(1)))
		})
	}
	if _, err := s.AdmitAttempt(ctx, storage.PasswordCounter("nobody"), time.Now(), threshold, lockFor); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("AdmitAttempt(no such user) = %v, want ErrNotFound", err)
	}
}

// Of 50 or 150 parallel attempts exactly the threshold's worth is admitted
// (SECURITY 46), the count stops there, and the burst makes one lock.
func testAdmitAttemptRace(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	const threshold = 5
	for _, n := range []int{50, 150} {
		for _, k := range counterKinds(t, s, fmt.Sprint("race", n)) {
			t.Run(fmt.Sprintf("%s/%d", k.name, n), func(t *testing.T) {
				now := time.Now().UTC()
				var admitted, locksSet atomic.Int32
				var wg sync.WaitGroup
				for range n {
					wg.Go(func() {
						a, err := s.AdmitAttempt(ctx, k.c, now, threshold, lockFor)
						if err != nil {
							t.Errorf("AdmitAttempt = %v", err)
							return
						}
						if a.Admitted {
							admitted.Add(1)
							if !a.Until.IsZero() {
								locksSet.Add(1)
							}
						} else if !a.Until.Equal(now.Add(lockFor(1)).Truncate(time.Microsecond)) && !a.Until.Equal(now.Add(lockFor(1))) {
							t.Errorf("refused attempt's lock ends %v, want %v (the first lock)", a.Until, now.Add(lockFor(1)))
						}
					})
				}
				wg.Wait()
				if admitted.Load() != threshold || locksSet.Load() != 1 {
					t.Errorf("%d parallel attempts: %d admitted, %d set a lock; want %d and 1", n, admitted.Load(), locksSet.Load(), threshold)
				}
				// The next attempt is refused: the burst locked the counter
				// once, for the first lock's length.
				a, err := s.AdmitAttempt(ctx, k.c, now, threshold, lockFor)
				if err != nil || a.Admitted {
					t.Errorf("attempt after the burst = %+v, %v; want refused", a, err)
				}
				if err := s.ResetAttempts(ctx, k.c); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// A device is trusted per (browser, account), until it expires or the
// account forgets its devices; deleting the user deletes them; expired
// devices are cleaned up.
func testDevices(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	for _, id := range []string{"u1", "u2"} {
		if err := s.CreateUser(ctx, newUser(id, id+"@example.com")); err != nil {
			t.Fatal(err)
		}
	}
	soon := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	for _, d := range []struct{ device, user string }{{"b1", "u1"}, {"b1", "u2"}, {"b2", "u1"}} {
		if err := s.TrustDevice(ctx, d.device, d.user, "Browser "+d.device, soon); err != nil {
			t.Fatalf("TrustDevice(%s, %s) = %v", d.device, d.user, err)
		}
	}
	d, err := s.Device(ctx, "b1", "u1")
	if err != nil || d.UserAgent != "Browser b1" || !d.ExpiresAt.Equal(soon) {
		t.Fatalf("Device(b1, u1) = %+v, %v", d, err)
	}
	if _, err := s.Device(ctx, "b2", "u2"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Device(b2, u2) = %v, want ErrNotFound: b2 never signed in to u2", err)
	}
	// Trusting again extends the trust and keeps the row and its failures.
	if _, err := s.AdmitAttempt(ctx, storage.DeviceCounter(d.ID), time.Now(), 5, lockFor); err != nil {
		t.Fatal(err)
	}
	later := soon.Add(time.Hour)
	if err := s.TrustDevice(ctx, "b1", "u1", "Browser b1 v2", later); err != nil {
		t.Fatal(err)
	}
	again, err := s.Device(ctx, "b1", "u1")
	if err != nil || again.ID != d.ID || !again.ExpiresAt.Equal(later) || again.FailedLogins != 1 || again.UserAgent != "Browser b1 v2" {
		t.Errorf("Device after TrustDevice again = %+v, %v; want the same row, extended, 1 failure", again, err)
	}
	if ds, err := s.Devices(ctx, "u1"); err != nil || len(ds) != 2 {
		t.Errorf("Devices(u1) = %d devices, %v; want 2", len(ds), err)
	}
	if err := s.ForgetDevices(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Device(ctx, "b1", "u1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Device(b1, u1) after ForgetDevices = %v, want ErrNotFound", err)
	}
	if _, err := s.Device(ctx, "b1", "u2"); err != nil {
		t.Errorf("Device(b1, u2) after u1 forgot its devices = %v, want found", err)
	}
	// The clean-up deletes expired devices.
	if err := s.TrustDevice(ctx, "b3", "u2", "", time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteExpired(ctx, 10); err != nil || n["devices"] != 1 {
		t.Errorf("DeleteExpired = %v, %v; want 1 device", n, err)
	}
	if _, err := s.Device(ctx, "b3", "u2"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Device(expired) after the clean-up = %v, want ErrNotFound", err)
	}
	if err := s.DeleteUser(ctx, "u2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Device(ctx, "b1", "u2"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Device of a deleted user = %v, want ErrNotFound", err)
	}
}
