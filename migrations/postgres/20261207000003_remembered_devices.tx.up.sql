-- Remembered devices: a browser whose user chose "Don't ask for a code on
-- this device" at the code step. The cookie holds r1.<id>.<secret>; only the
-- SHA-256 of the secret is kept. Apart from devices (browsers trusted for the
-- lockout): other lifetime, other revocation (see DESIGN.md).
CREATE TABLE IF NOT EXISTS remembered_devices (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret_hash  TEXT NOT NULL,
    user_agent   TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL
);
--bun:split
CREATE INDEX IF NOT EXISTS remembered_devices_user_idx ON remembered_devices (user_id);
--bun:split
CREATE INDEX IF NOT EXISTS remembered_devices_expires_idx ON remembered_devices (expires_at);
