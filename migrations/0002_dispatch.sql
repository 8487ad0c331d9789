-- Dispatch: the modem a message is handed to, and one row for each segment from the moment it
-- is handed to the modem. A segment whose row still says `sending` after a crash may or may not
-- have gone out; its message is marked for review instead of being sent again.

ALTER TABLE messages ADD COLUMN modem_id TEXT;

CREATE INDEX messages_due ON messages (status, scheduled_for, id);

CREATE TABLE message_parts (
    message_id BIGINT NOT NULL,
    part BIGINT NOT NULL,
    total BIGINT NOT NULL,
    modem_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    state TEXT NOT NULL,
    mr BIGINT,
    handed_at BIGINT NOT NULL,
    sent_at BIGINT,
    reported_at BIGINT,
    report_status BIGINT,
    PRIMARY KEY (message_id, part)
);

CREATE INDEX message_parts_by_reference ON message_parts (modem_id, mr, recipient);
