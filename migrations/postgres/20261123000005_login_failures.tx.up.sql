CREATE TABLE IF NOT EXISTS login_failures (
    login_key    TEXT PRIMARY KEY,
    failures     BIGINT NOT NULL DEFAULT 0,
    locked_until TIMESTAMPTZ,
    expires_at   TIMESTAMPTZ NOT NULL
);
--bun:split
CREATE INDEX IF NOT EXISTS login_failures_expires_idx ON login_failures (expires_at);
