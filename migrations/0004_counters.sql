-- The segment counter of each modem, for prepaid lines: segments the network accepted since the
-- counter was last reset.

CREATE TABLE segment_counters (
    modem_id TEXT PRIMARY KEY,
    segments BIGINT NOT NULL,
    since BIGINT NOT NULL
);
