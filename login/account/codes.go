package account

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/torii-idp/torii/login/notify"
	"github.com/torii-idp/torii/storage"
)

// Purposes of one-time codes.
const (
	purposeLogin       = "login"
	purposeVerifyEmail = "verify_email"
	purposeVerifyPhone = "verify_phone"
)

// Errors about codes and links; test them with errors.Is.
var (
	// ErrCodeInvalid means the code is wrong; the code stays usable for its
	// remaining attempts.
	ErrCodeInvalid = errors.New("account: wrong code")
	// ErrCodeDead means there is no usable code: it expired, was used, or
	// was entered wrongly too often. A new code must be requested.
	ErrCodeDead = errors.New("account: the code is no longer valid")
	// ErrLinkInvalid means a link is unknown, tampered with, used or
	// expired.
	ErrLinkInvalid = errors.New("account: the link is invalid or expired")
	// ErrNoNotifier means the service was built without a way to send
	// messages.
	ErrNoNotifier = errors.New("account: no notifier configured")
)

// IsCodeFailure reports whether err is a wrong code (ErrCodeInvalid) or
// one that no longer works (ErrCodeDead): the person's failure, which the
// doors count against the client's address.
func IsCodeFailure(err error) bool {
	return errors.Is(err, ErrCodeInvalid) || errors.Is(err, ErrCodeDead)
}

// RateLimitError means too many codes were requested; RetryAfter (whole
// seconds) is how long is left until the next one may be.
type RateLimitError struct{ RetryAfter time.Duration }

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("account: too many codes requested; try again in %s", e.RetryAfter.Round(time.Second))
}

// OTPChallenge describes a code just sent.
type OTPChallenge struct {
	Channel notify.Channel
	// Destination is the masked address or number the code went to.
	Destination string
	ExpiresAt   time.Time
}

// newCode returns a 6-digit code from crypto/rand.
func newCode() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		panic(err) // crypto/rand never fails on Linux; a broken RNG must stop Torii
	}
	return fmt.Sprintf("%06d", n.Int64())
}

// codeMAC is the keyed hash stored for a code: HMAC-SHA256 under the
// server's OTP key, bound to the code's ID so equal codes hash apart.
func (s *Service) codeMAC(ctx context.Context, id, code string) ([]byte, error) {
	key, err := s.otpKey(ctx)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{0})
	m.Write([]byte(code))
	return m.Sum(nil), nil
}

func (s *Service) otpKey(ctx context.Context) ([]byte, error) { return s.secret(ctx, "otp") }

// secret returns the server secret name (shared by every node through the
// database), read once.
func (s *Service) secret(ctx context.Context, name string) ([]byte, error) {
	s.keyOnce.Lock()
	defer s.keyOnce.Unlock()
	if key := s.secrets[name]; key != nil {
		return key, nil
	}
	key, err := s.store.Secret(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("account: load %s key: %w", name, err)
	}
	if s.secrets == nil {
		s.secrets = map[string][]byte{}
	}
	s.secrets[name] = key
	return key, nil
}

// validCodeShape reports whether code could be one of ours: six ASCII
// digits once the spaces and dashes people paste (anywhere: "123 456",
// "123-456") are taken out (NormalizeCode).
func validCodeShape(code string) (string, bool) { return NormalizeCode(code) }

// NormalizeCode takes out of a typed or pasted code the spaces (of any
// kind) and dashes (hyphen, minus, en and em dash) people type or paste
// with it, and reports whether six ASCII digits remain. The pages use it to
// tell a code of the wrong shape (not counted as a guess) from a wrong one.
func NormalizeCode(code string) (string, bool) {
	code = strings.Map(func(r rune) rune {
		switch {
		case unicode.IsSpace(r), r == '-', r == '\u2010', r == '\u2011', r == '\u2012', r == '\u2013', r == '\u2014', r == '\u2212':
			return -1
		}
		return r
	}, code)
	if len(code) != 6 {
		return code, false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return code, false
		}
	}
	return code, true
}

