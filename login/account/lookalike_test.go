package account

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/torii-idp/torii/login/notify"
	"github.com/torii-idp/torii/storage"
)

// A look-alike address (SECURITY 53) — one whose UTS #39 skeleton is an
// account's, or whose local part or a domain label mixes scripts — never
// becomes a second account. Registration answers it exactly as a taken
// address: a ticket whose code page shows the address typed and whose code
// matches nothing, a resend that works the same, and a mail to the owner
// of the account it looks like (if any).
func TestRegisterLookAlike(t *testing.T) {
	forEachClocked(t, noLimits, func(t *testing.T, e *flowEnv) {
		ctx := t.Context()
		e.user(t, "alice@example.com", "")
		e.user(t, "sam@example.com", "")
		tests := []struct {
			name, email string
			owner       string // who is mailed; "" for nobody
		}{
			{"the address itself", "Alice@Example.com", "alice@example.com"},
			{"dotless ı", "alıce@example.com", "alice@example.com"},
			{"dotless ı, upper case and full width", "ＡLıCE@EXAMPLE.COM", "alice@example.com"},
			{"Cyrillic а in the domain", "alice@exаmple.com", "alice@example.com"},
			{"Cyrillic а first", "аlice@example.com", "alice@example.com"},
			{"Greek ο in the top-level label", "alice@example.cοm", "alice@example.com"},
			{"1 for l", "a1ice@example.com", "alice@example.com"},
			{"1 for l in the domain", "alice@examp1e.com", "alice@example.com"},
			{"rn for m", "sarn@example.com", "sam@example.com"},
			{"mixed scripts, like no account", "bоb@example.com", ""},
			{"Latin and Greek", "bob.αβ@example.com", ""},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				canon, err := CanonicalEmail(tc.email)
				if err != nil {
					t.Fatal(err)
				}
				want := 0
				if tc.owner != "" {
					want = 1
				}
				var ticket string
				for round, what := range []string{"Register", "ResendVerification"} {
					before := e.rec.count()
					if round == 0 {
						ticket, err = e.s.Register(ctx, NewUser{Email: tc.email, Password: "a quiet walrus sings"})
					} else {
						ticket, err = e.s.ResendVerification(ctx, ticket)
					}
					if err != nil || ticket == "" {
						t.Fatalf("%s(%q) = %q, %v; want a ticket", what, tc.email, ticket, err)
					}
					if got := e.rec.count() - before; got != want {
						t.Errorf("%s(%q) sent %d messages, want %d", what, tc.email, got, want)
					}
					if tc.owner != "" {
						if m := e.rec.last(t, tc.owner); !strings.Contains(m.Subject, "tried to register") {
							t.Errorf("%s(%q): the owner got %q, want the notice", what, tc.email, m.Subject)
						}
					}
					if got, want := mustTicketEmail(t, e.s, ticket), mask(canon, notify.Email); got != want {
						t.Errorf("%s(%q): TicketEmail = %q, want %q (the address typed, as for a new one)", what, tc.email, got, want)
					}
					if _, err := e.s.VerifyEmailCode(ctx, ticket, "000000"); !errors.Is(err, ErrCodeInvalid) {
						t.Errorf("%s(%q): VerifyEmailCode = %v, want ErrCodeInvalid", what, tc.email, err)
					}
				}
			})
		}
		if us, err := e.s.List(ctx, 0, 100); err != nil || len(us) != 2 {
			t.Errorf("List() = %d users, %v; want the 2 there were", len(us), err)
		}
	})
}

func mustTicketEmail(t *testing.T, s *Service, ticket string) string {
	t.Helper()
	got, err := s.TicketEmail(t.Context(), ticket)
	if err != nil {
		t.Fatalf("TicketEmail = %v", err)
	}
	return got
}

// Create (the CLI's users create) refuses a look-alike address with an
// explicit error: ErrEmailLookAlike (matching ErrEmailTaken) for a skeleton
// another account has, a *ValidationError for mixed scripts.
func TestCreateLookAlike(t *testing.T) {
	forEachClocked(t, noLimits, func(t *testing.T, e *flowEnv) {
		ctx := t.Context()
		e.user(t, "alice@example.com", "")
		e.user(t, "sam@example.com", "")
		mixed := &ValidationError{Field: "email", Message: "The email address mixes letters of different scripts (such as Latin and Cyrillic) in one part."}
		tests := []struct {
			email string
			want  error
		}{
			{"alice@example.com", ErrEmailTaken},
			{"alıce@example.com", ErrEmailLookAlike},
			{"a1ice@examp1e.com", ErrEmailLookAlike},
			{"sarn@example.com", ErrEmailLookAlike},
			{"alice@exаmple.com", mixed},
			{"аlice@example.com", mixed},
			{"bоb@example.com", mixed},
		}
		for _, tc := range tests {
			_, err := e.s.Create(ctx, NewUser{Email: tc.email, Password: "a quiet walrus sings"})
			var ve, wantVE *ValidationError
			switch {
			case errors.As(tc.want, &wantVE):
				if !errors.As(err, &ve) || *ve != *wantVE {
					t.Errorf("Create(%q) = %v, want %v", tc.email, err, tc.want)
				}
			case err != tc.want:
				t.Errorf("Create(%q) = %v, want %v", tc.email, err, tc.want)
			}
		}
		if !errors.Is(ErrEmailLookAlike, ErrEmailTaken) {
			t.Error("ErrEmailLookAlike does not match ErrEmailTaken")
		}
		for _, ok := range []string{"alice.b@example.com", "алиса@пример.рф", "yamada山田たろう@example.jp"} {
			if _, err := e.s.Create(ctx, NewUser{Email: ok, Password: "a quiet walrus sings"}); err != nil {
				t.Errorf("Create(%q) = %v, want a new user", ok, err)
			}
		}
	})
}

