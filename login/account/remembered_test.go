package account

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

const rememberFor = 30 * 24 * time.Hour

// rememberService is aliceService with remembered devices on (30 days).
func rememberService(t *testing.T, open func(testing.TB) *storage.Store) (*Service, *storage.Store, *storagetest.Clock, *storage.User) {
	t.Helper()
	st := open(t)
	c := newClock()
	s := New(st, Config{Now: c.Now, RememberLifetime: rememberFor})
	u := mustCreate(t, s, NewUser{Email: "alice@example.com", Username: "alice", Password: alicePassword})
	return s, st, c, u
}

// auditTypes lists the types of subject's audit events of type typ,
// newest first, with their details.
func auditOf(t *testing.T, st *storage.Store, subject, typ string) []*storage.AuditEvent {
	t.Helper()
	es, err := st.AuditEvents(t.Context(), storage.AuditQuery{Subject: subject, Type: typ, Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// TestRemembered: a remembered-device token skips the code step for its
// own user only, until it expires, and not once the choice is off; a
// forged, tampered, foreign or forgotten token counts for nothing.
func TestRemembered(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		t.Parallel()
		s, st, c, alice := rememberService(t, open)
		ctx := t.Context()
		bob := mustCreate(t, s, NewUser{Email: "bob@example.com", Password: "bob's own passphrase"})
		tok, err := s.RememberBrowser(ctx, alice.ID, "Firefox")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(tok, rememberPrefix) {
			t.Fatalf("RememberBrowser = %q, want an r1. token", tok)
		}
		id := RememberedDeviceID(tok)
		d, err := st.RememberedDevice(ctx, id)
		if err != nil || d.UserID != alice.ID || strings.Contains(tok, d.SecretHash) {
			t.Fatalf("stored device = %+v, %v; want alice's, holding only the secret's hash", d, err)
		}
		if es := auditOf(t, st, alice.ID, "device.remembered"); len(es) != 1 || es[0].Detail["device_id"] != id {
			t.Errorf("device.remembered events = %+v, want one naming the device", es)
		}

		secret := tok[strings.LastIndex(tok, ".")+1:]
		flip := "A"
		if strings.HasSuffix(tok, "A") {
			flip = "B"
		}
		for _, tc := range []struct {
			name, user, token string
			want              bool
		}{
			{"alice's token", alice.ID, tok, true},
			{"stolen by bob's session", bob.ID, tok, false},
			{"no token", alice.ID, "", false},
			{"garbage", alice.ID, "garbage", false},
			{"tampered secret", alice.ID, tok[:len(tok)-1] + flip, false},
			{"another ID with the secret", alice.ID, rememberPrefix + strings.Repeat("A", 22) + "." + secret, false},
			{"the lockout's device token", alice.ID, deviceTokenPrefix + strings.TrimPrefix(tok, rememberPrefix), false},
			{"over-long", alice.ID, tok + strings.Repeat("A", 200), false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if got, err := s.Remembered(ctx, tc.user, tc.token); err != nil || got != tc.want {
					t.Errorf("Remembered = %v, %v; want %v", got, err, tc.want)
				}
			})
		}

		// Off: the choice is refused and a valid token counts for nothing.
		off := New(st, Config{Now: c.Now})
		if _, err := off.RememberBrowser(ctx, alice.ID, "Firefox"); !errors.Is(err, ErrRememberOff) {
			t.Errorf("RememberBrowser with the choice off = %v, want ErrRememberOff", err)
		}
		if ok, err := off.Remembered(ctx, alice.ID, tok); ok || err != nil {
			t.Errorf("Remembered with the choice off = %v, %v; want false", ok, err)
		}
		// A shorter lifetime set later bounds devices remembered before.
		shorter := New(st, Config{Now: c.Now, RememberLifetime: time.Hour})
		c.Advance(2 * time.Hour)
		if ok, err := shorter.Remembered(ctx, alice.ID, tok); ok || err != nil {
			t.Errorf("Remembered after a lifetime of 1h set later, 2h on = %v, %v; want false", ok, err)
		}
		if ok, err := s.Remembered(ctx, alice.ID, tok); !ok || err != nil {
			t.Errorf("Remembered 2h on = %v, %v; want true", ok, err)
		}
		// It expires.
		c.Advance(rememberFor - 2*time.Hour)
		if ok, err := s.Remembered(ctx, alice.ID, tok); ok || err != nil {
			t.Errorf("Remembered after %s = %v, %v; want false", rememberFor, ok, err)
		}
		if ds, err := s.RememberedDevices(ctx, alice.ID); err != nil || len(ds) != 0 {
			t.Errorf("RememberedDevices after expiry = %d, %v; want none", len(ds), err)
		}
	})
}

