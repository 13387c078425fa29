-- Search: artifacts by digest or commit prefix (range scans on the
-- artifacts digest and git_commit indexes), approvals by environment, and
-- where an artifact was admitted and ran.
CREATE INDEX approvals_environment ON approvals (environment, id);
CREATE INDEX admitted_digest ON admitted (digest);

-- The digests each environment's snapshots showed running, with the first
-- snapshot record that did: kept in the snapshot's transaction.
CREATE TABLE ran (
    digest      TEXT    NOT NULL,
    environment TEXT    NOT NULL,
    first_id    INTEGER NOT NULL,
    PRIMARY KEY (digest, environment)
) WITHOUT ROWID;

-- Backfill: the digests of full records and of the started and changed
-- workloads of deltas (drift.RanDigests).
INSERT INTO ran (digest, environment, first_id)
SELECT digest, environment, MIN(id) FROM (
    SELECT s.id, s.environment, json_extract(c.value, '$.digest') AS digest
    FROM snapshots s, json_each(CAST(s.body AS TEXT), '$.workloads') w, json_each(w.value, '$.containers') c
    WHERE s.kind = 'full'
    UNION ALL
    SELECT s.id, s.environment, json_extract(c.value, '$.digest')
    FROM snapshots s, json_each(CAST(s.body AS TEXT), '$.diff.started') w, json_each(w.value, '$.containers') c
    WHERE s.kind = 'delta'
    UNION ALL
    SELECT s.id, s.environment, json_extract(c.value, '$.digest')
    FROM snapshots s, json_each(CAST(s.body AS TEXT), '$.diff.changed') w, json_each(w.value, '$.after.containers') c
    WHERE s.kind = 'delta'
) WHERE digest IS NOT NULL AND digest <> ''
GROUP BY digest, environment;
