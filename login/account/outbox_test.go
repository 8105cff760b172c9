package account

import (
	"bytes"
	"context"
	"regexp"
	"testing"

	"github.com/torii-idp/torii/login/notify"
	"github.com/torii-idp/torii/login/notify/notifytest"
	"github.com/torii-idp/torii/storage"
)

// tee hands every message to the real outbox and keeps a copy, so that a
// test can read the codes and links that went out.
type tee struct {
	recorder
	outbox *notify.Outbox
}

func (t *tee) Enqueue(ctx context.Context, m notify.Message) error {
	if err := t.outbox.Enqueue(ctx, m); err != nil {
		return err
	}
	return t.recorder.Enqueue(ctx, m)
}

// holdsCode reports whether v holds the 6-digit code as a number of its own
// (not inside a longer run of digits, as in a timestamp's fraction).
func holdsCode(v []byte, code string) bool {
	return regexp.MustCompile(`(^|\D)` + code + `(\D|$)`).Match(v)
}

// Once a message is sent, or given up on after its last attempt, no column
// of its outbox row holds a one-time code or a link's token: subjects never
// carry one, and the body is erased (SECURITY 44). Every message that
// carries a code or a token is covered: sign-in codes by mail and by SMS,
// the phone verification code, the registration code and link, the reset
// link; and the notices without one (a taken address, a changed password).
func TestOutboxKeepsNoSecrets(t *testing.T) {
	for _, outcome := range []string{storage.OutboxSent, storage.OutboxFailed} {
		t.Run(outcome, func(t *testing.T) {
			forEachClocked(t, noLimits, func(t *testing.T, e *flowEnv) {
				ctx := t.Context()
				cfg := notify.Config{MaxAttempts: 1, Now: e.clock.Now} // development mode: every send succeeds
				if outcome == storage.OutboxFailed {
					smtpd := notifytest.NewSMTPServer(t)
					smtpd.RefuseAt(notifytest.AtRcpt, 550)
					gw := notifytest.NewSMSServer(t)
					gw.FailWith(500)
					cfg.SMTPURL, cfg.RootCAs, cfg.From, cfg.SMSURL = smtpd.URL(), smtpd.RootCAs(), "torii@example.com", gw.URL()
				}
				o, err := notify.New(e.store, cfg, nil)
				if err != nil {
					t.Fatal(err)
				}
				box := &tee{outbox: o}
				c := noLimits
				c.Notifier, c.Issuer, c.Now = box, "https://id.example.test", e.clock.Now
				s := New(e.store, c)

				u, err := s.Create(ctx, NewUser{Email: "uma@example.com", Password: "a quiet walrus sings", EmailVerified: true,
					Phone: "+15557770004", PhoneVerified: true})
				if err != nil {
					t.Fatal(err)
				}
				codes := map[string]string{}
				tokens := map[string]string{}
				if _, err := s.StartOTP(ctx, u.ID, "attempt-1", notify.Email); err != nil {
					t.Fatal(err)
				}
				codes["sign-in code by mail"] = codeIn(t, box.last(t, u.Email))
				if _, err := s.StartOTP(ctx, u.ID, "attempt-2", notify.SMS); err != nil {
					t.Fatal(err)
				}
				codes["sign-in code by SMS"] = codeIn(t, box.last(t, u.Phone))
				if _, err := s.StartPhoneVerification(ctx, u.ID, "+15557770005"); err != nil {
					t.Fatal(err)
				}
				codes["phone code"] = codeIn(t, box.last(t, "+15557770005"))
				if _, err := s.Register(ctx, NewUser{Email: "vic@example.com", Password: "a quiet walrus sings"}); err != nil {
					t.Fatal(err)
				}
				m := box.last(t, "vic@example.com")
				codes["verification code"] = codeIn(t, m)
				tokens["verification link token"] = tokenIn(t, m)
				if _, err := s.Register(ctx, NewUser{Email: "uma@example.com", Password: "a quiet walrus sings"}); err != nil {
					t.Fatal(err)
				}
				if err := s.RequestPasswordReset(ctx, "uma@example.com"); err != nil {
					t.Fatal(err)
				}
				tokens["reset link token"] = tokenIn(t, box.last(t, u.Email))
				if err := s.ChangePassword(ctx, u.ID, PasswordChange{Old: "a quiet walrus sings", New: "another quiet walrus"}); err != nil {
					t.Fatal(err)
				}

				if err := o.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				done, err := e.store.OutboxMessages(ctx, outcome)
				if err != nil {
					t.Fatal(err)
				}
				if len(done) != box.count() {
					t.Fatalf("%d messages %s, want all %d", len(done), outcome, box.count())
				}
				sawRecipient := false // proof that the raw read sees the stored values
				for _, row := range rawRows(t, e.store, "outbox") {
					for col, v := range row {
						sawRecipient = sawRecipient || string(v) == "vic@example.com"
						for what, code := range codes {
							if holdsCode(v, code) {
								t.Errorf("a %s message's column %d holds the %s: %q", outcome, col, what, v)
							}
						}
						for what, token := range tokens {
							if bytes.Contains(v, []byte(token)) {
								t.Errorf("a %s message's column %d holds the %s: %q", outcome, col, what, v)
							}
						}
					}
				}
				if !sawRecipient {
					t.Error("no raw outbox value is the recipient vic@example.com")
				}
			})
		})
	}
}
