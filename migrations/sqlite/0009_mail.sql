-- Mail: rules that send events of some types to some addresses, and the queue of mails they
-- made. A mail is written out (subject, text and HTML) when its event is fanned out, in the
-- transaction that marks the event mailed, so a crash loses none and the same mail is what
-- every retry sends. Events stored before this migration are not mailed.

ALTER TABLE events ADD COLUMN mailed BIGINT NOT NULL DEFAULT 0;
UPDATE events SET mailed = 1;
CREATE INDEX events_unmailed ON events (seq) WHERE mailed = 0;

CREATE TABLE mail_rules (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    events TEXT NOT NULL,
    recipients TEXT NOT NULL,
    enabled BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE mails (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_seq BIGINT,
    rule_id TEXT,
    kind TEXT NOT NULL,
    recipients TEXT NOT NULL,
    subject TEXT NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT NOT NULL,
    load_id TEXT,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    first_failed_at BIGINT,
    sent_at BIGINT,
    last_error TEXT,
    claimed_by TEXT
);

CREATE UNIQUE INDEX mails_per_event ON mails (event_seq, rule_id);
CREATE INDEX mails_due ON mails (status, next_at, id);
CREATE INDEX mails_by_created ON mails (created_at, id);
