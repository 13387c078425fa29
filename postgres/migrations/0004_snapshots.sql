-- Snapshots of what runs, kept in the same transaction as their journal
-- entries; id = journal index. full_id is the full snapshot a record's
-- state is rebuilt from.
CREATE TABLE snapshots (
    id          bigint      PRIMARY KEY,
    environment text        NOT NULL,
    time        timestamptz NOT NULL,
    hash        text        NOT NULL,
    kind        text        NOT NULL,
    full_id     bigint      NOT NULL,
    body        bytea       NOT NULL
);
CREATE INDEX snapshots_env_time ON snapshots (environment, time, id);
CREATE INDEX snapshots_env_id ON snapshots (environment, id);

-- Digests admitted per environment (from allowed admission decisions).
CREATE TABLE admitted (
    environment text   NOT NULL,
    digest      text   NOT NULL,
    first_id    bigint NOT NULL,
    last_id     bigint NOT NULL,
    PRIMARY KEY (environment, digest)
);
