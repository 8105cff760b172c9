package notify

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/torii-idp/torii/storage"
)

// Config configures delivery. Zero values pick the documented defaults.
type Config struct {
	// SMTPURL is smtp://USER:PASSWORD@HOST:PORT (STARTTLS when offered) or
	// smtps://… (TLS from the start). Empty: mails are written to the log
	// instead (development mode).
	SMTPURL string
	// From is the sender address of every mail.
	From string
	// SMSURL is an http(s) URL that gets a JSON POST {"to","body"}, or
	// twilio://ACCOUNT_SID:AUTH_TOKEN@FROM_NUMBER. Empty: SMS are written to
	// the log instead (development mode).
	SMSURL string
	// RootCAs verifies the SMTP server's certificate; nil means the
	// system's roots (a private CA can be given for an internal server).
	RootCAs *x509.CertPool
	// TwilioBaseURL is Twilio's REST API; default https://api.twilio.com.
	TwilioBaseURL string
	// PollInterval is how often the worker looks for due messages besides
	// being woken by Enqueue; default 1 second.
	PollInterval time.Duration
	// MaxAttempts is how often a message is tried before it is left failed;
	// default 20 (about a day with the back-off).
	MaxAttempts int
	// Timeout bounds one delivery attempt, from dialing to the server's
	// last answer (the connection is cut when it runs out); default 10
	// seconds. A message is leased to one node for 3×Timeout right before
	// its attempt, so no other node can take it while it is being sent.
	Timeout time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Observe, when set, hears each delivery attempt's outcome by channel
	// (email, sms): sent, retry (it failed and will be tried again) or
	// failed (given up). Metrics; never a recipient or a body.
	Observe func(channel, outcome string)
}

// Outbox is the durable queue of outgoing mail and SMS, and its worker.
type Outbox struct {
	store *storage.Store
	cfg   Config
	log   *slog.Logger
	mail  sender
	sms   sender
	nudge chan struct{}

	flushing sync.Mutex
}

// sender delivers one message.
type sender interface {
	send(ctx context.Context, m *storage.OutboxMessage) error
}

// New checks the delivery configuration and returns the outbox. Nothing is
// sent until Run or Flush.
func New(store *storage.Store, cfg Config, log *slog.Logger) (*Outbox, error) {
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 20
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.TwilioBaseURL == "" {
		cfg.TwilioBaseURL = "https://api.twilio.com"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o := &Outbox{store: store, cfg: cfg, log: log, nudge: make(chan struct{}, 1)}
	var err error
	if cfg.SMTPURL == "" {
		o.mail = logSender{log: log, what: "mail", setting: "TORII_SMTP_URL"}
	} else if o.mail, err = newSMTPSender(cfg); err != nil {
		return nil, err
	}
	if cfg.SMSURL == "" {
		o.sms = logSender{log: log, what: "SMS", setting: "TORII_SMS_URL"}
	} else if o.sms, err = newSMSSender(cfg); err != nil {
		return nil, err
	}
	return o, nil
}

var _ Enqueuer = (*Outbox)(nil)

// Enqueue stores m for delivery, inside the storage transaction ctx
// carries if any, and wakes this node's worker.
func (o *Outbox) Enqueue(ctx context.Context, m Message) error {
	switch m.Channel {
	case Email, SMS:
	default:
		return fmt.Errorf("notify: unknown channel %q", m.Channel)
	}
	if m.To == "" || m.Text == "" {
		return errors.New("notify: a message needs a recipient and a text")
	}
	err := o.store.EnqueueMessage(ctx, &storage.OutboxMessage{
		Channel: string(m.Channel), Recipient: m.To, Subject: m.Subject, BodyText: m.Text, BodyHTML: m.HTML,
	})
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	select {
	case o.nudge <- struct{}{}:
	default:
	}
	return nil
}

// Run sends due messages until ctx ends, polling every PollInterval and
// waking at once after an Enqueue on this node.
func (o *Outbox) Run(ctx context.Context) error {
	t := time.NewTicker(o.cfg.PollInterval)
	defer t.Stop()
	for {
		if err := o.Flush(ctx); err != nil && ctx.Err() == nil {
			o.log.WarnContext(ctx, "outbox: flush failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-o.nudge:
		}
	}
}

// Flush sends every message due now and returns when none is left. A send
// never holds a database transaction: a message is claimed (leased) in one
// short transaction, sent, and the outcome recorded in another.
//
// Messages are claimed one at a time, right before their attempt: a claim
// on a batch would run out while the batch waits behind a slow server, and
// another node would send the rest again. The lease (3×Timeout) outlasts
// the attempt, which is cut off at Timeout, and leaves time to record it.
func (o *Outbox) Flush(ctx context.Context) error {
	o.flushing.Lock()
	defer o.flushing.Unlock()
	for {
		m, err := o.store.ClaimMessage(ctx, o.lease())
		if err != nil {
			return fmt.Errorf("notify: %w", err)
		}
		if m == nil {
			return nil
		}
		if err := o.deliver(ctx, m); err != nil {
			return err
		}
	}
}

// lease is how long a claim on one message lasts.
// observe reports an attempt's outcome to Config.Observe.
func (o *Outbox) observe(channel, outcome string) {
	if o.cfg.Observe != nil {
		o.cfg.Observe(channel, outcome)
	}
}

func (o *Outbox) lease() time.Duration { return 3 * o.cfg.Timeout }

func (o *Outbox) deliver(ctx context.Context, m *storage.OutboxMessage) error {
	s := o.mail
	if m.Channel == string(SMS) {
		s = o.sms
	}
	sendCtx, cancel := context.WithTimeout(ctx, o.cfg.Timeout)
	err := s.send(sendCtx, m)
	cancel()
	// Record the outcome even if ctx just ended: the message was (or was
	// not) handed over.
	recordCtx := context.WithoutCancel(ctx)
	if err == nil {
		o.log.InfoContext(ctx, "outbox: message sent", "id", m.ID, "channel", m.Channel, "attempt", m.Attempts+1)
		o.observe(m.Channel, "sent")
		return o.recorded(ctx, m, o.store.MarkMessageSent(recordCtx, m))
	}
	attempt := m.Attempts + 1
	giveUp := attempt >= o.cfg.MaxAttempts
	if giveUp {
		o.observe(m.Channel, "failed")
	} else {
		o.observe(m.Channel, "retry")
	}
	next := o.cfg.Now().Add(backoff(attempt))
	reason := sanitize(err, m)
	if giveUp {
		o.log.ErrorContext(ctx, "outbox: giving up on a message", "id", m.ID, "channel", m.Channel, "attempts", attempt, "err", reason)
	} else {
		o.log.WarnContext(ctx, "outbox: delivery failed, will retry", "id", m.ID, "channel", m.Channel,
			"attempt", attempt, "retry_at", next.UTC().Format(time.RFC3339), "err", reason)
	}
	return o.recorded(ctx, m, o.store.MarkMessageFailed(recordCtx, m, reason, next, giveUp))
}

// recorded handles the error of recording an attempt's outcome. A lost
// claim (the lease ran out and another node took the message, which may
// then be sent twice) is logged and does not stop the worker.
func (o *Outbox) recorded(ctx context.Context, m *storage.OutboxMessage, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrClaimLost):
		o.log.WarnContext(ctx, "outbox: claim lost before the attempt was recorded; another node may send the message again",
			"id", m.ID, "channel", m.Channel, "lease", o.lease().String())
		return nil
	default:
		return fmt.Errorf("notify: %w", err)
	}
}

