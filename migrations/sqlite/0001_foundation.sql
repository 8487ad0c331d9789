-- The foundation: settings, users, API keys and messages (SQLite).
-- Kept in step with ../postgres/0001_foundation.sql: times are milliseconds since the Unix epoch
-- (UTC) in BIGINT, flags are 0/1 in BIGINT, users and keys have UUIDv7 text ids.
--
-- Messages are keyed by the table's own integer rowid: one b-tree less than a separate primary
-- key, and 8-byte references in every secondary index. Messages are never deleted (cancelling
-- is an update), so SQLite never hands out a used id again.

CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    enabled BIGINT NOT NULL,
    modules TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    client_ref TEXT NOT NULL UNIQUE,
    to_number TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    encoding TEXT NOT NULL,
    segments BIGINT NOT NULL,
    load_id TEXT,
    channel TEXT NOT NULL,
    created_by TEXT NOT NULL,
    send_at BIGINT,
    created_at BIGINT NOT NULL,
    scheduled_for BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    sent_at BIGINT,
    delivered_at BIGINT,
    error TEXT,
    attempts BIGINT NOT NULL
);

CREATE INDEX messages_by_created ON messages (created_at, id);
CREATE INDEX messages_by_status ON messages (status, created_at, id);
CREATE INDEX messages_by_number ON messages (to_number, created_at, id);
CREATE INDEX messages_by_load ON messages (load_id, created_at, id) WHERE load_id IS NOT NULL;
