package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"

	"github.com/wneessen/go-mail"

	"github.com/torii-idp/torii/storage"
)

// smtpSender delivers mail with wneessen/go-mail.
type smtpSender struct {
	host        string
	opts        []mail.Option
	tls         *tls.Config
	implicitTLS bool
	from        string
	hasLogin    bool
}

func newSMTPSender(cfg Config) (*smtpSender, error) {
	u, err := url.Parse(cfg.SMTPURL)
	if err != nil || u.Hostname() == "" || (u.Scheme != "smtp" && u.Scheme != "smtps") {
		return nil, errors.New("notify: the SMTP URL must look like smtp://USER:PASSWORD@HOST:PORT or smtps://...")
	}
	if cfg.From == "" {
		return nil, errors.New("notify: a sender address (From) is required to send mail")
	}
	s := &smtpSender{host: u.Hostname(), from: cfg.From}
	port := 587
	if u.Scheme == "smtps" {
		port = 465
	}
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
			return nil, fmt.Errorf("notify: bad SMTP port %q", p)
		}
	}
	s.tls = &tls.Config{ServerName: s.host, RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
	// STARTTLS whenever the server offers it. With smtps:// the dialer
	// makes the TLS connection itself (see dial), and go-mail sees the
	// session as encrypted from the start (a server on TLS offers no
	// STARTTLS).
	s.implicitTLS = u.Scheme == "smtps"
	s.opts = []mail.Option{mail.WithPort(port), mail.WithTimeout(cfg.Timeout),
		mail.WithTLSConfig(s.tls), mail.WithTLSPolicy(mail.TLSOpportunistic)}
	if u.User != nil && u.User.Username() != "" {
		pw, _ := u.User.Password()
		s.hasLogin = true
		// The strongest mechanism the server offers; plain-text ones only
		// over TLS (or to localhost), as go-mail enforces.
		s.opts = append(s.opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover),
			mail.WithUsername(u.User.Username()), mail.WithPassword(pw))
	}
	return s, nil
}

func (s *smtpSender) send(ctx context.Context, m *storage.OutboxMessage) error {
	msg := mail.NewMsg()
	if err := msg.From(s.from); err != nil {
		return fmt.Errorf("sender address: %w", err)
	}
	if err := msg.To(m.Recipient); err != nil {
		return fmt.Errorf("recipient address: %w", err)
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	msg.SetMessageID()
	msg.SetBodyString(mail.TypeTextPlain, m.BodyText)
	if m.BodyHTML != "" {
		msg.AddAlternativeString(mail.TypeTextHTML, m.BodyHTML)
	}
	opts := append(s.opts[:len(s.opts):len(s.opts)], mail.WithDialContextFunc(s.dial(ctx)))
	client, err := mail.NewClient(s.host, opts...)
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
			// The connection was cut at the deadline: say so.
			return fmt.Errorf("smtp: %w (%w)", err, cause)
		}
		return fmt.Errorf("smtp: %w", err)
	}
	return nil
}

// dial returns the dialer for one send: it connects (with TLS from the
// start for smtps://) and closes the connection as soon as ctx ends, so
// that no part of the exchange outlives the attempt's deadline. go-mail on
// its own bounds only the dial and, separately, the mail transaction; the
// greeting, STARTTLS and AUTH have no deadline, and the total can exceed
// Timeout, hence the outbox lease.
func (s *smtpSender) dial(ctx context.Context) mail.DialContextFunc {
	return func(dialCtx context.Context, network, addr string) (net.Conn, error) {
		var conn net.Conn
		var err error
		if s.implicitTLS {
			// A *tls.Conn, unwrapped: go-mail's SMTP client checks the
			// type to know the session is encrypted.
			conn, err = (&tls.Dialer{Config: s.tls}).DialContext(dialCtx, network, addr)
		} else {
			conn, err = new(net.Dialer).DialContext(dialCtx, network, addr)
		}
		if err != nil {
			return nil, err
		}
		context.AfterFunc(ctx, func() { conn.Close() })
		return conn, nil
	}
}
