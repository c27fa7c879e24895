-- Packages, project deletion and the forge projects a project lets build into it (issue #7).
-- Keep in step with ../sqlite/0010_packages.sql.

-- A package a user added to a project (copr-cli add-package-scm/add-package-distgit): where its
-- sources come from, so `package/build` can build it again. Builds name their package on their
-- own (builds.pkg_name); a package known only from builds has no row here.
CREATE TABLE packages (
    id BIGSERIAL PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects (id),
    name TEXT NOT NULL,
    -- Copr's source type: 'scm' or 'distgit'.
    source_type TEXT NOT NULL,
    -- The fields of that source type, as JSON (Copr's source_dict).
    source_json TEXT NOT NULL,
    created_on BIGINT NOT NULL,
    UNIQUE (project_id, name)
);

-- Space-separated forge repositories (`github.com/alice/hello`) whose `.copr.yaml` may build
-- into this project although they belong to another owner (Copr's
-- packit_forge_projects_allowed).
ALTER TABLE projects ADD COLUMN packit_forge_projects_allowed TEXT NOT NULL DEFAULT '';
-- When the project's deletion was asked for: it is gone from every read at once; the backend
-- removes its results and then its rows once none of its tasks runs.
ALTER TABLE projects ADD COLUMN deleted_on BIGINT;