// checkSendLimits enforces the resend limits for user and destination: at
// least ResendInterval since the user's last code, and fewer than ResendMax
// codes in ResendWindow for the user and for the destination. The
// *RateLimitError it returns says how long is actually left: until the
// interval has passed, or until enough sends have left the window for
// another to fit.
//
// A first code (firstCode: the first of a sign-in attempt on its channel)
// is not held back by the interval, only by the caps: the interval is
// there against "send a new code" pressed again and again, not against a
// user who signs in twice in a minute or picks SMS right after signing in.
func (s *Service) checkSendLimits(ctx context.Context, userID, destination string, firstCode bool) error {
	now := s.cfg.Now()
	byUser, byDest, err := s.store.CodeSends(ctx, userID, destination, now.Add(-s.cfg.ResendWindow))
	if err != nil {
		return fmt.Errorf("account: %w", err)
	}
	var wait time.Duration
	if len(byUser) > 0 && !firstCode {
		wait = byUser[len(byUser)-1].Add(s.cfg.ResendInterval).Sub(now)
	}
	for _, sends := range [][]time.Time{byUser, byDest} {
		if len(sends) >= s.cfg.ResendMax {
			// The count drops below the cap once its oldest len−max+1
			// sends have left the window, just after they are
			// ResendWindow old.
			oldest := sends[len(sends)-s.cfg.ResendMax]
			wait = max(wait, oldest.Add(s.cfg.ResendWindow).Sub(now)+time.Nanosecond)
		}
	}
	if wait > 0 {
		return &RateLimitError{RetryAfter: ceilSecond(wait)}
	}
	return nil
}

// ceilSecond rounds d up to a whole number of seconds.
func ceilSecond(d time.Duration) time.Duration {
	if r := d.Truncate(time.Second); r < d {
		return r + time.Second
	}
	return d
}

// sendCode creates a code for (user, purpose, binding), killing earlier
// ones, and enqueues the message made by compose from it — one transaction.
func (s *Service) sendCode(ctx context.Context, u *storage.User, purpose, binding string, ch notify.Channel, destination string,
	compose func(code string) (notify.Message, error)) (*storage.OneTimeCode, error) {
	if s.cfg.Notifier == nil {
		return nil, ErrNoNotifier
	}
	firstCode := false
	if purpose == purposeLogin {
		// The first code of this attempt on this channel?
		live, err := s.store.LiveOneTimeCode(ctx, u.ID, purpose, binding)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			firstCode = true
		case err != nil:
			return nil, fmt.Errorf("account: %w", err)
		default:
			firstCode = live.Destination != destination
		}
	}
	code := newCode()
	c := &storage.OneTimeCode{
		ID: rand.Text(), UserID: sql.NullString{String: u.ID, Valid: true}, Purpose: purpose, Binding: binding,
		Channel: string(ch), Destination: destination, ExpiresAt: s.cfg.Now().Add(s.cfg.OTPLifetime),
	}
	var err error
	if c.CodeHash, err = s.codeMAC(ctx, c.ID, code); err != nil {
		return nil, err
	}
	msg, err := compose(code)
	if err != nil {
		return nil, err
	}
	err = s.limitedSend(ctx, u.ID, destination, firstCode, func(ctx context.Context) error {
		if err := s.store.ReplaceOneTimeCode(ctx, c); err != nil {
			return err
		}
		if err := s.audit(ctx, "code.sent", u.ID, map[string]any{"purpose": purpose, "channel": string(ch)}); err != nil {
			return err
		}
		return s.cfg.Notifier.Enqueue(ctx, msg)
	})
	var rl *RateLimitError
	if errors.As(err, &rl) {
		return nil, rl
	} else if err != nil {
		return nil, fmt.Errorf("account: send code: %w", err)
	}
	return c, nil
}

