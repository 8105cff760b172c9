package storage

import (
	"context"

	"github.com/uptrace/bun/migrate"

	"github.com/torii-idp/torii/migrations"
)

// SkeletonFillPage lets tests fill email skeletons in small pages.
var SkeletonFillPage = &skeletonFillPage

// MigrateUpTo applies the migrations up to and including version last
// (such as "20261206000006"), as a database of that release had them.
func (s *Store) MigrateUpTo(ctx context.Context, last string) error {
	fsys, err := migrations.FS(string(s.dialect))
	if err != nil {
		return err
	}
	ms := migrate.NewMigrations()
	if err := ms.Discover(fsys); err != nil {
		return err
	}
	upTo := migrate.NewMigrations()
	for _, m := range ms.Sorted() {
		if m.Name <= last {
			upTo.Add(m)
		}
	}
	m := migrate.NewMigrator(s.db, upTo, migrate.WithTableName("torii_migrations"),
		migrate.WithLocksTableName("torii_migration_locks"), migrate.WithMarkAppliedOnSuccess(true))
	if err := m.Init(ctx); err != nil {
		return err
	}
	_, err = m.Migrate(ctx)
	return err
}
