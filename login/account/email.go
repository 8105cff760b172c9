package account

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"

	"github.com/torii-idp/torii/login/notify"
	"github.com/torii-idp/torii/storage"
)

// purposeChangeEmail marks the code that confirms a new address.
const purposeChangeEmail = "change_email"

// StartEmailChange sends a code to a new address for the user; the address
// becomes the account's only once the code is entered (VerifyEmailChange).
//
// An address that is taken, looks like a taken one (the same UTS #39
// skeleton) or mixes scripts gets the same answer after the same work, but
// no code goes to it: the owner of the registered address is told someone
// tried (within its send limits), and the pending change can never be
// verified. So the answer does not tell who has an account. Errors:
// *ValidationError (a malformed address, or the user's own),
// *RateLimitError (too many codes), ErrNoNotifier.
func (s *Service) StartEmailChange(ctx context.Context, userID, email string) (*OTPChallenge, error) {
	if s.cfg.Notifier == nil {
		return nil, ErrNoNotifier
	}
	u, err := s.Get(ctx, userID)
	if err != nil {
		return nil, err
	}
	canon, err := CanonicalEmail(email)
	if err != nil {
		return nil, err
	}
	if canon == u.Email {
		return nil, &ValidationError{Field: "email", Message: "This is already your address."}
	}
	owner, err := s.store.UserByEmailLookAlike(ctx, canon, emailSkeleton(canon))
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("account: change email: %w", err)
	}
	taken := err == nil || mixesScripts(canon)
	u.PendingEmail = canon
	if err := s.store.UpdateUser(ctx, u, "pending_email"); err != nil {
		return nil, fmt.Errorf("account: change email: %w", err)
	}
	if taken {
		return s.emailChangeDecoy(ctx, u, canon, owner)
	}
	c, err := s.sendCode(ctx, u, purposeChangeEmail, canon, notify.Email, canon, func(code string) (notify.Message, error) {
		subject, text, html, err := notify.ComposeIn(s.mailLanguage(ctx), "change_email", codeData{Code: code, Minutes: s.minutes(), Name: u.Name})
		return notify.Message{Channel: notify.Email, To: canon, Subject: subject, Text: text, HTML: html}, err
	})
	if err != nil {
		return nil, err
	}
	return &OTPChallenge{Channel: notify.Email, Destination: mask(canon, notify.Email), ExpiresAt: c.ExpiresAt}, nil
}

// emailChangeDecoy answers a change to a taken address as StartEmailChange
// answers any other: the same send limits, a code row that nothing
// matches, and a notice to the owner instead of a code.
func (s *Service) emailChangeDecoy(ctx context.Context, u *storage.User, email string, owner *storage.User) (*OTPChallenge, error) {
	var notice *notify.Message
	if owner != nil {
		sendable, err := s.withinSendLimits(ctx, owner.Email)
		if err != nil {
			return nil, err
		}
		if sendable {
			subject, text, html, err := notify.ComposeIn(s.mailLanguage(ctx), "email_claimed", struct{ Email, ResetLink string }{owner.Email, s.cfg.Issuer + "/forgot"})
			if err != nil {
				return nil, err
			}
			notice = &notify.Message{Channel: notify.Email, To: owner.Email, Subject: subject, Text: text, HTML: html}
		}
	}
	decoy := &storage.OneTimeCode{ID: rand.Text(), UserID: sql.NullString{String: u.ID, Valid: true}, Purpose: purposeChangeEmail, Binding: email,
		Channel: string(notify.Email), Destination: email, CodeHash: unmatchableHash(), ExpiresAt: s.cfg.Now().Add(s.cfg.OTPLifetime)}
	err := s.limitedSend(ctx, u.ID, email, false, func(ctx context.Context) error {
		if err := s.store.ReplaceOneTimeCode(ctx, decoy); err != nil {
			return err
		}
		if notice == nil {
			return nil
		}
		return s.enqueueCountedNotice(ctx, *notice)
	})
	var rl *RateLimitError
	if errors.As(err, &rl) {
		return nil, rl
	} else if err != nil {
		return nil, fmt.Errorf("account: change email: %w", err)
	}
	return &OTPChallenge{Channel: notify.Email, Destination: mask(email, notify.Email), ExpiresAt: decoy.ExpiresAt}, nil
}

// VerifyEmailChange checks the code sent to the pending address; the
// address then becomes the account's (verified), the old address is told,
// and password-reset links (mailed to the old address) die. Errors:
// ErrCodeInvalid, ErrCodeDead (no change pending, or the code died),
// ErrEmailTaken (someone took the address meanwhile).
func (s *Service) VerifyEmailChange(ctx context.Context, userID, code string) (*storage.User, error) {
	u, err := s.Get(ctx, userID)
	if err != nil {
		return nil, err
	}
	if u.PendingEmail == "" {
		return nil, ErrCodeDead
	}
	if _, err := s.checkCode(ctx, u, purposeChangeEmail, u.PendingEmail, code); err != nil {
		return nil, err
	}
	old := u.Email
	subject, text, html, err := notify.ComposeIn(s.mailLanguage(ctx), "email_changed", struct{ Name, New, When, ResetLink string }{
		u.Name, mask(u.PendingEmail, notify.Email), s.cfg.Now().UTC().Format("2 Jan 2006 15:04 MST"), s.cfg.Issuer + "/forgot"})
	if err != nil {
		return nil, err
	}
	u.Email, u.EmailVerified, u.EmailSkeleton, u.PendingEmail = u.PendingEmail, true, emailSkeleton(u.PendingEmail), ""
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.UpdateUser(ctx, u, "email", "email_verified", "email_skeleton", "pending_email"); err != nil {
			return err
		}
		if err := s.store.KillActionTokens(ctx, u.ID, tokenReset); err != nil {
			return err
		}
		if err := s.audit(ctx, "email.changed", u.ID, nil); err != nil {
			return err
		}
		return s.cfg.Notifier.Enqueue(ctx, notify.Message{Channel: notify.Email, To: old, Subject: subject, Text: text, HTML: html})
	})
	if errors.Is(err, storage.ErrAlreadyExists) {
		return nil, ErrEmailTaken
	} else if err != nil {
		return nil, fmt.Errorf("account: change email: %w", err)
	}
	return u, nil
}
