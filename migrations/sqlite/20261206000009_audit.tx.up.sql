-- Audit events: one row per security-relevant action, written in the
-- action's transaction. Listed newest first by (created_at, id) (keyset
-- pagination), per subject or per type; deleted after TORII_AUDIT_RETENTION.
CREATE TABLE IF NOT EXISTS audit_events (
    id TEXT PRIMARY KEY,
    created_at TIMESTAMP NOT NULL,
    type TEXT NOT NULL DEFAULT '',
    actor TEXT NOT NULL DEFAULT '',
    subject TEXT NOT NULL DEFAULT '',
    client_id TEXT NOT NULL DEFAULT '',
    ip TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT '',
    request_id TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS audit_events_created_at_idx ON audit_events (created_at, id);
CREATE INDEX IF NOT EXISTS audit_events_subject_idx ON audit_events (subject, created_at);
CREATE INDEX IF NOT EXISTS audit_events_type_idx ON audit_events (type, created_at);
