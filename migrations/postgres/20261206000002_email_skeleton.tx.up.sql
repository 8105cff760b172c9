-- The UTS #39 skeleton of the email address (login/account computes it):
-- look-alike addresses share one, so only one of them can be registered.
-- NULL on rows from before it existed until Torii fills it at start, and
-- on the later of two existing look-alikes.
ALTER TABLE users ADD COLUMN email_skeleton TEXT;
--bun:split
CREATE UNIQUE INDEX IF NOT EXISTS users_email_skeleton_idx ON users (email_skeleton);
