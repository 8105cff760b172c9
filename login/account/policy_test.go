package account

import (
	"errors"
	"testing"
	"time"

	"github.com/torii-idp/torii/storage/storagetest"
)

// TORII_PASSWORD_COMPOSITION (Config.RequireComposition) demands upper case,
// lower case, a digit and a symbol in new passwords, on top of the length
// and common-password checks; off, none of them is required.
func TestPasswordComposition(t *testing.T) {
	const msg = "The password must contain an upper-case letter, a lower-case letter, a digit and a symbol."
	st := storagetest.NewSQLite(t)
	on := New(st, Config{RequireComposition: true})
	off := New(st, Config{})
	tests := []struct {
		name, pw string
		// wantOn and wantOff are the messages with and without the option
		// ("" accepts).
		wantOn, wantOff string
	}{
		{"lower case and spaces", "a quiet walrus sings", msg, ""},
		{"no upper case", "walrus-9-sings", msg, ""},
		{"no lower case", "WALRUS-9-SINGS", msg, ""},
		{"no digit", "Walrus-Nine-Sings", msg, ""},
		{"no symbol", "Walrus9Sings", msg, ""},
		{"all four", "Walrus-9-Sings", "", ""},
		{"a space is a symbol", "Walrus 9 Sings", "", ""},
		{"an emoji is a symbol", "Walrus9Sings🦊", "", ""},
		{"non-ASCII letters and digits", "Éléphant٣ø!", "", ""},
		{"too short comes first", "Wa-9", "The password must have at least 8 characters.", "The password must have at least 8 characters."},
		{"common comes first", "Password123", "This password is too common: choose one that others are unlikely to use.",
			"This password is too common: choose one that others are unlikely to use."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range []struct {
				s    *Service
				want string
			}{{on, tc.wantOn}, {off, tc.wantOff}} {
				err := c.s.cfg.Password.Check(tc.pw)
				var ve *ValidationError
				switch {
				case c.want == "" && err != nil:
					t.Errorf("Check(%q) with composition %v = %v, want nil", tc.pw, c.s.cfg.RequireComposition, err)
				case c.want != "" && (!errors.As(err, &ve) || ve.Field != "password" || ve.Message != c.want):
					t.Errorf("Check(%q) with composition %v = %v, want %q on password", tc.pw, c.s.cfg.RequireComposition, err, c.want)
				}
			}
		})
	}
	// The option applies where passwords are chosen, and not to sign-in.
	var ve *ValidationError
	if _, err := on.Create(t.Context(), NewUser{Email: "xan@example.com", Password: "a quiet walrus sings"}); !errors.As(err, &ve) || ve.Message != msg {
		t.Errorf("Create with a password lacking composition = %v, want %q", err, msg)
	}
	mustCreate(t, off, NewUser{Email: "yan@example.com", Password: "a quiet walrus sings"})
	if _, err := on.Authenticate(t.Context(), "yan@example.com", "a quiet walrus sings"); err != nil {
		t.Errorf("sign-in with an older password lacking composition = %v, want it to work", err)
	}
}

// The email-verification link works for 8 hours (SECURITY 52: ≤ 8 h), once.
func TestVerifyLinkExpiry(t *testing.T) {
	tests := []struct {
		name string
		wait time.Duration
		want error
	}{
		{"at once", 0, nil},
		{"after 7 h 59 min", 8*time.Hour - time.Minute, nil},
		{"at 8 h", 8 * time.Hour, ErrLinkInvalid},
		{"after 8 h 1 min", 8*time.Hour + time.Minute, ErrLinkInvalid},
	}
	forEachClocked(t, noLimits, func(t *testing.T, e *flowEnv) {
		ctx := t.Context()
		if got := e.s.cfg.VerifyLinkLifetime; got != 8*time.Hour {
			t.Errorf("default VerifyLinkLifetime = %v, want 8h", got)
		}
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				email := string(rune('a'+i)) + "-link@example.com"
				if _, err := e.s.Register(ctx, NewUser{Email: email, Password: "a quiet walrus sings"}); err != nil {
					t.Fatal(err)
				}
				token := tokenIn(t, e.rec.last(t, email))
				row, err := e.store.ActionToken(ctx, hashToken(token), tokenVerifyLink)
				if err != nil {
					t.Fatal(err)
				}
				if life := row.ExpiresAt.Sub(row.CreatedAt); life > 8*time.Hour {
					t.Errorf("stored link lifetime %v, want ≤ 8h", life)
				}
				e.clock.Advance(tc.wait)
				u, err := e.s.VerifyEmailLink(ctx, token)
				if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
					t.Fatalf("VerifyEmailLink after %v = %v, want %v", tc.wait, err, tc.want)
				}
				if err == nil {
					if !u.EmailVerified {
						t.Error("the link did not verify the address")
					}
					if _, err := e.s.VerifyEmailLink(ctx, token); !errors.Is(err, ErrLinkInvalid) {
						t.Errorf("link used twice = %v, want ErrLinkInvalid", err)
					}
				}
			})
		}
	})
}
