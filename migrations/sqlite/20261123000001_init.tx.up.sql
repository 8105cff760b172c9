CREATE TABLE IF NOT EXISTS secrets (
    name       TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    created_at TIMESTAMP NOT NULL
);
--bun:split
CREATE TABLE IF NOT EXISTS clients (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL DEFAULT '',
    secret_hash    BLOB,
    redirect_uris  TEXT NOT NULL DEFAULT '[]',
    grant_types    TEXT NOT NULL DEFAULT '[]',
    response_types TEXT NOT NULL DEFAULT '[]',
    scopes         TEXT NOT NULL DEFAULT '[]',
    audience       TEXT NOT NULL DEFAULT '[]',
    public         BOOLEAN NOT NULL DEFAULT FALSE,
    skip_consent   BOOLEAN NOT NULL DEFAULT FALSE,
    pkce_optional  BOOLEAN NOT NULL DEFAULT FALSE,
    token_format   TEXT NOT NULL DEFAULT 'opaque',
    id_token_alg   TEXT NOT NULL DEFAULT 'RS256',
    created_at     TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL
);
--bun:split
CREATE TABLE IF NOT EXISTS users (
    id                  TEXT PRIMARY KEY,
    email               TEXT NOT NULL UNIQUE,
    email_verified      BOOLEAN NOT NULL DEFAULT FALSE,
    username            TEXT UNIQUE,
    phone               TEXT NOT NULL DEFAULT '',
    phone_verified      BOOLEAN NOT NULL DEFAULT FALSE,
    name                TEXT NOT NULL DEFAULT '',
    password_hash       TEXT NOT NULL DEFAULT '',
    role                TEXT NOT NULL DEFAULT 'user',
    disabled            BOOLEAN NOT NULL DEFAULT FALSE,
    failed_logins       INTEGER NOT NULL DEFAULT 0,
    locked_until        TIMESTAMP,
    password_changed_at TIMESTAMP,
    created_at          TIMESTAMP NOT NULL,
    updated_at          TIMESTAMP NOT NULL
);
--bun:split
CREATE TABLE IF NOT EXISTS login_sessions (
    id_hash    TEXT PRIMARY KEY,
    subject    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time  TIMESTAMP NOT NULL,
    amr        TEXT NOT NULL DEFAULT '[]',
    user_agent TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
--bun:split
CREATE INDEX IF NOT EXISTS login_sessions_subject_idx ON login_sessions (subject);
--bun:split
CREATE INDEX IF NOT EXISTS login_sessions_expires_idx ON login_sessions (expires_at);
--bun:split
CREATE TABLE IF NOT EXISTS auth_requests (
    id           TEXT PRIMARY KEY,
    client_id    TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    form         TEXT NOT NULL,
    browser_hash TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL
);
--bun:split
CREATE INDEX IF NOT EXISTS auth_requests_expires_idx ON auth_requests (expires_at);
--bun:split
CREATE TABLE IF NOT EXISTS consents (
    subject    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scopes     TEXT NOT NULL DEFAULT '[]',
    granted_at TIMESTAMP NOT NULL,
    PRIMARY KEY (subject, client_id)
);
--bun:split
CREATE TABLE IF NOT EXISTS signing_keys (
    kid        TEXT PRIMARY KEY,
    alg        TEXT NOT NULL,
    jwk        TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
--bun:split
CREATE INDEX IF NOT EXISTS signing_keys_alg_idx ON signing_keys (alg, created_at);
--bun:split
CREATE TABLE IF NOT EXISTS oauth2_code (
    signature        TEXT PRIMARY KEY,
    request_id       TEXT NOT NULL,
    client_id        TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject          TEXT NOT NULL DEFAULT '',
    active           BOOLEAN NOT NULL DEFAULT TRUE,
    requested_at     TIMESTAMP NOT NULL,
    expires_at       TIMESTAMP NOT NULL,
    scopes           TEXT NOT NULL DEFAULT '[]',
    granted_scopes   TEXT NOT NULL DEFAULT '[]',
    audience         TEXT NOT NULL DEFAULT '[]',
    granted_audience TEXT NOT NULL DEFAULT '[]',
    form             TEXT NOT NULL DEFAULT '',
    session          TEXT NOT NULL DEFAULT '{}',
    access_signature TEXT NOT NULL DEFAULT ''
);
--bun:split
CREATE INDEX IF NOT EXISTS oauth2_code_request_idx ON oauth2_code (request_id);
--bun:split
CREATE INDEX IF NOT EXISTS oauth2_code_expires_idx ON oauth2_code (expires_at);
--bun:split
CREATE TABLE IF NOT EXISTS oauth2_oidc (
    signature        TEXT PRIMARY KEY,
    request_id       TEXT NOT NULL,
    client_id        TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject          TEXT NOT NULL DEFAULT '',
    active           BOOLEAN NOT NULL DEFAULT TRUE,
    requested_at     TIMESTAMP NOT NULL,
    expires_at       TIMESTAMP NOT NULL,
    scopes           TEXT NOT NULL DEFAULT '[]',
    granted_scopes   TEXT NOT NULL DEFAULT '[]',
    audience         TEXT NOT NULL DEFAULT '[]',
    granted_audience TEXT NOT NULL DEFAULT '[]',
    form             TEXT NOT NULL DEFAULT '',
    session          TEXT NOT NULL DEFAULT '{}',
    access_signature TEXT NOT NULL DEFAULT ''
);
--bun:split
CREATE INDEX IF NOT EXISTS oauth2_oidc_expires_idx ON oauth2_oidc (expires_at);
--bun:split
CREATE TABLE IF NOT EXISTS oauth2_pkce (
    signature        TEXT PRIMARY KEY,
    request_id       TEXT NOT NULL,
    client_id        TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject          TEXT NOT NULL DEFAULT '',
    active           BOOLEAN NOT NULL DEFAULT TRUE,
    requested_at     TIMESTAMP NOT NULL,
    expires_at       TIMESTAMP NOT NULL,
    scopes           TEXT NOT NULL DEFAULT '[]',
    granted_scopes   TEXT NOT NULL DEFAULT '[]',
    audience         TEXT NOT NULL DEFAULT '[]',
    granted_audience TEXT NOT NULL DEFAULT '[]',
    form             TEXT NOT NULL DEFAULT '',
    session          TEXT NOT NULL DEFAULT '{}',
    access_signature TEXT NOT NULL DEFAULT ''
);
--bun:split
CREATE INDEX IF NOT EXISTS oauth2_pkce_expires_idx ON oauth2_pkce (expires_at);
--bun:split
CREATE TABLE IF NOT EXISTS oauth2_access (
    signature        TEXT PRIMARY KEY,
    request_id       TEXT NOT NULL,
    client_id        TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject          TEXT NOT NULL DEFAULT '',
    active           BOOLEAN NOT NULL DEFAULT TRUE,
    requested_at     TIMESTAMP NOT NULL,
    expires_at       TIMESTAMP NOT NULL,
    scopes           TEXT NOT NULL DEFAULT '[]',
    granted_scopes   TEXT NOT NULL DEFAULT '[]',
    audience         TEXT NOT NULL DEFAULT '[]',
    granted_audience TEXT NOT NULL DEFAULT '[]',
    form             TEXT NOT NULL DEFAULT '',
    session          TEXT NOT NULL DEFAULT '{}',
    access_signature TEXT NOT NULL DEFAULT ''
);
--bun:split
CREATE INDEX IF NOT EXISTS oauth2_access_request_idx ON oauth2_access (request_id);
--bun:split
CREATE INDEX IF NOT EXISTS oauth2_access_subject_idx ON oauth2_access (subject);
--bun:split
CREATE INDEX IF NOT EXISTS oauth2_access_expires_idx ON oauth2_access (expires_at);
--bun:split
CREATE TABLE IF NOT EXISTS oauth2_refresh (
    signature        TEXT PRIMARY KEY,
    request_id       TEXT NOT NULL,
    client_id        TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject          TEXT NOT NULL DEFAULT '',
    active           BOOLEAN NOT NULL DEFAULT TRUE,
    requested_at     TIMESTAMP NOT NULL,
    expires_at       TIMESTAMP NOT NULL,
    scopes           TEXT NOT NULL DEFAULT '[]',
    granted_scopes   TEXT NOT NULL DEFAULT '[]',
    audience         TEXT NOT NULL DEFAULT '[]',
    granted_audience TEXT NOT NULL DEFAULT '[]',
    form             TEXT NOT NULL DEFAULT '',
    session          TEXT NOT NULL DEFAULT '{}',
    access_signature TEXT NOT NULL DEFAULT ''
);
--bun:split
CREATE INDEX IF NOT EXISTS oauth2_refresh_request_idx ON oauth2_refresh (request_id);
--bun:split
CREATE INDEX IF NOT EXISTS oauth2_refresh_subject_idx ON oauth2_refresh (subject);
--bun:split
CREATE INDEX IF NOT EXISTS oauth2_refresh_expires_idx ON oauth2_refresh (expires_at);
