-- Admission decisions for the auditor's console: the decisions log with
-- its filters, and every decision about an artifact (by image digest).
-- Kept in the same transaction as the admission entry; idx = journal index.
CREATE TABLE decisions (
    idx         bigint      PRIMARY KEY,
    time        timestamptz NOT NULL,
    environment text        NOT NULL,
    namespace   text        NOT NULL,
    kind        text        NOT NULL,
    name        text        NOT NULL,
    username    text        NOT NULL,
    uid         text        NOT NULL,
    allowed     boolean     NOT NULL,
    images      text        NOT NULL, -- one image reference per line
    messages    text        NOT NULL  -- one message per line
);
CREATE INDEX decisions_environment ON decisions (environment, idx);
CREATE INDEX decisions_namespace ON decisions (namespace, idx);
CREATE INDEX decisions_allowed ON decisions (allowed, idx);
CREATE INDEX decisions_environment_allowed ON decisions (environment, allowed, idx);
CREATE INDEX decisions_namespace_allowed ON decisions (namespace, allowed, idx);

-- The image digests of each decision, allowed or denied.
CREATE TABLE decision_digests (
    digest text   NOT NULL,
    idx    bigint NOT NULL,
    PRIMARY KEY (digest, idx)
);

-- Backfill: the admission entries journaled before this migration
-- (drift.ParseDecision).
INSERT INTO decisions (idx, time, environment, namespace, kind, name, username, uid, allowed, images, messages)
SELECT e.idx, e.time,
    COALESCE(NULLIF(e.b->>'environment', ''), e.environment),
    COALESCE(e.b->>'namespace', ''), COALESCE(e.b->>'kind', ''), COALESCE(e.b->>'name', ''),
    COALESCE(e.b->>'user', ''), COALESCE(e.b->>'uid', ''),
    COALESCE(e.b->>'allowed', 'false') = 'true',
    COALESCE((SELECT string_agg(replace(COALESCE(i->>'image', ''), E'\n', ' '), E'\n' ORDER BY n)
              FROM jsonb_array_elements(CASE WHEN jsonb_typeof(e.b->'images') = 'array' THEN e.b->'images' ELSE '[]' END) WITH ORDINALITY AS x(i, n)), ''),
    COALESCE((SELECT string_agg(replace(m #>> '{}', E'\n', ' '), E'\n' ORDER BY n)
              FROM jsonb_array_elements(CASE WHEN jsonb_typeof(e.b->'messages') = 'array' THEN e.b->'messages' ELSE '[]' END) WITH ORDINALITY AS y(m, n)), '')
FROM (SELECT idx, time, environment, convert_from(leaf, 'UTF8')::jsonb->'body' AS b FROM journal_entries WHERE kind = 'admission') e;

INSERT INTO decision_digests (digest, idx)
SELECT DISTINCT i->>'digest', e.idx
FROM (SELECT idx, convert_from(leaf, 'UTF8')::jsonb->'body' AS b FROM journal_entries WHERE kind = 'admission') e
CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(e.b->'images') = 'array' THEN e.b->'images' ELSE '[]' END) i
WHERE COALESCE(i->>'digest', '') <> '';
