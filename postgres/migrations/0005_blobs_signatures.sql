-- Documents attestations refer to (test reports, scan results, SBOMs, DSSE
-- envelopes), stored once by their sha256; and what signature verification
-- said about each attestation.
CREATE TABLE blobs (
    digest      text        PRIMARY KEY, -- sha256:<hex> of content
    media_type  text        NOT NULL,
    size        bigint      NOT NULL,
    content     bytea       NOT NULL,
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL
);

ALTER TABLE attestations ADD COLUMN blob text NOT NULL DEFAULT '';
ALTER TABLE attestations ADD COLUMN verified boolean NOT NULL DEFAULT false;
ALTER TABLE attestations ADD COLUMN key_id text NOT NULL DEFAULT '';
