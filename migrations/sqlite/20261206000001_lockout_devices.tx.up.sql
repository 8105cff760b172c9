-- The back-off grows per lock, not per failure: lockouts counts the locks of
-- the current streak of failures.
ALTER TABLE users ADD COLUMN lockouts INTEGER NOT NULL DEFAULT 0;
--bun:split
-- Wrong one-time codes lock the code step apart from the password lock, so
-- that a browser trusted for the account (a device token) is not shut out of
-- its code step by others' wrong passwords.
ALTER TABLE users ADD COLUMN otp_lockouts INTEGER NOT NULL DEFAULT 0;
--bun:split
ALTER TABLE users ADD COLUMN otp_locked_until TIMESTAMP;
--bun:split
-- A lock that wrong codes set was kept in locked_until: keep it for the code step.
UPDATE users SET otp_locked_until = locked_until WHERE failed_otps > 0 AND locked_until IS NOT NULL;
--bun:split
ALTER TABLE login_failures ADD COLUMN lockouts INTEGER NOT NULL DEFAULT 0;
--bun:split
-- Device tokens (OWASP "device cookies"): a browser that completed a sign-in
-- of an account is trusted for it. Its failures are counted here, apart from
-- the account's lockout, which shuts out every other browser.
CREATE TABLE IF NOT EXISTS devices (
    id            TEXT PRIMARY KEY,
    device_id     TEXT NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_agent    TEXT NOT NULL DEFAULT '',
    failed_logins INTEGER NOT NULL DEFAULT 0,
    lockouts      INTEGER NOT NULL DEFAULT 0,
    locked_until  TIMESTAMP,
    created_at    TIMESTAMP NOT NULL,
    last_used_at  TIMESTAMP NOT NULL,
    expires_at    TIMESTAMP NOT NULL,
    UNIQUE (device_id, user_id)
);
--bun:split
CREATE INDEX IF NOT EXISTS devices_user_idx ON devices (user_id);
--bun:split
CREATE INDEX IF NOT EXISTS devices_expires_idx ON devices (expires_at);
