-- Balance checks of prepaid lines by USSD: each check with the operator's answer as it came,
-- what was read out of it (amount, currency, expiry) or why nothing was, stored in the
-- transaction that records its events.

CREATE TABLE balance_checks (
    id INTEGER PRIMARY KEY,
    modem_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    code TEXT NOT NULL,
    cause TEXT NOT NULL,
    answer TEXT,
    amount TEXT,
    currency TEXT,
    expires TEXT,
    error TEXT
);

CREATE INDEX balance_checks_by_modem ON balance_checks (modem_id, at, id);
