package notify_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/torii-idp/torii/login/notify"
	"github.com/torii-idp/torii/login/notify/notifytest"
	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
	"github.com/torii-idp/torii/templates"
)

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newOutbox(t *testing.T, s *storage.Store, cfg notify.Config) (*notify.Outbox, *logBuffer) {
	t.Helper()

	logs := &logBuffer{}
	if cfg.From == "" {
		cfg.From = "torii@example.com"
	}
	o, err := notify.New(s, cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatalf("notify.New: %v", err)
	}
	return o, logs
}

func mailMessage(to, code string) notify.Message {
	subject, text, html, err := notify.Compose("login_code", struct {
		Code    string
		Minutes int
		Name    string
	}{code, 10, "Ada"})
	if err != nil {
		panic(err)
	}
	return notify.Message{Channel: notify.Email, To: to, Subject: subject, Text: text, HTML: html}
}

// makeDue pretends time passed: every pending message is due now.
func makeDue(t *testing.T, s *storage.Store) {
	t.Helper()
	if _, err := s.DB().NewUpdate().Table("outbox").Set("next_attempt_at = ?", time.Now().Add(-time.Second).UTC()).
		Where("status = ?", storage.OutboxPending).Exec(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestMailDelivery(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		s := open(t)
		smtpd := notifytest.NewSMTPServer(t)
		o, logs := newOutbox(t, s, notify.Config{SMTPURL: smtpd.URL(), RootCAs: smtpd.RootCAs(), From: "Torii <torii@example.com>"})
		ctx := t.Context()
		if err := o.Enqueue(ctx, mailMessage("ada@example.com", "424242")); err != nil {
			t.Fatal(err)
		}
		if err := o.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		got := smtpd.WaitFor(t, "ada@example.com", "sign-in code")
		if !strings.Contains(got.From, "torii@example.com") || !strings.Contains(got.Text, "424242") || !strings.Contains(got.HTML, "<p") ||
			!strings.Contains(got.HTML, "424242") {
			t.Errorf("received %+v", got)
		}
		sent, _ := s.OutboxMessages(ctx, storage.OutboxSent)
		if len(sent) != 1 || sent[0].BodyText != "" || sent[0].BodyHTML != "" {
			t.Errorf("sent rows = %+v; want one, with the body erased", sent)
		}
		if strings.Contains(logs.String(), "424242") || strings.Contains(logs.String(), smtpd.Password) {
			t.Error("the log holds the code or the SMTP password")
		}
	})
}

