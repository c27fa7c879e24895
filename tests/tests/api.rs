//! The API v3 (`/api_3/`, issue 7) over HTTP: every endpoint's errors are JSON `{"error": …}`
//! with the status copr-cli branches on (a table: malformed bodies, missing, malformed, wrong
//! and expired credentials, forbidden owners, unknown projects and builds, unsupported SCM types
//! and SRPM methods, chroot patterns that pick nothing, unknown states and orders, and what
//! granted roles and group membership allow; packages added, edited, built and deleted,
//! projects deleted), and a build
//! uploaded through the API is built, listed page by page, shown per chroot and in dnf5's
//! `rpmrepo`, while a second one is canceled.

use ferrocopr_bot::users::{Credentials, create_user};
use ferrocopr_schema::permissions::Role;
use ferrocopr_schema::{BuildId, ProjectRef};
use ferrocopr_tests::http::{HttpResponse, basic_auth, request};
use ferrocopr_tests::{DbKind, TestEnv, packages};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const CHROOT: &str = "fedora-41-x86_64";

/// Who a request claims to be.
#[derive(Clone, Copy, Debug)]
enum As {
    Nobody,
    Alice,
    Mallory,
    WrongToken,
    Malformed,
    Expired,
    /// Granted `builder` in alice/hello.
    Bob,
    /// Granted `admin` in alice/hello.
    Carol,
    /// A member of `@ruby`.
    Dave,
}

struct Callers {
    alice: Credentials,
    mallory: Credentials,
    bob: Credentials,
    carol: Credentials,
    dave: Credentials,
}

impl Callers {
    fn header(&self, who: As) -> Option<String> {
        match who {
            As::Nobody => None,
            As::Alice => Some(basic_auth(&self.alice.login, &self.alice.token)),
            As::Mallory => Some(basic_auth(&self.mallory.login, &self.mallory.token)),
            As::WrongToken => Some(basic_auth(&self.alice.login, "not-the-token")),
            As::Malformed => Some("Bearer something".to_owned()),
            As::Expired => Some(basic_auth("expiredlogin", "expiredtoken")),
            As::Bob => Some(basic_auth(&self.bob.login, &self.bob.token)),
            As::Carol => Some(basic_auth(&self.carol.login, &self.carol.token)),
            As::Dave => Some(basic_auth(&self.dave.login, &self.dave.token)),
        }
    }
}

async fn call(
    env: &TestEnv,
    callers: &Callers,
    method: &str,
    path: &str,
    who: As,
    content_type: &str,
    body: Vec<u8>,
) -> HttpResponse {
    let mut headers = vec![("Content-Type".to_owned(), content_type.to_owned())];
    if let Some(auth) = callers.header(who) {
        headers.push(("Authorization".to_owned(), auth));
    }
    request(method, &env.url(path), headers, body).await
}

fn json_of(response: &HttpResponse, what: &str) -> Value {
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "{what}: not JSON: {}",
        response.text()
    );
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("{what}: {e}: {}", response.text()))
}

