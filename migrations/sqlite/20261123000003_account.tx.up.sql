ALTER TABLE users ADD COLUMN bio TEXT NOT NULL DEFAULT '';
--bun:split
ALTER TABLE users ADD COLUMN pending_phone TEXT NOT NULL DEFAULT '';
--bun:split
ALTER TABLE users ADD COLUMN failed_otps INTEGER NOT NULL DEFAULT 0;
--bun:split
ALTER TABLE users ADD COLUMN avatar_etag TEXT NOT NULL DEFAULT '';
--bun:split
ALTER TABLE login_sessions ADD COLUMN stage TEXT NOT NULL DEFAULT 'complete';
--bun:split
CREATE TABLE IF NOT EXISTS one_time_codes (
    id          TEXT PRIMARY KEY,
    user_id     TEXT REFERENCES users (id) ON DELETE CASCADE,
    purpose     TEXT NOT NULL,
    binding     TEXT NOT NULL DEFAULT '',
    channel     TEXT NOT NULL,
    destination TEXT NOT NULL,
    code_hash   BLOB NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    created_at  TIMESTAMP NOT NULL,
    expires_at  TIMESTAMP NOT NULL,
    used_at     TIMESTAMP,
    purge_at    TIMESTAMP NOT NULL
);
--bun:split
CREATE INDEX IF NOT EXISTS one_time_codes_user_idx ON one_time_codes (user_id, purpose, binding);
--bun:split
CREATE INDEX IF NOT EXISTS one_time_codes_dest_idx ON one_time_codes (destination, created_at);
--bun:split
CREATE INDEX IF NOT EXISTS one_time_codes_purge_idx ON one_time_codes (purge_at);
--bun:split
CREATE TABLE IF NOT EXISTS action_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL,
    code_id    TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP
);
--bun:split
CREATE INDEX IF NOT EXISTS action_tokens_user_idx ON action_tokens (user_id, purpose);
--bun:split
CREATE INDEX IF NOT EXISTS action_tokens_expires_idx ON action_tokens (expires_at);
--bun:split
CREATE TABLE IF NOT EXISTS avatars (
    user_id    TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    png        BLOB NOT NULL,
    etag       TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
