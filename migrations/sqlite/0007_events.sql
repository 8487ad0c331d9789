-- Events and their webhook deliveries. An event is stored in the same transaction as the change
-- it tells of; a fan-out step then makes one delivery for each webhook that wants it and marks
-- the event fanned out in that same transaction, so that a crash anywhere between the change
-- and the POST loses nothing and repeats nothing stored. A mark rather than a cursor: on
-- PostgreSQL events may commit out of the order of their numbers.

CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    at BIGINT NOT NULL,
    payload TEXT NOT NULL,
    fanned BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX events_by_time ON events (at, seq);
CREATE INDEX events_unfanned ON events (seq) WHERE fanned = 0;

CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret TEXT NOT NULL,
    enabled BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- AUTOINCREMENT: a deleted webhook's ids are never given to another's deliveries, so an
-- outcome that comes back late cannot land on the wrong one.
CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id TEXT NOT NULL,
    event_seq BIGINT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT,
    last_status BIGINT,
    last_error TEXT,
    claimed_by TEXT
);

-- A webhook's claims read only its own due rows, however many another (dead) receiver has
-- waiting.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (webhook_id, status, next_at, id);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (created_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_hook ON webhook_deliveries (webhook_id, id);

CREATE TABLE webhook_attempts (
    delivery_id BIGINT NOT NULL,
    attempt BIGINT NOT NULL,
    at BIGINT NOT NULL,
    status_code BIGINT,
    error TEXT,
    excerpt TEXT,
    duration_ms BIGINT NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
