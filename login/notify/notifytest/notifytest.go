// Package notifytest provides a real SMTP listener and fake SMS gateways
// (a JSON endpoint and Twilio's API) for tests that need to read what
// Torii sends.
package notifytest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Mail is a message the SMTP server received.
type Mail struct {
	From    string
	To      []string
	Subject string
	Text    string
	HTML    string
}

// SMTPServer is an SMTP server on 127.0.0.1 that records what it receives.
// It requires AUTH PLAIN with User/Password.
type SMTPServer struct {
	User, Password string

	srv    *smtp.Server
	ln     net.Listener
	roots  *x509.CertPool
	mu     sync.Mutex
	mails  []Mail
	reject atomic.Bool
	cond   chan struct{}
}

// NewSMTPServer starts a server that stops when t ends.
func NewSMTPServer(t testing.TB) *SMTPServer {
	t.Helper()
	s := &SMTPServer{User: "torii", Password: "mail-pass", cond: make(chan struct{}, 1)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ln = ln
	s.srv = smtp.NewServer(&backend{s: s})
	s.srv.Domain = "localhost"
	s.srv.AllowInsecureAuth = false
	cert, roots := selfSigned(t)
	s.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	s.roots = roots
	s.srv.ReadTimeout = 10 * time.Second
	s.srv.WriteTimeout = 10 * time.Second
	go s.srv.Serve(ln)
	t.Cleanup(func() { s.srv.Close() })
	return s
}

// URL is the TORII_SMTP_URL of the server.
func (s *SMTPServer) URL() string {
	return "smtp://" + url.UserPassword(s.User, s.Password).String() + "@" + s.ln.Addr().String()
}

// RootCAs trusts the server's self-signed certificate (it offers STARTTLS).
func (s *SMTPServer) RootCAs() *x509.CertPool { return s.roots }

// Addr is the host:port the server listens on.
func (s *SMTPServer) Addr() string { return s.ln.Addr().String() }

// Reject makes the server refuse (451) or accept messages.
func (s *SMTPServer) Reject(on bool) { s.reject.Store(on) }

// Mails returns what was received so far.
func (s *SMTPServer) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mails...)
}

// WaitFor waits (up to 10 s) for a mail to addr whose subject contains
// subject, and returns the newest such mail.
func (s *SMTPServer) WaitFor(t testing.TB, addr, subject string) Mail {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ms := s.Mails()
		for i := len(ms) - 1; i >= 0; i-- {
			for _, to := range ms[i].To {
				if strings.EqualFold(to, addr) && strings.Contains(ms[i].Subject, subject) {
					return ms[i]
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no mail to %s about %q arrived; got %d mails", addr, subject, len(ms))
		}
		select {
		case <-s.cond:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

var (
	codePattern = regexp.MustCompile(`\b(\d{6})\b`)
	linkPattern = regexp.MustCompile(`https?://\S+`)
)

// Code returns the first 6-digit code in text.
func Code(t testing.TB, text string) string {
	t.Helper()
	m := codePattern.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no 6-digit code in %q", text)
	}
	return m[1]
}

// Link returns the first URL in text.
func Link(t testing.TB, text string) string {
	t.Helper()
	m := linkPattern.FindString(text)
	if m == "" {
		t.Fatalf("no link in %q", text)
	}
	return m
}

type backend struct{ s *SMTPServer }

func (b *backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{s: b.s}, nil }

type session struct {
	s      *SMTPServer
	authed bool
	from   string
	to     []string
}

func (se *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (se *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != se.s.User || password != se.s.Password {
			return errors.New("invalid credentials")
		}
		se.authed = true
		return nil
	}), nil
}

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	if !se.authed {
		return smtp.ErrAuthRequired
	}
	if se.s.reject.Load() {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	se.from = from
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	se.to = append(se.to, to)
	return nil
}

func (se *session) Data(r io.Reader) error {
	msg, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	dec := new(mime.WordDecoder)
	subject, _ := dec.DecodeHeader(msg.Header.Get("Subject"))
	m := Mail{From: se.from, To: se.to, Subject: subject}
	if err := readBody(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body, &m); err != nil {
		return err
	}
	se.s.mu.Lock()
	se.s.mails = append(se.s.mails, m)
	se.s.mu.Unlock()
	select {
	case se.s.cond <- struct{}{}:
	default:
	}
	return nil
}

func readBody(contentType, encoding string, body io.Reader, m *Mail) error {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return err
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if err := readBody(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p, m); err != nil {
				return err
			}
		}
	}
	raw, err := io.ReadAll(decode(encoding, body))
	if err != nil {
		return err
	}
	switch mt {
	case "text/plain":
		m.Text = string(raw)
	case "text/html":
		m.HTML = string(raw)
	}
	return nil
}

