package account

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/torii-idp/torii/login/notify"
	"github.com/torii-idp/torii/storage"
)

// Token purposes.
const (
	tokenRegistration = "register_ticket"
	tokenVerifyLink   = "verify_link"
	tokenReset        = "reset"
)

// Register creates an unverified account and sends the owner a mail with a
// 6-digit code and a link that verify it — all in one transaction. It
// returns an opaque ticket that the verification page hands back with the
// code.
//
// If the email is already registered, looks like a registered address (the
// same UTS #39 skeleton: alıce@example.com beside alice@example.com), or
// mixes scripts in its local part or a domain label (alice@exаmple.com with
// a Cyrillic а), nothing is created: the owner of the registered address,
// if any, gets a mail saying someone tried, and the caller gets a ticket
// that verifies nothing. The answer and the work done are the same either
// way, so the page cannot be used to find out who has an account. Bad
// input is a *ValidationError (a taken username is one, on "username").
func (s *Service) Register(ctx context.Context, nu NewUser) (string, error) {
	if s.cfg.Notifier == nil {
		return "", ErrNoNotifier
	}
	nu.EmailVerified, nu.PhoneVerified, nu.Roles = false, false, nil
	nu.Phone = ""
	u, err := s.newUser(nu)
	if err != nil {
		return "", err
	}
	// Hash first, whatever happens next: the same cost for taken addresses.
	if u.PasswordHash, err = s.hashPassword(ctx, nu.Password); err != nil {
		return "", err
	}
	if u.Username != nil {
		if other, err := s.store.UserByLogin(ctx, *u.Username); err == nil && other.Email != u.Email {
			return "", &ValidationError{Field: "username", Message: "This username is taken; choose another one."}
		}
	}
	existing, err := s.store.UserByEmailLookAlike(ctx, u.Email, u.EmailSkeleton)
	s.hook("register-looked-up")
	switch {
	case errors.Is(err, storage.ErrNotFound) && mixesScripts(u.Email):
		return s.registerTaken(ctx, u.Email, nil)
	case errors.Is(err, storage.ErrNotFound):
		return s.registerNew(ctx, u)
	case err != nil:
		return "", fmt.Errorf("account: register: %w", err)
	default:
		return s.registerTaken(ctx, u.Email, existing)
	}
}

func (s *Service) registerNew(ctx context.Context, u *storage.User) (string, error) {
	var ticket string
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.CreateUser(ctx, u); err != nil {
			return err
		}
		var err error
		ticket, err = s.sendVerification(ctx, u)
		return err
	})
	if errors.Is(err, storage.ErrAlreadyExists) {
		// Registered concurrently, maybe in a form that looks the same:
		// answer as for any taken address.
		if existing, lerr := s.store.UserByEmailLookAlike(ctx, u.Email, u.EmailSkeleton); lerr == nil {
			return s.registerTaken(ctx, u.Email, existing)
		}
		return "", &ValidationError{Field: "username", Message: "This username is taken; choose another one."}
	}
	if err != nil {
		return "", fmt.Errorf("account: register: %w", err)
	}
	return ticket, nil
}

// purposeNotice marks the record of a notice to the owner of an address
// that looks like one someone tried to register: it is no code, and counts
// toward the owner's sends only.
const purposeNotice = "register_notice"

