//! The walking skeleton's acceptance tests (issue 2), each a script run on SQLite and on
//! PostgreSQL: a push becomes a signed repository that dnf installs from; a bad `.copr.yaml`, a
//! wrong webhook signature and a failing spec each end the way a user needs to see.

use base64::Engine as _;
use ferrocopr_tests::{DbKind, Status, TestEnv, TestRepo, new_delivery_id, push_payload, tools};

const CHROOT: &str = "fedora-41-x86_64";

const HELLO_COPR_YAML: &str = "\
owner: alice
project: hello
chroots: [fedora-41-x86_64]
spec: hello.spec
";

/// No tarball in the tree: ferrocopr makes `hello-1.0.tar.gz` with `git archive`.
const HELLO_SPEC: &str = "\
Name:           hello
Version:        1.0
Release:        1%{?dist}
Summary:        A greeting, packaged by ferrocopr's end-to-end test
License:        MIT
BuildArch:      noarch
Source0:        hello-1.0.tar.gz

%description
A file that says hello, built from a pushed commit.

%prep
%setup -q

%install
mkdir -p %{buildroot}/usr/share/hello
install -m 0644 hello.txt %{buildroot}/usr/share/hello/hello.txt

%files
/usr/share/hello/hello.txt
";

const HELLO_TXT: &str = "Hello from a ferrocopr build!\n";

/// The verdict: the first non-pending status of the aggregate context (chroots have their own
/// contexts beside it).
fn is_final(status: &Status) -> bool {
    status.state != "pending" && status.context.as_deref() == Some("copr/rpm-build")
}

/// A repository `alice/<project>` holding `.copr.yaml` and the spec, committed; returns its sha.
fn hello_repo(env: &TestEnv, project: &str, copr_yaml: &str, spec: &str) -> (TestRepo, String) {
    let repo = env.new_repo(&format!("alice/{project}"));
    repo.write(".copr.yaml", copr_yaml);
    repo.write("hello.spec", spec);
    repo.write("hello.txt", HELLO_TXT);
    let sha = repo.commit("hello 1.0");
    (repo, sha)
}

// ---- a) a push becomes a signed repository that dnf installs from ----

