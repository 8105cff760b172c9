package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/torii-idp/torii/provider"
	"github.com/torii-idp/torii/storage"
)

// rotateKeys rotates the signing keys that are maxAge old (TORII_KEY_ROTATION)
// at once and then every interval, until ctx ends. Every node runs it; the
// keys' database lock makes one of them rotate a due key, and the others
// find it fresh.
func rotateKeys(ctx context.Context, keys *provider.Keys, log *slog.Logger, maxAge, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	ctx = storage.WithAuditActor(ctx, "system")
	for {
		added, err := keys.RotateDue(ctx, maxAge)
		if err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "scheduled key rotation failed; trying again later", "err", err, "retry_in", interval)
		}
		for _, ki := range added {
			log.InfoContext(ctx, "rotated signing key on schedule", "kid", ki.KID, "alg", ki.Alg, "signs_from", ki.SignsFrom)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
