package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strconv"

	"github.com/wneessen/go-mail"

	"github.com/torii-idp/torii/storage"
)

// smtpSender delivers mail with wneessen/go-mail.
type smtpSender struct {
	host     string
	opts     []mail.Option
	from     string
	hasLogin bool
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
	s.opts = []mail.Option{mail.WithPort(port), mail.WithTimeout(cfg.Timeout),
		mail.WithTLSConfig(&tls.Config{ServerName: s.host, RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12})}
	if u.Scheme == "smtps" {
		s.opts = append(s.opts, mail.WithSSL())
	} else {
		// STARTTLS whenever the server offers it.
		s.opts = append(s.opts, mail.WithTLSPolicy(mail.TLSOpportunistic))
	}
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
	client, err := mail.NewClient(s.host, s.opts...)
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	return nil
}
