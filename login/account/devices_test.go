package account

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

// Device tokens (SECURITY 47): others' wrong passwords lock the account for
// every browser but the ones that signed in to it before, whose own wrong
// passwords have their own budget.
func TestDeviceTokens(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		t.Parallel()
		s, st, c, alice := aliceService(t, open)
		ctx := t.Context()
		bob := mustCreate(t, s, NewUser{Email: "bob@example.com", Password: "bob's own passphrase"})
		mine, err := s.RememberDevice(ctx, alice.ID, "", "Firefox")
		if err != nil {
			t.Fatal(err)
		}
		if again, err := s.RememberDevice(ctx, alice.ID, mine, "Firefox"); err != nil || again != mine {
			t.Errorf("RememberDevice(valid token) = %q, %v; want the same token", again, err)
		}
		bobs, err := s.RememberDevice(ctx, bob.ID, "", "Chrome")
		if err != nil {
			t.Fatal(err)
		}

		// An attacker locks alice's account.
		threshold := s.cfg.LockoutThreshold
		for range threshold {
			if _, err := s.Authenticate(ctx, "alice", "attacker's guess"); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatal(err)
			}
		}
		var le *LockedError
		if _, err := s.Authenticate(ctx, "alice", alicePassword); !errors.As(err, &le) {
			t.Fatalf("right password from elsewhere after the attack = %v, want LockedError", err)
		}

		tampered := mine[:len(mine)-2] + "AA"
		if strings.HasSuffix(mine, "AA") {
			tampered = mine[:len(mine)-2] + "BB"
		}
		forged := deviceTokenPrefix + strings.Repeat("A", 22) + "." + mine[strings.LastIndex(mine, ".")+1:]
		for _, tc := range []struct{ name, token string }{
			{"no token", ""},
			{"garbage", "garbage"},
			{"tampered MAC", tampered},
			{"another device ID with a stolen MAC", forged},
			{"bob's device", bobs},
			{"over-long", mine + strings.Repeat("A", 200)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if _, err := s.AuthenticateOnDevice(ctx, "alice", alicePassword, tc.token); !errors.As(err, &le) {
					t.Errorf("AuthenticateOnDevice(right password, %s) = %v, want LockedError: not a device of alice's", tc.name, err)
				}
			})
		}

		// Alice's own browser still signs in, and it leaves the attacker's
		// lock alone.
		u, err := s.AuthenticateOnDevice(ctx, "alice", alicePassword, mine)
		if err != nil || u.ID != alice.ID {
			t.Fatalf("right password on alice's device during the attack = %v, %v; want alice", u, err)
		}
		if got, _ := st.User(ctx, alice.ID); !got.LockedUntil.Time.After(c.Now()) {
			t.Errorf("alice's device sign-in lifted the lock others caused")
		}

		// Her device's own wrong passwords have their own budget: they lock
		// the device, not the account's count.
		for range threshold {
			if _, err := s.AuthenticateOnDevice(ctx, "alice", "alice's typo", mine); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatal(err)
			}
		}
		if _, err := s.AuthenticateOnDevice(ctx, "alice", alicePassword, mine); !errors.As(err, &le) {
			t.Errorf("right password on a device past its own budget = %v, want LockedError", err)
		}
		if got, _ := st.User(ctx, alice.ID); got.FailedLogins != threshold {
			t.Errorf("account failures = %d, want %d: a trusted device's failures count on the device", got.FailedLogins, threshold)
		}

		// Both locks run out; the account's lock and the device's are apart.
		c.Advance(time.Minute + time.Second)
		if _, err := s.AuthenticateOnDevice(ctx, "alice", alicePassword, mine); err != nil {
			t.Errorf("right password on the device after its lock = %v", err)
		}

		// Trust is revocable on the server: after ForgetDevices, the token
		// is an unknown browser's again.
		for range threshold + 1 {
			s.Authenticate(ctx, "alice", "attacker's guess")
		}
		if err := st.ForgetDevices(ctx, alice.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AuthenticateOnDevice(ctx, "alice", alicePassword, mine); !errors.As(err, &le) {
			t.Errorf("forgotten device during a lock = %v, want LockedError", err)
		}

		// And trust runs out DeviceLifetime after the last sign-in.
		bobsTrusted, err := s.AuthenticateOnDevice(ctx, "bob@example.com", "bob's own passphrase", bobs)
		if err != nil || bobsTrusted.ID != bob.ID {
			t.Fatalf("bob on his device = %v, %v", bobsTrusted, err)
		}
		c.Advance(s.DeviceLifetime())
		if d, err := s.trustedDevice(ctx, bobs, bob.ID); err != nil || d != nil {
			t.Errorf("trustedDevice after DeviceLifetime = %+v, %v; want none", d, err)
		}
	})
}

// A password change or reset forgets every trusted device.
func TestPasswordChangeForgetsDevices(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		t.Parallel()
		s, _, _, alice := aliceService(t, open)
		ctx := t.Context()
		tok, err := s.RememberDevice(ctx, alice.ID, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.ChangePassword(ctx, alice.ID, PasswordChange{Old: alicePassword, New: "a brand new walrus", Device: tok}); err != nil {
			t.Fatal(err)
		}
		if d, err := s.trustedDevice(ctx, tok, alice.ID); err != nil || d != nil {
			t.Errorf("device after a password change = %+v, %v; want forgotten", d, err)
		}
	})
}
