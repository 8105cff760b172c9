-- Per-IP budgets shared by every node (login/iplimit; on SQLite the server
-- keeps them in memory and the table stays empty, but the store implements
-- it the same way on both databases). See the PostgreSQL migration.
CREATE TABLE IF NOT EXISTS rate_limits (
    key BLOB PRIMARY KEY,
    tat INTEGER NOT NULL,
    granted INTEGER NOT NULL DEFAULT 1
) WITHOUT ROWID;
