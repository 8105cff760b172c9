package storage

import (
	"context"
	"crypto/rand"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/uptrace/bun"
)

// SigningKey is a private signing key as a JSON Web Key. The newest key of an
// algorithm signs; older ones stay published until their tokens expire.
type SigningKey struct {
	bun.BaseModel `bun:"table:signing_keys"`

	KID       string    `bun:"kid,pk"`
	Alg       string    `bun:"alg"`
	JWK       string    `bun:"jwk"`
	CreatedAt time.Time `bun:"created_at"`
}

// AddSigningKey stores a new signing key; CreatedAt is set by the store.
func (s *Store) AddSigningKey(ctx context.Context, k *SigningKey) error {
	k.CreatedAt = s.nowUTC()
	if _, err := s.idb(ctx).NewInsert().Model(k).Exec(ctx); err != nil {
		return fmt.Errorf("storage: add signing key: %w", translate(err))
	}
	return nil
}

// SigningKeys returns every stored signing key, oldest first.
func (s *Store) SigningKeys(ctx context.Context) ([]*SigningKey, error) {
	var ks []*SigningKey
	if err := s.readDB(ctx).NewSelect().Model(&ks).Order("created_at", "kid").Scan(ctx); err != nil {
		return nil, fmt.Errorf("storage: list signing keys: %w", translate(err))
	}
	return ks, nil
}

// DeleteSigningKey removes a retired key.
func (s *Store) DeleteSigningKey(ctx context.Context, kid string) error {
	res, err := s.idb(ctx).NewDelete().Model((*SigningKey)(nil)).Where("kid = ?", kid).Exec(ctx)
	if err != nil {
		return fmt.Errorf("storage: delete signing key: %w", translate(err))
	}
	return oneRow(res, "delete signing key")
}

// Lock takes a lock named name for the rest of the transaction ctx carries,
// so that work such as creating the first keys runs on one node at a time.
// On SQLite every write transaction is already exclusive.
func (s *Store) Lock(ctx context.Context, name string) error {
	if !inTx(ctx) {
		return fmt.Errorf("storage: lock %q outside a transaction", name)
	}
	if s.dialect != Postgres {
		return nil
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	if _, err := s.idb(ctx).ExecContext(ctx, "SELECT pg_advisory_xact_lock(?)", int64(h.Sum64())); err != nil {
		return fmt.Errorf("storage: lock %q: %w", name, translate(err))
	}
	return nil
}

type secretRow struct {
	bun.BaseModel `bun:"table:secrets"`

	Name      string    `bun:"name,pk"`
	Value     []byte    `bun:"value"`
	CreatedAt time.Time `bun:"created_at"`
}

// Secret returns the 32-byte server secret called name, creating it on first
// use. Every node sharing the database gets the same value, even when two
// of them ask for it first at the same moment.
func (s *Store) Secret(ctx context.Context, name string) ([]byte, error) {
	candidate := &secretRow{Name: name, Value: make([]byte, 32), CreatedAt: s.nowUTC()}
	rand.Read(candidate.Value)
	if _, err := s.idb(ctx).NewInsert().Model(candidate).On("CONFLICT (name) DO NOTHING").Exec(ctx); err != nil {
		return nil, fmt.Errorf("storage: create secret %q: %w", name, translate(err))
	}
	row := new(secretRow)
	if err := s.idb(ctx).NewSelect().Model(row).Where("name = ?", name).Scan(ctx); err != nil {
		return nil, fmt.Errorf("storage: get secret %q: %w", name, translate(err))
	}
	return row.Value, nil
}
