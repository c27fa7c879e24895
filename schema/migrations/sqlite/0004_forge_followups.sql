-- What the forge bot needs beyond the skeleton. Keep in step with ../postgres/0004_forge_followups.sql.
--
-- revision counts the changes of a build that its commit statuses show (a part moved, a cancel
-- asked); the reporter looks only at builds whose reported_revision is behind, so a sweep costs
-- what changed, not every unfinished build.
ALTER TABLE builds ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
ALTER TABLE builds ADD COLUMN reported_revision BIGINT;
UPDATE builds SET reported_revision = 0 WHERE reported_status LIKE 'final:%';
CREATE INDEX builds_unreported ON builds (forge, reported_revision);

-- A pull request's builds: which one, and whether a success gets the comment with the
-- dnf copr enable line (notifications.success_comment); success_comment_done once it was posted (or is not due: the build did not succeed).
ALTER TABLE builds ADD COLUMN pull_request BIGINT;
ALTER TABLE builds ADD COLUMN success_comment BIGINT NOT NULL DEFAULT 0;
ALTER TABLE builds ADD COLUMN success_comment_done BIGINT NOT NULL DEFAULT 0;

-- The one comment per pull request that success comments update instead of repeating.
CREATE TABLE pull_request_comments (
    forge TEXT NOT NULL,
    repo TEXT NOT NULL,
    number BIGINT NOT NULL,
    comment_id BIGINT NOT NULL,
    PRIMARY KEY (forge, repo, number)
);

-- A closed pull request's CoprDir is deleted once delete_after (seconds since the epoch) has
-- passed; reopening it clears the date. deleted_on says the results are gone.
ALTER TABLE copr_dirs ADD COLUMN delete_after BIGINT;
ALTER TABLE copr_dirs ADD COLUMN deleted_on BIGINT;
