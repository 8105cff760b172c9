package storage

import (
	"context"
	"fmt"
)

// expiring lists the tables whose rows carry an expiry, with their key.
var expiring = []struct{ table, key, column string }{
	{tableCode, "signature", "expires_at"},
	{tableOIDC, "signature", "expires_at"},
	{tablePKCE, "signature", "expires_at"},
	{tableAccess, "signature", "expires_at"},
	{tableRefresh, "signature", "expires_at"},
	{"login_sessions", "id_hash", "expires_at"},
	{"auth_requests", "id", "expires_at"},
	{"outbox", "id", "expires_at"},
	{"one_time_codes", "id", "purge_at"},
	{"action_tokens", "token_hash", "expires_at"},
	{"login_failures", "login_key", "expires_at"},
	{"devices", "id", "expires_at"},
	{"remembered_devices", "id", "expires_at"},
	{"mfa_challenges", "token_hash", "expires_at"},
	{"federation_flows", "state_hash", "expires_at"},
}

// DeleteExpired deletes expired codes, tokens, sessions and pending requests
// in batches of at most batch rows per statement, so no lock is held long,
// and returns how many rows it deleted per table. Unexpired rows are left
// alone.
func (s *Store) DeleteExpired(ctx context.Context, batch int) (map[string]int64, error) {
	if batch <= 0 {
		batch = 1000
	}
	now := s.nowUTC()
	deleted := make(map[string]int64)
	for _, t := range expiring {
		for {
			sub := s.db.NewSelect().TableExpr(t.table).Column(t.key).Where("? < ?", bunIdent(t.column), now).Limit(int64(batch))
			res, err := s.db.NewDelete().TableExpr(t.table).Where("? IN (?)", bunIdent(t.key), sub).Exec(ctx)
			if err != nil {
				return deleted, fmt.Errorf("storage: delete expired %s: %w", t.table, translate(err))
			}
			n, _ := res.RowsAffected()
			deleted[t.table] += n
			if n < int64(batch) {
				break
			}
		}
	}
	n, err := s.deleteFullRates(ctx, batch)
	deleted["rate_limits"] += n
	if err != nil {
		return deleted, err
	}
	return deleted, nil
}
