package storage

import (
	"context"
	"fmt"

	"github.com/uptrace/bun/migrate"

	"github.com/torii-idp/torii/migrations"
)

// migrationLockKey is the PostgreSQL advisory lock that keeps two nodes
// starting at once from migrating the same database together.
const migrationLockKey = 0x746f726969 // "torii"

// Migrate applies every pending migration and returns the names of those it
// applied. On PostgreSQL it holds an advisory lock while it works, so
// concurrent callers wait and then find nothing left to do.
func (s *Store) Migrate(ctx context.Context) ([]string, error) {
	fsys, err := migrations.FS(string(s.dialect))
	if err != nil {
		return nil, err
	}
	ms := migrate.NewMigrations()
	if err := ms.Discover(fsys); err != nil {
		return nil, fmt.Errorf("storage: discover migrations: %w", err)
	}

	if s.dialect == Postgres {
		conn, err := s.db.Conn(ctx)
		if err != nil {
			return nil, fmt.Errorf("storage: migrate: %w", err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(?)", migrationLockKey); err != nil {
			return nil, fmt.Errorf("storage: migrate: take lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(?)", migrationLockKey) //nolint:errcheck // the lock dies with the session anyway
	}

	m := migrate.NewMigrator(s.db, ms,
		migrate.WithTableName("torii_migrations"),
		migrate.WithLocksTableName("torii_migration_locks"),
		migrate.WithMarkAppliedOnSuccess(true),
	)
	if err := m.Init(ctx); err != nil {
		return nil, fmt.Errorf("storage: migrate: init: %w", err)
	}
	group, err := m.Migrate(ctx)
	if err != nil {
		return nil, fmt.Errorf("storage: migrate: %w", err)
	}
	if err := s.prepareAll(ctx); err != nil {
		return nil, err
	}
	var applied []string
	for _, mig := range group.Migrations {
		applied = append(applied, mig.Name)
	}
	return applied, nil
}

// PendingMigrations lists the migrations not yet applied.
func (s *Store) PendingMigrations(ctx context.Context) ([]string, error) {
	fsys, err := migrations.FS(string(s.dialect))
	if err != nil {
		return nil, err
	}
	ms := migrate.NewMigrations()
	if err := ms.Discover(fsys); err != nil {
		return nil, fmt.Errorf("storage: discover migrations: %w", err)
	}
	m := migrate.NewMigrator(s.db, ms, migrate.WithTableName("torii_migrations"), migrate.WithLocksTableName("torii_migration_locks"))
	if err := m.Init(ctx); err != nil {
		return nil, fmt.Errorf("storage: migrations: init: %w", err)
	}
	missing, err := m.MissingMigrations(ctx)
	if err != nil {
		return nil, fmt.Errorf("storage: migrations: %w", err)
	}
	var names []string
	for _, mig := range missing {
		names = append(names, mig.Name)
	}
	return names, nil
}
