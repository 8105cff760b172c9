package account

import (
	"errors"
	"testing"
	"time"

	"github.com/torii-idp/torii/login/notify"
)

// Lockout-DoS (SECURITY 47): however an attacker locked the account, its
// owner can reset the password through the mailed link and sign in with the
// new one at once, while the lock would still run.
func TestLockedAccountRecoversByReset(t *testing.T) {
	const password = "a quiet walrus sings"
	tests := []struct {
		name string
		lock func(t *testing.T, e *flowEnv, userID string)
	}{
		{"wrong passwords", func(t *testing.T, e *flowEnv, userID string) {
			for range e.s.cfg.LockoutThreshold + 3 {
				if _, err := e.s.Authenticate(t.Context(), "wes@example.com", "not the password"); !errors.Is(err, ErrInvalidCredentials) {
					t.Fatalf("wrong password = %v", err)
				}
			}
		}},
		{"wrong codes", func(t *testing.T, e *flowEnv, userID string) {
			for i := range e.s.cfg.OTPLockoutThreshold {
				binding := string(rune('a' + i/5))
				if i%5 == 0 {
					if _, err := e.s.StartOTP(t.Context(), userID, binding, notify.Email); err != nil {
						t.Fatal(err)
					}
				}
				e.s.CheckOTP(t.Context(), userID, binding, wrongFor(codeIn(t, e.rec.last(t, "wes@example.com"))))
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			forEachClocked(t, Config{ResendInterval: -1, ResendMax: 100}, func(t *testing.T, e *flowEnv) {
				ctx := t.Context()
				u := e.user(t, "wes@example.com", "")
				tc.lock(t, e, u.ID)
				var le *LockedError
				// Wrong passwords lock the password step; wrong codes lock
				// the code step (the password is still accepted, no code is
				// sent).
				if _, err := e.s.Authenticate(ctx, "wes@example.com", password); tc.name == "wrong passwords" && (!errors.As(err, &le) || !le.Until.After(e.clock.Now())) {
					t.Fatalf("right password after the attack = %v, want a LockedError", err)
				}
				if _, err := e.s.StartOTP(ctx, u.ID, "after", notify.Email); tc.name == "wrong codes" && (!errors.As(err, &le) || !le.Until.After(e.clock.Now())) {
					t.Fatalf("a code after the attack = %v, want a LockedError", err)
				}
				e.clock.Advance(time.Second)
				if err := e.s.RequestPasswordReset(ctx, "wes@example.com"); err != nil {
					t.Fatalf("RequestPasswordReset(locked) = %v", err)
				}
				token := tokenIn(t, e.rec.last(t, "wes@example.com"))
				if err := e.s.ResetPassword(ctx, token, "a brand new walrus"); err != nil {
					t.Fatalf("ResetPassword(locked) = %v", err)
				}
				if !e.clock.Now().Before(le.Until) {
					t.Fatal("the lock ran out during the test")
				}
				got, err := e.s.Authenticate(ctx, "wes@example.com", "a brand new walrus")
				if err != nil || got.ID != u.ID {
					t.Fatalf("sign-in with the new password at once = %v, %v; want the user", got, err)
				}
				if got.FailedLogins != 0 || got.FailedOTPs != 0 || got.LockedUntil.Valid || got.OTPLockedUntil.Valid || got.Lockouts != 0 || got.OTPLockouts != 0 {
					t.Errorf("after the reset: %+v; want no failures and no locks", got)
				}
				if _, err := e.s.StartOTP(ctx, u.ID, "after-reset", notify.Email); err != nil {
					t.Errorf("a code after the reset = %v", err)
				}
				if _, err := e.s.Authenticate(ctx, "wes@example.com", password); !errors.Is(err, ErrInvalidCredentials) {
					t.Errorf("old password after the reset = %v, want ErrInvalidCredentials", err)
				}
			})
		})
	}
}