// registerTaken answers a registration of email that creates nothing (see
// Register) as a new one is answered: with a ticket, backed by a decoy code
// that no entry can match and whose page shows email. The owner of the
// registered address that email is or looks like (nil: none) is mailed.
// The decoy counts toward email's sends, and the mail toward the owner's
// address (ResendMax per ResendWindow, apart from account codes); past its
// limit each is skipped silently, and the answer is the same.
func (s *Service) registerTaken(ctx context.Context, email string, owner *storage.User) (string, error) {
	var notice notify.Message
	if owner != nil {
		subject, text, html, err := notify.ComposeIn(s.mailLanguage(ctx), "register_exists", struct{ Email, ResetLink string }{owner.Email, s.cfg.Issuer + "/forgot"})
		if err != nil {
			return "", err
		}
		notice = notify.Message{Channel: notify.Email, To: owner.Email, Subject: subject, Text: text, HTML: html}
	}
	ticket, hash := newToken()
	decoy := &storage.OneTimeCode{ID: rand.Text(), Purpose: purposeVerifyEmail, Binding: hash, Destination: email,
		CodeHash: unmatchableHash(), ExpiresAt: s.cfg.Now().Add(s.cfg.OTPLifetime)}
	lookAlike := owner != nil && owner.Email != email
	// The limits are checked and the decoy counted under locks on the
	// addresses (as limitedSend does), so that a burst of registrations
	// cannot mail the owner past the cap.
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.Lock(ctx, "code-sends-to:"+email); err != nil {
			return err
		}
		counted, err := s.withinSendLimits(ctx, email)
		if err != nil {
			return err
		}
		send := owner != nil && counted
		if lookAlike {
			if err := s.store.Lock(ctx, "code-sends-to:"+owner.Email); err != nil {
				return err
			}
			if send, err = s.withinSendLimits(ctx, owner.Email); err != nil {
				return err
			}
		}
		if counted {
			decoy.Channel = string(notify.Email)
		}
		if err := s.store.ReplaceOneTimeCode(ctx, decoy); err != nil {
			return err
		}
		if err := s.store.CreateActionToken(ctx, &storage.ActionToken{TokenHash: hash, Purpose: tokenRegistration,
			CodeID: decoy.ID, ExpiresAt: decoy.ExpiresAt}); err != nil {
			return err
		}
		if !send {
			return nil
		}
		if lookAlike {
			// The decoy counts toward email; this counts the mail toward
			// the owner's address.
			return s.enqueueCountedNotice(ctx, notice)
		}
		return s.cfg.Notifier.Enqueue(ctx, notice)
	})
	if err != nil {
		return "", fmt.Errorf("account: register: %w", err)
	}
	return ticket, nil
}

// unmatchableHash is the stored hash of a decoy code: random, so no code
// ever matches it.
func unmatchableHash() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

// enqueueCountedNotice enqueues a notice to the owner of an address
// someone tried to use, in ctx's transaction, and records it as a send to
// that address, so that notices count toward the address's limits apart
// from its account's codes.
func (s *Service) enqueueCountedNotice(ctx context.Context, notice notify.Message) error {
	record := &storage.OneTimeCode{ID: rand.Text(), Purpose: purposeNotice, Channel: string(notify.Email),
		Destination: notice.To, CodeHash: unmatchableHash(), ExpiresAt: s.cfg.Now()}
	if err := s.store.ReplaceOneTimeCode(ctx, record); err != nil {
		return err
	}
	return s.cfg.Notifier.Enqueue(ctx, notice)
}

// withinSendLimits reports whether one more message without an account
// (a decoy, a notice) may be counted toward destination now.
func (s *Service) withinSendLimits(ctx context.Context, destination string) (bool, error) {
	err := s.checkSendLimits(ctx, "", destination, false)
	var rl *RateLimitError
	if errors.As(err, &rl) {
		return false, nil
	}
	return err == nil, err
}

// sendVerification sends u a verification code and link (killing earlier
// ones) and returns the ticket for the code page. It runs inside ctx's
// transaction.
func (s *Service) sendVerification(ctx context.Context, u *storage.User) (string, error) {
	ticket, ticketHash := newToken()
	link, linkHash := newToken()
	if err := s.store.KillActionTokens(ctx, u.ID, tokenVerifyLink); err != nil {
		return "", err
	}
	// Only the newest code and link work.
	if err := s.store.KillOneTimeCodes(ctx, u.ID, purposeVerifyEmail); err != nil {
		return "", err
	}
	c, err := s.sendCode(ctx, u, purposeVerifyEmail, ticketHash, notify.Email, u.Email, func(code string) (notify.Message, error) {
		subject, text, html, err := notify.ComposeIn(s.mailLanguage(ctx), "verify_email", struct {
			Code, Link, Name string
			Minutes          int
		}{code, s.cfg.Issuer + "/verify?token=" + url.QueryEscape(link), u.Name, s.minutes()})
		return notify.Message{Channel: notify.Email, To: u.Email, Subject: subject, Text: text, HTML: html}, err
	})
	if err != nil {
		return "", err
	}
	userID := sql.NullString{String: u.ID, Valid: true}
	if err := s.store.CreateActionToken(ctx, &storage.ActionToken{TokenHash: ticketHash, UserID: userID, Purpose: tokenRegistration,
		CodeID: c.ID, ExpiresAt: c.ExpiresAt}); err != nil {
		return "", err
	}
	if err := s.store.CreateActionToken(ctx, &storage.ActionToken{TokenHash: linkHash, UserID: userID, Purpose: tokenVerifyLink,
		ExpiresAt: s.cfg.Now().Add(s.cfg.VerifyLinkLifetime)}); err != nil {
		return "", err
	}
	return ticket, nil
}

