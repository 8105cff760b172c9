package account

import (
	"context"
	"fmt"

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

// AuditEvents returns a page of audit events (storage.AuditEvents), for
// the admin API.
func (s *Service) AuditEvents(ctx context.Context, q storage.AuditQuery) ([]*storage.AuditEvent, error) {
	es, err := s.store.AuditEvents(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("account: %w", err)
	}
	return es, nil
}
