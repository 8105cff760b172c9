package account

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/torii-idp/torii/login/notify"
)

// Registering a taken address mails the owner at most ResendMax times per
// ResendWindow (the per-destination limit of codes); past that the mail is
// skipped and the answer is the same.
func TestRegisterTakenMailCap(t *testing.T) {
	forEachClocked(t, Config{}, func(t *testing.T, e *flowEnv) {
		ctx := t.Context()
		owner := e.user(t, "quinn@example.com", "")
		max := e.s.cfg.ResendMax
		register := func() string {
			t.Helper()
			ticket, err := e.s.Register(ctx, NewUser{Email: "Quinn@Example.com", Password: "an eager young walrus"})
			if err != nil || ticket == "" {
				t.Fatalf("Register(taken) = %q, %v; want a ticket and no error", ticket, err)
			}
			return ticket
		}
		// answer is what the pages can observe about a ticket.
		type answer struct {
			masked    string
			entry     error
			resend    time.Duration
			resendErr string
		}
		observe := func(ticket string) answer {
			t.Helper()
			var a answer
			a.masked, _ = e.s.TicketEmail(ctx, ticket)
			_, a.entry = e.s.VerifyEmailCode(ctx, ticket, "123456")
			_, err := e.s.ResendVerification(ctx, ticket)
			var rl *RateLimitError
			if !errors.As(err, &rl) {
				t.Fatalf("ResendVerification(decoy over the cap) = %v, want a RateLimitError", err)
			}
			a.resend, a.resendErr = rl.RetryAfter, err.Error()
			return a
		}

		var tickets []string
		for i := 1; i <= max; i++ {
			before := e.rec.count()
			tickets = append(tickets, register())
			if got := e.rec.count() - before; got != 1 {
				t.Fatalf("attempt %d sent %d mails, want 1", i, got)
			}
			if m := e.rec.last(t, owner.Email); !strings.Contains(m.Subject, "tried to register") {
				t.Fatalf("attempt %d: mail %q, want the notice to the owner", i, m.Subject)
			}
			e.clock.Advance(time.Second)
		}
		before := e.rec.count()
		silent := register()
		if got := e.rec.count() - before; got != 0 {
			t.Errorf("attempt %d sent %d mails, want none", max+1, got)
		}
		mailed, quiet := observe(tickets[max-1]), observe(silent)
		if mailed != quiet || mailed.masked != "q•••@example.com" || !errors.Is(quiet.entry, ErrCodeInvalid) {
			t.Errorf("the ticket after the cap answers %+v, the one before %+v; want the same (masked address, ErrCodeInvalid, same wait)", quiet, mailed)
		}

		// The skipped mail is not counted as a send: once the mailed ones
		// leave the window, the owner is mailed (and may get codes) again.
		e.clock.Advance(e.s.cfg.ResendWindow)
		before = e.rec.count()
		register()
		if got := e.rec.count() - before; got != 1 {
			t.Errorf("after the window: %d mails, want 1", got)
		}
		if _, err := e.s.StartOTP(ctx, owner.ID, "sign-in", notify.Email); err != nil {
			t.Errorf("the owner's sign-in code after the window = %v", err)
		}
	})
}