// limitedSend runs send, which records a message's code row (the send
// limits count those) and enqueues the message, in one transaction with
// the check of the send limits (checkSendLimits) for userID ("" for none)
// and destination, under a lock on each: parallel requests, on one node or
// several, cannot all pass a check that none of them has yet recorded its
// send in. The locks are taken user first, then destination, by every
// caller, so two sends never wait on each other in a cycle.
func (s *Service) limitedSend(ctx context.Context, userID, destination string, firstCode bool, send func(ctx context.Context) error) error {
	return s.store.InTx(ctx, func(ctx context.Context) error {
		if userID != "" {
			if err := s.store.Lock(ctx, "code-sends-user:"+userID); err != nil {
				return err
			}
		}
		if err := s.store.Lock(ctx, "code-sends-to:"+destination); err != nil {
			return err
		}
		if err := s.checkSendLimits(ctx, userID, destination, firstCode); err != nil {
			return err
		}
		return send(ctx)
	})
}

// checkCode checks code against the live code of (user, purpose, binding)
// and uses it up when right.
//
// Every entry is counted before it is compared, in one transaction: first
// on the code (ClaimCodeAttempt, a conditional update that refuses once the
// code has had OTPMaxAttempts entries, so a burst of parallel guesses can
// never compare more), then, for sign-in codes, toward the account's code
// lockout (storage.CodeCounter, admitted as Authenticate admits passwords:
// an entry on a locked code step is not compared and fails with
// *LockedError; the entry that brings the count to OTPLockoutThreshold
// locks it, with the same back-off as passwords). A right code is used up
// by an update that requires it unused, so of several parallel right
// entries exactly one succeeds. Errors: ErrCodeInvalid (wrong), ErrCodeDead
// (no usable code, or the last allowed entry was wrong), *LockedError.
func (s *Service) checkCode(ctx context.Context, u *storage.User, purpose, binding, code string) (*storage.OneTimeCode, error) {
	login := purpose == purposeLogin
	if locked, until := s.codeLockedAt(u); login && locked {
		return nil, &LockedError{Until: until}
	}
	now := s.cfg.Now()
	c, err := s.store.LiveOneTimeCode(ctx, u.ID, purpose, binding)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && !c.ExpiresAt.After(now)) {
		return nil, ErrCodeDead
	} else if err != nil {
		return nil, fmt.Errorf("account: check code: %w", err)
	}
	code, shapeOK := validCodeShape(code)
	mac, err := s.codeMAC(ctx, c.ID, code)
	if err != nil {
		return nil, err
	}
	s.hook("code-read")
	var result error
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		n, err := s.store.ClaimCodeAttempt(ctx, c.ID, s.cfg.OTPMaxAttempts, now)
		if errors.Is(err, storage.ErrNotFound) {
			result = ErrCodeDead
			return nil
		} else if err != nil {
			return err
		}
		var adm storage.Admission
		if login {
			if adm, err = s.admit(ctx, storage.CodeCounter(u.ID), s.cfg.OTPLockoutThreshold); err != nil {
				return err
			}
			if !adm.Admitted {
				result = &LockedError{Until: adm.Until}
				return nil
			}
		}
		s.hook("code-compared")
		if shapeOK && hmac.Equal(mac, c.CodeHash) {
			if err := s.store.UseOneTimeCode(ctx, c.ID); errors.Is(err, storage.ErrNotFound) {
				result = ErrCodeDead
				return nil
			} else if err != nil {
				return err
			}
			if login {
				return s.store.ResetAttempts(ctx, storage.CodeCounter(u.ID))
			}
			return nil
		}
		switch {
		case login && !adm.Until.IsZero():
			// This wrong entry reached the threshold and locked the code step.
			result = &LockedError{Until: adm.Until}
		case n >= s.cfg.OTPMaxAttempts:
			result = ErrCodeDead
		default:
			result = ErrCodeInvalid
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("account: check code: %w", err)
	}
	if result != nil {
		return nil, result
	}
	return c, nil
}

// codeLockedAt reports whether u's code step is locked now (too many wrong
// sign-in codes), and until when.
func (s *Service) codeLockedAt(u *storage.User) (bool, time.Time) {
	if u.OTPLockedUntil.Valid && u.OTPLockedUntil.Time.After(s.cfg.Now()) {
		return true, u.OTPLockedUntil.Time
	}
	return false, time.Time{}
}

