-- Console sessions, shared by every process on the database: the hash of
-- the id in the browser's cookie and the hash of the token signed in with
-- (auth.Session); never a secret.
CREATE TABLE console_sessions (
    id_hash    TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,
    name       TEXT NOT NULL,
    csrf       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
