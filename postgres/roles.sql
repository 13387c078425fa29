-- Least-privilege roles for Vouch on PostgreSQL (see docs/journal.md).
-- Run as the database owner after Vouch's migrations have been applied once
-- by the owner (start vouch serve with the owner's URL once). Then set
-- passwords: ALTER ROLE vouch_app PASSWORD '…';
--
-- vouch_app may append to the journal and read it, but not change or
-- remove history: it has no UPDATE or DELETE on journal tables (and the
-- append-only triggers stand behind that).
CREATE ROLE vouch_app LOGIN;
GRANT USAGE ON SCHEMA public TO vouch_app;
GRANT SELECT ON schema_migrations TO vouch_app;
GRANT SELECT, INSERT ON journal_entries, journal_nodes, journal_checkpoints TO vouch_app;
GRANT SELECT, UPDATE ON journal_tree TO vouch_app;
GRANT SELECT, INSERT ON artifacts, attestations, approvals TO vouch_app;
GRANT SELECT, INSERT, UPDATE ON tokens TO vouch_app;
GRANT EXECUTE ON FUNCTION vouch_journal_append(text[], timestamptz[], text[], text[], bytea[], bytea[]) TO vouch_app;

-- vouch_auditor may only read the journal: for vouch journal verify --database-url.
CREATE ROLE vouch_auditor LOGIN;
GRANT USAGE ON SCHEMA public TO vouch_auditor;
GRANT SELECT ON journal_entries, journal_nodes, journal_checkpoints, journal_tree TO vouch_auditor;
-- …and the copies of it that verify audits: the evidence the webhook reads,
-- the decisions log and the snapshot records the console reads.
GRANT SELECT ON artifacts, attestations, approvals, decisions, decision_digests, snapshots TO vouch_auditor;

-- Added with migration 0004.
GRANT SELECT, INSERT ON snapshots TO vouch_app;
GRANT SELECT, INSERT, UPDATE ON admitted TO vouch_app;

-- Added with migration 0005. Blobs are written once and never changed.
GRANT SELECT, INSERT ON blobs TO vouch_app;

-- Added with migration 0006.
GRANT SELECT, INSERT ON ran TO vouch_app;

-- Admission decisions indexed for the console (migration 0008).
GRANT SELECT, INSERT ON decisions, decision_digests TO vouch_app;

-- The digests snapshot records name (migration 0009).
GRANT SELECT, INSERT ON snapshot_digests TO vouch_app;

-- Console sessions (migration 0011): created, touched and ended.
GRANT SELECT, INSERT, UPDATE, DELETE ON console_sessions TO vouch_app;
