-- The first schema: projects, CoprDirs, builds, build-chroots and forge deliveries.
-- Keep in step with ../sqlite/0001_init.sql: the same tables, columns and meanings.

CREATE TABLE projects (
    id BIGSERIAL PRIMARY KEY,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    created_on BIGINT NOT NULL,
    UNIQUE (owner, name)
);

CREATE TABLE project_chroots (
    project_id BIGINT NOT NULL REFERENCES projects (id),
    chroot TEXT NOT NULL,
    PRIMARY KEY (project_id, chroot)
);

CREATE TABLE copr_dirs (
    id BIGSERIAL PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects (id),
    name TEXT NOT NULL,
    UNIQUE (project_id, name)
);

CREATE TABLE builds (
    id BIGSERIAL PRIMARY KEY,
    copr_dir_id BIGINT NOT NULL REFERENCES copr_dirs (id),
    submitter TEXT NOT NULL,
    source_json TEXT NOT NULL,
    source_state TEXT NOT NULL,
    canceled BIGINT NOT NULL DEFAULT 0,
    pkg_name TEXT,
    pkg_version TEXT,
    fail_reason TEXT,
    submitted_on BIGINT NOT NULL,
    started_on BIGINT,
    ended_on BIGINT,
    trigger_key TEXT UNIQUE,
    forge TEXT,
    forge_repo TEXT,
    commit_sha TEXT,
    reported_status TEXT
);

CREATE TABLE build_chroots (
    build_id BIGINT NOT NULL REFERENCES builds (id),
    chroot TEXT NOT NULL,
    state TEXT NOT NULL,
    git_hash TEXT,
    started_on BIGINT,
    ended_on BIGINT,
    PRIMARY KEY (build_id, chroot)
);

CREATE TABLE deliveries (
    id BIGSERIAL PRIMARY KEY,
    forge TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    event TEXT NOT NULL,
    payload TEXT NOT NULL,
    received_on BIGINT NOT NULL,
    processed_on BIGINT,
    outcome TEXT,
    UNIQUE (forge, delivery_id)
);

CREATE INDEX builds_source_state ON builds (source_state);
CREATE INDEX build_chroots_state ON build_chroots (state);
CREATE INDEX deliveries_unprocessed ON deliveries (processed_on);
