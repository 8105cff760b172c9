CREATE TABLE IF NOT EXISTS outbox (
    id              TEXT PRIMARY KEY,
    channel         TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL DEFAULT '',
    body_text       TEXT NOT NULL DEFAULT '',
    body_html       TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    claimed_until   TIMESTAMP,
    claim_token     TEXT NOT NULL DEFAULT '',
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      TIMESTAMP NOT NULL,
    sent_at         TIMESTAMP,
    expires_at      TIMESTAMP NOT NULL
);
--bun:split
CREATE INDEX IF NOT EXISTS outbox_due_idx ON outbox (status, next_attempt_at);
--bun:split
CREATE INDEX IF NOT EXISTS outbox_expires_idx ON outbox (expires_at);