// ticketUser returns the user and code binding behind a verification
// ticket; ErrCodeDead when it is unknown or expired, and a nil user for a
// decoy ticket.
func (s *Service) ticketUser(ctx context.Context, ticket string) (*storage.User, string, error) {
	hash := hashToken(ticket)
	t, err := s.store.ActionToken(ctx, hash, tokenRegistration)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, "", ErrCodeDead
	} else if err != nil {
		return nil, "", fmt.Errorf("account: %w", err)
	}
	if !t.UserID.Valid {
		return nil, hash, nil
	}
	u, err := s.Get(ctx, t.UserID.String)
	if err != nil {
		return nil, "", err
	}
	return u, hash, nil
}

// VerifyEmailCode checks the code sent with a registration (or an
// unverified sign-in) and marks the email verified. Errors as CheckOTP:
// ErrCodeInvalid, ErrCodeDead. A decoy ticket never verifies.
func (s *Service) VerifyEmailCode(ctx context.Context, ticket, code string) (*storage.User, error) {
	u, binding, err := s.ticketUser(ctx, ticket)
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, s.decoyEntry(ctx, binding)
	}
	if _, err := s.checkCode(ctx, u, purposeVerifyEmail, binding, code); err != nil {
		return nil, err
	}
	return s.markEmailVerified(ctx, u)
}

// decoyEntry answers a code entered for a decoy ticket (hash binding) as a
// wrong entry of a real code: the entry is counted on the decoy code, with
// the same conditional claim as real codes, and nothing ever matches.
func (s *Service) decoyEntry(ctx context.Context, binding string) error {
	now := s.cfg.Now()
	t, err := s.store.ActionToken(ctx, binding, tokenRegistration)
	if err != nil {
		return ErrCodeDead
	}
	c, err := s.store.OneTimeCodeByID(ctx, t.CodeID)
	if err != nil {
		return ErrCodeDead
	}
	n, err := s.store.ClaimCodeAttempt(ctx, c.ID, s.cfg.OTPMaxAttempts, now)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return ErrCodeDead
	case err != nil:
		return fmt.Errorf("account: check code: %w", err)
	case n >= s.cfg.OTPMaxAttempts:
		return ErrCodeDead
	}
	return ErrCodeInvalid
}

// VerifyEmailLink verifies the email address whose link token this is.
func (s *Service) VerifyEmailLink(ctx context.Context, token string) (*storage.User, error) {
	hash := hashToken(token)
	t, err := s.store.ActionToken(ctx, hash, tokenVerifyLink)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && (!t.UserID.Valid || !t.ExpiresAt.After(s.cfg.Now()))) {
		return nil, ErrLinkInvalid
	} else if err != nil {
		return nil, fmt.Errorf("account: %w", err)
	}
	if err := s.store.UseActionToken(ctx, hash, tokenVerifyLink); errors.Is(err, storage.ErrNotFound) {
		return nil, ErrLinkInvalid
	} else if err != nil {
		return nil, fmt.Errorf("account: %w", err)
	}
	u, err := s.Get(ctx, t.UserID.String)
	if err != nil {
		return nil, err
	}
	return s.markEmailVerified(ctx, u)
}

func (s *Service) markEmailVerified(ctx context.Context, u *storage.User) (*storage.User, error) {
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		u.EmailVerified = true
		if err := s.store.UpdateUser(ctx, u, "email_verified"); err != nil {
			return err
		}
		if err := s.store.KillOneTimeCodes(ctx, u.ID, purposeVerifyEmail); err != nil {
			return err
		}
		return s.store.KillActionTokens(ctx, u.ID, tokenVerifyLink)
	})
	if err != nil {
		return nil, fmt.Errorf("account: verify email: %w", err)
	}
	return u, nil
}

