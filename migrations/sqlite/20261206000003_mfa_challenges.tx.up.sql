-- The password grant's pending code step: a right password, when the code
-- step applies, answers mfa_required with a token naming one of these rows
-- (stored as its SHA-256). The code it waits for is a one_time_codes row
-- bound to it. Single use, bound to its client, short-lived.
CREATE TABLE IF NOT EXISTS mfa_challenges (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scope      TEXT NOT NULL DEFAULT '',
    audience   TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP
);
--bun:split
CREATE INDEX IF NOT EXISTS mfa_challenges_expires_idx ON mfa_challenges (expires_at);