// StartOTP sends a sign-in code to the user by ch (SMS only to a verified
// phone), bound to binding — an opaque string from the pages naming this
// sign-in attempt, so that a code never works for another attempt, session
// or user. It kills the previous code of that binding. Too many sends give
// a *RateLimitError; a code step locked by wrong codes, a *LockedError (no
// code is sent).
func (s *Service) StartOTP(ctx context.Context, userID, binding string, ch notify.Channel) (*OTPChallenge, error) {
	u, err := s.Get(ctx, userID)
	if err != nil {
		return nil, err
	}
	if locked, until := s.codeLockedAt(u); locked {
		return nil, &LockedError{Until: until}
	}
	if binding == "" {
		return nil, errors.New("account: a code needs a binding")
	}
	dest, err := destinationFor(u, ch)
	if err != nil {
		return nil, err
	}
	c, err := s.sendCode(ctx, u, purposeLogin, binding, ch, dest, func(code string) (notify.Message, error) {
		subject, text, html, err := notify.ComposeIn(s.mailLanguage(ctx), "login_code", codeData{Code: code, Minutes: s.minutes(), Name: u.Name})
		if err != nil {
			return notify.Message{}, err
		}
		if ch == notify.SMS {
			return notify.Message{Channel: notify.SMS, To: dest, Text: text}, nil
		}
		return notify.Message{Channel: notify.Email, To: dest, Subject: subject, Text: text, HTML: html}, nil
	})
	if err != nil {
		return nil, err
	}
	return &OTPChallenge{Channel: ch, Destination: mask(dest, ch), ExpiresAt: c.ExpiresAt}, nil
}

// CheckOTP checks a sign-in code: nil when right (the code is then used
// up), ErrCodeInvalid when wrong, ErrCodeDead when there is no usable
// code, *LockedError (matching ErrInvalidCredentials) once wrong codes
// locked the account.
func (s *Service) CheckOTP(ctx context.Context, userID, binding, code string) error {
	u, err := s.Get(ctx, userID)
	if err != nil {
		return err
	}
	_, err = s.checkCode(ctx, u, purposeLogin, binding, code)
	return err
}

// CanUseSMS reports whether the user may receive codes by SMS.
func CanUseSMS(u *storage.User) bool { return u.Phone != "" && u.PhoneVerified }

func destinationFor(u *storage.User, ch notify.Channel) (string, error) {
	switch ch {
	case notify.Email:
		return u.Email, nil
	case notify.SMS:
		if !CanUseSMS(u) {
			return "", &ValidationError{Field: "channel", Message: "This account has no verified phone number."}
		}
		return u.Phone, nil
	}
	return "", &ValidationError{Field: "channel", Message: "Choose email or SMS."}
}

type codeData struct {
	Code    string
	Minutes int
	Name    string
}

func (s *Service) minutes() int { return int(s.cfg.OTPLifetime.Round(time.Minute) / time.Minute) }

// mask hides most of an address or number: a•••@example.com, +1•••••••4567.
func mask(dest string, ch notify.Channel) string {
	if ch == notify.SMS {
		if len(dest) <= 6 {
			return dest
		}
		return dest[:2] + strings.Repeat("•", len(dest)-6) + dest[len(dest)-4:]
	}
	local, domain, ok := strings.Cut(dest, "@")
	if !ok || local == "" {
		return dest
	}
	first, _ := utf8.DecodeRuneInString(local)
	return string(first) + "•••@" + domain
}

// newToken returns a random 256-bit token and the hash stored for it.
func newToken() (token, hash string) {
	token = rand.Text() + rand.Text()
	return token, hashToken(token)
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Mask hides most of an address or phone number for display, as the code
// pages show where a code went: a•••@example.com, +1•••••••4567.
func Mask(dest string, ch notify.Channel) string { return mask(dest, ch) }

// CodeMinutes is how many minutes a one-time code works, for the pages.
func (s *Service) CodeMinutes() int { return s.minutes() }
