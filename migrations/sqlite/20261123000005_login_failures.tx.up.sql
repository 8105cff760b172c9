CREATE TABLE IF NOT EXISTS login_failures (
    login_key    TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL DEFAULT 0,
    locked_until TIMESTAMP,
    expires_at   TIMESTAMP NOT NULL
);
--bun:split
CREATE INDEX IF NOT EXISTS login_failures_expires_idx ON login_failures (expires_at);
