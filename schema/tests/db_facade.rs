//! The database facade on both backends: migrations apply, builds are requested once per
//! trigger, and state changes are compare-and-set.
//!
//! PostgreSQL must be at 127.0.0.1:5432 (user postgres, trust auth): without it the PostgreSQL
//! test fails, it does not skip.

use ferrocopr_schema::copr_yaml::SrpmMethod;
use ferrocopr_schema::db::{
    BuildFilter, BuildRequest, Direction, ImportedChroot, Page, ProjectSettings, Pruning,
};
use ferrocopr_schema::permissions::Role;
use ferrocopr_schema::{BuildId, BuildSource, Db, Event, Part, ProjectRef, State};
use sqlx::Connection;

const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A new, empty database; returns its URL and name.
async fn fresh_postgres() -> (String, String) {
    let mut conn = sqlx::PgConnection::connect(ADMIN_URL)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL is required at {ADMIN_URL}: {e}"));
    let name = format!(
        "ferrocopr_schema_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos()
    );
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    (format!("postgres://postgres@127.0.0.1:5432/{name}"), name)
}

async fn drop_postgres(name: &str) {
    let mut conn = sqlx::PgConnection::connect(ADMIN_URL)
        .await
        .expect("connect");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .expect("drop database");
}

/// Rows written under the first migration survive the later ones and read back through the
/// facade, with the new columns' defaults.
async fn migrations_keep_old_rows(url: &str, sqlite: bool) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .expect("connect");
    let mut first = ferrocopr_schema::db::migrator(sqlite);
    first.migrations = std::borrow::Cow::Owned(first.migrations[..1].to_vec());
    first.run(&pool).await.expect("first migration");
    for statement in [
        "INSERT INTO projects (owner, name, created_on) VALUES ('alice', 'hello', 1)",
        "INSERT INTO copr_dirs (project_id, name) VALUES (1, 'hello')",
        "INSERT INTO builds (copr_dir_id, submitter, source_json, source_state, submitted_on) \
         VALUES (1, 'alice', '{\"method\":\"scm\",\"clone_url\":\"file:///x\",\"committish\":\"abc\",\"spec\":\"a.spec\"}', 'pending', 1)",
        "INSERT INTO build_chroots (build_id, chroot, state) VALUES (1, 'fedora-41-x86_64', 'waiting')",
        "INSERT INTO deliveries (forge, delivery_id, event, payload, received_on) VALUES ('github', 'd0', 'push', '{}', 1)",
    ] {
        sqlx::query(statement)
            .execute(&pool)
            .await
            .expect(statement);
    }
    pool.close().await;

    let db = Db::connect(url).await.expect("migrate the rest");
    let build = db
        .build(BuildId(1))
        .await
        .expect("read")
        .expect("the old build");
    assert_eq!(build.source_state, State::Pending);
    assert!(!build.background, "old builds are normal ones");
    assert!(!build.enable_net, "old builds stay offline");
    assert_eq!(
        build.timeout, None,
        "old builds keep the instance's timeout"
    );
    assert_eq!(build.source_placement, None);
    let heads = db.queue_heads().await.expect("the old build is queued");
    assert_eq!(heads.len(), 1);
    assert_eq!(
        db.count_source_host_failure(build.id).await.expect("count"),
        1
    );
    assert_eq!(
        db.count_chroot_host_failure(build.id, "fedora-41-x86_64")
            .await
            .expect("count"),
        1
    );
    let delivery = db
        .next_unhandled_delivery()
        .await
        .expect("read")
        .expect("the old delivery");
    assert!(
        !db.defer_delivery(delivery.id, "forge down", 60)
            .await
            .expect("defer")
    );
    assert!(
        db.next_unhandled_delivery().await.expect("read").is_none(),
        "a deferred delivery waits"
    );
    db.close().await;
}

