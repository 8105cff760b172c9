package account

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/torii-idp/torii/login/notify"
	"github.com/torii-idp/torii/storage"
)

// RequestPasswordReset mails a single-use link to set a new password, valid
// ResetLifetime. It answers nil whether or not the address has an account,
// after the same work, so the page cannot tell who is registered: every
// path counts the recent links, renders the mail and makes two writes in a
// transaction. Without an account (or past ResendMax links per
// ResendWindow, so that the owner is not mail-bombed) the token is a decoy
// that belongs to no one and is stored used, and no mail is sent. A locked
// account may reset its password.
func (s *Service) RequestPasswordReset(ctx context.Context, email string) error {
	if s.cfg.Notifier == nil {
		return ErrNoNotifier
	}
	canon, err := CanonicalEmail(email)
	if err != nil {
		return err
	}
	token, hash := newToken()
	u, err := s.store.UserByLogin(ctx, canon)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("account: reset: %w", err)
	}
	known := err == nil && !u.Disabled && u.Email == canon
	var userID, name string
	if known {
		userID, name = u.ID, u.Name
	}
	now := s.cfg.Now()
	n, err := s.store.CountActionTokensSince(ctx, userID, tokenReset, now.Add(-s.cfg.ResendWindow))
	if err != nil {
		return fmt.Errorf("account: reset: %w", err)
	}
	subject, text, html, err := notify.ComposeIn(s.mailLanguage(ctx), "password_reset", struct {
		Link, Name string
		Minutes    int
	}{s.cfg.Issuer + "/reset?token=" + url.QueryEscape(token), name, int(s.cfg.ResetLifetime / time.Minute)})
	if err != nil {
		return err
	}
	send := known && n < s.cfg.ResendMax
	row := &storage.ActionToken{TokenHash: hash, Purpose: tokenReset, ExpiresAt: now.Add(s.cfg.ResetLifetime)}
	if send {
		row.UserID = sql.NullString{String: u.ID, Valid: true}
	}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.CreateActionToken(ctx, row); err != nil {
			return err
		}
		if !send {
			// A second write, as the mail is on the real path: the decoy
			// is used up, so it could not work even if it had an owner.
			return s.store.UseActionToken(ctx, hash, tokenReset)
		}
		return s.cfg.Notifier.Enqueue(ctx, notify.Message{Channel: notify.Email, To: u.Email, Subject: subject, Text: text, HTML: html})
	})
	if err != nil {
		return fmt.Errorf("account: reset: %w", err)
	}
	return nil
}

// CheckResetToken tells whether a reset link still works (ErrLinkInvalid
// when it is unknown, used, expired or tampered with).
func (s *Service) CheckResetToken(ctx context.Context, token string) error {
	_, err := s.resetTokenUser(ctx, token)
	return err
}

// ResetAccount returns the email address of the account whose password the
// reset link token changes (the link was mailed there), or ErrLinkInvalid
// like CheckResetToken.
func (s *Service) ResetAccount(ctx context.Context, token string) (string, error) {
	id, err := s.resetTokenUser(ctx, token)
	if err != nil {
		return "", err
	}
	u, err := s.store.User(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return "", ErrLinkInvalid
	} else if err != nil {
		return "", fmt.Errorf("account: %w", err)
	}
	return u.Email, nil
}

// resetTokenUser returns the user ID of a live reset link token.
func (s *Service) resetTokenUser(ctx context.Context, token string) (string, error) {
	t, err := s.store.ActionToken(ctx, hashToken(token), tokenReset)
	if errors.Is(err, storage.ErrNotFound) {
		return "", ErrLinkInvalid
	} else if err != nil {
		return "", fmt.Errorf("account: %w", err)
	}
	if t.UsedAt.Valid || !t.ExpiresAt.After(s.cfg.Now()) || !t.UserID.Valid {
		return "", ErrLinkInvalid
	}
	return t.UserID.String, nil
}

