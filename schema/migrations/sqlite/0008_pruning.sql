-- Pruning of superseded builds (issue #6). Keep in step with ../postgres/0008_pruning.sql.
--
-- A project's auto_prune (Copr's name) says whether builds superseded by a later successful
-- build of the same package, in the same CoprDir and chroot, leave its repositories; prune_days
-- is how long they stay after that (NULL: the instance's default, 14 days like Copr's backend).
ALTER TABLE projects ADD COLUMN auto_prune BIGINT NOT NULL DEFAULT 1;
ALTER TABLE projects ADD COLUMN prune_days BIGINT;
-- When a build-chroot's packages were removed from the repository; the record stays.
ALTER TABLE build_chroots ADD COLUMN pruned_on BIGINT;