func decode(encoding string, r io.Reader) io.Reader {
	switch strings.ToLower(encoding) {
	case "quoted-printable":
		return newQP(r)
	case "base64":
		return newB64(r)
	}
	return r
}

func (se *session) Reset()        { se.from, se.to = "", nil }
func (se *session) Logout() error { return nil }

// SMS is a text message a fake gateway received.
type SMS struct{ To, Body string }

// SMSServer is a fake SMS gateway: a JSON endpoint (URL) and Twilio's
// Messages API (TwilioBaseURL, for twilio://SID:TOKEN@FROM).
type SMSServer struct {
	SID, Token string

	ts     *httptest.Server
	mu     sync.Mutex
	texts  []SMS
	status atomic.Int32
}

// NewSMSServer starts a fake gateway that stops when t ends.
func NewSMSServer(t testing.TB) *SMSServer {
	t.Helper()
	s := &SMSServer{SID: "AC0123456789", Token: "sms-token"}
	s.ts = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.ts.Close)
	return s
}

// URL is the TORII_SMS_URL of the JSON endpoint.
func (s *SMSServer) URL() string { return s.ts.URL + "/sms" }

// TwilioURL is a TORII_SMS_URL for the Twilio fake (with TwilioBaseURL).
func (s *SMSServer) TwilioURL(from string) string {
	return "twilio://" + s.SID + ":" + s.Token + "@" + url.PathEscape(from)
}

// TwilioBaseURL is the base URL to give as Twilio's API.
func (s *SMSServer) TwilioBaseURL() string { return s.ts.URL }

// FailWith makes the gateway answer status (0: succeed again).
func (s *SMSServer) FailWith(status int) { s.status.Store(int32(status)) }

// Texts returns the messages received so far.
func (s *SMSServer) Texts() []SMS {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SMS(nil), s.texts...)
}

// WaitFor waits (up to 10 s) for a text to number and returns the newest.
func (s *SMSServer) WaitFor(t testing.TB, number string) SMS {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ts := s.Texts()
		for i := len(ts) - 1; i >= 0; i-- {
			if ts[i].To == number {
				return ts[i]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no SMS to %s arrived; got %d", number, len(ts))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *SMSServer) serve(w http.ResponseWriter, r *http.Request) {
	if st := s.status.Load(); st != 0 {
		http.Error(w, "gateway trouble", int(st))
		return
	}
	var sms SMS
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/sms":
		if r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "want JSON", http.StatusUnsupportedMediaType)
			return
		}
		var body struct{ To, Body string }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.To == "" || body.Body == "" {
			http.Error(w, "bad JSON", http.StatusBadRequest)
			return
		}
		sms = SMS{To: body.To, Body: body.Body}
	case r.Method == http.MethodPost && r.URL.Path == "/2010-04-01/Accounts/"+s.SID+"/Messages.json":
		user, pass, ok := r.BasicAuth()
		if !ok || user != s.SID || pass != s.Token {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if err := r.ParseForm(); err != nil || r.PostForm.Get("To") == "" || r.PostForm.Get("Body") == "" || !strings.HasPrefix(r.PostForm.Get("From"), "+") {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		sms = SMS{To: r.PostForm.Get("To"), Body: r.PostForm.Get("Body")}
	default:
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	s.texts = append(s.texts, sms)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	io.Copy(w, bytes.NewReader([]byte(`{"status":"queued"}`)))
}
