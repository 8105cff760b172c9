package storage

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun/migrate"

	"github.com/torii-idp/torii/migrations"
)

// migrationLockKey is the PostgreSQL advisory lock that keeps two nodes
// starting at once from migrating the same database together.
const migrationLockKey = 0x746f726969 // "torii"

// migrationsTable is where bun's migrator records applied migrations.
const migrationsTable = "torii_migrations"

// SchemaNewerError is returned by Migrate when the database records
// migrations this binary does not have: a newer Torii migrated it, and this
// binary, being older, must not run on its schema.
type SchemaNewerError struct {
	// Unknown are the versions of those migrations, oldest first.
	Unknown []string
}

func (e *SchemaNewerError) Error() string {
	return fmt.Sprintf("storage: this binary is older than the database: the database has migrations it does not know (%s); run the Torii release that applied them, or a newer one",
		strings.Join(e.Unknown, ", "))
}

// MigrationStatus is the database's schema as this binary sees it.
type MigrationStatus struct {
	// Applied are the migrations of this binary that the database has,
	// oldest first.
	Applied []AppliedMigration
	// Pending are the migrations of this binary not yet applied, in the
	// order Migrate applies them.
	Pending []string
	// Unknown are migrations the database has and this binary does not:
	// the schema is newer than the binary. Their names are versions only.
	Unknown []AppliedMigration
}

// AppliedMigration is one migration recorded in the database.
type AppliedMigration struct {
	// Name is the migration's file name without its suffix, such as
	// "20261123000001_init", or only its version when this binary does not
	// know it.
	Name string
	// AppliedAt is when it was applied (UTC), as the database recorded it.
	AppliedAt time.Time
}

// migrator returns bun's migrator over this binary's migrations for the
// store's dialect.
func (s *Store) migrator() (*migrate.Migrator, *migrate.Migrations, error) {
	fsys, err := migrations.FS(string(s.dialect))
	if err != nil {
		return nil, nil, err
	}
	ms := migrate.NewMigrations()
	if err := ms.Discover(fsys); err != nil {
		return nil, nil, fmt.Errorf("storage: discover migrations: %w", err)
	}
	m := migrate.NewMigrator(s.db, ms,
		migrate.WithTableName(migrationsTable),
		migrate.WithLocksTableName("torii_migration_locks"),
		migrate.WithMarkAppliedOnSuccess(true),
	)
	return m, ms, nil
}

// Migrate applies every pending migration, each in a transaction of its own
// (every migration file is a .tx.up.sql), and returns the names of those it
// applied, such as "20261123000001_init". On PostgreSQL it holds an advisory lock while it works, so
// concurrent callers wait and then find nothing left to do. It applies
// nothing and returns a *SchemaNewerError when the database has migrations
// this binary does not know.
func (s *Store) Migrate(ctx context.Context) ([]string, error) {
	m, ms, err := s.migrator()
	if err != nil {
		return nil, err
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

	if err := m.Init(ctx); err != nil {
		return nil, fmt.Errorf("storage: migrate: init: %w", err)
	}
	st, err := s.migrationStatus(ctx, m, ms)
	if err != nil {
		return nil, err
	}
	if len(st.Unknown) > 0 {
		err := &SchemaNewerError{}
		for _, u := range st.Unknown {
			err.Unknown = append(err.Unknown, u.Name)
		}
		return nil, err
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
		applied = append(applied, mig.String())
	}
	return applied, nil
}

// MigrationStatus reports which of this binary's migrations the database
// has and which are pending, and the migrations it has that this binary
// does not know. It changes nothing: on a database never migrated every
// migration is pending.
func (s *Store) MigrationStatus(ctx context.Context) (MigrationStatus, error) {
	m, ms, err := s.migrator()
	if err != nil {
		return MigrationStatus{}, err
	}
	var exists bool
	switch s.dialect {
	case SQLite:
		err = s.db.QueryRowContext(ctx, "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?", migrationsTable).Scan(&exists)
	case Postgres:
		err = s.db.QueryRowContext(ctx, "SELECT to_regclass(?) IS NOT NULL", migrationsTable).Scan(&exists)
	}
	if err != nil {
		return MigrationStatus{}, fmt.Errorf("storage: migration status: %w", translate(err))
	}
	if !exists {
		var st MigrationStatus
		for _, mig := range ms.Sorted() {
			st.Pending = append(st.Pending, mig.String())
		}
		return st, nil
	}
	return s.migrationStatus(ctx, m, ms)
}

// migrationStatus compares the migrations table, which must exist, with
// this binary's migrations.
func (s *Store) migrationStatus(ctx context.Context, m *migrate.Migrator, ms *migrate.Migrations) (MigrationStatus, error) {
	applied, err := m.AppliedMigrations(ctx)
	if err != nil {
		return MigrationStatus{}, fmt.Errorf("storage: migration status: %w", translate(err))
	}
	done := map[string]time.Time{}
	for _, a := range applied {
		done[a.Name] = a.MigratedAt.UTC()
	}
	var st MigrationStatus
	for _, mig := range ms.Sorted() {
		if at, ok := done[mig.Name]; ok {
			st.Applied = append(st.Applied, AppliedMigration{Name: mig.String(), AppliedAt: at})
			delete(done, mig.Name)
		} else {
			st.Pending = append(st.Pending, mig.String())
		}
	}
	for name, at := range done {
		st.Unknown = append(st.Unknown, AppliedMigration{Name: name, AppliedAt: at})
	}
	slices.SortFunc(st.Unknown, func(a, b AppliedMigration) int { return strings.Compare(a.Name, b.Name) })
	return st, nil
}

// PendingMigrations lists the migrations of this binary not yet applied.
func (s *Store) PendingMigrations(ctx context.Context) ([]string, error) {
	st, err := s.MigrationStatus(ctx)
	if err != nil {
		return nil, err
	}
	return st.Pending, nil
}