fn request(trigger: &str) -> BuildRequest {
    BuildRequest {
        project: ProjectRef {
            owner: "alice".into(),
            project: "hello".into(),
        },
        dirname: "hello".into(),
        chroots: vec!["fedora-41-x86_64".into(), "epel-9-x86_64".into()],
        submitter: "alice".into(),
        source: BuildSource::Scm {
            clone_url: "file:///tmp/x".into(),
            committish: "abc".into(),
            spec: "hello.spec".into(),
            srpm: SrpmMethod::Spec,
        },
        trigger_key: Some(trigger.into()),
        origin: None,
        cancel_superseded: true,
        success_comment: false,
        background: false,
        enable_net: false,
        timeout: None,
        bconds: Default::default(),
    }
}

async fn facade_script(db: Db) {
    let id = db
        .request_build(&request("t1"))
        .await
        .expect("request")
        .expect("new build");
    assert_eq!(
        db.request_build(&request("t1")).await.expect("request"),
        None,
        "same trigger, no second build"
    );
    assert_eq!(
        db.dir_chroots("alice", "hello").await.expect("chroots"),
        Some(vec!["epel-9-x86_64".into(), "fedora-41-x86_64".into()])
    );
    assert_eq!(
        db.dir_chroots("alice", "nope").await.expect("chroots"),
        None
    );

    let heads = db.queue_heads().await.expect("query");
    assert_eq!(heads.len(), 1, "one pending task: {heads:?}");
    assert_eq!((heads[0].build_id, heads[0].state), (id, State::Pending));
    assert!(heads[0].is_srpm());
    assert_eq!(heads[0].sandbox(), "alice/hello--alice");
    let start = State::Pending
        .next(Part::Source, Event::Start)
        .expect("legal");
    assert!(db.move_source(id, start).await.expect("move"));
    assert!(
        !db.move_source(id, start).await.expect("move"),
        "a stale compare-and-set changes nothing"
    );
    assert!(db.queue_heads().await.expect("query").is_empty());
    let active = db.active_tasks().await.expect("query");
    assert_eq!((active.len(), active[0].state), (1, State::Starting));
    db.place_source(id, Some(r#"{"host":"h"}"#))
        .await
        .expect("place");
    let placed = db.build(id).await.expect("query").expect("build");
    assert_eq!(placed.source_placement.as_deref(), Some(r#"{"host":"h"}"#));

    for (from, event) in [
        (State::Starting, Event::Run),
        (State::Running, Event::Import),
    ] {
        assert!(
            db.move_source(id, from.next(Part::Source, event).expect("legal"))
                .await
                .expect("move")
        );
    }
    let done = State::Importing
        .next(Part::Source, Event::Succeed)
        .expect("legal");
    let imported = [ImportedChroot {
        chroot: "fedora-41-x86_64".into(),
        git_hash: "c0ffee".into(),
    }];
    assert!(
        db.finish_import(id, done, "hello", "1.0-1", &imported)
            .await
            .expect("import")
    );
    let chroots = db.build_chroots(id).await.expect("chroots");
    let states: Vec<_> = chroots
        .iter()
        .map(|c| (c.chroot.as_str(), c.state))
        .collect();
    assert_eq!(
        states,
        [
            ("epel-9-x86_64", State::Skipped),
            ("fedora-41-x86_64", State::Pending)
        ]
    );
    let heads = db.queue_heads().await.expect("query");
    assert_eq!(heads.len(), 1, "one pending task: {heads:?}");
    assert_eq!(heads[0].chroot, "fedora-41-x86_64");

    let build = db.build(id).await.expect("query").expect("build");
    assert_eq!(build.pkg_name.as_deref(), Some("hello"));

    // A newer build in the same CoprDir asks to cancel this unfinished one, and only it.
    assert!(db.builds_to_cancel().await.expect("query").is_empty());
    let newer = db
        .request_build(&request("t2"))
        .await
        .expect("request")
        .expect("new build");
    let to_cancel: Vec<_> = db
        .builds_to_cancel()
        .await
        .expect("query")
        .iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(to_cancel, [id]);
    assert!(
        db.build(id)
            .await
            .expect("query")
            .expect("build")
            .cancel_requested
    );
    assert!(
        !db.build(newer)
            .await
            .expect("query")
            .expect("build")
            .cancel_requested
    );
    let project = request("x").project;
    let latest = db
        .latest_build_in_dir(&project, "hello")
        .await
        .expect("query")
        .expect("a build");
    assert_eq!(latest.id, newer);
    assert_eq!(
        db.request_cancel_dir(&project, "hello")
            .await
            .expect("cancel"),
        1,
        "only the newer one was still to cancel"
    );
    assert_eq!(
        db.request_cancel_dir(&project, "hello")
            .await
            .expect("cancel"),
        0
    );
    assert!(
        db.latest_build_in_dir(&project, "nope")
            .await
            .expect("query")
            .is_none()
    );
    assert!(
        !db.request_cancel(newer).await.expect("cancel"),
        "already asked"
    );
    assert!(!db.request_cancel(BuildId(999_999)).await.expect("cancel"));
    assert_eq!(db.count_deliveries().await.expect("count"), 0);
    assert!(
        db.record_delivery("github", "d1", "push", "{}")
            .await
            .expect("record")
    );
    assert!(
        !db.record_delivery("github", "d1", "push", "{}")
            .await
            .expect("record"),
        "redelivery recorded once"
    );
    reporting_and_retention_script(&db).await;
    db.close().await;
}

/// What the reporter and the janitor read: a forge build is due for reporting until its
/// revision is reported, and again after each change; a pull request's CoprDir can be
/// scheduled for deletion, found due, marked deleted, and revived by a new build.
async fn reporting_and_retention_script(db: &Db) {
    let mut forge_request = request("pr-1");
    forge_request.dirname = "hello:pr:4".into();
    forge_request.success_comment = true;
    forge_request.origin = Some(ferrocopr_schema::ForgeOrigin {
        forge: "gitlab".into(),
        repo: "alice/hello".into(),
        commit_sha: "abc".into(),
        pull_request: Some(4),
    });
    let id = db
        .request_build(&forge_request)
        .await
        .expect("request")
        .expect("new build");
    let due = |builds: Vec<ferrocopr_schema::db::Build>| builds.iter().any(|b| b.id == id);
    let build = db.build(id).await.expect("read").expect("build");
    assert_eq!(build.origin.as_ref().and_then(|o| o.pull_request), Some(4));
    assert!(due(db.builds_to_report().await.expect("query")));
    assert!(
        db.mark_reported(id, None, "accepted", build.revision)
            .await
            .expect("mark")
    );
    db.finish_success_comment(id).await.expect("comment done");
    assert!(
        !due(db.builds_to_report().await.expect("query")),
        "reported"
    );
    let start = State::Pending
        .next(Part::Source, Event::Start)
        .expect("legal");
    assert!(db.move_source(id, start).await.expect("move"));
    assert!(
        due(db.builds_to_report().await.expect("query")),
        "a move makes it due again"
    );

    assert_eq!(
        db.pull_request_comment("gitlab", "alice/hello", 4)
            .await
            .expect("read"),
        None
    );
    db.save_pull_request_comment("gitlab", "alice/hello", 4, 77)
        .await
        .expect("save");
    assert_eq!(
        db.pull_request_comment("gitlab", "alice/hello", 4)
            .await
            .expect("read"),
        Some(77)
    );

    let project = forge_request.project.clone();
    let dirs = db
        .pull_request_dirs("gitlab", "alice/hello", 4)
        .await
        .expect("dirs");
    assert_eq!(dirs, [(project.clone(), "hello:pr:4".to_owned())]);
    assert!(
        db.schedule_dir_deletion(&project, "hello:pr:4", Some(1_000))
            .await
            .expect("schedule")
    );
    assert_eq!(db.dirs_due_for_deletion(999).await.expect("due"), []);
    assert_eq!(db.dirs_due_for_deletion(1_000).await.expect("due"), dirs);
    db.mark_dir_deleted(&project, "hello:pr:4")
        .await
        .expect("deleted");
    assert_eq!(db.dirs_due_for_deletion(2_000).await.expect("due"), []);
    // A new build of the pull request (it was reopened) brings the CoprDir back.
    let mut reopened = forge_request.clone();
    reopened.trigger_key = Some("pr-2".into());
    db.request_build(&reopened)
        .await
        .expect("request")
        .expect("new build");
    assert_eq!(
        db.dir_deletion_date(&project, "hello:pr:4")
            .await
            .expect("date"),
        None
    );
}

/// A build of `hello` in `project` whose one chroot succeeded, moved as the scheduler moves it.
async fn succeeded_build(db: &Db, project: &str, trigger: &str) -> BuildId {
    let mut req = request(trigger);
    req.project.project = project.into();
    req.dirname = project.into();
    req.chroots = vec!["fedora-41-x86_64".into()];
    req.cancel_superseded = false;
    let id = db
        .request_build(&req)
        .await
        .expect("request")
        .expect("new build");
    let mut state = State::Pending;
    for event in [Event::Start, Event::Run, Event::Import] {
        let t = state.next(Part::Source, event).expect("legal");
        assert!(db.move_source(id, t).await.expect("move"));
        state = t.to();
    }
    let t = state.next(Part::Source, Event::Succeed).expect("legal");
    let imported = [ImportedChroot {
        chroot: "fedora-41-x86_64".into(),
        git_hash: "abc".into(),
    }];
    assert!(
        db.finish_import(id, t, "hello", "1.0-1", &imported)
            .await
            .expect("import")
    );
    let mut state = State::Pending;
    for event in [Event::Start, Event::Run, Event::Succeed] {
        let t = state.next(Part::Chroot, event).expect("legal");
        assert!(
            db.move_chroot(id, "fedora-41-x86_64", t)
                .await
                .expect("move")
        );
        state = t.to();
    }
    id
}

/// The API's build lists: by id either way, and filtered by overall state before the page is
/// cut; a custom-script source comes back as it was stored.
async fn api_builds_script(db: &Db) {
    let first = succeeded_build(db, "listed", "l1").await;
    let second = succeeded_build(db, "listed", "l2").await;
    let mut req = request("l3");
    req.project.project = "listed".into();
    req.dirname = "listed".into();
    req.cancel_superseded = false;
    let custom = BuildSource::Custom {
        script: "echo hi".into(),
        chroot: Some("fedora-latest-x86_64".into()),
        builddeps: vec!["tar".into()],
        resultdir: "out".into(),
    };
    req.source = custom.clone();
    let pending = db
        .request_build(&req)
        .await
        .expect("request")
        .expect("new build");
    let project = ProjectRef {
        owner: "alice".into(),
        project: "listed".into(),
    };
    let list = |state: Option<State>, direction: Direction, limit: i64, offset: i64| {
        let (db, project) = (db.clone(), project.clone());
        async move {
            let filter = BuildFilter {
                package: None,
                state,
                direction,
            };
            db.api_builds(&project, filter, Page { limit, offset })
                .await
                .expect("list")
                .into_iter()
                .map(|b| b.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(None, Direction::Desc, 10, 0).await,
        [pending, second, first]
    );
    assert_eq!(list(None, Direction::Asc, 2, 1).await, [second, pending]);
    let succeeded = Some(State::Succeeded);
    assert_eq!(list(succeeded, Direction::Desc, 1, 0).await, [second]);
    assert_eq!(list(succeeded, Direction::Desc, 1, 1).await, [first]);
    assert_eq!(
        list(succeeded, Direction::Desc, 1, 2).await,
        Vec::<BuildId>::new()
    );
    assert_eq!(list(succeeded, Direction::Asc, 5, 0).await, [first, second]);
    assert_eq!(
        list(Some(State::Pending), Direction::Desc, 5, 0).await,
        [pending]
    );
    assert_eq!(
        list(Some(State::Failed), Direction::Desc, 5, 0).await,
        Vec::<BuildId>::new()
    );
    let stored = db.build(pending).await.expect("read").expect("the build");
    assert_eq!(stored.source, custom);
}

/// Pruning: a build-chroot is due once a later successful build of its package has been done
/// for the project's period; never with auto_prune off; once marked, never again.
async fn pruning_script(db: &Db) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let project = |name: &str| ProjectRef {
        owner: "alice".into(),
        project: name.into(),
    };
    let old = succeeded_build(db, "pruned", "p1").await;
    let new = succeeded_build(db, "pruned", "p2").await;
    let kept_old = succeeded_build(db, "kept", "k1").await;
    succeeded_build(db, "kept", "k2").await;
    db.set_pruning(&project("kept"), Pruning::Off)
        .await
        .expect("set");
    assert_eq!(
        db.pruning(&project("kept")).await.expect("read"),
        Pruning::Off
    );
    assert_eq!(
        db.pruning(&project("pruned")).await.expect("read"),
        Pruning::Default
    );
    let due = |at: i64, days: u32, scope: Option<(BuildId, &'static str)>| {
        let db = db.clone();
        async move {
            db.builds_to_prune(at, days, scope)
                .await
                .expect("query")
                .into_iter()
                .map(|c| (c.build_id, c.chroot, c.package))
                .collect::<Vec<_>>()
        }
    };
    let expected = vec![(old, "fedora-41-x86_64".to_owned(), "hello".to_owned())];
    // The instance default, 14 days: not yet; a day after that, yes.
    assert_eq!(due(now, 14, None).await, []);
    assert_eq!(due(now + 15 * 86_400, 14, None).await, expected);
    // The project's own period wins over the default.
    db.set_pruning(&project("pruned"), Pruning::AfterDays(0))
        .await
        .expect("set");
    assert_eq!(due(now, 14, None).await, expected);
    assert_eq!(
        due(now, 14, Some((new, "fedora-41-x86_64"))).await,
        expected
    );
    assert_eq!(due(now, 14, Some((new, "epel-9-x86_64"))).await, []);
    assert_eq!(due(now, 14, Some((kept_old, "fedora-41-x86_64"))).await, []);
    db.mark_pruned(old, "fedora-41-x86_64").await.expect("mark");
    assert_eq!(due(now + 100 * 86_400, 14, None).await, []);
}

/// Users, tokens, groups, roles and projects as the API and the web UI read them.
async fn users_and_projects_script(db: &Db) {
    let alice = db
        .create_user("alice", false)
        .await
        .expect("create")
        .expect("new user");
    assert_eq!(db.create_user("alice", true).await.expect("create"), None);
    let bob = db
        .create_user("bob", true)
        .await
        .expect("create")
        .expect("new user");
    assert!(bob.admin && !alice.admin);
    db.add_api_token(&alice, "login1", "hash1", 2_000_000_000)
        .await
        .expect("token");
    let stored = db.api_token("login1").await.expect("read").expect("token");
    assert_eq!(
        (stored.user, stored.token_sha256.as_str(), stored.expires_on),
        (alice.clone(), "hash1", 2_000_000_000)
    );
    assert_eq!(db.api_token("nope").await.expect("read"), None);
    db.add_group_member("ruby", &alice).await.expect("group");
    db.add_group_member("ruby", &alice)
        .await
        .expect("twice is once");
    assert_eq!(db.user_groups(&alice).await.expect("groups"), ["ruby"]);

    let project = ProjectRef {
        owner: "carol".into(),
        project: "tools".into(),
    };
    let settings = ProjectSettings {
        description: "Tools <script>alert(1)</script> 100% fine".into(),
        additional_repos: vec!["https://example.org/repo".into()],
        enable_net: true,
        ..Default::default()
    };
    let chroots = vec!["fedora-41-x86_64".to_owned(), "epel-9-x86_64".to_owned()];
    assert!(
        db.create_project(&project, &settings, &chroots)
            .await
            .expect("create")
    );
    assert!(
        !db.create_project(&project, &settings, &chroots)
            .await
            .expect("create")
    );
    let read = db.project(&project).await.expect("read").expect("project");
    assert_eq!(read.settings, settings);
    assert_eq!(read.chroots, ["epel-9-x86_64", "fedora-41-x86_64"]);
    assert_eq!(
        db.dir_chroots("carol", "tools").await.expect("chroots"),
        Some(read.chroots.clone()),
        "the main CoprDir exists before any build"
    );
    let page = Page {
        limit: 10,
        offset: 0,
    };
    let names = |projects: Vec<ferrocopr_schema::db::Project>| {
        projects
            .into_iter()
            .map(|p| p.project.project)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(db.projects_of("carol", page).await.expect("list")),
        ["tools"]
    );
    assert_eq!(
        names(
            db.projects_of(
                "carol",
                Page {
                    limit: 10,
                    offset: 1
                }
            )
            .await
            .expect("list")
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        names(db.search_projects("TOOLS", page).await.expect("search")),
        ["tools"]
    );
    assert_eq!(
        names(db.search_projects("100%", page).await.expect("search")),
        ["tools"]
    );
    assert_eq!(
        names(db.search_projects("1000%", page).await.expect("search")),
        Vec::<String>::new(),
        "% is literal"
    );
    assert!(names(db.listed_projects(page).await.expect("list")).contains(&"tools".to_owned()));
    let edited = ProjectSettings {
        description: "edited".into(),
        unlisted_on_hp: true,
        ..settings.clone()
    };
    let fewer = vec!["fedora-41-x86_64".to_owned()];
    assert!(
        db.edit_project(&project, &edited, Some(&fewer))
            .await
            .expect("edit")
    );
    let read = db.project(&project).await.expect("read").expect("project");
    assert_eq!((read.settings, read.chroots), (edited, fewer));
    assert!(!names(db.listed_projects(page).await.expect("list")).contains(&"tools".to_owned()));
    let missing = ProjectRef {
        owner: "carol".into(),
        project: "nope".into(),
    };
    assert!(
        !db.edit_project(&missing, &settings, None)
            .await
            .expect("edit")
    );

    assert_eq!(db.granted_role(&project, &bob).await.expect("role"), None);
    assert!(
        db.grant(&project, &bob, Role::Builder)
            .await
            .expect("grant")
    );
    assert!(db.grant(&project, &bob, Role::Admin).await.expect("grant"));
    assert_eq!(
        db.granted_role(&project, &bob).await.expect("role"),
        Some(Role::Admin)
    );
    assert!(!db.grant(&missing, &bob, Role::Admin).await.expect("grant"));
}

#[tokio::test]
async fn facade_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("db.sqlite").display()
    );
    facade_script(Db::connect(&url).await.expect("connect")).await;
    pruning_script(&Db::connect(&url).await.expect("connect")).await;
    api_builds_script(&Db::connect(&url).await.expect("connect")).await;
    users_and_projects_script(&Db::connect(&url).await.expect("connect")).await;
    // Migrations are idempotent: opening again applies nothing twice.
    Db::connect(&url).await.expect("reopen").close().await;
}

#[tokio::test]
async fn facade_on_postgres() {
    let (url, name) = fresh_postgres().await;
    facade_script(Db::connect(&url).await.expect("connect")).await;
    pruning_script(&Db::connect(&url).await.expect("connect")).await;
    api_builds_script(&Db::connect(&url).await.expect("connect")).await;
    users_and_projects_script(&Db::connect(&url).await.expect("connect")).await;
    Db::connect(&url).await.expect("reopen").close().await;
    drop_postgres(&name).await;
}

#[tokio::test]
async fn migrations_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("db.sqlite").display()
    );
    migrations_keep_old_rows(&url, true).await;
}

#[tokio::test]
async fn migrations_on_postgres() {
    let (url, name) = fresh_postgres().await;
    migrations_keep_old_rows(&url, false).await;
    drop_postgres(&name).await;
}
