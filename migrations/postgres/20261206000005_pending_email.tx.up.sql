-- A new email address waiting for its code: it becomes the account's only
-- once verified.
ALTER TABLE users ADD COLUMN pending_email TEXT NOT NULL DEFAULT '';