// TestMailTransport covers how the SMTP URL is used: STARTTLS when the
// server offers it on smtp://, TLS from the first byte on smtps://, the
// URL's credentials for AUTH, and the server certificate checked.
func TestMailTransport(t *testing.T) {
	tests := []struct {
		name     string
		opts     []notifytest.SMTPOption
		scheme   string
		password string // in the URL instead of the server's, when set
		noRoots  bool   // do not trust the server's certificate
		wantSent bool
	}{
		{name: "smtp with STARTTLS", scheme: "smtp://", wantSent: true},
		{name: "smtps", opts: []notifytest.SMTPOption{notifytest.ImplicitTLS()}, scheme: "smtps://", wantSent: true},
		{name: "smtp wrong password", scheme: "smtp://", password: "not-the-password"},
		{name: "smtps wrong password", opts: []notifytest.SMTPOption{notifytest.ImplicitTLS()}, scheme: "smtps://", password: "not-the-password"},
		{name: "smtps untrusted certificate", opts: []notifytest.SMTPOption{notifytest.ImplicitTLS()}, scheme: "smtps://", noRoots: true},
		{name: "smtp untrusted certificate", scheme: "smtp://", noRoots: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := storagetest.NewSQLite(t)
			smtpd := notifytest.NewSMTPServer(t, tc.opts...)
			smtpURL := smtpd.URL()
			if !strings.HasPrefix(smtpURL, tc.scheme) {
				t.Fatalf("URL() = %q, want the scheme %s", smtpURL, tc.scheme)
			}
			password := smtpd.Password
			if tc.password != "" {
				password = tc.password
				smtpURL = tc.scheme + url.UserPassword(smtpd.User, password).String() + "@" + smtpd.Addr()
			}
			cfg := notify.Config{SMTPURL: smtpURL, RootCAs: smtpd.RootCAs(), Timeout: 5 * time.Second}
			if tc.noRoots {
				cfg.RootCAs = x509.NewCertPool()
			}
			o, logs := newOutbox(t, s, cfg)
			ctx := t.Context()
			if err := o.Enqueue(ctx, mailMessage("tls@example.com", "192837")); err != nil {
				t.Fatal(err)
			}
			if err := o.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			ms := smtpd.Mails()
			if !tc.wantSent {
				pending, _ := s.OutboxMessages(ctx, storage.OutboxPending)
				if len(ms) != 0 || len(pending) != 1 || pending[0].Attempts != 1 || pending[0].LastError == "" {
					t.Fatalf("%d mails, pending %+v; want none sent and the message kept with its error", len(ms), pending)
				}
				if strings.Contains(pending[0].LastError, password) || strings.Contains(logs.String(), password) {
					t.Errorf("the SMTP password leaked into the error or the log: %q", pending[0].LastError)
				}
				return
			}
			if len(ms) != 1 {
				t.Fatalf("%d mails received, want 1", len(ms))
			}
			if !ms[0].TLS || ms[0].User != smtpd.User || !strings.Contains(ms[0].Text, "192837") {
				t.Errorf("received over TLS=%v as user %q; want TLS as %q", ms[0].TLS, ms[0].User, smtpd.User)
			}
			if strings.Contains(logs.String(), "192837") || strings.Contains(logs.String(), smtpd.Password) {
				t.Error("the log holds the code or the SMTP password")
			}
		})
	}
}

// wantRetry checks that m is still queued, body intact, after attempt
// failed attempts, and due again after the back-off (5 s doubling, ±20 %)
// counted from the attempt, made between before and after.
func wantRetry(t *testing.T, m *storage.OutboxMessage, attempt int, before, after time.Time) {
	t.Helper()
	base := 5 * time.Second << (attempt - 1)
	earliest, latest := before.Add(base*8/10), after.Add(base*12/10)
	if m.Status != storage.OutboxPending || m.Attempts != attempt || m.BodyText == "" || m.LastError == "" {
		t.Errorf("message = status %q, %d attempts, body kept %v, error %q; want pending after %d attempts with its body and error",
			m.Status, m.Attempts, m.BodyText != "", m.LastError, attempt)
	}
	if m.NextAttemptAt.Before(earliest) || m.NextAttemptAt.After(latest) {
		t.Errorf("after attempt %d the retry is at %v, want between %v and %v", attempt, m.NextAttemptAt, earliest, latest)
	}
}

// flushTimed runs one Flush and returns when it started and ended.
func flushTimed(t *testing.T, o *notify.Outbox) (before, after time.Time) {
	t.Helper()
	before = time.Now()
	if err := o.Flush(t.Context()); err != nil {
		t.Fatalf("Flush = %v", err)
	}
	return before, time.Now()
}

// onlyMessage returns the one message in the outbox.
func onlyMessage(t *testing.T, s *storage.Store) *storage.OutboxMessage {
	t.Helper()
	var ms []*storage.OutboxMessage
	for _, status := range []string{storage.OutboxPending, storage.OutboxSent, storage.OutboxFailed} {
		got, err := s.OutboxMessages(t.Context(), status)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, got...)
	}
	if len(ms) != 1 {
		t.Fatalf("the outbox holds %d messages, want 1", len(ms))
	}
	return ms[0]
}

