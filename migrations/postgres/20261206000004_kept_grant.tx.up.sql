-- The grant (request ID) whose tokens survived the last password change:
-- a change through the API keeps the caller's own grant, which a refresh
-- must then not refuse for being older than the change.
ALTER TABLE users ADD COLUMN kept_grant TEXT NOT NULL DEFAULT '';