// The wait a *RateLimitError reports is the time actually left: until the
// interval has passed, or until the oldest send in the window leaves it —
// not the whole window.
func TestResendWaitIsTimeLeft(t *testing.T) {
	tests := []struct {
		name string
		// send makes the i-th send (0-based) to the user's address.
		send func(t *testing.T, e *flowEnv, userID string, i int) error
	}{
		{"per account", func(t *testing.T, e *flowEnv, userID string, i int) error {
			_, err := e.s.StartOTP(t.Context(), userID, "attempt", notify.Email)
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			forEachClocked(t, Config{}, func(t *testing.T, e *flowEnv) {
				ctx := t.Context()
				u := e.user(t, "rae@example.com", "")
				window, interval := e.s.cfg.ResendWindow, e.s.cfg.ResendInterval
				start := e.clock.Now()
				var rl *RateLimitError
				for i := range e.s.cfg.ResendMax {
					if err := tc.send(t, e, u.ID, i); err != nil {
						t.Fatalf("send %d: %v", i+1, err)
					}
					if i == 0 && tc.name == "per account" {
						// Right after a send, the interval is what is left.
						e.clock.Advance(10 * time.Second)
						if _, err := e.s.StartOTP(ctx, u.ID, "attempt", notify.Email); !errors.As(err, &rl) || rl.RetryAfter != interval-10*time.Second {
							t.Errorf("send 10 s after the last = %v, want a RateLimitError of %v", err, interval-10*time.Second)
						}
						e.clock.Advance(-10 * time.Second)
					}
					e.clock.Advance(interval + time.Second)
				}
				elapsed := e.clock.Now().Sub(start) // 5 × 31 s
				_, err := e.s.StartOTP(ctx, u.ID, "attempt", notify.Email)
				if want := window - elapsed + time.Second; !errors.As(err, &rl) || rl.RetryAfter != want {
					t.Fatalf("send past the cap = %v, want a RateLimitError of %v (the oldest send leaves the window then)", err, want)
				}
				if !strings.Contains(rl.Error(), "12m26s") {
					t.Errorf("error %q, want the wait 12m26s", rl.Error())
				}
				e.clock.Advance(window - elapsed)
				if _, err := e.s.StartOTP(ctx, u.ID, "attempt", notify.Email); !errors.As(err, &rl) || rl.RetryAfter != time.Second {
					t.Fatalf("send at the window's edge = %v, want a RateLimitError of 1s", err)
				}
				e.clock.Advance(time.Second)
				if _, err := e.s.StartOTP(ctx, u.ID, "attempt", notify.Email); err != nil {
					t.Fatalf("send once the oldest left the window = %v, want it sent", err)
				}
			})
		})
	}
}

// A new sign-in code for the same attempt kills the previous one: the old
// code is then just a wrong code, and the new one works.
func TestResendKillsPreviousCode(t *testing.T) {
	forEachClocked(t, Config{}, func(t *testing.T, e *flowEnv) {
		ctx := t.Context()
		u := e.user(t, "sam@example.com", "")
		if _, err := e.s.StartOTP(ctx, u.ID, "attempt", notify.Email); err != nil {
			t.Fatal(err)
		}
		first := codeIn(t, e.rec.last(t, u.Email))
		old, err := e.store.LiveOneTimeCode(ctx, u.ID, purposeLogin, "attempt")
		if err != nil {
			t.Fatal(err)
		}
		var second string
		for second == "" || second == first {
			e.clock.Advance(e.s.cfg.ResendInterval)
			if _, err := e.s.StartOTP(ctx, u.ID, "attempt", notify.Email); err != nil {
				t.Fatal(err)
			}
			second = codeIn(t, e.rec.last(t, u.Email))
		}
		if c, err := e.store.OneTimeCodeByID(ctx, old.ID); err != nil || !c.UsedAt.Valid {
			t.Errorf("the first code after a resend: used_at %v (%v), want set", c.UsedAt, err)
		}
		if err := e.s.CheckOTP(ctx, u.ID, "attempt", first); !errors.Is(err, ErrCodeInvalid) {
			t.Errorf("first code after a resend = %v, want ErrCodeInvalid", err)
		}
		if err := e.s.CheckOTP(ctx, u.ID, "attempt", second); err != nil {
			t.Errorf("second code = %v, want it to work", err)
		}
	})
}