// A refusing server (temporary 4xx or permanent 5xx, at MAIL, RCPT or
// DATA) leaves the message queued with a back-off; once the server takes
// mail again it is delivered exactly once.
func TestMailServerRefusingThenBack(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		tests := []struct {
			name  string
			stage notifytest.Stage
			code  int
		}{
			{"451 at MAIL", notifytest.AtMail, 451},
			{"550 at RCPT", notifytest.AtRcpt, 550},
			{"452 at RCPT", notifytest.AtRcpt, 452},
			{"554 at DATA", notifytest.AtData, 554},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				s := open(t)
				smtpd := notifytest.NewSMTPServer(t)
				smtpd.RefuseAt(tc.stage, tc.code)
				o, logs := newOutbox(t, s, notify.Config{SMTPURL: smtpd.URL(), RootCAs: smtpd.RootCAs()})
				if err := o.Enqueue(t.Context(), mailMessage("bob@example.com", "111222")); err != nil {
					t.Fatal(err)
				}
				before, after := flushTimed(t, o)
				m := onlyMessage(t, s)
				wantRetry(t, m, 1, before, after)
				if !strings.Contains(m.LastError, strconv.Itoa(tc.code)) {
					t.Errorf("last error %q does not give the server's %d", m.LastError, tc.code)
				}
				if strings.Contains(m.LastError, smtpd.Password) || strings.Contains(logs.String(), smtpd.Password) ||
					strings.Contains(logs.String(), "111222") {
					t.Error("the SMTP password or the code leaked into an error or the log")
				}
				// Not yet due: nothing happens.
				flushTimed(t, o)
				if n := len(smtpd.Mails()); n != 0 || onlyMessage(t, s).Attempts != 1 {
					t.Fatalf("%d mails sent, %d attempts before the retry time; want 0 and 1", n, onlyMessage(t, s).Attempts)
				}
				smtpd.RefuseAt(0, 0)
				makeDue(t, s)
				flushTimed(t, o)
				makeDue(t, s)
				flushTimed(t, o)
				if ms := smtpd.Mails(); len(ms) != 1 || !strings.Contains(ms[0].Text, "111222") {
					t.Errorf("after the server came back: %d mails, want exactly 1", len(ms))
				}
				if m := onlyMessage(t, s); m.Status != storage.OutboxSent || m.Attempts != 2 || m.LastError != "" {
					t.Errorf("message = %q after %d attempts, error %q; want sent after 2, error cleared", m.Status, m.Attempts, m.LastError)
				}
			})
		}
	})
}

// With no server listening the message stays queued, and it goes out
// once the server is back.
func TestMailServerAbsent(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		s := open(t)
		smtpd := notifytest.NewSMTPServer(t)
		smtpd.Stop()
		o, logs := newOutbox(t, s, notify.Config{SMTPURL: smtpd.URL(), RootCAs: smtpd.RootCAs(), Timeout: 2 * time.Second})
		if err := o.Enqueue(t.Context(), mailMessage("cy@example.com", "333444")); err != nil {
			t.Fatal(err)
		}
		before, after := flushTimed(t, o)
		m := onlyMessage(t, s)
		wantRetry(t, m, 1, before, after)
		if !strings.Contains(m.LastError, "connection refused") || strings.Contains(m.LastError, smtpd.Password) ||
			strings.Contains(logs.String(), smtpd.Password) {
			t.Errorf("last error %q: want a refused connection, without the password", m.LastError)
		}
		smtpd.Start(t)
		makeDue(t, s)
		flushTimed(t, o)
		if ms := smtpd.Mails(); len(ms) != 1 || ms[0].To[0] != "cy@example.com" {
			t.Errorf("after the server came up: %d mails, want exactly 1", len(ms))
		}
		if m := onlyMessage(t, s); m.Status != storage.OutboxSent || m.Attempts != 2 {
			t.Errorf("message = %q after %d attempts, want sent after 2", m.Status, m.Attempts)
		}
	})
}

