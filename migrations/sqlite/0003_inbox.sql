-- The inbox: texts and calls the modems received. A long text is kept part by part in
-- inbox_fragments until every part is there (parts may come out of order, or across a
-- restart), then stored whole. dedupe_key makes the same text, delivered or read twice, one row.

CREATE TABLE inbox (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    modem_id TEXT NOT NULL,
    number TEXT NOT NULL,
    body TEXT,
    parts BIGINT NOT NULL,
    complete BIGINT NOT NULL,
    network_time BIGINT,
    received_at BIGINT NOT NULL,
    dedupe_key TEXT NOT NULL UNIQUE,
    last_message_id BIGINT
);

CREATE INDEX inbox_by_received ON inbox (received_at, id);
CREATE INDEX inbox_by_number ON inbox (number, received_at, id);

CREATE TABLE inbox_fragments (
    modem_id TEXT NOT NULL,
    number TEXT NOT NULL,
    reference BIGINT NOT NULL,
    total BIGINT NOT NULL,
    part BIGINT NOT NULL,
    body TEXT NOT NULL,
    network_time BIGINT,
    stored_at BIGINT NOT NULL,
    PRIMARY KEY (modem_id, number, reference, total, part)
);