// ResetPassword sets a new password through a reset link: one transaction
// sets the hash and password_changed_at, clears the lockout, ends every
// session, revokes every refresh token, kills every outstanding reset link,
// marks the email verified (the link was mailed there), and mails the
// owner. There is no automatic sign-in.
func (s *Service) ResetPassword(ctx context.Context, token, newPassword string) error {
	if err := s.CheckResetToken(ctx, token); err != nil {
		return err
	}
	hash, err := s.hashPassword(ctx, newPassword)
	if err != nil {
		return err
	}
	t, err := s.store.ActionToken(ctx, hashToken(token), tokenReset)
	if err != nil {
		return ErrLinkInvalid
	}
	u, err := s.Get(ctx, t.UserID.String)
	if err != nil {
		return ErrLinkInvalid
	}
	return s.setPassword(ctx, u, hash, "", "", func(ctx context.Context) error {
		if err := s.store.UseActionToken(ctx, hashToken(token), tokenReset); errors.Is(err, storage.ErrNotFound) {
			return ErrLinkInvalid
		} else if err != nil {
			return err
		}
		// The link was mailed to the address, which an address change
		// kills: following it proves the address (an invited user's
		// first).
		if !u.EmailVerified {
			u.EmailVerified = true
			return s.store.UpdateUser(ctx, u, "email_verified")
		}
		return nil
	})
}

// PasswordChange is the input of ChangePassword.
type PasswordChange struct {
	// Old proves the user; New is the new password.
	Old, New string
	// KeepSession is the session (ID hash) of the browser that changes
	// the password: it stays signed in. "" ends every session.
	KeepSession string
	// KeepGrant is the grant of the access token that changes the
	// password (the API): its tokens stay valid. "" revokes every token.
	KeepGrant string
	// Device is the device token of the browser that changes it ("" for
	// none): the old password is checked as at sign-in on that device.
	Device string
}

// ChangePassword sets a new password for a signed-in user who proves the
// old one. A wrong old password is ErrInvalidCredentials and counts toward
// the lockout as at sign-in (AuthenticateOnDevice). Every other session
// ends, every other grant's tokens are revoked, reset links die, every
// trusted and every remembered device is forgotten, and the owner is
// mailed.
func (s *Service) ChangePassword(ctx context.Context, userID string, c PasswordChange) error {
	u, err := s.Get(ctx, userID)
	if err != nil {
		return err
	}
	if err := s.cfg.Password.Check(c.New); err != nil {
		return err
	}
	if _, err := s.AuthenticateOnDevice(ctx, u.Email, c.Old, c.Device); err != nil {
		return err
	}
	hash, err := s.hashPassword(ctx, c.New)
	if err != nil {
		return err
	}
	return s.setPassword(ctx, u, hash, c.KeepSession, c.KeepGrant, nil)
}

func (s *Service) setPassword(ctx context.Context, u *storage.User, hash, keepSession, keepGrant string, first func(context.Context) error) error {
	now := s.cfg.Now().UTC()
	var msg *notify.Message
	// An invited user choosing a first password changed nothing to warn
	// about.
	if s.cfg.Notifier != nil && u.PasswordHash != "" {
		subject, text, html, err := notify.ComposeIn(s.mailLanguage(ctx), "password_changed", struct{ Name, When, ResetLink string }{
			u.Name, now.Format("2 Jan 2006 15:04 MST"), s.cfg.Issuer + "/forgot"})
		if err != nil {
			return err
		}
		msg = &notify.Message{Channel: notify.Email, To: u.Email, Subject: subject, Text: text, HTML: html}
	}
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		if first != nil {
			if err := first(ctx); err != nil {
				return err
			}
		}
		u.PasswordHash = hash
		u.PasswordChangedAt = sql.NullTime{Time: now, Valid: true}
		u.KeptGrant = keepGrant
		u.FailedLogins, u.Lockouts, u.LockedUntil = 0, 0, sql.NullTime{}
		u.FailedOTPs, u.OTPLockouts, u.OTPLockedUntil = 0, 0, sql.NullTime{}
		if err := s.store.UpdateUser(ctx, u, "password_hash", "password_changed_at", "kept_grant", "failed_logins", "lockouts",
			"locked_until", "failed_otps", "otp_lockouts", "otp_locked_until"); err != nil {
			return err
		}
		if err := s.store.ForgetDevices(ctx, u.ID); err != nil {
			return err
		}
		// A reset (first != nil: a link's owner) or a change by the user.
		typ := "password.changed"
		if first != nil {
			typ = "password.reset"
		}
		if err := s.forgetRememberedDevices(ctx, u.ID, typ); err != nil {
			return err
		}
		if err := s.store.DeleteLoginSessions(ctx, u.ID, keepSession); err != nil {
			return err
		}
		if err := s.store.RevokeOtherSubjectTokens(ctx, u.ID, keepGrant); err != nil {
			return err
		}
		if err := s.store.KillActionTokens(ctx, u.ID, tokenReset); err != nil {
			return err
		}
		if err := s.audit(ctx, typ, u.ID, nil); err != nil {
			return err
		}
		if msg != nil {
			return s.cfg.Notifier.Enqueue(ctx, *msg)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrLinkInvalid) {
			return err
		}
		return fmt.Errorf("account: set password: %w", err)
	}
	return nil
}