// After MaxAttempts failures a message is left failed, its body erased,
// and no longer tried; the back-off doubles in between.
func TestGiveUpAfterMaxAttempts(t *testing.T) {
	smtpd := notifytest.NewSMTPServer(t)
	smtpd.RefuseAt(notifytest.AtRcpt, 550)
	gw := notifytest.NewSMSServer(t)
	gw.FailWith(500)
	tests := []struct {
		name string
		msg  notify.Message
	}{
		{"mail refused with 550", mailMessage("dee@example.com", "555666")},
		{"SMS gateway answering 500", notify.Message{Channel: notify.SMS, To: "+15550004444", Text: "Your code is 555666."}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := storagetest.NewSQLite(t)
			o, logs := newOutbox(t, s, notify.Config{SMTPURL: smtpd.URL(), RootCAs: smtpd.RootCAs(), SMSURL: gw.URL(), MaxAttempts: 3})
			if err := o.Enqueue(t.Context(), tc.msg); err != nil {
				t.Fatal(err)
			}
			for attempt := 1; attempt <= 2; attempt++ {
				makeDue(t, s)
				before, after := flushTimed(t, o)
				wantRetry(t, onlyMessage(t, s), attempt, before, after)
			}
			makeDue(t, s)
			flushTimed(t, o)
			m := onlyMessage(t, s)
			if m.Status != storage.OutboxFailed || m.Attempts != 3 || m.BodyText != "" || m.BodyHTML != "" || m.LastError == "" {
				t.Errorf("after 3 failures: status %q, %d attempts, body erased %v, error %q; want failed, 3, erased, the error",
					m.Status, m.Attempts, m.BodyText == "" && m.BodyHTML == "", m.LastError)
			}
			if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "giving up") {
				t.Errorf("the log does not report giving up:\n%s", logs)
			}
			// A failed message is never tried again.
			makeDue(t, s)
			flushTimed(t, o)
			if m := onlyMessage(t, s); m.Attempts != 3 {
				t.Errorf("a failed message was tried again: %d attempts", m.Attempts)
			}
		})
	}
	if n := len(smtpd.Mails()); n != 0 {
		t.Errorf("%d mails got through a refusing server", n)
	}
	if n := len(gw.Texts()); n != 0 {
		t.Errorf("%d SMS got through a failing gateway", n)
	}
}

// An SMS gateway answering 500 (or 503) leaves the SMS queued with a
// back-off, then it is delivered once; Twilio gets the form fields and
// the account SID and token as basic auth.
func TestSMSDelivery(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		gw := notifytest.NewSMSServer(t)
		tests := []struct {
			name     string
			cfg      notify.Config
			status   int
			wantFrom string
		}{
			{"json 500", notify.Config{SMSURL: gw.URL()}, 500, ""},
			{"json 503", notify.Config{SMSURL: gw.URL()}, 503, ""},
			{"twilio 500", notify.Config{SMSURL: gw.TwilioURL("+15550001111"), TwilioBaseURL: gw.TwilioBaseURL()}, 500, "+15550001111"},
		}
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				s := open(t)
				o, logs := newOutbox(t, s, tc.cfg)
				to := fmt.Sprintf("+1555000200%d", i)
				gw.FailWith(tc.status)
				if err := o.Enqueue(t.Context(), notify.Message{Channel: notify.SMS, To: to, Text: "Your code is 777888."}); err != nil {
					t.Fatal(err)
				}
				before, after := flushTimed(t, o)
				m := onlyMessage(t, s)
				wantRetry(t, m, 1, before, after)
				if !strings.Contains(m.LastError, strconv.Itoa(tc.status)) || strings.Contains(m.LastError, gw.Token) {
					t.Errorf("last error %q: want the gateway's %d, without the token", m.LastError, tc.status)
				}
				gw.FailWith(0)
				makeDue(t, s)
				flushTimed(t, o)
				if got := gw.WaitFor(t, to); got.Body != "Your code is 777888." || got.From != tc.wantFrom {
					t.Errorf("SMS = %+v, want the body and From %q", got, tc.wantFrom)
				}
				n := 0
				for _, sms := range gw.Texts() {
					if sms.To == to {
						n++
					}
				}
				if m := onlyMessage(t, s); n != 1 || m.Status != storage.OutboxSent || m.Attempts != 2 || m.BodyText != "" {
					t.Errorf("%d SMS to %s; message %q after %d attempts; want 1, sent after 2, body erased", n, to, m.Status, m.Attempts)
				}
				if out := logs.String(); strings.Contains(out, "777888") || strings.Contains(out, gw.Token) {
					t.Errorf("the log holds the code or the Twilio token:\n%s", out)
				}
			})
		}
	})
}

