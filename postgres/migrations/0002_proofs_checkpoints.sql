-- Perfect-subtree nodes (level >= 1) of the journal's Merkle tree, for proofs.
CREATE TABLE journal_nodes (
    level smallint NOT NULL,
    idx   bigint   NOT NULL,
    hash  bytea    NOT NULL,
    PRIMARY KEY (level, idx)
);
CREATE TRIGGER journal_nodes_append_only BEFORE UPDATE OR DELETE ON journal_nodes
    FOR EACH ROW EXECUTE FUNCTION vouch_append_only();
CREATE TRIGGER journal_nodes_no_truncate BEFORE TRUNCATE ON journal_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION vouch_append_only();

-- Every signed checkpoint (C2SP tlog-checkpoint signed note).
CREATE TABLE journal_checkpoints (
    size       bigint      PRIMARY KEY,
    root       bytea       NOT NULL,
    note       bytea       NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE TRIGGER journal_checkpoints_append_only BEFORE UPDATE OR DELETE ON journal_checkpoints
    FOR EACH ROW EXECUTE FUNCTION vouch_append_only();
CREATE TRIGGER journal_checkpoints_no_truncate BEFORE TRUNCATE ON journal_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION vouch_append_only();

-- The tree-state row is updated, never deleted.
CREATE TRIGGER journal_tree_no_delete BEFORE DELETE ON journal_tree
    FOR EACH ROW EXECUTE FUNCTION vouch_append_only();
CREATE TRIGGER journal_tree_no_truncate BEFORE TRUNCATE ON journal_tree
    FOR EACH STATEMENT EXECUTE FUNCTION vouch_append_only();

-- Export by time range.
CREATE INDEX journal_entries_time ON journal_entries (time);
