package account

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/torii-idp/torii/storage"
)

// maxPasswordBytes bounds the password Authenticate will hash; longer input
// cannot be a stored password (the policy allows 128 characters).
const maxPasswordBytes = 4096

// canonicalLogin returns the canonical email or username that login names.
func canonicalLogin(login string) (string, bool) {
	if email, err := CanonicalEmail(login); err == nil {
		return email, true
	}
	if name, err := CanonicalUsername(login); err == nil {
		return name, true
	}
	return "", false
}

// Authenticate checks a login name (email or username, in any case) and a
// password from a client the account does not trust (the password grant, a
// browser without a device token for it), and returns the user they
// identify. See AuthenticateOnDevice.
func (s *Service) Authenticate(ctx context.Context, login, password string) (*storage.User, error) {
	return s.AuthenticateOnDevice(ctx, login, password, "")
}

// AuthenticateOnDevice checks a login name (email or username, in any
// case) and a password typed in a browser that carries device, the device
// token RememberDevice gave it ("" for none), and returns the user they
// identify.
//
// Every failure the person could cause is ErrInvalidCredentials: an unknown
// or malformed login, a disabled account, a user without a password, a wrong
// password, and a locked account. A locked account (whatever the password)
// returns a *LockedError, which also matches ErrInvalidCredentials. Any
// other error (the database failing) is returned wrapped; it is not a
// credential error.
//
// Lockout: every attempt is admitted, counted as a failure, before the
// password is compared (storage.AdmitAttempt: one atomic update, shared by
// every node). An attempt on a locked counter is not counted and compares
// nothing: it is a *LockedError, the same answer for the right password and
// a wrong one. The attempt that brings the count to LockoutThreshold locks
// the counter at once, for LockoutBase doubled per earlier lock of the same
// run of failures, at most LockoutMax; so of a burst of parallel guesses at
// most LockoutThreshold are compared, and after a lock runs out one more. A
// right password ends the run (count, locks and lock cleared).
//
// Which counter: a device token trusted for the account (a browser that
// completed a sign-in of it before, OWASP's device cookies) counts on its
// own device; every other attempt counts on the account. So others' wrong
// passwords lock out every browser but the user's own, whose own failures
// have their own budget of the same size. Unknown login names are counted
// and locked like accounts. The same argon2id work is done for every
// admitted attempt, known account or not, so timing does not reveal
// whether the account exists.
//
// Each answer but a database failure is recorded as an audit event:
// sign_in.success or sign_in.failure (detail "reason": unknown, inactive,
// wrong_password, locked), and account.locked for the attempt that locks
// an account's (or a device's) counter.
func (s *Service) AuthenticateOnDevice(ctx context.Context, login, password, device string) (*storage.User, error) {
	var a attempt
	u, err := s.authenticateOnDevice(ctx, login, password, device, &a)
	ev := &storage.AuditEvent{Subject: a.subject, Detail: map[string]any{}}
	switch {
	case err == nil:
		ev.Type, ev.Actor = "sign_in.success", "user:"+u.ID
	case errors.Is(err, ErrInvalidCredentials):
		ev.Type, ev.Detail["reason"] = "sign_in.failure", a.reason
	default:
		return nil, err
	}
	if a.device {
		ev.Detail["device"] = true
	}
	if rerr := s.store.RecordAudit(ctx, ev); rerr != nil {
		return nil, fmt.Errorf("account: authenticate: %w", rerr)
	}
	if err != nil && !a.locked.IsZero() {
		lock := &storage.AuditEvent{Type: "account.locked", Subject: a.subject,
			Detail: map[string]any{"until": a.locked.UTC().Format(time.RFC3339), "device": a.device}}
		if rerr := s.store.RecordAudit(ctx, lock); rerr != nil {
			return nil, fmt.Errorf("account: authenticate: %w", rerr)
		}
	}
	return u, err
}

// attempt is what authenticateOnDevice learnt, for the audit events.
type attempt struct {
	subject string    // the account's ID, when the login names one
	reason  string    // why it failed
	device  bool      // counted on a trusted device
	locked  time.Time // the lock this attempt set, if any
}