// The same address in look-alike forms registered at once: exactly one
// account; every other caller gets the taken answer and its owner a
// notice. All callers look up before any inserts, so the unique skeleton
// decides.
func TestRegisterLookAlikeRace(t *testing.T) {
	forEachClocked(t, noLimits, func(t *testing.T, e *flowEnv) {
		forms := []string{"carol@example.com", "caro1@example.com", "carol@examp1e.com", "carol@exarnple.com", "caro1@exarnple.com"}
		e.s.testHook = barrier(len(forms), "register-looked-up")
		errs := parallel(len(forms), func(i int) error {
			ticket, err := e.s.Register(t.Context(), NewUser{Email: forms[i], Password: "a quiet walrus sings"})
			if err == nil && ticket == "" {
				return errors.New("no ticket")
			}
			return err
		})
		e.s.testHook = nil
		for i, err := range errs {
			if err != nil {
				t.Errorf("Register(%q) = %v, want a ticket", forms[i], err)
			}
		}
		us, err := e.s.List(t.Context(), 0, 100)
		if err != nil || len(us) != 1 {
			t.Fatalf("List() = %d users, %v; want 1", len(us), err)
		}
		winner := us[0].Email
		var verify, notices int
		for _, m := range e.rec.msgs {
			switch {
			case m.To == winner && strings.Contains(m.Subject, "Confirm"):
				verify++
			case m.To == winner && strings.Contains(m.Subject, "tried to register"):
				notices++
			default:
				t.Errorf("a message %q to %s", m.Subject, m.To)
			}
		}
		if verify != 1 || notices != len(forms)-1 {
			t.Errorf("%d verification mails and %d notices to %s, want 1 and %d", verify, notices, winner, len(forms)-1)
		}
	})
}

// Users from before skeletons were stored get theirs at start, oldest
// first; of two that look alike the later keeps none and is logged by ID
// only. Then a look-alike of either is refused.
func TestFillEmailSkeletons(t *testing.T) {
	forEachClocked(t, noLimits, func(t *testing.T, e *flowEnv) {
		ctx := t.Context()
		for _, u := range []*storage.User{
			{ID: "u-alice", Email: "alice@example.com"},
			{ID: "u-alice-dotless", Email: "alıce@example.com"},
			{ID: "u-bob", Email: "bob@example.com"},
		} {
			u.PasswordHash = "$argon2id$fake"
			if err := e.store.CreateUser(ctx, u); err != nil { // no skeleton: as before the migration
				t.Fatal(err)
			}
			e.clock.Advance(1)
		}
		var logs bytes.Buffer
		if err := FillEmailSkeletons(ctx, e.store, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
			t.Fatal(err)
		}
		for id, want := range map[string]string{"u-alice": "alice@exarnple.corn", "u-alice-dotless": "", "u-bob": "bob@exarnple.corn"} {
			if u, err := e.store.User(ctx, id); err != nil || u.EmailSkeleton != want {
				t.Errorf("user %s: skeleton %q, %v; want %q", id, u.EmailSkeleton, err, want)
			}
		}
		if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, " user_id=u-alice-dotless ") ||
			!strings.Contains(out, "other_user_id=u-alice\n") || strings.Contains(out, "@") {
			t.Errorf("log = %q; want a warning naming both user IDs and no address", out)
		}
		if _, err := e.s.Create(ctx, NewUser{Email: "a1ice@example.com", Password: "a quiet walrus sings"}); err != ErrEmailLookAlike {
			t.Errorf("Create(a1ice@example.com) = %v, want ErrEmailLookAlike", err)
		}
		if _, err := e.s.Create(ctx, NewUser{Email: "b0b@example.com", Password: "a quiet walrus sings"}); err != nil {
			t.Errorf("Create(b0b@example.com) = %v, want a new user (0 is not o)", err)
		}
	})
}