async fn push_becomes_a_signed_dnf_repository(db: DbKind) {
    let env = TestEnv::start(db).await;
    let (repo, sha) = hello_repo(&env, "hello", HELLO_COPR_YAML, HELLO_SPEC);

    let (code, body) = env.push("alice/hello", &repo, &sha, "main").await;
    assert_eq!(code, 202, "the push webhook was not accepted: {body}");

    let done = env.wait_for_status(&sha, is_final).await;
    let statuses = env.statuses(&sha);
    assert_eq!(done.state, "success", "the build failed: {statuses:#?}");
    let done_at = statuses
        .iter()
        .position(|s| *s == done)
        .expect("the final status is among the statuses");
    assert!(
        statuses[..done_at]
            .iter()
            .any(|s| s.state == "pending" && s.context == done.context),
        "no pending status before the success on the same context: {statuses:#?}"
    );
    let link = done.target_url.clone().unwrap_or_default();
    assert!(
        link.starts_with(&format!("{}/", env.public_url())),
        "the success status links outside ferrocopr: {done:#?}"
    );
    let page = env.get(&link).await;
    assert_eq!(page.status, 200, "the status link is broken: {link}");

    // dnf copr enable writes the repository file the plugin names after the first line.
    let root = env.install_root("hello", "41");
    root.copr_enable(env.public_url(), "alice/hello", CHROOT)
        .await;
    let repo_file = root.repo_file("_copr:127.0.0.1:alice:hello.repo");
    assert_eq!(
        repo_file.lines().next(),
        Some("[copr:127.0.0.1:alice:hello]"),
        "{repo_file}"
    );
    assert!(
        repo_file.lines().any(|l| l.trim() == "gpgcheck=1"),
        "the repository does not ask dnf to check signatures:\n{repo_file}"
    );

    // dnf install checks the signature with the key from the repository file.
    root.install("hello").await;
    let installed = root.file("usr/share/hello/hello.txt");
    let text = std::fs::read_to_string(&installed)
        .unwrap_or_else(|e| panic!("{} is not installed: {e}", installed.display()));
    assert_eq!(text, HELLO_TXT);

    // The installed package is signed with the project's key...
    let pubkey = env.get("/results/alice/hello/pubkey.gpg").await;
    assert_eq!(pubkey.status, 200, "no project key: {}", pubkey.text());
    let key_file = env.scratch("keys").join("alice-hello.gpg");
    std::fs::write(&key_file, &pubkey.body).expect("save the project key");
    let project_key = tools::gpg_key_id(&key_file).await;
    let signing_key = root.installed_signature_key_id("hello").await;
    assert!(
        signing_key.eq_ignore_ascii_case(&project_key),
        "hello is signed by {signing_key}, the project's key is {project_key}"
    );

    // ...and the published RPM verifies against it with every check rpm has.
    let rpm_url = root.package_url("hello").await;
    assert!(
        rpm_url.starts_with(&env.url(&format!("/results/alice/hello/{CHROOT}/"))),
        "dnf downloads hello from {rpm_url}"
    );
    let rpm = env.get(&rpm_url).await;
    assert_eq!(rpm.status, 200, "GET {rpm_url}");
    let rpm_file = env.scratch("downloads").join("hello.rpm");
    std::fs::write(&rpm_file, &rpm.body).expect("save the RPM");
    let checked = root.checksig(&rpm_file).await;
    assert!(
        checked.success && checked.stdout.contains("digests signatures OK"),
        "the published RPM does not verify:\n{checked}"
    );

    // The dnf.repo endpoint, as REFERENCE §3 describes it.
    let dnf_repo = env
        .get("/coprs/alice/hello/repo/fedora-41/dnf.repo?arch=x86_64")
        .await;
    assert_eq!(dnf_repo.status, 200, "{}", dnf_repo.text());
    assert_eq!(
        dnf_repo.text().lines().next(),
        Some("[copr:127.0.0.1:alice:hello]")
    );

    let unknown_chroot = env
        .get("/coprs/alice/hello/repo/fedora-40/dnf.repo?arch=x86_64")
        .await;
    assert_eq!(unknown_chroot.status, 404);
    let error_data = unknown_chroot
        .header("Copr-Error-Data")
        .expect("a 404 for an unknown chroot carries Copr-Error-Data");
    let error_data = base64::engine::general_purpose::STANDARD
        .decode(error_data)
        .expect("Copr-Error-Data is base64");
    let error_data: serde_json::Value =
        serde_json::from_slice(&error_data).expect("Copr-Error-Data is JSON");
    let available = error_data["available chroots"]
        .as_array()
        .unwrap_or_else(|| panic!("no \"available chroots\" in {error_data}"));
    assert!(
        available.iter().any(|c| c == CHROOT),
        "{CHROOT} is not among the available chroots: {error_data}"
    );

    let unknown_project = env
        .get("/coprs/alice/nosuchproject/repo/fedora-41/dnf.repo?arch=x86_64")
        .await;
    assert_eq!(unknown_project.status, 404);
    assert_eq!(
        unknown_project.header("Copr-Error-Data"),
        None,
        "a missing project must not look like a missing chroot"
    );

    assert_eq!(env.forge().unexpected_requests(), vec![]);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn push_becomes_a_signed_dnf_repository_sqlite() {
    push_becomes_a_signed_dnf_repository(DbKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn push_becomes_a_signed_dnf_repository_postgres() {
    push_becomes_a_signed_dnf_repository(DbKind::Postgres).await;
}

// ---- b) a bad .copr.yaml fails the commit and starts nothing ----

async fn bad_copr_yaml_fails_without_a_build(db: DbKind) {
    let env = TestEnv::start(db).await;
    // `chroot` (line 3, column 1) is a typo of `chroots`.
    let copr_yaml = "\
owner: alice
project: typo
chroot: [fedora-41-x86_64]
spec: hello.spec
";
    let (repo, sha) = hello_repo(&env, "typo", copr_yaml, HELLO_SPEC);

    let (code, body) = env.push("alice/typo", &repo, &sha, "main").await;
    assert_eq!(code, 202, "the push webhook was not accepted: {body}");

    let failure = env.wait_for_status(&sha, is_final).await;
    assert_eq!(failure.state, "failure", "{failure:#?}");
    let description = failure.description.clone().unwrap_or_default();
    assert!(
        description.contains(".copr.yaml:3:1"),
        "the failure does not name where the mistake is: {failure:#?}"
    );
    assert_eq!(
        env.statuses(&sha),
        vec![failure],
        "a rejected config must post only its failure"
    );
    let results = env.data_dir().join("results/alice");
    assert!(
        !results.exists(),
        "a build started for a rejected config: {} exists",
        results.display()
    );

    assert_eq!(env.forge().unexpected_requests(), vec![]);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_copr_yaml_fails_without_a_build_sqlite() {
    bad_copr_yaml_fails_without_a_build(DbKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_copr_yaml_fails_without_a_build_postgres() {
    bad_copr_yaml_fails_without_a_build(DbKind::Postgres).await;
}

// ---- c) a webhook with a wrong signature is refused and leaves no trace ----

async fn wrong_signature_is_refused(db: DbKind) {
    let env = TestEnv::start(db).await;
    let (repo, sha) = hello_repo(&env, "hello", HELLO_COPR_YAML, HELLO_SPEC);

    let body = push_payload("alice/hello", &repo.clone_url(), &sha, "main");
    let (code, answer) = env
        .github_webhook("push", &new_delivery_id(), &body, Some("not-the-secret"))
        .await;
    assert_eq!(code, 401, "a forged webhook was not refused: {answer}");

    assert_eq!(env.statuses(&sha), vec![]);
    let db = env.db().await;
    let deliveries = db.count_deliveries().await.expect("count the deliveries");
    db.close().await;
    assert_eq!(deliveries, 0, "a forged webhook was recorded");

    assert_eq!(env.forge().unexpected_requests(), vec![]);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_signature_is_refused_sqlite() {
    wrong_signature_is_refused(DbKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_signature_is_refused_postgres() {
    wrong_signature_is_refused(DbKind::Postgres).await;
}

// ---- d) a spec that fails to build: failure status, and its log one click away ----

const FAILING_MARKER: &str = "ferrocopr-e2e: this install step fails on purpose";

async fn failing_spec_links_its_log(db: DbKind) {
    let env = TestEnv::start(db).await;
    let copr_yaml = HELLO_COPR_YAML.replace("project: hello", "project: broken");
    let spec = HELLO_SPEC.replace(
        "mkdir -p %{buildroot}/usr/share/hello\n",
        &format!("echo '{FAILING_MARKER}'\nexit 1\n"),
    );
    let (repo, sha) = hello_repo(&env, "broken", &copr_yaml, &spec);

    let (code, body) = env.push("alice/broken", &repo, &sha, "main").await;
    assert_eq!(code, 202, "the push webhook was not accepted: {body}");

    let failure = env.wait_for_status(&sha, is_final).await;
    assert_eq!(failure.state, "failure", "{:#?}", env.statuses(&sha));
    let link = failure
        .target_url
        .clone()
        .unwrap_or_else(|| panic!("the failure status has no link: {failure:#?}"));
    let page = env.get(&link).await;
    assert_eq!(page.status, 200, "the status link is broken: {link}");

    let log_links: Vec<String> = hrefs(&page.text())
        .into_iter()
        .filter(|href| href.contains("builder-live.log"))
        .map(|href| resolve(&env, &link, &href))
        .collect();
    assert!(
        !log_links.is_empty(),
        "the build page links no builder-live.log:\n{}",
        page.text()
    );
    let mut logs = Vec::new();
    for url in &log_links {
        let log = env.get(url).await;
        assert_eq!(log.status, 200, "the log link is broken: {url}");
        let text = String::from_utf8_lossy(&tools::gunzip_if_gzip(log.body).await).into_owned();
        logs.push((url.clone(), text));
    }
    assert!(
        logs.iter()
            .any(|(_, text)| text.contains(FAILING_MARKER) && text.contains("error")),
        "no linked log shows the failing command and the error: {logs:#?}"
    );

    assert_eq!(env.forge().unexpected_requests(), vec![]);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_spec_links_its_log_sqlite() {
    failing_spec_links_its_log(DbKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_spec_links_its_log_postgres() {
    failing_spec_links_its_log(DbKind::Postgres).await;
}

/// The `href="…"` values of an HTML page.
fn hrefs(html: &str) -> Vec<String> {
    html.split("href=")
        .skip(1)
        .filter_map(|rest| {
            let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
            rest[1..].split(quote).next().map(decode_entities)
        })
        .collect()
}

/// The attribute value a browser sees: templates escape `/`, `&` and quotes as entities.
fn decode_entities(value: &str) -> String {
    [
        ("&#x2f;", "/"),
        ("&#x27;", "'"),
        ("&quot;", "\""),
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&amp;", "&"),
    ]
    .iter()
    .fold(value.to_owned(), |text, (entity, plain)| {
        text.replace(entity, plain)
    })
}

/// An href as a browser resolves it against the page at `page_url`.
fn resolve(env: &TestEnv, page_url: &str, href: &str) -> String {
    if href.starts_with("http://") || href.starts_with("https://") {
        href.to_owned()
    } else if href.starts_with('/') {
        env.url(href)
    } else {
        let base = page_url.split(['?', '#']).next().unwrap_or(page_url);
        let dir = base.rsplit_once('/').map_or(base, |(dir, _)| dir);
        format!("{dir}/{href}")
    }
}