// Profile is what a user may change about themselves on the account page.
type Profile struct {
	Name, Username, Bio string
}

// UpdateProfile changes a user's name, username and bio. Nothing else can
// be set this way (no email_verified, role or password: no mass
// assignment).
func (s *Service) UpdateProfile(ctx context.Context, userID string, p Profile) (*storage.User, error) {
	u, err := s.Get(ctx, userID)
	if err != nil {
		return nil, err
	}
	if err := applyProfile(u, p); err != nil {
		return nil, err
	}
	err = s.store.UpdateUser(ctx, u, "name", "bio", "username")
	if errors.Is(err, storage.ErrAlreadyExists) {
		return nil, &ValidationError{Field: "username", Message: "This username is taken; choose another one."}
	} else if err != nil {
		return nil, fmt.Errorf("account: update profile: %w", err)
	}
	return u, nil
}

// applyProfile checks p and sets it on u.
func applyProfile(u *storage.User, p Profile) error {
	name, ok := cleanName(p.Name)
	if !ok {
		return &ValidationError{Field: "name", Message: msgNameInvalid}
	}
	bio, ok := cleanText(p.Bio, 500)
	if !ok {
		return &ValidationError{Field: "bio", Message: "The bio must have at most 500 characters and no control characters other than line breaks."}
	}
	u.Name, u.Bio = name, bio
	if strings.TrimSpace(p.Username) == "" {
		u.Username = nil
		return nil
	}
	un, err := CanonicalUsername(p.Username)
	if err != nil {
		return err
	}
	u.Username = &un
	return nil
}

// cleanText accepts text of at most max runes with line breaks but no other
// control or bidi-override characters.
func cleanText(s string, max int) (string, bool) {
	s = strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n"))
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > max {
		return "", false
	}
	for _, line := range strings.Split(s, "\n") {
		if _, ok := cleanName(line); !ok && line != "" {
			return "", false
		}
	}
	return s, true
}

// StartPhoneVerification records phone (E.164) as the user's pending
// number and sends it a code by SMS.
func (s *Service) StartPhoneVerification(ctx context.Context, userID, phone string) (*OTPChallenge, error) {
	u, err := s.Get(ctx, userID)
	if err != nil {
		return nil, err
	}
	phone = strings.ReplaceAll(strings.TrimSpace(phone), " ", "")
	if !validPhone(phone) {
		return nil, &ValidationError{Field: "phone", Message: "The phone number must be in international format: + and 8 to 15 digits, as in +14155550100."}
	}
	u.PendingPhone = phone
	if err := s.store.UpdateUser(ctx, u, "pending_phone"); err != nil {
		return nil, fmt.Errorf("account: %w", err)
	}
	c, err := s.sendCode(ctx, u, purposeVerifyPhone, phone, notify.SMS, phone, func(code string) (notify.Message, error) {
		_, text, _, err := notify.ComposeIn(s.mailLanguage(ctx), "verify_phone", codeData{Code: code, Minutes: s.minutes()})
		return notify.Message{Channel: notify.SMS, To: phone, Text: text}, err
	})
	if err != nil {
		return nil, err
	}
	return &OTPChallenge{Channel: notify.SMS, Destination: mask(phone, notify.SMS), ExpiresAt: c.ExpiresAt}, nil
}

// VerifyPhone checks the code sent to the pending number and makes it the
// user's verified phone.
func (s *Service) VerifyPhone(ctx context.Context, userID, code string) error {
	u, err := s.Get(ctx, userID)
	if err != nil {
		return err
	}
	if u.PendingPhone == "" {
		return ErrCodeDead
	}
	if _, err := s.checkCode(ctx, u, purposeVerifyPhone, u.PendingPhone, code); err != nil {
		return err
	}
	u.Phone, u.PhoneVerified, u.PendingPhone = u.PendingPhone, true, ""
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.UpdateUser(ctx, u, "phone", "phone_verified", "pending_phone"); err != nil {
			return err
		}
		return s.audit(ctx, "phone.changed", u.ID, nil)
	})
	if err != nil {
		return fmt.Errorf("account: verify phone: %w", err)
	}
	return nil
}

