-- The admin API lists users by creation time, ties broken by ID (keyset
-- pagination); email order uses the unique index on email.
CREATE INDEX IF NOT EXISTS users_created_at_idx ON users (created_at, id);
