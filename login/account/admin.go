package account

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/torii-idp/torii/login/notify"
	"github.com/torii-idp/torii/storage"
)

// This file holds what an administrator does to other users' accounts
// (the admin API): the same rules as the pages, reached by user ID, and
// never a password the administrator chooses or sees.

// Find returns a page of users matching q (storage.Store.FindUsers).
func (s *Service) Find(ctx context.Context, q storage.UserQuery) ([]*storage.User, error) {
	us, err := s.store.FindUsers(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("account: find users: %w", err)
	}
	return us, nil
}

// Invite creates a user without a password (nu.Password is ignored) and
// mails them a link to choose one (the reset page), which works once for
// InviteLifetime. Until then nobody can sign in as the user. Following the
// link also proves the address: the email becomes verified. Errors are
// Create's; if the mail cannot be queued the user is removed again.
func (s *Service) Invite(ctx context.Context, nu NewUser) (*storage.User, error) {
	if s.cfg.Notifier == nil {
		return nil, ErrNoNotifier
	}
	nu.invite, nu.Password = true, ""
	u, err := s.Create(ctx, nu)
	if err != nil {
		return nil, err
	}
	if err := s.mailLink(ctx, u, "invite", s.cfg.InviteLifetime); err != nil {
		if delErr := s.store.DeleteUser(context.WithoutCancel(ctx), u.ID); delErr != nil {
			err = errors.Join(err, delErr)
		}
		return nil, err
	}
	return u, nil
}

// SendPasswordReset mails the user a password-reset link, as the forgotten
// password page does, for an administrator: the password stays as it is
// until the user follows the link. At most ResendMax links per ResendWindow
// go to one account (*RateLimitError).
func (s *Service) SendPasswordReset(ctx context.Context, userID string) error {
	if s.cfg.Notifier == nil {
		return ErrNoNotifier
	}
	u, err := s.Get(ctx, userID)
	if err != nil {
		return err
	}
	if u.Disabled {
		return &ValidationError{Field: "active", Message: "The account is deactivated; activate it first."}
	}
	now := s.cfg.Now()
	n, err := s.store.CountActionTokensSince(ctx, u.ID, tokenReset, now.Add(-s.cfg.ResendWindow))
	if err != nil {
		return fmt.Errorf("account: reset: %w", err)
	}
	if n >= s.cfg.ResendMax {
		return &RateLimitError{RetryAfter: s.cfg.ResendWindow}
	}
	return s.mailLink(ctx, u, "password_reset", s.cfg.ResetLifetime)
}

// mailLink stores a reset link for u that lives for lifetime and queues
// the message that carries it, in one transaction.
func (s *Service) mailLink(ctx context.Context, u *storage.User, message string, lifetime time.Duration) error {
	token, hash := newToken()
	subject, text, html, err := notify.ComposeIn(s.mailLanguage(ctx), message, struct {
		Link, Name     string
		Minutes, Hours int
	}{s.cfg.Issuer + "/reset?token=" + url.QueryEscape(token), u.Name, int(lifetime / time.Minute), int(lifetime / time.Hour)})
	if err != nil {
		return err
	}
	row := &storage.ActionToken{TokenHash: hash, Purpose: tokenReset, ExpiresAt: s.cfg.Now().Add(lifetime),
		UserID: sql.NullString{String: u.ID, Valid: true}}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.CreateActionToken(ctx, row); err != nil {
			return err
		}
		typ := "admin.password_reset_sent"
		if message == "invite" {
			typ = "admin.user_invited"
		}
		if err := s.audit(ctx, typ, u.ID, nil); err != nil {
			return err
		}
		return s.cfg.Notifier.Enqueue(ctx, notify.Message{Channel: notify.Email, To: u.Email, Subject: subject, Text: text, HTML: html})
	})
	if err != nil {
		return fmt.Errorf("account: mail %s link: %w", message, err)
	}
	return nil
}

// SetActive activates or deactivates a user. Deactivating ends every
// session and revokes every token in the same transaction, as a user's own
// deactivation does; activating lets the user sign in again with the
// password they had.
func (s *Service) SetActive(ctx context.Context, userID string, active bool) (*storage.User, error) {
	u, err := s.Get(ctx, userID)
	if err != nil {
		return nil, err
	}
	if active {
		u.Disabled = false
		err := s.store.InTx(ctx, func(ctx context.Context) error {
			if err := s.store.UpdateUser(ctx, u, "disabled"); err != nil {
				return err
			}
			return s.audit(ctx, "admin.user_activated", u.ID, nil)
		})
		if err != nil {
			return nil, fmt.Errorf("account: activate: %w", err)
		}
		return u, nil
	}
	if err := s.deactivate(ctx, u, "admin.user_deactivated"); err != nil {
		return nil, err
	}
	return u, nil
}

// deactivate disables u, ends its sessions and revokes its tokens, and
// records the audit event typ.
func (s *Service) deactivate(ctx context.Context, u *storage.User, typ string) error {
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		u.Disabled = true
		if err := s.store.UpdateUser(ctx, u, "disabled"); err != nil {
			return err
		}
		if err := s.store.DeleteLoginSessions(ctx, u.ID, ""); err != nil {
			return err
		}
		if err := s.store.RevokeSubjectTokens(ctx, u.ID); err != nil {
			return err
		}
		if err := s.forgetRememberedDevices(ctx, u.ID, typ); err != nil {
			return err
		}
		return s.audit(ctx, typ, u.ID, nil)
	})
	if err != nil {
		return fmt.Errorf("account: deactivate: %w", err)
	}
	return nil
}

