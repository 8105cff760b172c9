-- The browser origins (scheme://host[:port]) whose scripts may call the
-- token, revocation and userinfo endpoints and the account API for this
-- client (CORS), as a JSON array like the redirect URIs.
ALTER TABLE clients ADD COLUMN allowed_cors_origins TEXT NOT NULL DEFAULT '[]';
