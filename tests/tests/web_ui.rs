//! The web UI (issue #7) through HTTP, as a browser reads it: the home, owner, project, build
//! and queue pages, groups' pages at Copr's `/coprs/g/` URLs, lists a page at a time, user text
//! shown as text, the live log, and a page for every error. Then the acceptance in a real
//! browser: headless Chromium loads each page while a build runs, follows its log with the
//! page's script, and leaves screenshots in `docs/screenshots/`.

use ferrocopr_schema::db::{BuildRequest, ProjectSettings};
use ferrocopr_schema::model::ProjectRef;
use ferrocopr_schema::{BuildId, BuildSource, State};
use ferrocopr_tests::http;
use ferrocopr_tests::packages::{self, HELLO_SPEC};
use ferrocopr_tests::{DbKind, HttpResponse, TestEnv};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const CHROOT: &str = "fedora-41-x86_64";
const EVIL: &str = "<script>alert(1)</script>";
/// [`EVIL`] as text in HTML (minijinja also escapes `/`, as `&#x2f;`, which pages are read
/// with as `/`).
const EVIL_AS_TEXT: &str = "&lt;script&gt;alert(1)&lt;/script&gt;";

/// A package whose `%build` writes a numbered line every second for a while: a build that is
/// running, with a growing log, while the browser looks at it.
const SLOW_SPEC: &str = "\
Name:           slow
Version:        1.0
Release:        1%{?dist}
Summary:        Takes its time
License:        MIT
BuildArch:      noarch

%description
Writes a line every second while it builds.

%build
for i in $(seq 1 50); do echo \"tick $i of 50\"; sleep 1; done

%install
mkdir -p %{buildroot}/usr/share/slow
echo slow > %{buildroot}/usr/share/slow/slow.txt

%files
/usr/share/slow/slow.txt
";

async fn create_project(env: &TestEnv, name: &str, description: &str) {
    let settings = ProjectSettings {
        description: description.to_owned(),
        ..ProjectSettings::default()
    };
    create_project_with(env, "alice", name, settings).await;
}

async fn create_project_with(env: &TestEnv, owner: &str, name: &str, settings: ProjectSettings) {
    let made = env
        .db()
        .await
        .create_project(
            &ProjectRef {
                owner: owner.into(),
                project: name.into(),
            },
            &settings,
            &[CHROOT.to_owned()],
        )
        .await
        .expect("create the project");
    assert!(made, "{owner}/{name} is new");
}

/// `count` builds requested in `owner/project` (as the API requests them) and canceled at
/// once: builds to fill lists with, quickly, that build nothing. Returns them oldest first,
/// once all have finished.
async fn canceled_builds(env: &TestEnv, owner: &str, project: &str, count: usize) -> Vec<BuildId> {
    let db = env.db().await;
    let mut ids = Vec::with_capacity(count);
    for _ in 0..count {
        let request = BuildRequest {
            project: ProjectRef {
                owner: owner.into(),
                project: project.into(),
            },
            dirname: project.into(),
            chroots: vec![CHROOT.to_owned()],
            submitter: "alice".into(),
            // Nothing listens on port 1: were the build to start, its SRPM would fail at once.
            source: BuildSource::Url {
                url: "http://127.0.0.1:1/never.src.rpm".into(),
            },
            trigger_key: None,
            origin: None,
            cancel_superseded: false,
            success_comment: false,
            background: true,
            enable_net: false,
            timeout: None,
            bconds: Default::default(),
        };
        let id = db
            .request_build(&request)
            .await
            .expect("request a build")
            .expect("a new build");
        db.request_cancel(id).await.expect("ask to cancel it");
        ids.push(id);
    }
    for id in &ids {
        env.wait_for_build(*id).await;
    }
    ids
}

async fn submit(env: &TestEnv, project: &str, name: &str, spec: &str) -> BuildId {
    let srpm = packages::srpm(&env.scratch(&format!("srpm-{name}")), name, spec);
    env.submissions()
        .await
        .from_upload(
            packages::submission(project, CHROOT),
            &format!("{name}-1.0-1.src.rpm"),
            &srpm,
        )
        .await
        .expect("the upload is taken")
}