// Twilio with a wrong auth token: the fake answers 401 and the SMS stays
// queued (the URL's SID and token are what Torii sends).
func TestTwilioWrongToken(t *testing.T) {
	s := storagetest.NewSQLite(t)
	gw := notifytest.NewSMSServer(t)
	badURL := "twilio://" + gw.SID + ":wrong-token@" + url.PathEscape("+15550001111")
	o, _ := newOutbox(t, s, notify.Config{SMSURL: badURL, TwilioBaseURL: gw.TwilioBaseURL()})
	if err := o.Enqueue(t.Context(), notify.Message{Channel: notify.SMS, To: "+15550009999", Text: "Your code is 121212."}); err != nil {
		t.Fatal(err)
	}
	before, after := flushTimed(t, o)
	m := onlyMessage(t, s)
	wantRetry(t, m, 1, before, after)
	if !strings.Contains(m.LastError, "401") || strings.Contains(m.LastError, "wrong-token") {
		t.Errorf("last error %q: want Twilio's 401, without the token", m.LastError)
	}
	if n := len(gw.Texts()); n != 0 {
		t.Errorf("%d SMS accepted with a wrong token", n)
	}
}

func TestDevelopmentModeLogs(t *testing.T) {
	s := storagetest.NewSQLite(t)
	o, logs := newOutbox(t, s, notify.Config{})
	ctx := t.Context()
	o.Enqueue(ctx, mailMessage("eve@example.com", "909090"))
	o.Enqueue(ctx, notify.Message{Channel: notify.SMS, To: "+15550003333", Text: "SMS code 808080"})
	if err := o.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	for _, want := range []string{"DEVELOPMENT MODE", "TORII_SMTP_URL", "909090", "TORII_SMS_URL", "808080", "eve@example.com"} {
		if !strings.Contains(out, want) {
			t.Errorf("development log lacks %q:\n%s", want, out)
		}
	}
	if sent, _ := s.OutboxMessages(ctx, storage.OutboxSent); len(sent) != 2 {
		t.Errorf("%d messages marked done, want 2", len(sent))
	}
}

