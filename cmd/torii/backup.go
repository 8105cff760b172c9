package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/torii-idp/torii/storage"
)

func (a *app) backupCmd() *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "backup --to FILE",
		Short: "Copy a SQLite database, while Torii serves, to a new file (PostgreSQL: use pg_dump)",
		Long: `Copy the SQLite database named by TORII_DATABASE_URL to FILE, a consistent
snapshot taken with VACUUM INTO while servers keep reading and writing it: the
copy holds every transaction committed when the backup began. FILE must not
exist; it is written under a temporary name and only then given its own.

To restore, stop Torii, copy the backup over the database file (and delete
the old file's -wal and -shm files), then start Torii.

A PostgreSQL database is refused: back it up with pg_dump and restore it with
pg_restore (see README, "Backup and restore").`,
		Example: `  torii backup --to /var/backups/torii-$(date +%F).db`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" {
				return usageError{errors.New("backup: --to FILE is required")}
			}
			dbURL := a.cfg.DatabaseURL.Reveal()
			dialect, _, err := storage.ParseURL(dbURL)
			if err != nil {
				return err
			}
			if dialect != storage.SQLite {
				return usageError{errors.New("backup: TORII_DATABASE_URL is a PostgreSQL database: back it up with pg_dump (pg_dump --format=custom), restore with pg_restore")}
			}
			if dbURL == "sqlite::memory:" {
				return usageError{errors.New("backup: sqlite::memory: lives in one process only: there is no database file to copy")}
			}
			path := strings.TrimPrefix(strings.TrimPrefix(dbURL, "sqlite:"), "//")
			if _, err := os.Stat(path); err != nil {
				return usageError{fmt.Errorf("backup: no database at %s: %w", path, err)}
			}
			if _, err := os.Lstat(to); err == nil {
				return usageError{fmt.Errorf("backup: %s already exists: give a new file name (a backup never overwrites a file)", to)}
			}
			store, err := storage.Open(cmd.Context(), dbURL, storage.Options{})
			if err != nil {
				return err
			}
			defer store.Close()
			start := time.Now()
			if err := store.BackupSQLite(cmd.Context(), to); err != nil {
				if errors.Is(err, fs.ErrExist) {
					return usageError{fmt.Errorf("backup: %s already exists: give a new file name (a backup never overwrites a file)", to)}
				}
				return err
			}
			fi, err := os.Stat(to)
			if err != nil {
				return err
			}
			return a.printJSON(struct {
				File  string `json:"file"`
				Bytes int64  `json:"bytes"`
				Took  string `json:"took"`
			}{to, fi.Size(), time.Since(start).Round(time.Millisecond).String()})
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the backup file to create (must not exist)")
	return cmd
}
