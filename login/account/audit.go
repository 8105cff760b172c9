package account

import (
	"context"

	"github.com/torii-idp/torii/storage"
)

// audit records an event about the user subject inside the transaction
// ctx carries (storage.RecordAudit): it exists exactly when the action
// commits. The actor is the one ctx names (storage.WithAuditActor: an
// administrator, the CLI) or else the user themselves.
func (s *Service) audit(ctx context.Context, typ, subject string, detail map[string]any) error {
	actor := storage.AuditActorFrom(ctx)
	if actor == "" && subject != "" {
		actor = "user:" + subject
	}
	return s.store.RecordAudit(ctx, &storage.AuditEvent{Type: typ, Actor: actor, Subject: subject, Detail: detail})
}