func TestEachMessageSentOnceByTwoNodes(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		s := open(t)
		smtpd := notifytest.NewSMTPServer(t)
		a, _ := newOutbox(t, s, notify.Config{SMTPURL: smtpd.URL(), RootCAs: smtpd.RootCAs()})
		b, _ := newOutbox(t, s, notify.Config{SMTPURL: smtpd.URL(), RootCAs: smtpd.RootCAs()})
		ctx := t.Context()
		for i := range 50 {
			if err := a.Enqueue(ctx, mailMessage(fmt.Sprintf("u%d@example.com", i), "123456")); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		for _, o := range []*notify.Outbox{a, b} {
			wg.Go(func() {
				if err := o.Flush(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		ms := smtpd.Mails()
		seen := map[string]int{}
		for _, m := range ms {
			seen[m.To[0]]++
		}
		if len(ms) != 50 || len(seen) != 50 {
			t.Errorf("%d mails to %d addresses, want 50 to 50", len(ms), len(seen))
		}
	})
}

// twoNodes opens two stores on one fresh, migrated database, as two Torii
// nodes would: separate connection pools, one outbox table.
func twoNodes(t *testing.T, backend string) (*storage.Store, *storage.Store) {
	t.Helper()
	var dbURL string
	switch backend {
	case "sqlite":
		dbURL = "sqlite:" + filepath.Join(t.TempDir(), "torii.db")
	case "postgres":
		dbURL = storagetest.PostgresURL(t)
	default:
		t.Fatalf("unknown backend %q", backend)
	}
	var nodes [2]*storage.Store
	for i := range nodes {
		s, err := storage.Open(t.Context(), dbURL, storage.Options{})
		if err != nil {
			t.Fatalf("storage.Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		nodes[i] = s
	}
	if _, err := nodes[0].Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return nodes[0], nodes[1]
}

// waitForStatus waits (up to 30 s) until n messages are in status.
func waitForStatus(t *testing.T, s *storage.Store, status string, n int) []*storage.OutboxMessage {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ms, err := s.OutboxMessages(t.Context(), status)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) >= n || time.Now().After(deadline) {
			return ms
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A slow mail server makes a batch of sends outlast any one lease; each
// message must still be sent once, by one of the two nodes.
func TestEachMessageSentOnceWithSlowServer(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			s1, s2 := twoNodes(t, backend)
			smtpd := notifytest.NewSMTPServer(t)
			// Each DATA takes a quarter of Timeout: one message is sent in
			// time, but twenty in a row take far longer than 3×Timeout.
			smtpd.DelayData(500 * time.Millisecond)
			cfg := notify.Config{SMTPURL: smtpd.URL(), RootCAs: smtpd.RootCAs(), Timeout: 2 * time.Second,
				PollInterval: 20 * time.Millisecond}
			a, logsA := newOutbox(t, s1, cfg)
			b, logsB := newOutbox(t, s2, cfg)
			const n = 24
			for i := range n {
				if err := a.Enqueue(t.Context(), mailMessage(fmt.Sprintf("u%d@example.com", i), "123456")); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithCancel(t.Context())
			var wg sync.WaitGroup
			for _, o := range []*notify.Outbox{a, b} {
				wg.Go(func() {
					if err := o.Run(ctx); err != nil {
						t.Errorf("Run = %v", err)
					}
				})
			}
			sent := waitForStatus(t, s1, storage.OutboxSent, n)
			cancel()
			wg.Wait()

			if len(sent) != n {
				t.Errorf("%d of %d messages marked sent", len(sent), n)
			}
			for _, m := range sent {
				if m.Attempts != 1 {
					t.Errorf("message to %s: %d attempts, want 1", m.Recipient, m.Attempts)
				}
			}
			seen := map[string]int{}
			for _, m := range smtpd.Mails() {
				seen[m.To[0]]++
			}
			for i := range n {
				if to := fmt.Sprintf("u%d@example.com", i); seen[to] != 1 {
					t.Errorf("%s received %d mails, want 1", to, seen[to])
				}
			}
			if logs := logsA.String() + logsB.String(); strings.Contains(logs, "claim lost") || strings.Contains(logs, "123456") {
				t.Errorf("the logs tell of a lost claim or hold the code:\n%s", logs)
			}
		})
	}
}

// When the claim is gone by the time the outcome is recorded (another
// node took the message), the worker says so at warn level and goes on.
func TestLostClaimIsLogged(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		s := open(t)
		smtpd := notifytest.NewSMTPServer(t)
		// While the mail is in DATA, "another node" takes the message over.
		smtpd.OnData(func() {
			if _, err := s.DB().NewUpdate().Table("outbox").Set("claim_token = ?", "other-node").
				Where("status = ?", storage.OutboxPending).Exec(context.Background()); err != nil {
				t.Error(err)
			}
		})
		o, logs := newOutbox(t, s, notify.Config{SMTPURL: smtpd.URL(), RootCAs: smtpd.RootCAs()})
		ctx := t.Context()
		if err := o.Enqueue(ctx, mailMessage("lost@example.com", "135790")); err != nil {
			t.Fatal(err)
		}
		if err := o.Flush(ctx); err != nil {
			t.Fatalf("Flush = %v, want a lost claim not to stop the worker", err)
		}
		out := logs.String()
		if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "claim lost") {
			t.Errorf("the log does not warn of the lost claim:\n%s", out)
		}
		if strings.Contains(out, "135790") || strings.Contains(out, smtpd.Password) {
			t.Errorf("the log holds the code or the SMTP password:\n%s", out)
		}
		pending, _ := s.OutboxMessages(ctx, storage.OutboxPending)
		if len(pending) != 1 || pending[0].ClaimToken != "other-node" || pending[0].Attempts != 0 {
			t.Errorf("pending = %+v; want the message left to the node that holds it", pending)
		}
	})
}

// A server that accepts the connection and never speaks: the attempt ends
// at Timeout (well within the lease) and the message stays queued.
func TestSendCutOffAtTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held sync.WaitGroup
	t.Cleanup(held.Wait) // after the listener is closed (cleanups run last first)
	t.Cleanup(func() { ln.Close() })
	held.Go(func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	})

	s := storagetest.NewSQLite(t)
	o, _ := newOutbox(t, s, notify.Config{SMTPURL: "smtp://u:p@" + ln.Addr().String(), Timeout: 300 * time.Millisecond})
	ctx := t.Context()
	if err := o.Enqueue(ctx, mailMessage("mute@example.com", "864200")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := o.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Flush took %v against a silent server, want about Timeout (300ms)", took)
	}
	pending, _ := s.OutboxMessages(ctx, storage.OutboxPending)
	if len(pending) != 1 || pending[0].Attempts != 1 || !strings.Contains(pending[0].LastError, "deadline") {
		t.Errorf("pending = %+v; want the message kept after one timed-out attempt", pending)
	}
}

