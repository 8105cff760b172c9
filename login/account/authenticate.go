package account

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
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
// password, and returns the user they identify.
//
// Every failure the person could cause is ErrInvalidCredentials: an unknown
// or malformed login, a disabled account, a user without a password, a wrong
// password, and a locked account. A locked account (whatever the password)
// returns a *LockedError, which also matches ErrInvalidCredentials. The same
// argon2id work is done in every case, so timing does not reveal whether
// the account exists. Any other error (the database failing) is returned
// wrapped; it is not a credential error.
//
// Lockout: every attempt on an unlocked account is counted as a failure
// before the password is checked (one atomic update), and the account is
// locked in the same transaction once the count reaches the threshold, for
// LockoutBase·2^(count−threshold) capped at LockoutMax. A right password
// then resets the count and the lock. Counting first means a burst of
// parallel guesses cannot all be checked: only attempts whose number is
// within the threshold (or the first one after a lock expired) can succeed;
// later ones in the same burst fail with *LockedError even when the password
// is right. Attempts on a locked account are not counted.
func (s *Service) Authenticate(ctx context.Context, login, password string) (*storage.User, error) {
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
		return nil, s.phantomAttempt(ctx, canon, password)
	}
	if err != nil {
		return nil, fmt.Errorf("account: authenticate: %w", err)
	}
	if u.Disabled || u.PasswordHash == "" {
		return nil, s.fakeCheck(ctx, password)
	}
	h, err := parsePHC(u.PasswordHash)
	if err != nil {
		return nil, fmt.Errorf("account: authenticate user %s: %w", u.ID, err)
	}
	now := s.cfg.Now()
	if u.LockedUntil.Valid && u.LockedUntil.Time.After(now) {
		// Same work as any other attempt, but not counted.
		if _, err := s.verify(ctx, h, password); err != nil {
			return nil, err
		}
		return nil, &LockedError{Until: u.LockedUntil.Time}
	}
	s.hook("looked-up")

	n, lockedUntil, err := s.countAttempt(ctx, u.ID, now)
	if err != nil {
		return nil, err
	}
	s.hook("counted")

	ok, err = s.verify(ctx, h, password)
	if err != nil {
		return nil, err
	}
	switch {
	case !ok || tooLong:
		return nil, ErrInvalidCredentials
	case !admitted(n, u.FailedLogins, s.cfg.LockoutThreshold):
		return nil, &LockedError{Until: lockedUntil}
	}
	if err := s.store.ResetLoginFailures(ctx, u.ID); err != nil {
		return nil, fmt.Errorf("account: authenticate: %w", err)
	}
	u.FailedLogins = 0
	u.LockedUntil.Valid = false
	u.LockedUntil.Time = time.Time{}
	return u, nil
}

// countAttempt counts one more failure for user id and, when the count
// reaches the threshold, locks the account, in one transaction. It returns
// the new count and, if it locked the account, the end of the lock.
func (s *Service) countAttempt(ctx context.Context, id string, now time.Time) (int, time.Time, error) {
	var (
		n     int
		until time.Time
	)
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		var err error
		if n, err = s.store.RecordLoginFailure(ctx, id); err != nil {
			return err
		}
		if n < s.cfg.LockoutThreshold {
			return nil
		}
		until = now.Add(s.lockFor(n))
		return s.store.LockUser(ctx, id, until)
	})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("account: count sign-in attempt: %w", err)
	}
	return n, until, nil
}

// admitted reports whether the attempt numbered n may succeed, given the
// count before it (as read when the attempt began) and the threshold:
// attempts within the threshold, and the single next attempt after a lock
// has expired.
func admitted(n, before, threshold int) bool {
	return n <= max(threshold, before+1)
}

// lockFor returns how long to lock an account after its n-th consecutive
// failure (n ≥ threshold): LockoutBase doubled n−threshold times, at most
// LockoutMax.
func (s *Service) lockFor(n int) time.Duration { return s.lockDuration(n, s.cfg.LockoutThreshold) }

// lockDuration is the lock after the n-th failure of a counter whose lock
// starts at threshold.
func (s *Service) lockDuration(n, threshold int) time.Duration {
	d := s.cfg.LockoutBase
	for i := threshold; i < n && d < s.cfg.LockoutMax; i++ {
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

// phantomAttempt answers an attempt on a login name without an account
// exactly as one on an account: the same hashing work, and the same
// counting and locking, so that even "try again at 10:42" says nothing
// about whether the account exists.
func (s *Service) phantomAttempt(ctx context.Context, canon, password string) error {
	key, err := s.loginKey(ctx, canon)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	f, err := s.store.PhantomFailures(ctx, key)
	if err != nil {
		return fmt.Errorf("account: authenticate: %w", err)
	}
	if err := s.fakeCheck(ctx, password); !errors.Is(err, ErrInvalidCredentials) {
		return err
	}
	if f.LockedUntil.Valid && f.LockedUntil.Time.After(now) {
		return &LockedError{Until: f.LockedUntil.Time}
	}
	n, err := s.store.RecordPhantomFailure(ctx, key)
	if err != nil {
		return fmt.Errorf("account: authenticate: %w", err)
	}
	if n >= s.cfg.LockoutThreshold {
		if err := s.store.LockPhantom(ctx, key, now.Add(s.lockFor(n))); err != nil {
			return fmt.Errorf("account: authenticate: %w", err)
		}
	}
	return ErrInvalidCredentials
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
