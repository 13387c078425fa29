-- Console sessions, shared by the replicas: the hash of the id in the
-- browser's cookie and the hash of the token signed in with
-- (auth.Session); never a secret. A replica that signs an auditor in is
-- not necessarily the one that serves the next page.
CREATE TABLE console_sessions (
    id_hash    text        PRIMARY KEY,
    token_hash text        NOT NULL,
    name       text        NOT NULL,
    csrf       text        NOT NULL,
    created_at timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