func TestEnqueueJoinsTransaction(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		s := open(t)
		smtpd := notifytest.NewSMTPServer(t)
		o, _ := newOutbox(t, s, notify.Config{SMTPURL: smtpd.URL(), RootCAs: smtpd.RootCAs()})
		ctx := t.Context()
		errAbort := errors.New("abort")
		err := s.InTx(ctx, func(ctx context.Context) error {
			if err := o.Enqueue(ctx, mailMessage("rolled@example.com", "000111")); err != nil {
				return err
			}
			return errAbort
		})
		if !errors.Is(err, errAbort) {
			t.Fatal(err)
		}
		err = s.InTx(ctx, func(ctx context.Context) error {
			return o.Enqueue(ctx, mailMessage("kept@example.com", "000222"))
		})
		if err != nil {
			t.Fatal(err)
		}
		o.Flush(ctx)
		ms := smtpd.Mails()
		if len(ms) != 1 || ms[0].To[0] != "kept@example.com" {
			t.Errorf("sent %+v; want only the committed message", ms)
		}
	})
}

func TestRunWakesOnEnqueue(t *testing.T) {
	s := storagetest.NewSQLite(t)
	smtpd := notifytest.NewSMTPServer(t)
	o, _ := newOutbox(t, s, notify.Config{SMTPURL: smtpd.URL(), RootCAs: smtpd.RootCAs(), PollInterval: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- o.Run(ctx) }()
	o.Enqueue(t.Context(), mailMessage("run@example.com", "246810"))
	smtpd.WaitFor(t, "run@example.com", "sign-in code")
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	s := storagetest.NewSQLite(t)
	bad := []notify.Config{
		{SMTPURL: "http://mail.example.com"},
		{SMTPURL: "smtp://"},
		{SMTPURL: "smtp://mail.example.com:99999", From: "a@b.c"},
		{SMTPURL: "smtp://mail.example.com"}, // no From
		{SMSURL: "ftp://sms.example.com"},
		{SMSURL: "twilio://sid@+1555"},
		{SMSURL: "twilio://sid:token@15551234"},
		{SMSURL: "https://"},
	}
	for _, cfg := range bad {
		if _, err := notify.New(s, cfg, nil); err == nil {
			t.Errorf("notify.New(%+v) accepted a bad configuration", cfg)
		} else if strings.Contains(err.Error(), "token") && strings.Contains(cfg.SMSURL, "token") {
			t.Errorf("error %q repeats the secret", err)
		}
	}
	o, _ := newOutbox(t, s, notify.Config{})
	if err := o.Enqueue(t.Context(), notify.Message{Channel: "fax", To: "x", Text: "y"}); err == nil {
		t.Error("Enqueue accepted an unknown channel")
	}
}

func TestCompose(t *testing.T) {
	data := map[string]any{"Code": "123456", "Minutes": 10, "Hours": 72, "Name": "Ada <script>", "Link": "https://id.example/verify?token=abc",
		"Email": "ada@example.com", "ResetLink": "https://id.example/forgot", "When": "23 Nov 2026 10:00 UTC"}
	for _, name := range []string{"login_code", "verify_email", "verify_phone", "register_exists", "password_reset", "invite", "password_changed"} {
		subject, text, html, err := notify.Compose(name, data)
		if err != nil || subject == "" || text == "" {
			t.Errorf("Compose(%s) = %q, %q, %v", name, subject, text, err)
		}
		if strings.Contains(html, "<script>") {
			t.Errorf("Compose(%s) HTML does not escape the name", name)
		}
	}
	_, sms, _, _ := notify.Compose("login_code", data)
	if len(sms) > 160 {
		t.Errorf("the sign-in SMS is %d characters, want ≤ 160", len(sms))
	}
	if _, _, _, err := notify.Compose("nope", data); err == nil {
		t.Error("Compose of an unknown message succeeded")
	}
}

// No subject holds a code or a link: a subject is kept beside the message
// after it was sent and shows on lock screens and in notification previews
// (SECURITY 44). Every subject template is rendered with a value for each
// field a message has.
func TestSubjectsHoldNoSecrets(t *testing.T) {
	text, _, err := templates.Mail()
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{"Code": "424242", "Link": "https://id.example/verify?token=LINKTOKEN",
		"ResetLink": "https://id.example/reset?token=RESETTOKEN"}
	data := map[string]any{"Minutes": 10, "Hours": 72, "Name": "Ada", "Email": "ada@example.com", "When": "23 Nov 2026 10:00 UTC"}
	for field, v := range secrets {
		data[field] = v
	}
	n := 0
	for _, tmpl := range text.Templates() {
		name, ok := strings.CutSuffix(tmpl.Name(), ".subject")
		if !ok {
			continue
		}
		n++
		subject, _, _, err := notify.Compose(name, data)
		if err != nil {
			t.Errorf("Compose(%s) = %v", name, err)
		}
		for field, v := range secrets {
			if strings.Contains(subject, v) || strings.Contains(subject, strings.TrimPrefix(v, "https://")) {
				t.Errorf("Compose(%s) subject = %q, holds the %s", name, subject, field)
			}
		}
	}
	if n < 6 {
		t.Errorf("%d subject templates found, want at least 6", n)
	}
}

// A server that quotes the message it refuses, as some content filters do,
// leaves no code, token or address in the error kept with the failed
// message, nor in the log (SECURITY 44).
func TestRefusalQuotingTheMessage(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		s := open(t)
		smtpd := notifytest.NewSMTPServer(t)
		smtpd.RefuseAt(notifytest.AtData, 554)
		smtpd.QuoteRefused(true)
		o, logs := newOutbox(t, s, notify.Config{SMTPURL: smtpd.URL(), RootCAs: smtpd.RootCAs(), MaxAttempts: 1})
		token := "N5XGQYLOMVZWC3DJNZTWK4TFMJQWY3DJNZTWK4TFMJQWY3DJ"
		subject, text, html, err := notify.Compose("verify_email", map[string]any{"Code": "424242", "Minutes": 10, "Name": "Dee",
			"Link": "https://id.example/verify?token=" + token})
		if err != nil {
			t.Fatal(err)
		}
		if err := o.Enqueue(t.Context(), notify.Message{Channel: notify.Email, To: "dee@example.com", Subject: subject, Text: text, HTML: html}); err != nil {
			t.Fatal(err)
		}
		flushTimed(t, o)
		m := onlyMessage(t, s)
		if m.Status != storage.OutboxFailed || !strings.Contains(m.LastError, "554") || !strings.Contains(m.LastError, "[redacted]") {
			t.Errorf("message %q with error %q; want failed, with the server's answer and the quote redacted", m.Status, m.LastError)
		}
		for what, v := range map[string]string{"code": "424242", "token": token, "recipient": "dee@example.com"} {
			if strings.Contains(m.LastError, v) {
				t.Errorf("the stored error holds the %s: %q", what, m.LastError)
			}
			if strings.Contains(logs.String(), v) {
				t.Errorf("the log holds the %s:\n%s", what, logs)
			}
		}
	})
}
