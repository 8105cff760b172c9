package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/torii-idp/torii/storage"
)

// Identity is an upstream identity (login/federation) as accounts see it.
type Identity struct {
	// Provider and Subject key the link; Email is the upstream address.
	Provider, Subject, Email string
	// EmailVerified: the provider vouches for Email.
	EmailVerified bool
	Name          string
}

var (
	// ErrIdentityTaken means the upstream identity is linked to an
	// account already.
	ErrIdentityTaken = errors.New("account: identity already linked")
	// ErrLastSignInMethod refuses to unlink the only way an account has
	// to sign in (no password and no other identity).
	ErrLastSignInMethod = errors.New("account: the account would have no way to sign in")
)

// UserByEmail returns the account whose canonical email is email's, or
// whose address looks the same (see CanonicalEmail and the email
// skeleton), or ErrNotFound. An address that cannot be canonicalised is a
// *ValidationError.
func (s *Service) UserByEmail(ctx context.Context, email string) (*storage.User, error) {
	canon, err := CanonicalEmail(email)
	if err != nil {
		return nil, err
	}
	u, err := s.store.UserByEmailLookAlike(ctx, canon, emailSkeleton(canon))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("account: user by email: %w", err)
	}
	return u, nil
}

// upstreamName keeps what fits of an upstream display name: no control
// characters, at most 200 characters.
func upstreamName(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	for utf8.RuneCountInString(s) > 200 {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return strings.TrimSpace(s)
}

// CreateFederated creates an account for an upstream identity nobody
// linked, and links it, in one transaction: no password (one can be set
// through the forgotten-password mail), the upstream name, the email
// verified only when the provider vouches for it. It fails as Create does
// (ErrEmailTaken when the address is an account's), or with
// ErrIdentityTaken.
func (s *Service) CreateFederated(ctx context.Context, id Identity) (*storage.User, error) {
	var u *storage.User
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		var err error
		u, err = s.Create(ctx, NewUser{Email: id.Email, Name: upstreamName(id.Name), EmailVerified: id.EmailVerified, invite: true})
		if err != nil {
			return err
		}
		return s.link(ctx, u.ID, id)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// Link links an upstream identity to the user: ErrIdentityTaken when it
// is linked already (to this account or another).
func (s *Service) Link(ctx context.Context, userID string, id Identity) error {
	return s.store.InTx(ctx, func(ctx context.Context) error { return s.link(ctx, userID, id) })
}

func (s *Service) link(ctx context.Context, userID string, id Identity) error {
	err := s.store.CreateIdentity(ctx, &storage.Identity{Provider: id.Provider, Subject: id.Subject, UserID: userID, Email: id.Email})
	if errors.Is(err, storage.ErrAlreadyExists) {
		return ErrIdentityTaken
	} else if err != nil {
		return fmt.Errorf("account: link identity: %w", err)
	}
	return s.audit(ctx, "identity.linked", userID, map[string]any{"provider": id.Provider})
}

// Identities lists the user's linked identities.
func (s *Service) Identities(ctx context.Context, userID string) ([]*storage.Identity, error) {
	ids, err := s.store.Identities(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("account: identities: %w", err)
	}
	return ids, nil
}

// Unlink removes one of the user's identities, unless it is the account's
// last way to sign in (ErrLastSignInMethod: no password and no other
// identity); ErrNotFound when the user has no such identity. The user row
// is held while the links are counted, so two parallel unlinks cannot
// both pass the rule.
func (s *Service) Unlink(ctx context.Context, userID, provider, subject string) error {
	return s.store.InTx(ctx, func(ctx context.Context) error {
		u, err := s.store.LockUser(ctx, userID)
		if errors.Is(err, storage.ErrNotFound) {
			return ErrNotFound
		} else if err != nil {
			return fmt.Errorf("account: unlink: %w", err)
		}
		ids, err := s.store.Identities(ctx, userID)
		if err != nil {
			return fmt.Errorf("account: unlink: %w", err)
		}
		found := false
		for _, id := range ids {
			found = found || (id.Provider == provider && id.Subject == subject)
		}
		if !found {
			return ErrNotFound
		}
		if u.PasswordHash == "" && len(ids) == 1 {
			return ErrLastSignInMethod
		}
		if err := s.store.DeleteIdentity(ctx, userID, provider, subject); err != nil {
			return fmt.Errorf("account: unlink: %w", err)
		}
		return s.audit(ctx, "identity.unlinked", userID, map[string]any{"provider": provider})
	})
}

// FederatedSignIn records a sign-in of u through an upstream identity: the
// identity's last use and the audit event sign_in.success (method
// federated).
func (s *Service) FederatedSignIn(ctx context.Context, u *storage.User, id Identity) error {
	return s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.TouchIdentity(ctx, id.Provider, id.Subject, id.Email); err != nil {
			return fmt.Errorf("account: federated sign-in: %w", err)
		}
		return s.store.RecordAudit(ctx, &storage.AuditEvent{Type: "sign_in.success", Actor: "user:" + u.ID, Subject: u.ID,
			Detail: map[string]any{"method": "federated", "provider": id.Provider}})
	})
}
