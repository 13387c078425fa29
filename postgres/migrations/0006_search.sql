-- Search: artifacts by digest or commit prefix (byte-wise range scans, so
-- C-collated indexes whatever the database's collation), approvals by
-- environment, and where an artifact was admitted and ran.
CREATE INDEX artifacts_digest_c ON artifacts (digest COLLATE "C");
CREATE INDEX artifacts_git_commit_c ON artifacts (git_commit COLLATE "C");
CREATE INDEX approvals_environment ON approvals (environment, id);
CREATE INDEX admitted_digest ON admitted (digest);

-- The digests each environment's snapshots showed running, with the first
-- snapshot record that did: kept in the snapshot's transaction.
CREATE TABLE ran (
    digest      text   NOT NULL,
    environment text   NOT NULL,
    first_id    bigint NOT NULL,
    PRIMARY KEY (digest, environment)
);

-- Backfill: the digests of full records and of the started and changed
-- workloads of deltas (drift.RanDigests).
INSERT INTO ran (digest, environment, first_id)
SELECT c->>'digest', s.environment, MIN(s.id)
FROM snapshots s
CROSS JOIN LATERAL (SELECT convert_from(s.body, 'UTF8')::jsonb AS b) r
CROSS JOIN LATERAL (
    SELECT w FROM jsonb_array_elements(CASE WHEN s.kind = 'full' AND jsonb_typeof(r.b->'workloads') = 'array' THEN r.b->'workloads' ELSE '[]' END) w
    UNION ALL
    SELECT w FROM jsonb_array_elements(CASE WHEN s.kind = 'delta' AND jsonb_typeof(r.b#>'{diff,started}') = 'array' THEN r.b#>'{diff,started}' ELSE '[]' END) w
    UNION ALL
    SELECT ch->'after' FROM jsonb_array_elements(CASE WHEN s.kind = 'delta' AND jsonb_typeof(r.b#>'{diff,changed}') = 'array' THEN r.b#>'{diff,changed}' ELSE '[]' END) ch
) ws(w)
CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(ws.w->'containers') = 'array' THEN ws.w->'containers' ELSE '[]' END) c
WHERE s.kind IN ('full', 'delta') AND COALESCE(c->>'digest', '') <> ''
GROUP BY 1, 2;
