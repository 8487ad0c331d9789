-- Old events, deliveries and mails are deleted after `retention_days`; an event goes only when
-- no delivery refers to it any more, which this index lets the pruning ask cheaply.

CREATE INDEX webhook_deliveries_by_event ON webhook_deliveries (event_seq);