// RemovePhone forgets the user's phone number.
func (s *Service) RemovePhone(ctx context.Context, userID string) error {
	u, err := s.Get(ctx, userID)
	if err != nil {
		return err
	}
	u.Phone, u.PhoneVerified, u.PendingPhone = "", false, ""
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.UpdateUser(ctx, u, "phone", "phone_verified", "pending_phone"); err != nil {
			return err
		}
		return s.audit(ctx, "phone.changed", u.ID, map[string]any{"removed": true})
	})
	if err != nil {
		return fmt.Errorf("account: remove phone: %w", err)
	}
	return nil
}

// Sessions lists the user's signed-in browsers, newest first.
func (s *Service) Sessions(ctx context.Context, userID string) ([]*storage.LoginSession, error) {
	ls, err := s.store.LoginSessions(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("account: %w", err)
	}
	return ls, nil
}

// EndSession signs one of the user's own browsers out; ErrNotFound for a
// session that is not theirs.
func (s *Service) EndSession(ctx context.Context, userID, idHash string) error {
	ls, err := s.store.LoginSession(ctx, idHash)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && ls.Subject != userID) {
		return ErrNotFound
	} else if err != nil {
		return fmt.Errorf("account: %w", err)
	}
	if err := s.store.DeleteLoginSession(ctx, idHash); err != nil {
		return fmt.Errorf("account: %w", err)
	}
	return nil
}

// SignOutEverywhere ends every session of the user, this browser's too,
// and revokes every access and refresh token issued to them, offline
// access included, in one transaction: every application must sign the
// user in again. (Signing out one browser, or an application's logout,
// ends only that browser's session; see the README.) Remembered devices
// are forgotten: each is asked for a code again. Trusted devices (the
// lockout's) stay trusted: they are browsers the user signed in with, not
// sessions, and skip nothing.
func (s *Service) SignOutEverywhere(ctx context.Context, userID string) error {
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.DeleteLoginSessions(ctx, userID, ""); err != nil {
			return err
		}
		if err := s.forgetRememberedDevices(ctx, userID, "sessions.ended"); err != nil {
			return err
		}
		if err := s.store.RevokeSubjectTokens(ctx, userID); err != nil {
			return err
		}
		return s.audit(ctx, "sessions.ended", userID, nil)
	})
	if err != nil {
		return fmt.Errorf("account: sign out everywhere: %w", err)
	}
	return nil
}

// App is an application the user allowed.
type App struct {
	ClientID, ClientName string
	Scopes               []string
	GrantedAt            time.Time
}

// Apps lists the applications the user granted consent to.
func (s *Service) Apps(ctx context.Context, userID string) ([]App, error) {
	cs, err := s.store.Consents(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("account: %w", err)
	}
	apps := make([]App, 0, len(cs))
	for _, c := range cs {
		name := c.ClientID
		if cl, err := s.store.Client(ctx, c.ClientID); err == nil {
			name = cl.Name
		}
		apps = append(apps, App{ClientID: c.ClientID, ClientName: name, Scopes: c.Scopes, GrantedAt: c.GrantedAt})
	}
	return apps, nil
}

// RevokeApp withdraws the user's consent to a client and revokes the
// client's tokens for the user.
func (s *Service) RevokeApp(ctx context.Context, userID, clientID string) error {
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.DeleteConsent(ctx, userID, clientID); err != nil {
			return err
		}
		if err := s.store.RevokeClientTokens(ctx, userID, clientID); err != nil {
			return err
		}
		return s.store.RecordAudit(ctx, &storage.AuditEvent{Type: "consent.withdrawn", Actor: "user:" + userID,
			Subject: userID, ClientID: clientID})
	})
	if err != nil {
		return fmt.Errorf("account: revoke app: %w", err)
	}
	return nil
}

// Deactivate disables the user's own account after checking the password
// typed in the browser that carries device (its device token, or ""):
// every session ends and every token is revoked. Wrong password:
// ErrInvalidCredentials (counted toward the lockout as at sign-in).
func (s *Service) Deactivate(ctx context.Context, userID, password, device string) error {
	u, err := s.Get(ctx, userID)
	if err != nil {
		return err
	}
	if _, err := s.AuthenticateOnDevice(ctx, u.Email, password, device); err != nil {
		return err
	}
	return s.deactivate(ctx, u, "account.deactivated")
}

// etagOf is a strong ETag for bytes.
func etagOf(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
}