// backoff is the wait before attempt+1: 5 s doubling per attempt, at most
// 30 minutes, with ±20 % jitter so that nodes do not retry in step.
func backoff(attempt int) time.Duration {
	d := 5 * time.Second << min(attempt-1, 20)
	d = min(d, 30*time.Minute)
	jitter := time.Duration(rand.Int64N(int64(d)/5*2+1)) - d/5
	return d + jitter
}

// sanitize keeps an error short and free of credentials (URLs with user
// info are cut down to their host) and of what it may quote of m (see
// redact): the error is logged and stored with the message, a failed one
// included.
func sanitize(err error, m *storage.OutboxMessage) string {
	msg := err.Error()
	for _, word := range strings.Fields(msg) {
		if u, perr := url.Parse(strings.Trim(word, `"'(),`)); perr == nil && u.User != nil {
			msg = strings.ReplaceAll(msg, word, u.Scheme+"://"+u.Host)
		}
	}
	msg = redact(msg, m)
	if len(msg) > 300 {
		msg = msg[:300]
	}
	return msg
}

var (
	// secretShaped matches what in a message may be a one-time code (six
	// or more digits) or a link's token (twenty or more letters, digits,
	// '-' or '_').
	secretShaped = regexp.MustCompile(`[0-9]{6,}|[A-Za-z0-9_-]{20,}`)
	// wordRun matches a run of an error that may be part of one.
	wordRun = regexp.MustCompile(`[A-Za-z0-9_-]{6,}`)
)

// redact removes from an attempt's error what it may quote of m: a server
// may quote a refused message's subject or text (some content filters do),
// or its recipient. Every code or token of m, and every run of six or more
// letters and digits that is part of one (a quote cut short), becomes
// [redacted]; the recipient becomes [recipient].
func redact(msg string, m *storage.OutboxMessage) string {
	if m.Recipient != "" {
		msg = strings.ReplaceAll(msg, m.Recipient, "[recipient]")
	}
	var secrets []string
	for _, part := range []string{m.Subject, m.BodyText, m.BodyHTML} {
		secrets = append(secrets, secretShaped.FindAllString(part, -1)...)
	}
	for _, secret := range secrets {
		msg = strings.ReplaceAll(msg, secret, "[redacted]")
	}
	return wordRun.ReplaceAllStringFunc(msg, func(w string) string {
		for _, secret := range secrets {
			if strings.Contains(secret, w) {
				return "[redacted]"
			}
		}
		return w
	})
}

// logSender is the development-mode sender: it writes the message to the
// log, clearly marked as not delivered, so that a developer can read the
// code and sign in. This is the only place Torii ever logs a message body.
type logSender struct {
	log     *slog.Logger
	what    string
	setting string
}

func (l logSender) send(ctx context.Context, m *storage.OutboxMessage) error {
	l.log.WarnContext(ctx, "DEVELOPMENT MODE: "+l.what+" not sent because "+l.setting+" is unset; here it is",
		"to", m.Recipient, "subject", m.Subject, "text", m.BodyText)
	return nil
}