// The resend interval holds back "send a new code", not the first code of
// a sign-in attempt on a channel; the caps hold back both.
func TestFirstCodeOfAnAttempt(t *testing.T) {
	forEachClocked(t, Config{}, func(t *testing.T, e *flowEnv) {
		ctx := t.Context()
		u := e.user(t, "rosa@example.com", "+15557770002")
		start := func(binding string, ch notify.Channel) error {
			_, err := e.s.StartOTP(ctx, u.ID, binding, ch)
			return err
		}
		steps := []struct {
			name     string
			binding  string
			ch       notify.Channel
			wantWait bool
		}{
			{"first attempt, mail", "attempt-1", notify.Email, false},
			{"same attempt, mail again at once", "attempt-1", notify.Email, true},
			{"same attempt, switch to SMS at once", "attempt-1", notify.SMS, false},
			{"same attempt, SMS again at once", "attempt-1", notify.SMS, true},
			{"a new attempt at once", "attempt-2", notify.Email, false},
			{"another new attempt at once", "attempt-3", notify.Email, false},
		}
		for _, st := range steps {
			err := start(st.binding, st.ch)
			var rl *RateLimitError
			if got := errors.As(err, &rl); got != st.wantWait || (!st.wantWait && err != nil) {
				t.Errorf("%s: StartOTP = %v, want a RateLimitError: %v", st.name, err, st.wantWait)
			}
			e.clock.Advance(time.Second)
		}
		// Four codes sent (mail 1, SMS 1, attempts 2 and 3) and the cap is
		// ResendMax per window: one more first code fits, then none.
		if err := start("attempt-4", notify.Email); err != nil {
			t.Fatalf("the 5th code in the window: %v", err)
		}
		err := start("attempt-5", notify.Email)
		var rl *RateLimitError
		if !errors.As(err, &rl) || rl.RetryAfter <= 0 {
			t.Errorf("a 6th code in the window = %v, want a RateLimitError with a wait", err)
		}
	})
}

// Someone registering a victim's address again and again (each time
// mailing the owner a notice) cannot use up the address's budget of sign-in
// codes: notices without an account count apart.
func TestTakenAddressNoticesSpareSignInCodes(t *testing.T) {
	forEachClocked(t, Config{}, func(t *testing.T, e *flowEnv) {
		ctx := t.Context()
		victim := e.user(t, "sam@example.com", "")
		for i := range e.s.cfg.ResendMax + 2 {
			if _, err := e.s.Register(ctx, NewUser{Email: "sam@example.com", Password: "an eager young walrus"}); err != nil {
				t.Fatalf("Register(taken) #%d: %v", i+1, err)
			}
			e.clock.Advance(time.Second)
		}
		before := e.rec.count()
		if _, err := e.s.StartOTP(ctx, victim.ID, "attempt-1", notify.Email); err != nil {
			t.Fatalf("StartOTP after %d registrations of the address = %v, want a code", e.s.cfg.ResendMax+2, err)
		}
		if got := e.rec.count() - before; got != 1 {
			t.Errorf("%d messages for the sign-in code, want 1", got)
		}
	})
}

// Notices to the owner of a taken address count per destination, among
// themselves; the wait reported past the cap is the time left.
func TestTakenAddressNoticeWaitIsTimeLeft(t *testing.T) {
	forEachClocked(t, Config{}, func(t *testing.T, e *flowEnv) {
		ctx := t.Context()
		e.user(t, "rae@example.com", "")
		window, step := e.s.cfg.ResendWindow, e.s.cfg.ResendInterval+time.Second
		register := func() string {
			t.Helper()
			ticket, err := e.s.Register(ctx, NewUser{Email: "rae@example.com", Password: "an eager young walrus"})
			if err != nil {
				t.Fatalf("Register(taken): %v", err)
			}
			return ticket
		}
		start := e.clock.Now()
		for range e.s.cfg.ResendMax {
			register()
			e.clock.Advance(step)
		}
		elapsed := e.clock.Now().Sub(start)
		_, err := e.s.ResendVerification(ctx, register())
		var rl *RateLimitError
		if want := window - elapsed + time.Second; !errors.As(err, &rl) || rl.RetryAfter != want {
			t.Fatalf("resend past the cap = %v, want a RateLimitError of %v", err, want)
		}
		before := e.rec.count()
		e.clock.Advance(window - elapsed + time.Second)
		register()
		if got := e.rec.count() - before; got != 1 {
			t.Errorf("once the oldest notice left the window: %d mails, want 1", got)
		}
	})
}
