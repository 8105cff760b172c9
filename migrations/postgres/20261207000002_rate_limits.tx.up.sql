-- Per-IP budgets shared by every node (login/iplimit on PostgreSQL): one row
-- per budget and client, keyed by a hash of the budget's name and the IP. A
-- row is a GCRA bucket: tat is the "theoretical arrival time" in Unix
-- nanoseconds, moved forward by one interval per event spent; a row whose
-- tat is past is a full bucket, deleted by the periodic clean-up. granted is
-- how many events the last write spent (a node may take several at once and
-- hand them out itself). UNLOGGED:
-- counters are not worth a WAL write per request; after a crash of the
-- database they start empty, which is a full budget.
CREATE UNLOGGED TABLE IF NOT EXISTS rate_limits (
    key BYTEA PRIMARY KEY,
    tat BIGINT NOT NULL,
    granted BIGINT NOT NULL DEFAULT 1
);