func (s *Service) authenticateOnDevice(ctx context.Context, login, password, device string, a *attempt) (*storage.User, error) {
	a.reason = "unknown"
	// An over-long password is checked (for the timing) but can never match.
	tooLong := len(password) > maxPasswordBytes
	if tooLong {
		password = password[:maxPasswordBytes]
	}
	canon, ok := canonicalLogin(login)
	if !ok {
		return nil, s.fakeCheck(ctx, password)
	}
	u, err := s.store.UserByLogin(ctx, canon)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, s.unknownLoginAttempt(ctx, canon, password, a)
	}
	if err != nil {
		return nil, fmt.Errorf("account: authenticate: %w", err)
	}
	a.subject, a.reason = u.ID, "inactive"
	if u.Disabled || u.PasswordHash == "" {
		return nil, s.fakeCheck(ctx, password)
	}
	h, err := parsePHC(u.PasswordHash)
	if err != nil {
		return nil, fmt.Errorf("account: authenticate user %s: %w", u.ID, err)
	}
	counter := storage.PasswordCounter(u.ID)
	d, err := s.trustedDevice(ctx, device, u.ID)
	if err != nil {
		return nil, err
	}
	if d != nil {
		counter = storage.DeviceCounter(d.ID)
		a.device = true
	}
	s.hook("looked-up")
	adm, err := s.admit(ctx, counter, s.cfg.LockoutThreshold)
	if err != nil {
		return nil, err
	}
	if !adm.Admitted {
		s.hook("refused")
		a.reason = "locked"
		return nil, &LockedError{Until: adm.Until}
	}
	a.reason, a.locked = "wrong_password", adm.Until
	s.hook("counted")
	s.hook("compared")
	ok, err = s.verify(ctx, h, password)
	if err != nil {
		return nil, err
	}
	if !ok || tooLong {
		return nil, ErrInvalidCredentials
	}
	if err := s.store.ResetAttempts(ctx, counter); err != nil {
		return nil, fmt.Errorf("account: authenticate: %w", err)
	}
	if d == nil {
		u.FailedLogins, u.Lockouts, u.LockedUntil = 0, 0, sql.NullTime{}
	}
	return u, nil
}

// admit counts one attempt on c before anything is checked (see
// storage.AdmitAttempt), locking c once threshold attempts are counted.
func (s *Service) admit(ctx context.Context, c storage.Counter, threshold int) (storage.Admission, error) {
	adm, err := s.store.AdmitAttempt(ctx, c, s.cfg.Now(), threshold, s.lockFor)
	if err != nil {
		return adm, fmt.Errorf("account: count attempt: %w", err)
	}
	return adm, nil
}

// lockFor returns how long the n-th lock of a run of failures lasts:
// LockoutBase doubled n−1 times, at most LockoutMax.
func (s *Service) lockFor(n int) time.Duration {
	d := s.cfg.LockoutBase
	for i := 1; i < n && d < s.cfg.LockoutMax; i++ {
		d *= 2
	}
	return min(d, s.cfg.LockoutMax)
}

// fakeCheck does the work of checking a password against a hash that
// nothing matches, and returns ErrInvalidCredentials (or the context's
// error when no hashing slot came free).
func (s *Service) fakeCheck(ctx context.Context, password string) error {
	if _, err := s.verify(ctx, s.dummy, password); err != nil {
		return err
	}
	return ErrInvalidCredentials
}

func (s *Service) hook(stage string) {
	if s.testHook != nil {
		s.testHook(stage)
	}
}

// unknownLoginAttempt answers an attempt on a login name without an
// account exactly as one on an account: the same counting and locking, and
// the same hashing work for an admitted attempt, so that even "try again
// at 10:42" says nothing about whether the account exists.
func (s *Service) unknownLoginAttempt(ctx context.Context, canon, password string, a *attempt) error {
	key, err := s.loginKey(ctx, canon)
	if err != nil {
		return err
	}
	s.hook("looked-up")
	adm, err := s.admit(ctx, storage.UnknownLoginCounter(key), s.cfg.LockoutThreshold)
	if err != nil {
		return err
	}
	if !adm.Admitted {
		s.hook("refused")
		a.reason = "locked"
		return &LockedError{Until: adm.Until}
	}
	s.hook("counted")
	return s.fakeCheck(ctx, password)
}

// loginKey is the stored name of an unknown login: an HMAC, so the table
// of failed attempts does not list the addresses people typed.
func (s *Service) loginKey(ctx context.Context, canon string) (string, error) {
	key, err := s.otpKey(ctx)
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("login:" + canon))
	return hex.EncodeToString(m.Sum(nil)), nil
}
