-- Users, API tokens, groups and per-project permissions (issue #7). Keep in step with
-- ../sqlite/0009_users.sql.

CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    -- An instance admin may do anything to any project.
    admin BIGINT NOT NULL DEFAULT 0,
    created_on BIGINT NOT NULL
);

-- copr-cli's credentials: HTTP Basic login:token. The login is random and public-ish (it names
-- the token); only the token's SHA-256 is kept.
CREATE TABLE api_tokens (
    login TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id),
    token_sha256 TEXT NOT NULL,
    created_on BIGINT NOT NULL,
    expires_on BIGINT NOT NULL
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- Members of a group own its projects (owner `@<group>`) together.
CREATE TABLE group_members (
    group_name TEXT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id),
    PRIMARY KEY (group_name, user_id)
);

-- What a user other than the owner may do in a project: 'builder' (submit and cancel builds)
-- or 'admin' (also edit and delete the project).
CREATE TABLE project_permissions (
    project_id BIGINT NOT NULL REFERENCES projects (id),
    user_id BIGINT NOT NULL REFERENCES users (id),
    role TEXT NOT NULL,
    PRIMARY KEY (project_id, user_id)
);

-- What a project says of itself (Copr's project fields the API and web UI show).
ALTER TABLE projects ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE projects ADD COLUMN instructions TEXT NOT NULL DEFAULT '';
ALTER TABLE projects ADD COLUMN homepage TEXT NOT NULL DEFAULT '';
ALTER TABLE projects ADD COLUMN contact TEXT NOT NULL DEFAULT '';
-- Space-separated repository URLs builds of the project may use.
ALTER TABLE projects ADD COLUMN additional_repos TEXT NOT NULL DEFAULT '';
ALTER TABLE projects ADD COLUMN enable_net BIGINT NOT NULL DEFAULT 0;
ALTER TABLE projects ADD COLUMN unlisted_on_hp BIGINT NOT NULL DEFAULT 0;
-- Seconds since the epoch after which the whole project goes (Copr's delete_after_days).
ALTER TABLE projects ADD COLUMN delete_after BIGINT;
