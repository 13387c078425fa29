-- Every digest each snapshot record names (drift.NamedDigests): all those
-- of a full record, those of the started, stopped and changed workloads of
-- a delta. The periods an artifact ran are read from the records that name
-- it and the full records, found by these indexes, not by reading every
-- record since it first ran. Kept in the snapshot's transaction.
CREATE TABLE snapshot_digests (
    environment text   NOT NULL,
    digest      text   NOT NULL,
    id          bigint NOT NULL,
    PRIMARY KEY (environment, digest, id)
);
CREATE INDEX snapshots_env_kind_time ON snapshots (environment, kind, time, id);

-- Backfill: the digests of the recorded snapshots.
INSERT INTO snapshot_digests (environment, digest, id)
SELECT s.environment, c->>'digest', s.id
FROM snapshots s
CROSS JOIN LATERAL (SELECT convert_from(s.body, 'UTF8')::jsonb AS b) r
CROSS JOIN LATERAL (
    SELECT w FROM jsonb_array_elements(CASE WHEN s.kind = 'full' AND jsonb_typeof(r.b->'workloads') = 'array' THEN r.b->'workloads' ELSE '[]' END) w
    UNION ALL
    SELECT w FROM jsonb_array_elements(CASE WHEN s.kind = 'delta' AND jsonb_typeof(r.b#>'{diff,started}') = 'array' THEN r.b#>'{diff,started}' ELSE '[]' END) w
    UNION ALL
    SELECT w FROM jsonb_array_elements(CASE WHEN s.kind = 'delta' AND jsonb_typeof(r.b#>'{diff,stopped}') = 'array' THEN r.b#>'{diff,stopped}' ELSE '[]' END) w
    UNION ALL
    SELECT ch->'after' FROM jsonb_array_elements(CASE WHEN s.kind = 'delta' AND jsonb_typeof(r.b#>'{diff,changed}') = 'array' THEN r.b#>'{diff,changed}' ELSE '[]' END) ch
    UNION ALL
    SELECT ch->'before' FROM jsonb_array_elements(CASE WHEN s.kind = 'delta' AND jsonb_typeof(r.b#>'{diff,changed}') = 'array' THEN r.b#>'{diff,changed}' ELSE '[]' END) ch
) ws(w)
CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(ws.w->'containers') = 'array' THEN ws.w->'containers' ELSE '[]' END) c
WHERE s.kind IN ('full', 'delta') AND COALESCE(c->>'digest', '') <> ''
ON CONFLICT DO NOTHING;
