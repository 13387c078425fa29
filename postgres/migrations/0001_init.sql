-- Journal: append-only entries and the tree head, written in one transaction.
CREATE TABLE journal_entries (
    idx         bigint      PRIMARY KEY,
    kind        text        NOT NULL,
    time        timestamptz NOT NULL,
    environment text        NOT NULL DEFAULT '',
    key         text        UNIQUE,   -- idempotency key, NULL when none
    leaf        bytea       NOT NULL, -- canonical JSON, hashed
    leaf_hash   bytea       NOT NULL
);
CREATE INDEX journal_entries_kind ON journal_entries (kind, idx);
CREATE INDEX journal_entries_environment ON journal_entries (environment, idx);

CREATE TABLE journal_tree (
    id           int    PRIMARY KEY CHECK (id = 1),
    size         bigint NOT NULL,
    root         bytea  NOT NULL,
    range_hashes bytea  NOT NULL
);
INSERT INTO journal_tree (id, size, root, range_hashes)
VALUES (1, 0, '\xe3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', '\x');

-- History cannot be rewritten through SQL: entries accept INSERT only.
CREATE FUNCTION vouch_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'journal entries are append-only: % refused on %', TG_OP, TG_TABLE_NAME;
END $$;
CREATE TRIGGER journal_entries_append_only BEFORE UPDATE OR DELETE ON journal_entries
    FOR EACH ROW EXECUTE FUNCTION vouch_append_only();
CREATE TRIGGER journal_entries_no_truncate BEFORE TRUNCATE ON journal_entries
    FOR EACH STATEMENT EXECUTE FUNCTION vouch_append_only();

-- Evidence: kept in the same transaction as its journal entry; id = journal index.
CREATE TABLE artifacts (
    id          bigint      PRIMARY KEY,
    digest      text        NOT NULL UNIQUE,
    name        text        NOT NULL,
    git_commit  text        NOT NULL,
    repository  text        NOT NULL,
    build_url   text        NOT NULL,
    pipeline    text        NOT NULL,
    reported_by text        NOT NULL,
    reported_at timestamptz NOT NULL
);
CREATE INDEX artifacts_name ON artifacts (name, id);
CREATE INDEX artifacts_git_commit ON artifacts (git_commit, id);

CREATE TABLE attestations (
    id          bigint      PRIMARY KEY,
    digest      text        NOT NULL,
    name        text        NOT NULL,
    type        text        NOT NULL,
    passed      boolean     NOT NULL,
    url         text        NOT NULL,
    payload     bytea,
    reported_by text        NOT NULL,
    reported_at timestamptz NOT NULL
);
CREATE INDEX attestations_digest ON attestations (digest, id);

CREATE TABLE approvals (
    id          bigint      PRIMARY KEY,
    digest      text        NOT NULL,
    environment text        NOT NULL,
    decision    text        NOT NULL,
    reason      text        NOT NULL,
    expires_at  timestamptz,
    approver    text        NOT NULL,
    approved_at timestamptz NOT NULL
);
CREATE INDEX approvals_digest ON approvals (digest, id);

-- API tokens: only hashes are stored.
CREATE TABLE tokens (
    id         text        PRIMARY KEY,
    name       text        NOT NULL,
    scopes     text[]      NOT NULL,
    hash       text        NOT NULL UNIQUE,
    created_at timestamptz NOT NULL,
    expires_at timestamptz,
    revoked_at timestamptz
);
CREATE UNIQUE INDEX tokens_active_name ON tokens (name) WHERE revoked_at IS NULL;
