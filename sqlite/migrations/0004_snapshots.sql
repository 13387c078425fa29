-- Snapshots of what runs, kept in the same transaction as their journal
-- entries; id = journal index. full_id is the full snapshot a record's
-- state is rebuilt from.
CREATE TABLE snapshots (
    id          INTEGER PRIMARY KEY,
    environment TEXT    NOT NULL,
    time        INTEGER NOT NULL,
    hash        TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    full_id     INTEGER NOT NULL,
    body        BLOB    NOT NULL
);
CREATE INDEX snapshots_env_time ON snapshots (environment, time, id);
CREATE INDEX snapshots_env_id ON snapshots (environment, id);

-- Digests admitted per environment (from allowed admission decisions).
CREATE TABLE admitted (
    environment TEXT    NOT NULL,
    digest      TEXT    NOT NULL,
    first_id    INTEGER NOT NULL,
    last_id     INTEGER NOT NULL,
    PRIMARY KEY (environment, digest)
) WITHOUT ROWID;
