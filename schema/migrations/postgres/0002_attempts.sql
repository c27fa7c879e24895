-- Attempt counters: a delivery that keeps failing backs off and finally gives up instead of
-- blocking the ones behind it; a task whose builder host keeps failing runs on at most three
-- hosts (REFERENCE §5). Keep in step with ../sqlite/0002_attempts.sql.

ALTER TABLE deliveries ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN next_attempt_on BIGINT;
ALTER TABLE builds ADD COLUMN source_attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE build_chroots ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
