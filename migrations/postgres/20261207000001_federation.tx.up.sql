-- Sign-in through upstream providers (login/federation).
--
-- identities: an upstream account (provider, the provider's stable subject)
-- linked to one Torii user. The upstream email is kept for display only and
-- is never a key.
CREATE TABLE IF NOT EXISTS identities (
    provider     TEXT NOT NULL,
    subject      TEXT NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email        TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (provider, subject)
);
--bun:split
CREATE INDEX IF NOT EXISTS identities_user_idx ON identities (user_id);
--bun:split
-- federation_flows: a trip to an upstream provider that Torii began, keyed
-- by the SHA-256 of the state it sent. Taken once (deleted when read), so a
-- state works once on whichever node the browser comes back to. purpose is
-- 'login' or 'link'; a 'link' flow names the user who asked (user_id).
-- The same table keeps a pending link (purpose 'pending_link'): an upstream
-- identity waiting for proof that its person owns the Torii account user_id.
CREATE TABLE IF NOT EXISTS federation_flows (
    state_hash   TEXT PRIMARY KEY,
    provider     TEXT NOT NULL,
    purpose      TEXT NOT NULL,
    request_id   TEXT NOT NULL DEFAULT '',
    user_id      TEXT NOT NULL DEFAULT '',
    nonce        TEXT NOT NULL DEFAULT '',
    verifier     TEXT NOT NULL DEFAULT '',
    subject      TEXT NOT NULL DEFAULT '',
    email        TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL
);
--bun:split
CREATE INDEX IF NOT EXISTS federation_flows_expires_idx ON federation_flows (expires_at);
--bun:split
-- The provider a browser session was signed in through ('' for none): the
-- ID token's idp claim.
ALTER TABLE login_sessions ADD COLUMN idp TEXT NOT NULL DEFAULT '';
