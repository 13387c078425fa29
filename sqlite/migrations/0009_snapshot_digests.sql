-- Every digest each snapshot record names (drift.NamedDigests): all those
-- of a full record, those of the started, stopped and changed workloads of
-- a delta. The periods an artifact ran are read from the records that name
-- it and the full records, found by these indexes, not by reading every
-- record since it first ran. Kept in the snapshot's transaction.
CREATE TABLE snapshot_digests (
    environment TEXT    NOT NULL,
    digest      TEXT    NOT NULL,
    id          INTEGER NOT NULL,
    PRIMARY KEY (environment, digest, id)
) WITHOUT ROWID;
CREATE INDEX snapshots_env_kind_time ON snapshots (environment, kind, time, id);

-- Backfill: the digests of the recorded snapshots.
INSERT OR IGNORE INTO snapshot_digests (environment, digest, id)
SELECT environment, digest, id FROM (
    SELECT s.id, s.environment, json_extract(c.value, '$.digest') AS digest
    FROM snapshots s, json_each(CAST(s.body AS TEXT), '$.workloads') w, json_each(w.value, '$.containers') c
    WHERE s.kind = 'full'
    UNION ALL
    SELECT s.id, s.environment, json_extract(c.value, '$.digest')
    FROM snapshots s, json_each(CAST(s.body AS TEXT), '$.diff.started') w, json_each(w.value, '$.containers') c
    WHERE s.kind = 'delta'
    UNION ALL
    SELECT s.id, s.environment, json_extract(c.value, '$.digest')
    FROM snapshots s, json_each(CAST(s.body AS TEXT), '$.diff.stopped') w, json_each(w.value, '$.containers') c
    WHERE s.kind = 'delta'
    UNION ALL
    SELECT s.id, s.environment, json_extract(c.value, '$.digest')
    FROM snapshots s, json_each(CAST(s.body AS TEXT), '$.diff.changed') w, json_each(w.value, '$.after.containers') c
    WHERE s.kind = 'delta'
    UNION ALL
    SELECT s.id, s.environment, json_extract(c.value, '$.digest')
    FROM snapshots s, json_each(CAST(s.body AS TEXT), '$.diff.changed') w, json_each(w.value, '$.before.containers') c
    WHERE s.kind = 'delta'
) WHERE digest IS NOT NULL AND digest <> '';
