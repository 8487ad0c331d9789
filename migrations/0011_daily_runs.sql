-- Daily jobs other than the automatic load (the summary of loads, balance checks) record when
-- their work ended, so that a run whose node died half-way is taken over by another node, and
-- one whose work failed is tried again.

ALTER TABLE schedule_runs ADD COLUMN finished_at BIGINT;
