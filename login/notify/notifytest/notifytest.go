// Package notifytest provides a real SMTP listener and fake SMS gateways
// (a JSON endpoint and Twilio's API) for tests that need to read what
// Torii sends.
package notifytest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
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
	// TLS tells whether the session was encrypted (STARTTLS or implicit
	// TLS) when the message came in.
	TLS bool
	// User is the name the client authenticated as (AUTH PLAIN).
	User string
}

// Stage is an SMTP command at which the server can be told to refuse.
type Stage int

// The stages RefuseAt knows.
const (
	AtMail Stage = iota + 1 // MAIL FROM
	AtRcpt                  // RCPT TO
	AtData                  // the end of DATA, after the message was read
)

// SMTPServer is an SMTP server on 127.0.0.1 that records what it receives.
// It requires AUTH PLAIN with User/Password, which it offers only over TLS:
// STARTTLS by default, or TLS from the first byte with ImplicitTLS.
type SMTPServer struct {
	User, Password string

	implicitTLS bool
	tlsConfig   *tls.Config
	roots       *x509.CertPool
	addr        string

	mu         sync.Mutex
	srv        *smtp.Server
	ln         net.Listener
	mails      []Mail
	refuseAt   Stage
	refuseWith int
	dataDelay  time.Duration
	onData     func()
	quote      bool

	reject atomic.Bool
	cond   chan struct{}
}

// SMTPOption changes how NewSMTPServer sets its server up.
type SMTPOption func(*SMTPServer)

// ImplicitTLS makes the server speak TLS from the first byte, as on port
// 465 (an smtps:// URL), instead of offering STARTTLS.
func ImplicitTLS() SMTPOption { return func(s *SMTPServer) { s.implicitTLS = true } }

// NewSMTPServer starts a server that stops when t ends.
func NewSMTPServer(t testing.TB, opts ...SMTPOption) *SMTPServer {
	t.Helper()
	s := &SMTPServer{User: "torii", Password: "mail-pass", cond: make(chan struct{}, 1)}
	for _, opt := range opts {
		opt(s)
	}
	cert, roots := selfSigned(t)
	s.tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	s.roots = roots
	s.addr = "127.0.0.1:0"
	s.Start(t)
	t.Cleanup(s.Stop)
	return s
}

// Start listens (again, after Stop) on the server's address.
func (s *SMTPServer) Start(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var ln net.Listener
	var err error
	if s.implicitTLS {
		ln, err = tls.Listen("tcp", s.addr, s.tlsConfig)
	} else {
		ln, err = net.Listen("tcp", s.addr)
	}
	if err != nil {
		t.Fatalf("notifytest: listen on %s: %v", s.addr, err)
	}
	s.addr = ln.Addr().String()
	srv := smtp.NewServer(&backend{s: s})
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = false
	srv.TLSConfig = s.tlsConfig
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	s.srv, s.ln = srv, ln
	go srv.Serve(ln)
}

// Stop shuts the server down; connections are refused until Start.
func (s *SMTPServer) Stop() {
	s.mu.Lock()
	srv, ln := s.srv, s.ln
	s.srv, s.ln = nil, nil
	s.mu.Unlock()
	if srv != nil {
		// The listener too: Serve may not have taken it over yet.
		ln.Close()
		srv.Close()
	}
}

// URL is the TORII_SMTP_URL of the server: smtp://, or smtps:// with
// ImplicitTLS, with User and Password.
func (s *SMTPServer) URL() string {
	scheme := "smtp"
	if s.implicitTLS {
		scheme = "smtps"
	}
	return scheme + "://" + url.UserPassword(s.User, s.Password).String() + "@" + s.Addr()
}

// RootCAs trusts the server's self-signed certificate.
func (s *SMTPServer) RootCAs() *x509.CertPool { return s.roots }

// CertPEM is the server's self-signed certificate in PEM, for a process
// that trusts it through SSL_CERT_FILE.
func (s *SMTPServer) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.tlsConfig.Certificates[0].Certificate[0]})
}

// Addr is the host:port the server listens on.
func (s *SMTPServer) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Reject makes the server refuse (451 at MAIL FROM) or accept messages.
func (s *SMTPServer) Reject(on bool) { s.reject.Store(on) }

// RefuseAt makes the server answer code (e.g. 550) at stage; a code of 0
// accepts again. A refusal at AtData comes after the whole message was
// read, and the message is not recorded.
func (s *SMTPServer) RefuseAt(stage Stage, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuseAt, s.refuseWith = stage, code
	if code == 0 {
		s.refuseAt = 0
	}
}

// QuoteRefused makes a refusal at AtData quote what it refuses on one
// line, as some content filters do: the recipients, the subject and the
// text.
func (s *SMTPServer) QuoteRefused(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.quote = on
}

// DelayData makes the server wait d after reading each message before it
// answers the DATA command, as a slow server does.
func (s *SMTPServer) DelayData(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dataDelay = d
}

// OnData sets a function the server calls for each message after reading
// it and before answering (nil: none), to act while a client waits.
func (s *SMTPServer) OnData(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onData = fn
}

// refusal returns the error to answer at stage, if any.
func (s *SMTPServer) refusal(stage Stage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refuseAt != stage {
		return nil
	}
	return &smtp.SMTPError{Code: s.refuseWith, EnhancedCode: smtp.EnhancedCode{s.refuseWith / 100, 0, 0},
		Message: "refused by the test server"}
}

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

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{s: b.s, conn: c}, nil
}

type session struct {
	s    *SMTPServer
	conn *smtp.Conn
	user string
	from string
	to   []string
}

func (se *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (se *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != se.s.User || password != se.s.Password {
			return errors.New("invalid credentials")
		}
		se.user = username
		return nil
	}), nil
}

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	if se.user == "" {
		return smtp.ErrAuthRequired
	}
	if se.s.reject.Load() {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	if err := se.s.refusal(AtMail); err != nil {
		return err
	}
	se.from = from
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := se.s.refusal(AtRcpt); err != nil {
		return err
	}
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
	_, isTLS := se.conn.TLSConnectionState()
	m := Mail{From: se.from, To: se.to, Subject: subject, TLS: isTLS, User: se.user}
	if err := readBody(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body, &m); err != nil {
		return err
	}
	se.s.mu.Lock()
	delay, hook, quote := se.s.dataDelay, se.s.onData, se.s.quote
	se.s.mu.Unlock()
	if hook != nil {
		hook()
	}
	time.Sleep(delay)
	if err := se.s.refusal(AtData); err != nil {
		if refusal, ok := err.(*smtp.SMTPError); ok && quote {
			refusal.Message += strings.Join(strings.Fields(fmt.Sprintf(": to %s, %q: %s", strings.Join(m.To, ", "), m.Subject, m.Text)), " ")
		}
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

// SMS is a text message a fake gateway received. From is the sender
// number given to Twilio (empty for the JSON endpoint).
type SMS struct{ To, Body, From string }

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
		sms = SMS{To: r.PostForm.Get("To"), Body: r.PostForm.Get("Body"), From: r.PostForm.Get("From")}
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