#[track_caller]
fn assert_page(response: &HttpResponse, status: u16, contains: &[&str]) -> String {
    // minijinja escapes `/` too: read the page as a browser does, where it is `/` again.
    let html = response.text().replace("&#x2f;", "/");
    assert_eq!(response.status, status, "{html}");
    assert!(
        response
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/html")),
        "{:?}",
        response.headers
    );
    for text in contains {
        assert!(html.contains(text), "{text:?} missing from:\n{html}");
    }
    html
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_renders_and_user_text_stays_text() {
    let env = TestEnv::start(DbKind::Sqlite).await;
    create_project(&env, "escaped", &format!("Tools {EVIL} & more")).await;
    let id = submit(&env, "hello-web", "hello", HELLO_SPEC).await;
    let (_, chroots) = env.wait_for_build(id).await;
    assert_eq!(chroots[0].state, State::Succeeded, "{chroots:?}");
    let build_url = format!("/coprs/alice/hello-web/build/{id}/");

    // Home: listed projects (with descriptions as text) and recent builds.
    let home = assert_page(
        &env.get("/").await,
        200,
        &[
            "alice/escaped",
            EVIL_AS_TEXT,
            "alice/hello-web",
            &build_url,
            "succeeded",
        ],
    );
    assert!(!home.contains(EVIL), "{home}");

    // Project: description as text, the exact dnf line, chroots, packages, dirs, builds.
    let dnf_line = format!("dnf copr --hub {} enable alice/escaped", env.public_url());
    let project = assert_page(
        &env.get("/coprs/alice/escaped/").await,
        200,
        &[EVIL_AS_TEXT, &dnf_line, CHROOT, "No builds yet."],
    );
    assert!(!project.contains(EVIL), "{project}");
    assert_page(
        &env.get("/coprs/alice/hello-web/").await,
        200,
        &[
            &format!("dnf copr --hub {} enable alice/hello-web", env.public_url()),
            "<td>hello</td>",
            &format!("/coprs/build/{id}/"),
            &build_url,
            "/coprs/alice/hello-web/repo/fedora-41/dnf.repo?arch=x86_64",
        ],
    );
    // Without the trailing slash, as people type it.
    assert_page(&env.get("/coprs/alice/escaped").await, 200, &[EVIL_AS_TEXT]);
    // The project page links its owner's page, which lists the owner's projects with their
    // descriptions as text and their latest builds.
    assert_page(
        &env.get("/coprs/alice/escaped/").await,
        200,
        &["href=\"/coprs/alice/\""],
    );
    let owner = assert_page(
        &env.get("/coprs/alice/").await,
        200,
        &[
            "/coprs/alice/escaped/",
            EVIL_AS_TEXT,
            "/coprs/alice/hello-web/",
            &build_url,
            "succeeded",
            CHROOT,
        ],
    );
    assert!(!owner.contains(EVIL), "{owner}");
    assert_page(
        &env.get("/coprs/alice").await,
        200,
        &["/coprs/alice/escaped/"],
    );

    // Build: every part's state, times in UTC, links to its results and logs.
    let padded = format!("{:08}", id.0);
    let build = assert_page(
        &env.get(&build_url).await,
        200,
        &[
            &format!("Build {id}"),
            "srpm-builds",
            CHROOT,
            "succeeded",
            " UTC",
            &format!("/results/alice/hello-web/srpm-builds/{padded}/builder-live.log"),
            &format!("/results/alice/hello-web/{CHROOT}/{padded}-hello/builder-live.log"),
            ".noarch.rpm",
        ],
    );
    assert!(
        !build.contains("id=\"live-log\""),
        "a finished build follows no log: {build}"
    );
    // Copr's short link leads there.
    assert_page(
        &env.get(&format!("/coprs/build/{id}/")).await,
        200,
        &[&format!("Build {id}")],
    );

    // The results tree serves logs in pieces (HTTP Range), as log followers ask for them.
    let log = format!("/results/alice/hello-web/{CHROOT}/{padded}-hello/builder-live.log");
    let range = http::get_with(&env.url(&log), vec![("Range".into(), "bytes=0-9".into())]).await;
    assert_eq!(range.status, 206, "{:?}", range.headers);
    assert_eq!(range.body.len(), 10);
    // The live-log endpoint answers a finished part at once, with its state.
    let follow = env
        .get(&format!("{build_url}live-log/{CHROOT}?offset=0"))
        .await;
    assert_eq!(follow.status, 200, "{}", follow.text());
    assert_eq!(follow.header("ferrocopr-part-state"), Some("succeeded"));
    let full = env.get(&log).await;
    assert_eq!(follow.body, full.body);

    // Queue: every section, empty now.
    assert_page(
        &env.get("/status/").await,
        200,
        &["Build queue", "Running", "Starting", "Importing", "Pending"],
    );

    // A clear page for every error; the machines' paths keep bare answers.
    assert_page(
        &env.get("/coprs/alice/nothing/").await,
        404,
        &["Project does not exist."],
    );
    assert_page(
        &env.get("/coprs/nobody/").await,
        404,
        &["There is no user or group of this name here."],
    );
    assert_page(
        &env.get("/coprs/alice/hello-web/build/99999/").await,
        404,
        &["No such build."],
    );
    assert_page(
        &env.get(&format!("/coprs/alice/escaped/build/{id}/")).await,
        404,
        &["No such build."],
    );
    assert_page(
        &env.get("/no/such/page").await,
        404,
        &["404 Not Found", "There is no page at this address."],
    );
    assert_page(
        &env.get(&format!("{build_url}live-log/epel-9-x86_64")).await,
        404,
        &["no such part"],
    );
    for machine in ["/api_3/no-such-call", "/api/nothing", "/results/nobody/x/y"] {
        let response = env.get(machine).await;
        assert_eq!(response.status, 404, "{machine}");
        assert!(
            !response.text().contains("<html"),
            "{machine}: {}",
            response.text()
        );
    }
    env.stop().await;
}

/// The page size of a project's build list (`BUILDS_PER_PAGE` of `bot/src/pages.rs`).
const BUILDS_PER_PAGE: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_and_group_pages_and_lists_a_page_at_a_time() {
    let env = TestEnv::start(DbKind::Sqlite).await;
    create_project_with(
        &env,
        "@grp",
        "tools",
        ProjectSettings {
            description: format!("The group's tools {EVIL}"),
            ..ProjectSettings::default()
        },
    )
    .await;
    create_project_with(
        &env,
        "alice",
        "hidden",
        ProjectSettings {
            description: "Not for the home page".into(),
            unlisted_on_hp: true,
            ..ProjectSettings::default()
        },
    )
    .await;
    let group_build = canceled_builds(&env, "@grp", "tools", 1).await[0];
    // One build more than a page: the oldest is alone on the second page.
    let many = canceled_builds(&env, "alice", "many", BUILDS_PER_PAGE + 1).await;
    let (oldest, newest) = (many[0], many[BUILDS_PER_PAGE]);

    // Unlisted projects are not on the home page, but on their owner's page.
    let home = assert_page(
        &env.get("/").await,
        200,
        &[
            "/coprs/alice/many/",
            "href=\"/coprs/alice/\"",
            "/coprs/g/grp/tools/",
        ],
    );
    assert!(!home.contains("/coprs/alice/hidden/"), "{home}");
    assert!(
        !home.contains("rel=\"next\""),
        "one page of projects: {home}"
    );
    assert_page(
        &env.get("/coprs/alice/").await,
        200,
        &[
            "/coprs/alice/hidden/",
            "not on the home page",
            "/coprs/alice/many/",
            &format!("/coprs/alice/many/build/{newest}/"),
            "canceled",
        ],
    );

    // A group's pages at Copr's URLs, and the same at `@group` ones; links to them in the `g`
    // form, as Copr's; repo files where dnf's plugin asks for them, with a literal `@`.
    let group = assert_page(
        &env.get("/coprs/g/grp/").await,
        200,
        &[
            "@grp",
            "href=\"/coprs/g/grp/tools/\"",
            EVIL_AS_TEXT,
            &format!("/coprs/g/grp/tools/build/{group_build}/"),
        ],
    );
    assert!(!group.contains(EVIL), "{group}");
    let dnf_line = format!("dnf copr --hub {} enable @grp/tools", env.public_url());
    for url in [
        "/coprs/g/grp/tools/",
        "/coprs/@grp/tools/",
        "/coprs/g/grp/tools",
    ] {
        let project = assert_page(
            &env.get(url).await,
            200,
            &[
                &dnf_line,
                "href=\"/coprs/g/grp/\"",
                &format!("/coprs/g/grp/tools/build/{group_build}/"),
                "/coprs/@grp/tools/repo/fedora-41/dnf.repo?arch=x86_64",
            ],
        );
        assert!(!project.contains(EVIL), "{url}: {project}");
    }
    for url in [
        format!("/coprs/g/grp/tools/build/{group_build}/"),
        format!("/coprs/@grp/tools/build/{group_build}/"),
        format!("/coprs/build/{group_build}/"),
    ] {
        assert_page(
            &env.get(&url).await,
            200,
            &[
                &format!("Build {group_build}"),
                "canceled",
                "href=\"/coprs/g/grp/tools/\"",
            ],
        );
    }
    let follow = env
        .get(&format!(
            "/coprs/g/grp/tools/build/{group_build}/live-log/{CHROOT}"
        ))
        .await;
    assert_eq!(follow.status, 200, "{}", follow.text());
    assert_eq!(follow.header("ferrocopr-part-state"), Some("canceled"));
    let repo = env
        .get("/coprs/@grp/tools/repo/fedora-41/dnf.repo?arch=x86_64")
        .await;
    assert_eq!(repo.status, 200, "{}", repo.text());
    assert!(
        repo.text()
            .starts_with("[copr:127.0.0.1:group_grp:tools]\n"),
        "{}",
        repo.text()
    );
    assert_page(
        &env.get("/coprs/g/nogroup/").await,
        404,
        &["There is no user or group of this name here."],
    );
    assert_page(
        &env.get("/coprs/g/grp/nothing/").await,
        404,
        &["Project does not exist."],
    );

    // A project's builds, a page at a time: "older" only where there is an older page,
    // "newer" only where there is a newer one.
    let first = assert_page(
        &env.get("/coprs/alice/many/").await,
        200,
        &[
            &format!("/coprs/alice/many/build/{newest}/"),
            "href=\"?page=2#builds\"",
            "older",
        ],
    );
    assert!(
        !first.contains(&format!("/coprs/alice/many/build/{oldest}/")),
        "{first}"
    );
    assert!(!first.contains("rel=\"prev\""), "{first}");
    let second = assert_page(
        &env.get("/coprs/alice/many/?page=2").await,
        200,
        &[
            &format!("/coprs/alice/many/build/{oldest}/"),
            "href=\"?page=1#builds\"",
            "newer",
            "page 2",
        ],
    );
    // (The newest build is still linked, as its CoprDir's latest, in the directories' table.)
    assert!(
        !second.contains(&format!("/coprs/alice/many/build/{}/", many[1])),
        "{second}"
    );
    assert!(!second.contains("rel=\"next\""), "{second}");
    assert_page(
        &env.get("/coprs/alice/many/?page=1").await,
        200,
        &[&format!("/coprs/alice/many/build/{newest}/")],
    );
    // A page past the end is not there; a page number that is none is the user's error.
    for past in [
        "/coprs/alice/many/?page=3",
        "/coprs/alice/?page=2",
        "/?page=2",
    ] {
        assert_page(&env.get(past).await, 404, &["no page that far"]);
    }
    for bad in ["0", "-1", "x", "", "1.5", "99999999999999999999", "2%20"] {
        for path in ["/coprs/alice/many/", "/coprs/alice/", "/coprs/g/grp/", "/"] {
            assert_page(
                &env.get(&format!("{path}?page={bad}")).await,
                400,
                &[
                    "400 Bad Request",
                    "A page number is a whole number from 1 on",
                ],
            );
        }
    }
    env.stop().await;
}

/// Where the screenshots go: `docs/screenshots/` of the repository.
fn screenshots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
    std::fs::create_dir_all(&dir).expect("make docs/screenshots");
    dir
}

