-- Loads: batches of messages made from an uploaded sheet or the ERP's database, with the rows
-- that made no message, the keys that keep a reference date from being loaded twice, and the
-- daily runs that keep the schedule to one node.

CREATE TABLE loads (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    template_id TEXT,
    file_name TEXT,
    reference_date TEXT,
    send_date TEXT NOT NULL,
    created_by TEXT NOT NULL,
    node TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    finished_at BIGINT,
    rows_processed BIGINT NOT NULL,
    messages_loaded BIGINT NOT NULL,
    rows_skipped BIGINT NOT NULL,
    rows_failed BIGINT NOT NULL,
    error TEXT,
    deleted_at BIGINT,
    deleted_by TEXT,
    report_sent_at BIGINT
);

CREATE INDEX loads_by_created ON loads (created_at, id);
CREATE INDEX loads_running ON loads (status, node) WHERE status = 'running';

CREATE TABLE load_rows (
    load_id TEXT NOT NULL,
    row_number BIGINT NOT NULL,
    skipped BIGINT NOT NULL,
    column_name TEXT,
    reason TEXT NOT NULL,
    PRIMARY KEY (load_id, row_number)
);

CREATE TABLE load_keys (
    reference_date TEXT NOT NULL,
    row_key TEXT NOT NULL,
    load_id TEXT NOT NULL,
    row_number BIGINT NOT NULL,
    PRIMARY KEY (reference_date, row_key)
);

CREATE INDEX load_keys_by_load ON load_keys (load_id, row_number);

CREATE TABLE schedule_runs (
    job TEXT NOT NULL,
    day TEXT NOT NULL,
    node TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    PRIMARY KEY (job, day)
);
