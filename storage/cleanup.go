package storage

import (
	"context"
	"fmt"
)

// expiring lists the tables whose rows carry an expiry, with their key.
var expiring = []struct{ table, key string }{
	{tableCode, "signature"},
	{tableOIDC, "signature"},
	{tablePKCE, "signature"},
	{tableAccess, "signature"},
	{tableRefresh, "signature"},
	{"login_sessions", "id_hash"},
	{"auth_requests", "id"},
	{"outbox", "id"},
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
			sub := s.db.NewSelect().TableExpr(t.table).Column(t.key).Where("expires_at < ?", now).Limit(int64(batch))
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
	return deleted, nil
}