/// Longer than any page here takes, shorter than a hang is worth waiting for.
const CHROMIUM_TIMEOUT_SECS: &str = "120";

/// Debian's `chromium`, headless, on `url`, with `args` (`--dump-dom`, `--screenshot=…`);
/// returns stdout. Fails, never skips, when Chromium is missing: `scripts/install-deps.sh`
/// installs it.
async fn chromium(env: &TestEnv, url: &str, args: &[String]) -> String {
    static RUN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let run = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let profile = env.scratch(&format!("chromium-{run}"));
    // coreutils' timeout: a browser that hangs fails the test instead of stalling it.
    let mut command = Command::new("timeout");
    command
        .args([
            CHROMIUM_TIMEOUT_SECS,
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(env.url(url));
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("the chromium task")
        .unwrap_or_else(|e| panic!("could not run timeout(1) for chromium: {e}"));
    // 127: timeout(1) found no `chromium` to run.
    assert_ne!(
        output.status.code(),
        Some(127),
        "chromium is missing: install it with scripts/install-deps.sh"
    );
    assert!(
        output.status.success(),
        "chromium on {url} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The page's DOM once `budget_ms` of virtual time has passed: timers run fast, but a pending
/// request holds the clock, so the live log's waiting requests play out in real time.
async fn dom_after(env: &TestEnv, url: &str, budget_ms: u64) -> String {
    chromium(
        env,
        url,
        &[
            "--dump-dom".to_owned(),
            format!("--virtual-time-budget={budget_ms}"),
        ],
    )
    .await
}

/// A screenshot of the page as loaded (no virtual time: a screenshot waits for a frame, which
/// a pending request would hold back forever).
async fn screenshot(env: &TestEnv, url: &str, name: &str) {
    let file = screenshots_dir().join(format!("{name}.png"));
    let _ = std::fs::remove_file(&file);
    chromium(env, url, &[format!("--screenshot={}", file.display())]).await;
    let png = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert!(png.starts_with(b"\x89PNG"), "{} is a PNG", file.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_shows_the_pages_and_follows_a_running_log() {
    let env = TestEnv::start(DbKind::Sqlite).await;
    create_project(
        &env,
        "slow",
        &format!("Builds slowly, to be watched. A description with {EVIL} shows it as text."),
    )
    .await;
    let done = submit(&env, "slow", "hello", HELLO_SPEC).await;
    env.wait_for_build(done).await;
    let id = submit(&env, "slow", "slow", SLOW_SPEC).await;
    let build_url = format!("/coprs/alice/slow/build/{id}/");

    // Wait until the RPM build runs and its log has its first ticks.
    let follow = format!("{build_url}live-log/{CHROOT}?offset=0");
    let deadline = tokio::time::Instant::now() + ferrocopr_tests::STATUS_TIMEOUT;
    loop {
        let response = env.get(&follow).await;
        if response.header("ferrocopr-part-state") == Some("running")
            && response.text().contains("tick 2 of 50")
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slow build never ran: {} {}",
            response.status,
            response.text()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // The build page while it runs: the script appends what the log gains after the page
    // loaded (the server renders the log up to then; only the script makes `appended` spans).
    let dom = dom_after(&env, &build_url, 6_000).await;
    assert!(dom.contains("id=\"live-log\""), "{dom}");
    let appended: Vec<&str> = dom
        .split("<span class=\"appended\">")
        .skip(1)
        .map(|s| s.split("</span>").next().unwrap_or_default())
        .collect();
    assert!(
        appended.iter().any(|chunk| chunk.contains("tick ")),
        "no log line was appended after the page loaded: {appended:?}\n{dom}"
    );
    screenshot(&env, &build_url, "build").await;

    let queue = dom_after(&env, "/status/", 1_000).await;
    assert!(
        queue.contains("alice/slow") && queue.contains(CHROOT),
        "{queue}"
    );
    screenshot(&env, "/status/", "queue").await;

    let home = dom_after(&env, "/", 1_000).await;
    assert!(
        home.contains("alice/slow") && home.contains(EVIL_AS_TEXT),
        "{home}"
    );
    screenshot(&env, "/", "home").await;

    let project = dom_after(&env, "/coprs/alice/slow/", 1_000).await;
    assert!(project.contains(EVIL_AS_TEXT), "{project}");
    assert!(
        !project.contains(EVIL),
        "the description's script became a script: {project}"
    );
    screenshot(&env, "/coprs/alice/slow/", "project").await;

    let owner = dom_after(&env, "/coprs/alice/", 1_000).await;
    assert!(
        owner.contains("/coprs/alice/slow/") && owner.contains(EVIL_AS_TEXT),
        "{owner}"
    );
    assert!(
        !owner.contains(EVIL),
        "the description's script became a script: {owner}"
    );
    screenshot(&env, "/coprs/alice/", "owner").await;

    let (_, chroots) = env.wait_for_build(id).await;
    assert_eq!(chroots[0].state, State::Succeeded, "{chroots:?}");
    env.stop().await;
}
