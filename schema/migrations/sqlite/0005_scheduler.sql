-- The scheduler's queue and its crash safety (issue #4). Keep in step with the other dialect's
-- 0005_scheduler.sql.
--
-- background builds wait behind every normal build (REFERENCE §5: mass rebuilds).
ALTER TABLE builds ADD COLUMN background BIGINT NOT NULL DEFAULT 0;

-- Where a task runs (a ticket, a host, the builder's process group), written by the scheduler
-- before it waits on the builder, so a restarted scheduler re-attaches instead of starting the
-- task twice. NULL while no builder was asked for.
ALTER TABLE builds ADD COLUMN source_placement TEXT;
ALTER TABLE build_chroots ADD COLUMN placement TEXT;
