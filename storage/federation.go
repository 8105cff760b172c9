package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// Identity is an upstream account linked to a Torii user: the key is the
// provider's name ("google", "github", "facebook", "oidc") and the
// provider's stable subject for the person, never their email.
type Identity struct {
	bun.BaseModel `bun:"table:identities"`

	Provider string `bun:"provider,pk"`
	Subject  string `bun:"subject,pk"`
	UserID   string `bun:"user_id"`
	// Email is the upstream address at the last sign-in, for display.
	Email      string    `bun:"email"`
	CreatedAt  time.Time `bun:"created_at"`
	LastUsedAt time.Time `bun:"last_used_at"`
}

// CreateIdentity links an upstream identity to its user: ErrAlreadyExists
// when (provider, subject) is linked already (to anyone).
func (s *Store) CreateIdentity(ctx context.Context, id *Identity) error {
	id.CreatedAt = s.nowUTC()
	id.LastUsedAt = id.CreatedAt
	if _, err := s.idb(ctx).NewInsert().Model(id).Exec(ctx); err != nil {
		return fmt.Errorf("storage: create identity: %w", translate(err))
	}
	return nil
}

// Identity returns the link of (provider, subject), or ErrNotFound.
func (s *Store) Identity(ctx context.Context, provider, subject string) (*Identity, error) {
	id := new(Identity)
	err := s.idb(ctx).NewSelect().Model(id).Where("provider = ?", provider).Where("subject = ?", subject).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("storage: get identity: %w", translate(err))
	}
	return id, nil
}

// TouchIdentity records a sign-in through the identity and the upstream
// email it came with.
func (s *Store) TouchIdentity(ctx context.Context, provider, subject, email string) error {
	res, err := s.idb(ctx).NewUpdate().Model((*Identity)(nil)).Set("last_used_at = ?", s.nowUTC()).Set("email = ?", email).
		Where("provider = ?", provider).Where("subject = ?", subject).Exec(ctx)
	if err != nil {
		return fmt.Errorf("storage: touch identity: %w", translate(err))
	}
	return oneRow(res, "touch identity")
}

// Identities lists a user's linked identities, oldest first.
func (s *Store) Identities(ctx context.Context, userID string) ([]*Identity, error) {
	ids := []*Identity{}
	err := s.idb(ctx).NewSelect().Model(&ids).Where("user_id = ?", userID).Order("created_at ASC", "provider ASC").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("storage: list identities: %w", translate(err))
	}
	return ids, nil
}

// DeleteIdentity unlinks the user's identity of provider and subject:
// ErrNotFound when that user has no such link.
func (s *Store) DeleteIdentity(ctx context.Context, userID, provider, subject string) error {
	res, err := s.idb(ctx).NewDelete().Model((*Identity)(nil)).Where("user_id = ?", userID).
		Where("provider = ?", provider).Where("subject = ?", subject).Exec(ctx)
	if err != nil {
		return fmt.Errorf("storage: delete identity: %w", translate(err))
	}
	return oneRow(res, "delete identity")
}

// Federation flow purposes.
const (
	// FlowLogin is a sign-in (or registration) through a provider.
	FlowLogin = "login"
	// FlowLink is a signed-in user linking another identity.
	FlowLink = "link"
	// FlowPendingLink is an upstream identity whose email is a Torii
	// account's, waiting for proof that the person owns that account.
	FlowPendingLink = "pending_link"
)

// FederationFlow is a trip to an upstream provider that Torii began, keyed
// by the SHA-256 of the state it sent, or (FlowPendingLink) an identity
// waiting to be linked, keyed by the SHA-256 of its token. Both are single
// use and short-lived, and live in the database so that any node can
// finish them.
type FederationFlow struct {
	bun.BaseModel `bun:"table:federation_flows"`

	StateHash string `bun:"state_hash,pk"`
	Provider  string `bun:"provider"`
	Purpose   string `bun:"purpose"`
	// RequestID is the pending authorization request ("" for none).
	RequestID string `bun:"request_id"`
	// UserID is the user linking (FlowLink) or to link to (FlowPendingLink).
	UserID string `bun:"user_id"`
	// Nonce and Verifier are the OpenID Connect nonce and the PKCE verifier
	// sent with the authorization request.
	Nonce    string `bun:"nonce"`
	Verifier string `bun:"verifier"`
	// Subject and Email are the upstream identity of a pending link.
	Subject   string    `bun:"subject"`
	Email     string    `bun:"email"`
	CreatedAt time.Time `bun:"created_at"`
	ExpiresAt time.Time `bun:"expires_at"`
}

// CreateFederationFlow stores a new flow.
func (s *Store) CreateFederationFlow(ctx context.Context, f *FederationFlow) error {
	f.CreatedAt = s.nowUTC()
	f.ExpiresAt = f.ExpiresAt.UTC()
	if _, err := s.idb(ctx).NewInsert().Model(f).Exec(ctx); err != nil {
		return fmt.Errorf("storage: create federation flow: %w", translate(err))
	}
	return nil
}

// FederationFlow returns the unexpired flow stateHash without taking it,
// or ErrNotFound.
func (s *Store) FederationFlow(ctx context.Context, stateHash string) (*FederationFlow, error) {
	f := new(FederationFlow)
	err := s.idb(ctx).NewSelect().Model(f).Where("state_hash = ?", stateHash).Where("expires_at > ?", s.nowUTC()).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("storage: get federation flow: %w", translate(err))
	}
	return f, nil
}

// TakeFederationFlow deletes and returns the unexpired flow stateHash, so
// that it is used once: of parallel takes one gets it, the others (and an
// unknown or expired flow) get ErrNotFound.
func (s *Store) TakeFederationFlow(ctx context.Context, stateHash string) (*FederationFlow, error) {
	var fs []*FederationFlow
	err := s.idb(ctx).NewDelete().Model((*FederationFlow)(nil)).Where("state_hash = ?", stateHash).
		Returning("*").Scan(ctx, &fs)
	if err != nil {
		return nil, fmt.Errorf("storage: take federation flow: %w", translate(err))
	}
	if len(fs) != 1 || !fs[0].ExpiresAt.After(s.nowUTC()) {
		return nil, fmt.Errorf("storage: take federation flow: %w", ErrNotFound)
	}
	return fs[0], nil
}

// LockUser reads a user inside the transaction ctx carries, holding the
// row until it ends (SELECT … FOR UPDATE on PostgreSQL; SQLite's single
// writer holds everything), so that a rule checked on it stays true until
// the transaction commits. ErrNotFound for an unknown user.
func (s *Store) LockUser(ctx context.Context, id string) (*User, error) {
	u := new(User)
	q := s.idb(ctx).NewSelect().Model(u).Where("id = ?", id)
	if s.dialect == Postgres {
		q = q.For("UPDATE")
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("storage: lock user: %w", translate(err))
	}
	return u, nil
}
