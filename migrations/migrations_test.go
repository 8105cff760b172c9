package migrations

import (
	"io/fs"
	"slices"
	"strings"
	"testing"
)

// nonTransactional lists the migration files allowed to run outside a
// transaction, each with the reason (such as PostgreSQL's CREATE INDEX
// CONCURRENTLY, which a transaction refuses). None so far.
var nonTransactional = map[string]string{}

// TestMigrationsAreTransactional: every migration file is VERSION_NAME.tx.up.sql,
// so that bun runs it in one transaction and a failed migration leaves no
// half-changed schema behind, unless nonTransactional gives a reason; and
// both dialects have the same migrations.
func TestMigrationsAreTransactional(t *testing.T) {
	names := map[string][]string{}
	for _, dialect := range []string{"sqlite", "postgres"} {
		fsys, err := FS(dialect)
		if err != nil {
			t.Fatal(err)
		}
		files, err := fs.Glob(fsys, "*")
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Fatalf("no %s migrations", dialect)
		}
		for _, f := range files {
			path := dialect + "/" + f
			if _, ok := nonTransactional[path]; ok {
				names[dialect] = append(names[dialect], strings.TrimSuffix(f, ".up.sql"))
				continue
			}
			if !strings.HasSuffix(f, ".tx.up.sql") {
				t.Errorf("%s does not end in .tx.up.sql: it would run outside a transaction (list it in nonTransactional with the reason if it must)", path)
				continue
			}
			names[dialect] = append(names[dialect], strings.TrimSuffix(f, ".tx.up.sql"))
		}
	}
	for path, reason := range nonTransactional {
		if strings.TrimSpace(reason) == "" {
			t.Errorf("nonTransactional[%q] gives no reason", path)
		}
	}
	if !slices.Equal(names["sqlite"], names["postgres"]) {
		t.Errorf("the dialects' migrations differ:\nsqlite   %v\npostgres %v", names["sqlite"], names["postgres"])
	}
}
