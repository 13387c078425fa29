-- Journal: append-only entries and the tree head, written in one transaction.
CREATE TABLE journal_entries (
    idx         INTEGER PRIMARY KEY,
    kind        TEXT    NOT NULL,
    time        INTEGER NOT NULL, -- Unix microseconds
    environment TEXT    NOT NULL DEFAULT '',
    key         TEXT    UNIQUE,   -- idempotency key, NULL when none
    leaf        BLOB    NOT NULL, -- canonical JSON, hashed
    leaf_hash   BLOB    NOT NULL
);
CREATE INDEX journal_entries_kind ON journal_entries (kind, idx);
CREATE INDEX journal_entries_environment ON journal_entries (environment, idx);

CREATE TRIGGER journal_entries_no_update BEFORE UPDATE ON journal_entries
BEGIN SELECT RAISE(ABORT, 'journal entries are append-only'); END;
CREATE TRIGGER journal_entries_no_delete BEFORE DELETE ON journal_entries
BEGIN SELECT RAISE(ABORT, 'journal entries are append-only'); END;

CREATE TABLE journal_tree (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    size       INTEGER NOT NULL,
    root       BLOB    NOT NULL,
    range_hashes BLOB  NOT NULL
);
INSERT INTO journal_tree (id, size, root, range_hashes)
VALUES (1, 0, X'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', X'');

-- Evidence: kept in the same transaction as its journal entry; id = journal index.
CREATE TABLE artifacts (
    id          INTEGER PRIMARY KEY,
    digest      TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    git_commit  TEXT NOT NULL,
    repository  TEXT NOT NULL,
    build_url   TEXT NOT NULL,
    pipeline    TEXT NOT NULL,
    reported_by TEXT NOT NULL,
    reported_at INTEGER NOT NULL
);
CREATE INDEX artifacts_name ON artifacts (name, id);
CREATE INDEX artifacts_git_commit ON artifacts (git_commit, id);

CREATE TABLE attestations (
    id          INTEGER PRIMARY KEY,
    digest      TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    type        TEXT    NOT NULL,
    passed      INTEGER NOT NULL,
    url         TEXT    NOT NULL,
    payload     BLOB,
    reported_by TEXT    NOT NULL,
    reported_at INTEGER NOT NULL
);
CREATE INDEX attestations_digest ON attestations (digest, id);

CREATE TABLE approvals (
    id          INTEGER PRIMARY KEY,
    digest      TEXT    NOT NULL,
    environment TEXT    NOT NULL,
    decision    TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    expires_at  INTEGER,
    approver    TEXT    NOT NULL,
    approved_at INTEGER NOT NULL
);
CREATE INDEX approvals_digest ON approvals (digest, id);

-- API tokens: only hashes are stored.
CREATE TABLE tokens (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    scopes     TEXT NOT NULL, -- comma-separated
    hash       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER
);
CREATE UNIQUE INDEX tokens_active_name ON tokens (name) WHERE revoked_at IS NULL;
