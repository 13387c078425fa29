-- Admission decisions for the auditor's console: the decisions log with
-- its filters, and every decision about an artifact (by image digest).
-- Kept in the same transaction as the admission entry; idx = journal index.
CREATE TABLE decisions (
    idx         INTEGER PRIMARY KEY,
    time        INTEGER NOT NULL, -- Unix microseconds
    environment TEXT    NOT NULL,
    namespace   TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    username    TEXT    NOT NULL,
    uid         TEXT    NOT NULL,
    allowed     INTEGER NOT NULL,
    images      TEXT    NOT NULL, -- one image reference per line
    messages    TEXT    NOT NULL  -- one message per line
);
CREATE INDEX decisions_environment ON decisions (environment, idx);
CREATE INDEX decisions_namespace ON decisions (namespace, idx);
CREATE INDEX decisions_allowed ON decisions (allowed, idx);
CREATE INDEX decisions_environment_allowed ON decisions (environment, allowed, idx);
CREATE INDEX decisions_namespace_allowed ON decisions (namespace, allowed, idx);

-- The image digests of each decision, allowed or denied.
CREATE TABLE decision_digests (
    digest TEXT    NOT NULL,
    idx    INTEGER NOT NULL,
    PRIMARY KEY (digest, idx)
) WITHOUT ROWID;

-- Backfill: the admission entries journaled before this migration
-- (drift.ParseDecision).
INSERT INTO decisions (idx, time, environment, namespace, kind, name, username, uid, allowed, images, messages)
SELECT e.idx, e.time,
    COALESCE(NULLIF(json_extract(e.j, '$.body.environment'), ''), e.environment),
    COALESCE(json_extract(e.j, '$.body.namespace'), ''),
    COALESCE(json_extract(e.j, '$.body.kind'), ''),
    COALESCE(json_extract(e.j, '$.body.name'), ''),
    COALESCE(json_extract(e.j, '$.body.user'), ''),
    COALESCE(json_extract(e.j, '$.body.uid'), ''),
    COALESCE(json_extract(e.j, '$.body.allowed'), 0) = 1,
    COALESCE((SELECT group_concat(replace(COALESCE(json_extract(i.value, '$.image'), ''), char(10), ' '), char(10))
              FROM json_each(e.j, '$.body.images') i), ''),
    COALESCE((SELECT group_concat(replace(m.value, char(10), ' '), char(10))
              FROM json_each(e.j, '$.body.messages') m), '')
FROM (SELECT idx, time, environment, CAST(leaf AS TEXT) AS j FROM journal_entries WHERE kind = 'admission') e
WHERE json_valid(e.j);

INSERT OR IGNORE INTO decision_digests (digest, idx)
SELECT json_extract(i.value, '$.digest'), e.idx
FROM (SELECT idx, CAST(leaf AS TEXT) AS j FROM journal_entries WHERE kind = 'admission') e, json_each(e.j, '$.body.images') i
WHERE json_valid(e.j) AND COALESCE(json_extract(i.value, '$.digest'), '') <> '';