// TestForgetDevice: a user forgets one of their remembered devices, not
// anyone else's.
func TestForgetDevice(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		t.Parallel()
		s, st, _, alice := rememberService(t, open)
		ctx := t.Context()
		bob := mustCreate(t, s, NewUser{Email: "bob@example.com", Password: "bob's own passphrase"})
		tok, err := s.RememberBrowser(ctx, alice.ID, "Firefox")
		if err != nil {
			t.Fatal(err)
		}
		other, err := s.RememberBrowser(ctx, alice.ID, "Chrome")
		if err != nil {
			t.Fatal(err)
		}
		id := RememberedDeviceID(tok)
		if err := s.ForgetDevice(ctx, bob.ID, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("ForgetDevice(bob, alice's device) = %v, want ErrNotFound", err)
		}
		if err := s.ForgetDevice(ctx, alice.ID, id); err != nil {
			t.Fatalf("ForgetDevice = %v", err)
		}
		if err := s.ForgetDevice(ctx, alice.ID, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("ForgetDevice again = %v, want ErrNotFound", err)
		}
		if ok, _ := s.Remembered(ctx, alice.ID, tok); ok {
			t.Error("a forgotten device is still remembered")
		}
		if ok, _ := s.Remembered(ctx, alice.ID, other); !ok {
			t.Error("forgetting one device forgot another")
		}
		if es := auditOf(t, st, alice.ID, "device.forgotten"); len(es) != 1 || es[0].Detail["device_id"] != id {
			t.Errorf("device.forgotten events = %+v, want one naming the device", es)
		}
	})
}

// TestRememberedDevicesForgotten: a password change, a password reset,
// signing out everywhere and deactivation each forget every remembered
// device of the user (and no one else's), with an audit event naming why.
func TestRememberedDevicesForgotten(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		t.Parallel()
		for _, tc := range []struct {
			name, reason string
			event        func(ctx context.Context, s *Service, u *storage.User) error
		}{
			{"password change", "password.changed", func(ctx context.Context, s *Service, u *storage.User) error {
				return s.ChangePassword(ctx, u.ID, PasswordChange{Old: alicePassword, New: "a brand new passphrase"})
			}},
			{"password reset", "password.reset", func(ctx context.Context, s *Service, u *storage.User) error {
				hash, err := s.hashPassword(ctx, "a brand new passphrase")
				if err != nil {
					return err
				}
				// What ResetPassword does once the link is checked.
				return s.setPassword(ctx, u, hash, "", "", func(context.Context) error { return nil })
			}},
			{"sign out everywhere", "sessions.ended", func(ctx context.Context, s *Service, u *storage.User) error {
				return s.SignOutEverywhere(ctx, u.ID)
			}},
			{"deactivation", "account.deactivated", func(ctx context.Context, s *Service, u *storage.User) error {
				return s.Deactivate(ctx, u.ID, alicePassword, "")
			}},
			{"deactivation by an administrator", "admin.user_deactivated", func(ctx context.Context, s *Service, u *storage.User) error {
				_, err := s.SetActive(ctx, u.ID, false)
				return err
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s, st, _, alice := rememberService(t, open)
				ctx := t.Context()
				bob := mustCreate(t, s, NewUser{Email: "bob@example.com", Password: "bob's own passphrase"})
				var toks []string
				for _, ua := range []string{"Firefox", "Chrome"} {
					tok, err := s.RememberBrowser(ctx, alice.ID, ua)
					if err != nil {
						t.Fatal(err)
					}
					toks = append(toks, tok)
				}
				bobs, err := s.RememberBrowser(ctx, bob.ID, "Safari")
				if err != nil {
					t.Fatal(err)
				}
				if err := tc.event(ctx, s, alice); err != nil {
					t.Fatalf("%s = %v", tc.name, err)
				}
				for _, tok := range toks {
					if ok, err := s.Remembered(ctx, alice.ID, tok); ok || err != nil {
						t.Errorf("Remembered after %s = %v, %v; want false", tc.name, ok, err)
					}
				}
				if ds, err := s.RememberedDevices(ctx, alice.ID); err != nil || len(ds) != 0 {
					t.Errorf("RememberedDevices after %s = %d, %v; want none", tc.name, len(ds), err)
				}
				if ok, err := s.Remembered(ctx, bob.ID, bobs); !ok || err != nil {
					t.Errorf("bob's device after alice's %s = %v, %v; want still remembered", tc.name, ok, err)
				}
				es := auditOf(t, st, alice.ID, "device.forgotten")
				if len(es) != 1 || es[0].Detail["reason"] != tc.reason || es[0].Detail["all"] != true {
					t.Errorf("device.forgotten events = %+v, want one with reason %q", es, tc.reason)
				}
			})
		}
	})
}
