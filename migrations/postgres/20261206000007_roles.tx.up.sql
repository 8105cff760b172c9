-- A user's roles: a set of names (^[a-z][a-z0-9_.:-]{0,63}$), stored as a
-- JSON array, sorted and without duplicates, like the clients' lists. The
-- single role column it replaces held "user" or "admin": an admin keeps
-- ["admin"], a plain user gets the empty set.
ALTER TABLE users ADD COLUMN roles TEXT NOT NULL DEFAULT '[]';
--bun:split
UPDATE users SET roles = '["admin"]' WHERE role = 'admin';
--bun:split
ALTER TABLE users DROP COLUMN role;