async fn start() -> (TestEnv, Callers) {
    let env = TestEnv::start(DbKind::Sqlite).await;
    let db = env.db().await;
    let (_, alice) = create_user(&db, "alice", false).await.expect("alice");
    let (mallory_user, mallory) = create_user(&db, "mallory", false).await.expect("mallory");
    let expired = hex::encode(Sha256::digest(b"expiredtoken"));
    db.add_api_token(&mallory_user, "expiredlogin", &expired, 1)
        .await
        .expect("an expired token");
    let (bob_user, bob) = create_user(&db, "bob", false).await.expect("bob");
    let (carol_user, carol) = create_user(&db, "carol", false).await.expect("carol");
    let (dave_user, dave) = create_user(&db, "dave", false).await.expect("dave");
    db.add_group_member("ruby", &dave_user)
        .await
        .expect("dave in @ruby");
    let callers = Callers {
        alice,
        mallory,
        bob,
        carol,
        dave,
    };
    let add = call(
        &env,
        &callers,
        "POST",
        "/api_3/project/add/alice",
        As::Alice,
        "application/json",
        json!({"name": "hello", "chroots": [CHROOT], "description": "Says hello"})
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(add.status, 200, "{}", add.text());
    let hello = ProjectRef {
        owner: "alice".into(),
        project: "hello".into(),
    };
    db.grant(&hello, &bob_user, Role::Builder)
        .await
        .expect("bob builds");
    db.grant(&hello, &carol_user, Role::Admin)
        .await
        .expect("carol administers");
    (env, callers)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_error_is_json_with_its_status() {
    use As::*;
    let (env, callers) = start().await;
    let url_build = |owner: &str, project: &str| {
        json!({"ownername": owner, "projectname": project,
               "pkgs": ["https://example.org/hello-1.0-1.src.rpm"]})
        .to_string()
    };
    let package_scm = r#"{"package_name": "hello", "clone_url": "https://example.org/hello.git", "spec": "hello.spec", "scm_type": "git", "source_build_method": "rpkg"}"#.to_owned();
    let package_build = |owner: &str, project: &str, package: &str| {
        json!({"ownername": owner, "projectname": project, "package_name": package}).to_string()
    };
    // create/scm and create/custom, with one field changed from a request that would be taken.
    let scm = |owner: &str, project: &str, change: Value| {
        let mut body = json!({"ownername": owner, "projectname": project,
                              "clone_url": "https://example.org/hello.git", "committish": "",
                              "subdirectory": "", "spec": "hello.spec", "scm_type": "git",
                              "source_build_method": "rpkg"});
        merge(&mut body, change);
        body.to_string()
    };
    let custom = |owner: &str, project: &str, change: Value| {
        let mut body = json!({"ownername": owner, "projectname": project,
                              "script": "echo hi", "chroot": "fedora-latest-x86_64",
                              "builddeps": "", "resultdir": ""});
        merge(&mut body, change);
        body.to_string()
    };
    let big = format!(
        "{{\"pkgs\": \"{}\"}}",
        "x".repeat(ferrocopr_bot::api::JSON_LIMIT + 1)
    );
    let json = "application/json";
    #[rustfmt::skip]
    let table: Vec<(&str, &str, As, &str, String, u16)> = vec![
        // Reading is open; unknown things are 404, malformed queries 400.
        ("GET", "/api_3/nothing/here", Nobody, json, String::new(), 404),
        ("GET", "/api_3/project?ownername=alice&projectname=nope", Nobody, json, String::new(), 404),
        ("GET", "/api_3/project?ownername=alice", Nobody, json, String::new(), 400),
        ("GET", "/api_3/project/list?ownername=alice&limit=many", Nobody, json, String::new(), 400),
        ("GET", "/api_3/project/search", Nobody, json, String::new(), 400),
        ("GET", "/api_3/build/999", Nobody, json, String::new(), 404),
        ("GET", "/api_3/build/abc", Nobody, json, String::new(), 400),
        ("GET", "/api_3/build/list?ownername=alice&projectname=nope", Nobody, json, String::new(), 404),
        ("GET", "/api_3/build/list?ownername=alice", Nobody, json, String::new(), 400),
        ("GET", "/api_3/build-chroot?build_id=999&chrootname=fedora-41-x86_64", Nobody, json, String::new(), 404),
        ("GET", "/api_3/build-chroot/list?build_id=x", Nobody, json, String::new(), 400),
        ("GET", "/api_3/rpmrepo/alice/nope/fedora-41/", Nobody, json, String::new(), 404),
        ("GET", "/api_3/package?ownername=alice&projectname=hello&packagename=nope", Nobody, json, String::new(), 404),
        ("GET", "/api_3/package/list?ownername=alice&projectname=nope", Nobody, json, String::new(), 404),
        ("GET", "/api_3/package/list?ownername=alice", Nobody, json, String::new(), 400),
        ("DELETE", "/api_3/project/add/alice", Alice, json, String::new(), 405),
        ("GET", "/api_3/auth-check", Nobody, json, String::new(), 401),
        ("GET", "/api_3/auth-check", Expired, json, String::new(), 401),
        // project/add
        ("POST", "/api_3/project/add/alice", Nobody, json, r#"{"name": "x", "chroots": ["fedora-41-x86_64"]}"#.into(), 401),
        ("POST", "/api_3/project/add/alice", WrongToken, json, r#"{"name": "x", "chroots": ["fedora-41-x86_64"]}"#.into(), 401),
        ("POST", "/api_3/project/add/alice", Malformed, json, r#"{"name": "x", "chroots": ["fedora-41-x86_64"]}"#.into(), 401),
        ("POST", "/api_3/project/add/alice", Expired, json, r#"{"name": "x", "chroots": ["fedora-41-x86_64"]}"#.into(), 401),
        ("POST", "/api_3/project/add/alice", Alice, json, "{".into(), 400),
        ("POST", "/api_3/project/add/alice", Alice, json, r#"{"name": 5}"#.into(), 400),
        ("POST", "/api_3/project/add/alice", Alice, json, r#"{"name": "x", "chroots": ["fedora-9-x86_64"]}"#.into(), 400),
        ("POST", "/api_3/project/add/alice", Alice, json, r#"{"name": "hello", "chroots": ["fedora-41-x86_64"]}"#.into(), 409),
        ("POST", "/api_3/project/add/alice", Mallory, json, r#"{"name": "x", "chroots": ["fedora-41-x86_64"]}"#.into(), 403),
        ("POST", "/api_3/project/add/@ruby", Alice, json, r#"{"name": "x", "chroots": ["fedora-41-x86_64"]}"#.into(), 403),
        // project/edit
        ("PUT", "/api_3/project/edit/alice/hello", Nobody, json, "{}".into(), 401),
        ("PUT", "/api_3/project/edit/alice/hello", Mallory, json, "{}".into(), 403),
        ("PUT", "/api_3/project/edit/alice/nope", Alice, json, "{}".into(), 404),
        ("PUT", "/api_3/project/edit/alice/hello", Alice, json, "[1, 2]".into(), 400),
        // builds
        ("POST", "/api_3/build/create/url", Nobody, json, url_build("alice", "hello"), 401),
        ("POST", "/api_3/build/create/url", WrongToken, json, url_build("alice", "hello"), 401),
        ("POST", "/api_3/build/create/url", Alice, json, "{\"pkgs\": 3}".into(), 400),
        ("POST", "/api_3/build/create/url", Mallory, json, url_build("alice", "hello"), 403),
        ("POST", "/api_3/build/create/url", Alice, json, url_build("alice", "nope"), 404),
        ("POST", "/api_3/build/create/url", Alice, json, big, 413),
        ("POST", "/api_3/build/create/url", Alice, json,
            r#"{"ownername": "alice", "projectname": "hello", "pkgs": ["ftp://x/y.zip"]}"#.into(), 400),
        ("POST", "/api_3/build/create/upload", Alice, json, url_build("alice", "hello"), 400),
        ("POST", "/api_3/build/create/upload", Nobody, "multipart/form-data; boundary=x", "--x--".into(), 401),
        ("POST", "/api_3/build/check-before-build", Mallory, json, url_build("alice", "hello"), 403),
        ("POST", "/api_3/build/check-before-build", Alice, json, url_build("nobody", "hello"), 404),
        // create/scm
        ("POST", "/api_3/build/create/scm", Nobody, json, scm("alice", "hello", json!({})), 401),
        ("POST", "/api_3/build/create/scm", WrongToken, json, scm("alice", "hello", json!({})), 401),
        ("POST", "/api_3/build/create/scm", Alice, json, "{\"clone_url\": ".into(), 400),
        ("POST", "/api_3/build/create/scm", Mallory, json, scm("alice", "hello", json!({})), 403),
        ("POST", "/api_3/build/create/scm", Alice, json, scm("alice", "nope", json!({})), 404),
        ("POST", "/api_3/build/create/scm", Alice, json, scm("alice", "hello", json!({"scm_type": "svn"})), 400),
        ("POST", "/api_3/build/create/scm", Alice, json, scm("alice", "hello", json!({"source_build_method": "tito"})), 400),
        ("POST", "/api_3/build/create/scm", Alice, json, scm("alice", "hello", json!({"source_build_method": "tito_test"})), 400),
        ("POST", "/api_3/build/create/scm", Alice, json, scm("alice", "hello", json!({"clone_url": ""})), 400),
        ("POST", "/api_3/build/create/scm", Alice, json, scm("alice", "hello", json!({"clone_url": "ssh://x/y.git"})), 400),
        ("POST", "/api_3/build/create/scm", Alice, json, scm("alice", "hello", json!({"committish": "--upload-pack=x"})), 400),
        ("POST", "/api_3/build/create/scm", Alice, json, scm("alice", "hello", json!({"spec": "../../etc/x.spec"})), 400),
        ("POST", "/api_3/build/create/scm", Alice, json, scm("alice", "hello", json!({"subdirectory": "/etc"})), 400),
        ("POST", "/api_3/build/create/scm", Alice, json, scm("alice", "hello", json!({"chroots": ["epel-*"]})), 400),
        ("POST", "/api_3/build/create/scm", Alice, json, scm("alice", "hello", json!({"chroots": ["fedora-4[1-"]})), 400),
        ("POST", "/api_3/build/create/scm", Alice, json, scm("alice", "hello", json!({"exclude_chroots": ["*-aarch64"]})), 400),
        ("POST", "/api_3/build/create/scm", Alice, json, scm("alice", "hello", json!({"exclude_chroots": ["fedora-*"]})), 400),
        ("POST", "/api_3/build/create/scm", Dave, json, scm("alice", "hello", json!({})), 403),
        // create/custom
        ("POST", "/api_3/build/create/custom", Nobody, json, custom("alice", "hello", json!({})), 401),
        ("POST", "/api_3/build/create/custom", WrongToken, json, custom("alice", "hello", json!({})), 401),
        ("POST", "/api_3/build/create/custom", Expired, json, custom("alice", "hello", json!({})), 401),
        ("POST", "/api_3/build/create/custom", Alice, json, "[1]".into(), 400),
        ("POST", "/api_3/build/create/custom", Alice, json, custom("alice", "hello", json!({"script": 5})), 400),
        ("POST", "/api_3/build/create/custom", Mallory, json, custom("alice", "hello", json!({})), 403),
        ("POST", "/api_3/build/create/custom", Alice, json, custom("bob", "hello", json!({})), 404),
        ("POST", "/api_3/build/create/custom", Alice, json, custom("alice", "hello", json!({"script": " "})), 400),
        ("POST", "/api_3/build/create/custom", Alice, json, custom("alice", "hello", json!({"resultdir": "../out"})), 400),
        ("POST", "/api_3/build/create/custom", Alice, json, custom("alice", "hello", json!({"chroots": ["fedora-4?-aarch64"]})), 400),
        ("POST", "/api_3/build/create/custom", Alice, json, custom("alice", "hello", json!({"background": "yes"})), 400),
        // build/list: states and orders
        ("GET", "/api_3/build/list?ownername=alice&projectname=hello&status=done", Nobody, json, String::new(), 400),
        ("GET", "/api_3/build/list?ownername=alice&projectname=hello&status=succeeded", Nobody, json, String::new(), 200),
        ("GET", "/api_3/build/list?ownername=alice&projectname=hello&order_type=up", Nobody, json, String::new(), 400),
        ("GET", "/api_3/build/list?ownername=alice&projectname=hello&order=name", Nobody, json, String::new(), 400),
        ("GET", "/api_3/build/list?ownername=alice&projectname=hello&order=id&order_type=asc", Nobody, json, String::new(), 200),
        ("GET", "/api_3/build/list?ownername=alice&projectname=nope&status=failed", Nobody, json, String::new(), 404),
        ("PUT", "/api_3/build/cancel/999", Nobody, json, String::new(), 401),
        ("PUT", "/api_3/build/cancel/999", Alice, json, String::new(), 404),
        // Roles and groups: what a builder, a project admin and a group member may do.
        ("POST", "/api_3/build/check-before-build", Bob, json, url_build("alice", "hello"), 200),
        ("PUT", "/api_3/project/edit/alice/hello", Bob, json, "{}".into(), 403),
        ("POST", "/api_3/project/add/alice", Bob, json, r#"{"name": "x", "chroots": ["fedora-41-x86_64"]}"#.into(), 403),
        ("PUT", "/api_3/project/edit/alice/hello", Carol, json, r#"{"instructions": "dnf install hello"}"#.into(), 200),
        ("POST", "/api_3/build/check-before-build", Dave, json, url_build("alice", "hello"), 403),
        ("POST", "/api_3/project/add/@ruby", Dave, json, r#"{"name": "gems", "chroots": ["fedora-41-x86_64"]}"#.into(), 200),
        ("PUT", "/api_3/project/edit/@ruby/gems", Dave, json, r#"{"description": "Gems"}"#.into(), 200),
        ("PUT", "/api_3/project/edit/@ruby/gems", Alice, json, "{}".into(), 403),
        ("POST", "/api_3/build/create/url", Dave, json, url_build("@ruby", "gems"), 200),
        ("POST", "/api_3/build/create/url", Alice, json, url_build("@ruby", "gems"), 403),
        // Project settings: auto_prune, prune_days and packit_forge_projects_allowed.
        ("POST", "/api_3/project/add/alice", Alice, json,
            r#"{"name": "x", "chroots": ["fedora-41-x86_64"], "packit_forge_projects_allowed": ["alice/hello"]}"#.into(), 400),
        ("POST", "/api_3/project/add/alice", Alice, json,
            r#"{"name": "x", "chroots": ["fedora-41-x86_64"], "auto_prune": "yes"}"#.into(), 400),
        ("PUT", "/api_3/project/edit/alice/hello", Alice, json,
            r#"{"packit_forge_projects_allowed": ["https://github.com/bob/hello"]}"#.into(), 400),
        ("PUT", "/api_3/project/edit/alice/hello", Alice, json,
            r#"{"auto_prune": false, "packit_forge_projects_allowed": ["github.com/bob/hello"]}"#.into(), 200),
        // package/add: project admins add packages; builders do not.
        ("POST", "/api_3/package/add/alice/hello/hello/scm", Nobody, json, package_scm.clone(), 401),
        ("POST", "/api_3/package/add/alice/hello/hello/scm", WrongToken, json, package_scm.clone(), 401),
        ("POST", "/api_3/package/add/alice/hello/hello/scm", Mallory, json, package_scm.clone(), 403),
        ("POST", "/api_3/package/add/alice/hello/hello/scm", Bob, json, package_scm.clone(), 403),
        ("POST", "/api_3/package/add/alice/nope/hello/scm", Alice, json, package_scm.clone(), 404),
        ("POST", "/api_3/package/add/alice/hello/hello/scm", Alice, json, "{".into(), 400),
        ("POST", "/api_3/package/add/alice/hello/hello/scm", Alice, json, r#"{"spec": "hello.spec"}"#.into(), 400),
        ("POST", "/api_3/package/add/alice/hello/hello/scm", Alice, json,
            r#"{"clone_url": "https://example.org/hello.git", "source_build_method": "tito"}"#.into(), 400),
        ("POST", "/api_3/package/add/alice/hello/hello/scm", Alice, json,
            r#"{"clone_url": "https://example.org/hello.git", "spec": "../../etc/x.spec"}"#.into(), 400),
        ("POST", "/api_3/package/add/alice/hello/hello/pypi", Alice, json, r#"{"pypi_package_name": "hello"}"#.into(), 400),
        ("POST", "/api_3/package/add/alice/hello/hello/custom", Alice, json, r#"{"builddeps": "make"}"#.into(), 400),
        ("POST", "/api_3/package/add/alice/hello/hello/custom", Alice, json, r#"{"script": "true", "resultdir": "../out"}"#.into(), 400),
        ("POST", "/api_3/package/add/alice/hello/scripted/custom", Alice, json, r#"{"script": "true", "resultdir": "out"}"#.into(), 200),
        ("POST", "/api_3/package/add/alice/hello/hello/distgit", Alice, json, r#"{"distgit": "nowhere"}"#.into(), 400),
        ("POST", "/api_3/package/add/alice/hello/hello/scm", Alice, json, package_scm.clone(), 200),
        ("POST", "/api_3/package/add/alice/hello/hello/scm", Alice, json, package_scm.clone(), 409),
        ("POST", "/api_3/package/add/alice/hello/other/distgit", Carol, json, r#"{"distgit": "fedora"}"#.into(), 200),
        // package/edit
        ("POST", "/api_3/package/edit/alice/hello/hello/scm", Nobody, json, "{}".into(), 401),
        ("POST", "/api_3/package/edit/alice/hello/hello/scm", Mallory, json, "{}".into(), 403),
        ("POST", "/api_3/package/edit/alice/hello/nope/scm", Alice, json, "{}".into(), 404),
        ("POST", "/api_3/package/edit/alice/nope/hello/scm", Alice, json, "{}".into(), 404),
        ("POST", "/api_3/package/edit/alice/hello/hello/scm", Alice, json, "[1".into(), 400),
        ("POST", "/api_3/package/edit/alice/hello/hello/url", Alice, json, "{}".into(), 400),
        ("POST", "/api_3/package/edit/alice/hello/hello/scm", Alice, json, r#"{"committish": "v1"}"#.into(), 200),
        // package/build: builders build added packages.
        ("POST", "/api_3/package/build", Nobody, json, package_build("alice", "hello", "hello"), 401),
        ("POST", "/api_3/package/build", WrongToken, json, package_build("alice", "hello", "hello"), 401),
        ("POST", "/api_3/package/build", Mallory, json, package_build("alice", "hello", "hello"), 403),
        ("POST", "/api_3/package/build", Alice, json, package_build("alice", "nope", "hello"), 404),
        ("POST", "/api_3/package/build", Alice, json, package_build("alice", "hello", "nope"), 404),
        ("POST", "/api_3/package/build", Alice, json, r#"{"ownername": "alice", "projectname": "hello"}"#.into(), 400),
        ("POST", "/api_3/package/build", Alice, json, "{".into(), 400),
        // Past the permission check, refused for its chroot: a builder may build.
        ("POST", "/api_3/package/build", Bob, json,
            r#"{"ownername": "alice", "projectname": "hello", "package_name": "hello", "chroots": ["fedora-9-x86_64"]}"#.into(), 400),
        // package/delete
        ("DELETE", "/api_3/package/delete/alice/hello/other", Nobody, json, String::new(), 401),
        ("DELETE", "/api_3/package/delete/alice/hello/other", Mallory, json, String::new(), 403),
        ("DELETE", "/api_3/package/delete/alice/hello/other", Bob, json, String::new(), 403),
        ("DELETE", "/api_3/package/delete/alice/hello/nope", Alice, json, String::new(), 404),
        ("DELETE", "/api_3/package/delete/alice/nope/other", Alice, json, String::new(), 404),
        // python-copr's form: the package named in the body.
        ("DELETE", "/api_3/package/delete", Nobody, json, json!({"ownername": "alice", "projectname": "hello", "package_name": "other"}).to_string(), 401),
        ("DELETE", "/api_3/package/delete", Mallory, json, json!({"ownername": "alice", "projectname": "hello", "package_name": "other"}).to_string(), 403),
        ("DELETE", "/api_3/package/delete", Alice, json, json!({"ownername": "alice", "projectname": "hello"}).to_string(), 400),
        ("DELETE", "/api_3/package/delete", Alice, json, "[1".into(), 400),
        ("DELETE", "/api_3/package/delete", Carol, json, json!({"ownername": "alice", "projectname": "hello", "package_name": "other"}).to_string(), 200),
        ("DELETE", "/api_3/package/delete/alice/hello/other", Alice, json, String::new(), 404),
        // project/delete: the project's admins only.
        ("DELETE", "/api_3/project/delete/@ruby/gems", Nobody, json, String::new(), 401),
        ("DELETE", "/api_3/project/delete/@ruby/gems", WrongToken, json, String::new(), 401),
        ("DELETE", "/api_3/project/delete/alice/hello", Mallory, json, String::new(), 403),
        ("DELETE", "/api_3/project/delete/alice/hello", Bob, json, String::new(), 403),
        ("DELETE", "/api_3/project/delete/@ruby/gems", Alice, json, String::new(), 403),
        ("DELETE", "/api_3/project/delete/alice/nope", Alice, json, String::new(), 404),
        ("DELETE", "/api_3/project/delete/@ruby/gems", Dave, json, String::new(), 200),
        ("GET", "/api_3/project?ownername=@ruby&projectname=gems", Nobody, json, String::new(), 404),
        ("POST", "/api_3/project/delete/@ruby/gems", Dave, json, String::new(), 404),
    ];
    let mut failures = Vec::new();
    for (method, path, who, content_type, body, status) in table {
        let what = format!("{method} {path} as {who:?}");
        let response = call(
            &env,
            &callers,
            method,
            path,
            who,
            content_type,
            body.into_bytes(),
        )
        .await;
        let error = serde_json::from_slice::<Value>(&response.body)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned));
        let is_json = response.header("content-type") == Some("application/json");
        let error_told = status < 400 || error.as_deref().is_some_and(|e| !e.is_empty());
        if response.status != status || !is_json || !error_told {
            failures.push(format!(
                "{what}: expected {status} with JSON (an error when it fails), got {} {:?}: {}",
                response.status,
                response.header("content-type"),
                response.text()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // What works answers JSON too.
    let home = env.get("/api_3/").await;
    assert_eq!(json_of(&home, "home"), json!({"version": 3}));
    // The settings the table set show in the project.
    let hello = json_of(
        &env.get("/api_3/project?ownername=alice&projectname=hello")
            .await,
        "project",
    );
    assert_eq!(hello["auto_prune"], false);
    assert_eq!(hello["prune_days"], Value::Null);
    assert_eq!(
        hello["packit_forge_projects_allowed"],
        json!(["github.com/bob/hello"])
    );
    let packages = json_of(
        &env.get("/api_3/package/list?ownername=alice&projectname=hello")
            .await,
        "package list",
    );
    assert_eq!(packages["items"][0]["name"], "hello");
    assert_eq!(packages["items"][0]["source_dict"]["committish"], "v1");
    assert_eq!(packages["items"][1]["name"], "scripted");
    assert_eq!(packages["items"][1]["source_type"], "custom");
    assert_eq!(packages["items"][1]["source_dict"]["resultdir"], "out");
    assert_eq!(packages["items"].as_array().map(Vec::len), Some(2));
    let check = call(
        &env,
        &callers,
        "GET",
        "/api_3/auth-check",
        Alice,
        json,
        vec![],
    )
    .await;
    assert_eq!(json_of(&check, "auth-check")["name"], "alice");
    env.stop().await;
}

/// `base` with the fields of `change` set (a JSON object over a JSON object).
fn merge(base: &mut Value, change: Value) {
    if let (Some(base), Value::Object(change)) = (base.as_object_mut(), change) {
        base.extend(change);
    }
}

fn upload_body(boundary: &str, filename: &str, srpm: &[u8], fields: &Value) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"pkgs\"; \
             filename=\"{filename}\"\r\nContent-Type: application/x-rpm\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(srpm);
    body.extend_from_slice(
        format!(
            "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"json\"; \
             filename=\"json\"\r\nContent-Type: application/json\r\n\r\n{fields}\r\n--{boundary}--\r\n"
        )
        .as_bytes(),
    );
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_build_list_and_cancel() {
    let (env, callers) = start().await;
    let srpm = packages::srpm(&env.scratch("srpm"), "hello", packages::HELLO_SPEC);
    let fields = json!({"ownername": "alice", "projectname": "hello", "project_dirname": "hello",
                        "chroots": [CHROOT], "timeout": null, "background": false});
    let upload = |body| {
        call(
            &env,
            &callers,
            "POST",
            "/api_3/build/create/upload",
            As::Alice,
            "multipart/form-data; boundary=XyZ",
            body,
        )
    };
    let first = upload(upload_body("XyZ", "hello-1.0-1.src.rpm", &srpm, &fields)).await;
    let first = json_of(&first, "upload");
    assert_eq!(first["ownername"], "alice");
    assert_eq!(first["projectname"], "hello");
    assert_eq!(first["chroots"], json!([CHROOT]));
    let first_id = first["id"].as_i64().expect("an id");
    let (_, chroots) = env.wait_for_build(BuildId(first_id)).await;
    assert!(chroots.iter().all(|c| c.state.name() == "succeeded"));

    let shown = json_of(&env.get(&format!("/api_3/build/{first_id}")).await, "get");
    assert_eq!(shown["state"], "succeeded");
    assert_eq!(shown["source_package"]["name"], "hello");
    assert_eq!(shown["source_package"]["version"], "1.0-1");
    assert_eq!(shown["submitter"], "alice");

    // A second build is canceled while it waits or runs.
    let second = upload(upload_body("XyZ", "hello-1.0-1.src.rpm", &srpm, &fields)).await;
    let second_id = json_of(&second, "second upload")["id"]
        .as_i64()
        .expect("an id");
    let canceled = call(
        &env,
        &callers,
        "PUT",
        &format!("/api_3/build/cancel/{second_id}"),
        As::Alice,
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(canceled.status, 200, "{}", canceled.text());
    env.wait_for_build(BuildId(second_id)).await;
    let shown = json_of(&env.get(&format!("/api_3/build/{second_id}")).await, "get");
    assert_eq!(shown["state"], "canceled");

    // list-builds: pages of one, newest first, until an empty page.
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let page = env
            .get(&format!(
                "/api_3/build/list?ownername=alice&projectname=hello&limit=1&offset={offset}"
            ))
            .await;
        let page = json_of(&page, "list");
        assert_eq!(page["meta"]["limit"], 1);
        let items = page["items"].as_array().expect("items");
        if items.is_empty() {
            break;
        }
        seen.extend(items.iter().map(|b| b["id"].as_i64().expect("id")));
        offset += 1;
    }
    assert_eq!(seen, vec![second_id, first_id]);

    let chroot = env
        .get(&format!(
            "/api_3/build-chroot?build_id={first_id}&chrootname={CHROOT}"
        ))
        .await;
    let chroot = json_of(&chroot, "build-chroot");
    assert_eq!(chroot["state"], "succeeded");
    let result_url = chroot["result_url"].as_str().expect("result_url");
    assert!(
        result_url.ends_with(&format!(
            "/results/alice/hello/{CHROOT}/{first_id:08}-hello/"
        )),
        "{result_url}"
    );

    let repo = json_of(
        &env.get("/api_3/rpmrepo/alice/hello/fedora-41/").await,
        "rpmrepo",
    );
    assert_eq!(repo["results_url"], format!("{}/results", env.public_url()));
    assert_eq!(
        repo["repos"]["fedora-41"]["arch"]["x86_64"],
        json!({"opts": {}})
    );

    // Packages, as the builds named them.
    let package = env
        .get("/api_3/package?ownername=alice&projectname=hello&packagename=hello")
        .await;
    let package = json_of(&package, "package");
    assert_eq!(package["source_type"], "upload");
    // The canceled build may have been stopped before its SRPM named the package.
    let latest = package["builds"]["latest"]["id"].as_i64();
    assert!(
        latest == Some(first_id) || latest == Some(second_id),
        "{package}"
    );
    let packages = json_of(
        &env.get("/api_3/package/list?ownername=alice&projectname=hello")
            .await,
        "package list",
    );
    assert_eq!(packages["items"].as_array().map(Vec::len), Some(1));

    // dnf copr list and search.
    let listed = json_of(
        &env.get("/api_3/project/list?ownername=alice").await,
        "list",
    );
    assert_eq!(listed["items"][0]["full_name"], "alice/hello");
    let found = json_of(
        &env.get("/api_3/project/search?query=HELLO").await,
        "search",
    );
    assert_eq!(found["items"][0]["description"], "Says hello");
    env.stop().await;
}
