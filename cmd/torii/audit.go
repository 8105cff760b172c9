package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/torii-idp/torii/login/api"
	"github.com/torii-idp/torii/storage"
)

// parseSince reads --since (api.ParseSince).
func parseSince(s string, now time.Time) (time.Time, error) {
	t, err := api.ParseSince(s, now)
	if err != nil {
		return t, fmt.Errorf("--since %w", err)
	}
	return t, nil
}

func (a *app) auditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Read the audit events (sign-ins, password and address changes, admin actions…)"}
	var user, typ, since string
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "Print audit events as a JSON array, newest first",
		Example: `  torii audit list --since 24h
  torii audit list --user 01HV… --type sign_in.failure --limit 20
  torii audit list --type 'admin.*'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > 10000 {
				return usageError{errors.New("--limit must be between 1 and 10000")}
			}
			from, err := parseSince(since, time.Now())
			if err != nil {
				return usageError{err}
			}
			return a.withStore(cmd.Context(), func(store *storage.Store) error {
				es, err := store.AuditEvents(cmd.Context(), storage.AuditQuery{Subject: user, Type: typ, Since: from, Limit: limit})
				if err != nil {
					return err
				}
				if es == nil {
					es = []*storage.AuditEvent{}
				}
				return a.printJSON(es)
			})
		},
	}
	f := list.Flags()
	f.StringVar(&user, "user", "", "only events about this user ID")
	f.StringVar(&typ, "type", "", "only events of this type (as sign_in.failure); a trailing * matches a prefix (admin.*)")
	f.StringVar(&since, "since", "", "only events since this long ago (as 24h) or this RFC 3339 time")
	f.IntVar(&limit, "limit", 100, "most events printed (1 to 10000)")
	cmd.AddCommand(list)
	return cmd
}
