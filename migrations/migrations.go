// Package migrations holds Torii's SQL schema migrations, one folder per SQL
// dialect, embedded into the binary.
//
// File names follow uptrace/bun's migrate package: VERSION_NAME.tx.up.sql runs
// in one transaction; statements are separated by "--bun:split" lines.
package migrations

import (
	"embed"
	"fmt"
	"io/fs"
)

//go:embed sqlite/*.sql postgres/*.sql
var files embed.FS

// FS returns the migrations for dialect ("sqlite" or "postgres").
func FS(dialect string) (fs.FS, error) {
	switch dialect {
	case "sqlite", "postgres":
		return fs.Sub(files, dialect)
	default:
		return nil, fmt.Errorf("migrations: unknown dialect %q", dialect)
	}
}