// ResendVerification sends a fresh code and link for ticket (the old ones
// stop working) and returns the new ticket. Rate-limited like sign-in
// codes (*RateLimitError). A decoy ticket gets a decoy answer.
func (s *Service) ResendVerification(ctx context.Context, ticket string) (string, error) {
	u, _, err := s.ticketUser(ctx, ticket)
	if err != nil {
		return "", err
	}
	if u == nil {
		email, owner, err := s.decoyOf(ctx, ticket)
		if err != nil {
			return "", ErrCodeDead
		}
		if err := s.checkSendLimits(ctx, "", email, false); err != nil {
			return "", err
		}
		return s.registerTaken(ctx, email, owner)
	}
	if u.EmailVerified {
		return "", ErrCodeDead
	}
	return s.StartEmailVerification(ctx, u.ID)
}

// decoyOf returns the address a decoy ticket was given for and the owner
// of the registered address it is or looks like (nil: none).
func (s *Service) decoyOf(ctx context.Context, ticket string) (string, *storage.User, error) {
	t, err := s.store.ActionToken(ctx, hashToken(ticket), tokenRegistration)
	if err != nil {
		return "", nil, err
	}
	c, err := s.store.OneTimeCodeByID(ctx, t.CodeID)
	if err != nil {
		return "", nil, err
	}
	owner, err := s.store.UserByEmailLookAlike(ctx, c.Destination, emailSkeleton(c.Destination))
	if errors.Is(err, storage.ErrNotFound) {
		return c.Destination, nil, nil
	}
	return c.Destination, owner, err
}

// StartEmailVerification sends an unverified user a fresh verification code
// and link (when they sign in: they get this, never tokens) and returns the
// ticket for the code page.
func (s *Service) StartEmailVerification(ctx context.Context, userID string) (string, error) {
	u, err := s.Get(ctx, userID)
	if err != nil {
		return "", err
	}
	var ticket string
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		var err error
		ticket, err = s.sendVerification(ctx, u)
		return err
	})
	if err != nil {
		var rl *RateLimitError
		if errors.As(err, &rl) {
			return "", rl
		}
		return "", fmt.Errorf("account: %w", err)
	}
	return ticket, nil
}

// TicketEmail returns the masked address a verification ticket's code went
// to, for the code page ("We sent a code to a•••@example.com").
func (s *Service) TicketEmail(ctx context.Context, ticket string) (string, error) {
	t, err := s.store.ActionToken(ctx, hashToken(ticket), tokenRegistration)
	if errors.Is(err, storage.ErrNotFound) {
		return "", ErrCodeDead
	} else if err != nil {
		return "", fmt.Errorf("account: %w", err)
	}
	c, err := s.store.OneTimeCodeByID(ctx, t.CodeID)
	if err != nil {
		return "", ErrCodeDead
	}
	return mask(c.Destination, notify.Email), nil
}

// CheckRegistration returns every problem of a registration form at once,
// in the form's order (email, name, username, password), by the same rules
// Register applies one at a time: so a page can show them all after one
// submit. It reads nothing: a taken address or username is not a problem
// here (Register answers those as it must).
func (s *Service) CheckRegistration(nu NewUser) []*ValidationError {
	var problems []*ValidationError
	add := func(err error) {
		var ve *ValidationError
		if errors.As(err, &ve) {
			problems = append(problems, ve)
		}
	}
	_, err := CanonicalEmail(nu.Email)
	add(err)
	if _, ok := cleanName(nu.Name); !ok {
		add(&ValidationError{Field: "name", Message: msgNameInvalid})
	}
	if strings.TrimSpace(nu.Username) != "" {
		_, err := CanonicalUsername(nu.Username)
		add(err)
	}
	add(s.CheckPassword(nu.Password))
	return problems
}

// CheckPassword reports whether password may be chosen under the
// configured policy, as a *ValidationError for the field "password".
func (s *Service) CheckPassword(password string) error {
	return s.cfg.Password.Check(password)
}

// msgNameInvalid refuses a display name.
const msgNameInvalid = "The name must have at most 200 characters and no control characters."