// Unlock lifts the user's password and code-step locks and clears their
// counts of failures, and those of the user's trusted browsers.
func (s *Service) Unlock(ctx context.Context, userID string) (*storage.User, error) {
	u, err := s.Get(ctx, userID)
	if err != nil {
		return nil, err
	}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		for _, c := range []storage.Counter{storage.PasswordCounter(u.ID), storage.CodeCounter(u.ID)} {
			if err := s.store.ResetAttempts(ctx, c); err != nil {
				return err
			}
		}
		if err := s.store.ResetDeviceAttempts(ctx, u.ID); err != nil {
			return err
		}
		return s.audit(ctx, "admin.user_unlocked", u.ID, nil)
	})
	if err != nil {
		return nil, fmt.Errorf("account: unlock: %w", err)
	}
	return s.Get(ctx, userID)
}

// ErrActive refuses to delete a user who is not deactivated.
var ErrActive = errors.New("account: the user is active; deactivate before deleting")

// DeleteDeactivated removes a deactivated user with their sessions and
// consents, and revokes their tokens; an active one is ErrActive (decided
// in the delete itself), so that deleting is always a second, deliberate
// step after deactivating.
func (s *Service) DeleteDeactivated(ctx context.Context, userID string) error {
	if !validID(userID) {
		return ErrNotFound
	}
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.DeleteDeactivatedUser(ctx, userID); err != nil {
			return err
		}
		return s.audit(ctx, "admin.user_deleted", userID, nil)
	})
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return ErrNotFound
	case errors.Is(err, storage.ErrUserActive):
		return ErrActive
	case err != nil:
		return fmt.Errorf("account: delete user: %w", err)
	}
	return nil
}

// AdminChanges are the members of a user an administrator may set; nil
// leaves one as it is. There is no password (the administrator mails a
// reset link instead), no role (SetRoles) and no active flag (SetActive).
type AdminChanges struct {
	Name, Username, Bio *string
	// Email replaces the address at once; unless EmailVerified is given
	// too, the new address is unverified.
	Email         *string
	EmailVerified *bool
	// Phone replaces the number ("" removes it); unless PhoneVerified is
	// given too, a new number is unverified.
	Phone         *string
	PhoneVerified *bool
}

// AdminUpdate applies c to the user with the checks of the pages:
// *ValidationError for bad input (the user unchanged), ErrEmailTaken or
// ErrUsernameTaken for an address or username another user has.
func (s *Service) AdminUpdate(ctx context.Context, userID string, c AdminChanges) (*storage.User, error) {
	u, err := s.Get(ctx, userID)
	if err != nil {
		return nil, err
	}
	p := Profile{Name: u.Name, Username: u.PreferredUsername(), Bio: u.Bio}
	for _, m := range []struct{ to, from *string }{{&p.Name, c.Name}, {&p.Username, c.Username}, {&p.Bio, c.Bio}} {
		if m.from != nil {
			*m.to = *m.from
		}
	}
	if err := applyProfile(u, p); err != nil {
		return nil, err
	}
	columns := []string{"name", "bio", "username"}
	emailChanged := false
	if c.Email != nil {
		email, err := CanonicalEmail(*c.Email)
		if err != nil {
			return nil, err
		}
		if mixesScripts(email) {
			return nil, mixedScriptsError()
		}
		if email != u.Email {
			emailChanged = true
			u.Email, u.EmailSkeleton, u.EmailVerified, u.PendingEmail = email, emailSkeleton(email), false, ""
			columns = append(columns, "email", "email_skeleton", "email_verified", "pending_email")
		}
	}
	if c.EmailVerified != nil {
		u.EmailVerified = *c.EmailVerified
		columns = append(columns, "email_verified")
	}
	if c.Phone != nil && *c.Phone != u.Phone {
		if *c.Phone != "" && !validPhone(*c.Phone) {
			return nil, &ValidationError{Field: "phone", Message: "The phone number must be in international format: + and 8 to 15 digits, as in +14155550100."}
		}
		u.Phone, u.PhoneVerified, u.PendingPhone = *c.Phone, false, ""
		columns = append(columns, "phone", "phone_verified", "pending_phone")
	}
	if c.PhoneVerified != nil {
		if *c.PhoneVerified && u.Phone == "" {
			return nil, &ValidationError{Field: "phone", Message: "A phone number marked verified is required."}
		}
		u.PhoneVerified = *c.PhoneVerified
		columns = append(columns, "phone_verified")
	}
	// A column named twice (email_verified after an address change)
	// would be two assignments, which PostgreSQL refuses.
	columns = slices.Compact(slices.Sorted(slices.Values(columns)))
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.UpdateUser(ctx, u, columns...); err != nil {
			return err
		}
		if err := s.audit(ctx, "admin.user_updated", u.ID, map[string]any{"fields": columns}); err != nil {
			return err
		}
		if emailChanged {
			// Links mailed to the old address must not work for the new.
			return s.store.KillActionTokens(ctx, u.ID, tokenReset)
		}
		return nil
	})
	if errors.Is(err, storage.ErrAlreadyExists) {
		return nil, s.whichTaken(ctx, u, err)
	} else if err != nil {
		return nil, fmt.Errorf("account: update user: %w", err)
	}
	return u, nil
}
