//! The database facade on both backends: migrations apply, builds are requested once per
//! trigger, state changes are compare-and-set, packages are kept and projects deleted.
//!
//! PostgreSQL must be at 127.0.0.1:5432 (user postgres, trust auth): without it the PostgreSQL
//! test fails, it does not skip.

use ferrocopr_schema::copr_yaml::SrpmMethod;
use ferrocopr_schema::db::{
    BuildFilter, BuildRequest, BuildSummary, Direction, ImportedChroot, PackageSummary, Page,
    ProjectSettings, Pruning,
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
    let project = ProjectRef {
        owner: "alice".into(),
        project: project.into(),
    };
    built(db, &project, trigger, "hello", "1.0-1").await
}

/// A build of `package` `version` in `project`'s main CoprDir whose one chroot succeeded,
/// moved as the scheduler moves it.
async fn built(
    db: &Db,
    project: &ProjectRef,
    trigger: &str,
    package: &str,
    version: &str,
) -> BuildId {
    let id = requested(db, project, trigger).await;
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
        db.finish_import(id, t, package, version, &imported)
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

/// A build of `project`'s main CoprDir, requested and not started yet (so of no known package).
async fn requested(db: &Db, project: &ProjectRef, trigger: &str) -> BuildId {
    let mut req = request(trigger);
    req.project = project.clone();
    req.dirname = project.project.clone();
    req.chroots = vec!["fedora-41-x86_64".into()];
    req.cancel_superseded = false;
    db.request_build(&req)
        .await
        .expect("request")
        .expect("new build")
}

/// What the web UI's pages read: a project's packages with their newest versions (in one
/// query), a page of its builds, an owner's projects (unlisted ones too) with their newest
/// builds, and which owners exist.
async fn pages_script(db: &Db) {
    let project = |name: &str| ProjectRef {
        owner: "dave".into(),
        project: name.into(),
    };
    let pkgs = project("pkgs");
    let hello_1 = built(db, &pkgs, "w1", "hello", "1.0-1").await;
    let world = built(db, &pkgs, "w2", "world", "0.1-1").await;
    let hello_2 = built(db, &pkgs, "w3", "hello", "2.0-1").await;
    let unknown = requested(db, &pkgs, "w4").await;
    assert_eq!(
        db.project_package_summaries(&pkgs).await.expect("packages"),
        [
            PackageSummary {
                name: "hello".into(),
                version: Some("2.0-1".into()),
                last_build: hello_2,
                builds: 2,
            },
            PackageSummary {
                name: "world".into(),
                version: Some("0.1-1".into()),
                last_build: world,
                builds: 1,
            },
        ],
        "the newest build's version, not the newest version's; a build of no known package \
         is no package"
    );
    assert_eq!(
        db.project_package_summaries(&project("none"))
            .await
            .expect("packages"),
        Vec::<PackageSummary>::new()
    );
    let page = |limit, offset| Page { limit, offset };
    let ids = |builds: Vec<BuildSummary>| builds.iter().map(|b| b.build.id).collect::<Vec<_>>();
    assert_eq!(
        ids(db
            .project_build_summaries(&pkgs, page(3, 0))
            .await
            .expect("builds")),
        [unknown, hello_2, world]
    );
    let older = db
        .project_build_summaries(&pkgs, page(3, 3))
        .await
        .expect("builds");
    assert_eq!(ids(older.clone()), [hello_1]);
    assert_eq!(older[0].state(), State::Succeeded);

    let unlisted = ProjectSettings {
        description: "not on the home page".into(),
        unlisted_on_hp: true,
        ..Default::default()
    };
    assert!(
        db.create_project(&project("quiet"), &unlisted, &["epel-9-x86_64".to_owned()])
            .await
            .expect("create")
    );
    let summaries = db.owner_projects("dave", page(10, 0)).await.expect("list");
    let listed: Vec<_> = summaries
        .iter()
        .map(|s| {
            (
                s.project.project.project.as_str(),
                s.project.settings.unlisted_on_hp,
                s.project.chroots.clone(),
                s.last_build.as_ref().map(|b| (b.build.id, b.state())),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("quiet", true, vec!["epel-9-x86_64".to_owned()], None),
            (
                "pkgs",
                false,
                vec!["fedora-41-x86_64".to_owned()],
                Some((unknown, State::Pending))
            ),
        ],
        "newest first, unlisted too, each with its newest build"
    );
    let second = db.owner_projects("dave", page(1, 1)).await.expect("list");
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].project.project, pkgs);
    assert!(
        db.owner_projects("nobody", page(10, 0))
            .await
            .expect("list")
            .is_empty()
    );

    let erin = db
        .create_user("erin", false)
        .await
        .expect("create")
        .expect("new user");
    db.add_group_member("crew", &erin).await.expect("group");
    for (owner, exists) in [
        ("dave", true),
        ("erin", true),
        ("@crew", true),
        ("nobody", false),
        ("@nocrew", false),
        ("crew", false),
        ("@erin", false),
    ] {
        assert_eq!(
            db.owner_exists(owner).await.expect("exists"),
            exists,
            "{owner}"
        );
    }
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
    let project = |name: &str| ProjectRef {
        owner: "alice".into(),
        project: name.into(),
    };
    let old = succeeded_build(db, "pruned", "p1").await;
    let new = succeeded_build(db, "pruned", "p2").await;
    let kept_old = succeeded_build(db, "kept", "k1").await;
    succeeded_build(db, "kept", "k2").await;
    // Taken after the builds ended, however long a busy machine took to record them: with a
    // period of 0 days they are due from their end on.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
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

/// Packages, forge projects allowed in, and project deletion: asked for, the project leaves
/// every read; its rows go only once none of its builds is unfinished, freeing the name.
async fn packages_and_deletion_script(db: &Db) {
    let doomed = ProjectRef {
        owner: "alice".into(),
        project: "doomed".into(),
    };
    let built = succeeded_build(db, "doomed", "doomed-1").await;
    let page = Page {
        limit: 10,
        offset: 0,
    };

    // An added package beside one known only from a build.
    let scm = serde_json::json!({"clone_url": "file:///tmp/extra", "committish": "main"});
    assert!(
        db.add_package(&doomed, "extra", "scm", &scm)
            .await
            .expect("add")
    );
    assert!(
        !db.add_package(&doomed, "extra", "scm", &scm)
            .await
            .expect("add twice"),
        "one package per name"
    );
    let missing = ProjectRef {
        owner: "alice".into(),
        project: "nope".into(),
    };
    assert!(
        !db.add_package(&missing, "extra", "scm", &scm)
            .await
            .expect("add to nothing")
    );
    let listed = db
        .project_packages(&doomed, None, page)
        .await
        .expect("list");
    let summary: Vec<_> = listed
        .iter()
        .map(|p| (p.name.as_str(), p.latest, p.added.is_some()))
        .collect();
    assert_eq!(
        summary,
        [("extra", None, true), ("hello", Some(built), false)]
    );
    let one = db
        .project_packages(&doomed, Some("extra"), page)
        .await
        .expect("one");
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].added.as_ref().map(|a| &a.source), Some(&scm));
    let edited = serde_json::json!({"distgit": "fedora"});
    assert!(
        db.edit_package(&doomed, "extra", "distgit", &edited)
            .await
            .expect("edit")
    );
    assert!(
        !db.edit_package(&doomed, "nope", "distgit", &edited)
            .await
            .expect("edit nothing")
    );
    let read = db
        .package(&doomed, "extra")
        .await
        .expect("read")
        .expect("the package");
    assert_eq!(
        (read.source_type.as_str(), &read.source),
        ("distgit", &edited)
    );
    assert!(db.delete_package(&doomed, "extra").await.expect("delete"));
    assert!(!db.delete_package(&doomed, "extra").await.expect("twice"));
    assert_eq!(db.package(&doomed, "extra").await.expect("read"), None);
    assert!(
        db.add_package(&doomed, "extra", "scm", &scm)
            .await
            .expect("add again")
    );

    // Forge projects a project lets build into it.
    let settings = ProjectSettings {
        packit_forge_projects_allowed: vec![
            "github.com/bob/hello".into(),
            "gitlab.com/team/*".into(),
        ],
        ..Default::default()
    };
    let shared = ProjectRef {
        owner: "alice".into(),
        project: "shared".into(),
    };
    let chroots = ["fedora-41-x86_64".to_owned()];
    assert!(
        db.create_project(&shared, &settings, &chroots)
            .await
            .expect("create")
    );
    let read = db.project(&shared).await.expect("read").expect("project");
    assert_eq!(read.settings, settings);
    for (forge_project, allowed) in [
        ("github.com/bob/hello", true),
        ("GitHub.com/Bob/Hello", true),
        ("github.com/bob/other", false),
        ("gitlab.com/bob/hello", false),
        ("gitlab.com/team/tool-1", true),
        ("gitlab.com/team/sub/tool", true),
    ] {
        let allowing = db.projects_allowing(forge_project).await.expect("read");
        assert_eq!(
            allowing.contains(&shared),
            allowed,
            "{forge_project}: {allowing:?}"
        );
    }
    assert!(
        !db.projects_allowing("github.com/bob/hello")
            .await
            .expect("read")
            .contains(&missing)
    );

    // Deletion: a build still waits, so the rows stay until it is canceled.
    let mut waiting = request("doomed-2");
    waiting.project = doomed.clone();
    waiting.dirname = "doomed:pr:3".into();
    waiting.chroots = vec!["fedora-41-x86_64".into()];
    waiting.cancel_superseded = false;
    let waiting = db
        .request_build(&waiting)
        .await
        .expect("request")
        .expect("new build");
    assert!(db.request_project_deletion(&doomed).await.expect("delete"));
    assert!(
        !db.request_project_deletion(&doomed)
            .await
            .expect("delete twice"),
        "asked once"
    );
    assert!(
        db.build(waiting)
            .await
            .expect("read")
            .expect("build")
            .cancel_requested
    );
    assert_eq!(db.project(&doomed).await.expect("read"), None);
    assert_eq!(db.dir_chroots("alice", "doomed").await.expect("read"), None);
    assert!(
        !db.projects_of("alice", page)
            .await
            .expect("list")
            .iter()
            .any(|p| p.project == doomed)
    );
    assert!(
        db.search_projects("doomed", page)
            .await
            .expect("search")
            .is_empty()
    );
    assert_eq!(db.package(&doomed, "extra").await.expect("read"), None);
    assert!(db.project_deletion_pending(&doomed).await.expect("read"));
    assert!(
        !db.create_project(&doomed, &ProjectSettings::default(), &chroots)
            .await
            .expect("create"),
        "the name is taken until the rows go"
    );
    let deleted = db.deleted_projects().await.expect("deleted");
    assert_eq!(deleted.len(), 1);
    assert_eq!((&deleted[0].project, deleted[0].busy), (&doomed, true));
    assert!(
        !db.remove_deleted_project(&doomed)
            .await
            .expect("remove while busy")
    );
    assert!(
        !db.remove_deleted_project(&shared)
            .await
            .expect("remove a live project"),
        "only deleted projects go"
    );

    // The scheduler cancels the waiting build; then the rows go and the name is free.
    let t = State::Pending
        .next(Part::Source, Event::Cancel)
        .expect("legal");
    assert!(db.move_source(waiting, t).await.expect("cancel"));
    let t = State::Waiting
        .next(Part::Chroot, Event::Cancel)
        .expect("legal");
    db.move_chroot(waiting, "fedora-41-x86_64", t)
        .await
        .expect("cancel the chroot");
    assert!(!db.deleted_projects().await.expect("deleted")[0].busy);
    assert!(db.remove_deleted_project(&doomed).await.expect("remove"));
    assert!(db.deleted_projects().await.expect("deleted").is_empty());
    assert_eq!(db.build(built).await.expect("read").map(|b| b.id), None);
    assert!(!db.project_deletion_pending(&doomed).await.expect("read"));
    assert!(
        db.create_project(&doomed, &ProjectSettings::default(), &chroots)
            .await
            .expect("create again")
    );
    assert!(
        db.project_packages(&doomed, None, page)
            .await
            .expect("list")
            .is_empty(),
        "nothing of the old project comes back"
    );
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
    pages_script(&Db::connect(&url).await.expect("connect")).await;
    packages_and_deletion_script(&Db::connect(&url).await.expect("connect")).await;
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
    pages_script(&Db::connect(&url).await.expect("connect")).await;
    packages_and_deletion_script(&Db::connect(&url).await.expect("connect")).await;
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
