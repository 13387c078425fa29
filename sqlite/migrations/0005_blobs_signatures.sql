-- Documents attestations refer to (test reports, scan results, SBOMs, DSSE
-- envelopes), stored once by their sha256; and what signature verification
-- said about each attestation.
CREATE TABLE blobs (
    digest      TEXT    PRIMARY KEY, -- sha256:<hex> of content
    media_type  TEXT    NOT NULL,
    size        INTEGER NOT NULL,
    content     BLOB    NOT NULL,
    created_by  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL     -- Unix microseconds
);

ALTER TABLE attestations ADD COLUMN blob TEXT NOT NULL DEFAULT '';
ALTER TABLE attestations ADD COLUMN verified INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attestations ADD COLUMN key_id TEXT NOT NULL DEFAULT '';
