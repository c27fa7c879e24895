-- .copr.yaml's with_opts and without_opts, carried by the build to its RPM tasks (issue #5):
-- names separated by spaces. Keep in step with the other dialect's 0007_bconds.sql.
ALTER TABLE builds ADD COLUMN with_opts TEXT NOT NULL DEFAULT '';
ALTER TABLE builds ADD COLUMN without_opts TEXT NOT NULL DEFAULT '';
