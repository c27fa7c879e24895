-- .copr.yaml's enable_net and timeout, carried by the build to its tasks (issue #5). Keep in
-- step with the other dialect's 0006_build_options.sql.
ALTER TABLE builds ADD COLUMN enable_net BIGINT NOT NULL DEFAULT 0;
-- Seconds; NULL means the instance's default.
ALTER TABLE builds ADD COLUMN timeout BIGINT;
