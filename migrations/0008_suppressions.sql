-- The suppression list: numbers that asked for no more messages (by texting an opt-out keyword)
-- or that an operator put there. Messages to them are refused at submit, skipped in loads, and
-- never claimed by a modem.

CREATE TABLE suppressions (
    phone TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    keyword TEXT,
    inbox_id BIGINT,
    note TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX suppressions_by_created ON suppressions (created_at, phone);
