//! Packages and project deletion through the API v3 (issue 7), end to end with real git and
//! rpmbuild: an `scm` package added from a local repository is listed before it is ever built,
//! built with `package/build` into RPMs in the results, edited and deleted (its builds stay);
//! a project with a finished build is deleted: gone from every read at once, its results
//! removed by the backend's pass, then its name free again.

use ferrocopr_bot::users::{Credentials, create_user};
use ferrocopr_tests::http::{HttpResponse, api_request, basic_auth};
use ferrocopr_tests::{DbKind, TestEnv, TestRepo, packages};
use serde_json::{Value, json};
use std::time::Duration;

const CHROOT: &str = "fedora-41-x86_64";

const SPEC: &str = packages::HELLO_TARBALL_SPEC;

/// How long the deletion pass may take once the project's builds are finished.
const DELETION_TIMEOUT: Duration = Duration::from_secs(60);

async fn send(
    env: &TestEnv,
    who: Option<&Credentials>,
    method: &str,
    path: &str,
    body: &Value,
) -> HttpResponse {
    let authorization = who.map(|who| basic_auth(&who.login, &who.token));
    api_request(method, &env.url(path), authorization, body).await
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

fn ok(response: &HttpResponse, what: &str) -> Value {
    assert_eq!(response.status, 200, "{what}: {}", response.text());
    json_of(response, what)
}

/// A repository with the spec at its top and the file it installs.
fn hello_repo(env: &TestEnv) -> TestRepo {
    let repo = TestRepo::new(env.scratch("hello-git"));
    repo.write("hello.spec", SPEC);
    repo.write("hello.txt", "hello\n");
    repo.commit("hello");
    repo
}

fn rpms_in(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(builds) = std::fs::read_dir(dir) else {
        return found;
    };
    for build in builds {
        let build = build.expect("entry").path();
        if !build.is_dir() || build.ends_with("repodata") {
            continue;
        }
        for file in std::fs::read_dir(&build).expect("build results") {
            let name = file
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned();
            if name.ends_with(".rpm") && !name.ends_with(".src.rpm") {
                found.push(name);
            }
        }
    }
    found
}

async fn alice_with_project(env: &TestEnv, project: &str) -> Credentials {
    let db = env.db().await;
    let (_, alice) = create_user(&db, "alice", false).await.expect("alice");
    let add = send(
        env,
        Some(&alice),
        "POST",
        "/api_3/project/add/alice",
        &json!({"name": project, "chroots": [CHROOT]}),
    )
    .await;
    ok(&add, "project/add");
    alice
}

/// Builds package `hello` of `alice/<project>` from its stored source; waits for the end.
async fn build_package(env: &TestEnv, alice: &Credentials, project: &str) -> i64 {
    let build = send(
        env,
        Some(alice),
        "POST",
        "/api_3/package/build",
        &json!({"ownername": "alice", "projectname": project, "package_name": "hello",
                "project_dirname": project, "chroots": [CHROOT], "timeout": 3600}),
    )
    .await;
    let build = ok(&build, "package/build");
    assert_eq!(build["projectname"], project);
    let id = build["id"].as_i64().expect("a build id");
    let (_, chroots) = env.wait_for_build(ferrocopr_schema::BuildId(id)).await;
    assert!(
        chroots.iter().all(|c| c.state.name() == "succeeded"),
        "{chroots:?}"
    );
    id
}

#[tokio::test(flavor = "multi_thread")]
async fn scm_package_added_built_edited_and_deleted() {
    let env = TestEnv::start(DbKind::Sqlite).await;
    let alice = alice_with_project(&env, "hello").await;
    let repo = hello_repo(&env);

    let source = json!({"package_name": "hello", "clone_url": repo.clone_url(),
                        "committish": "main", "subdirectory": "", "spec": "hello.spec",
                        "scm_type": "git", "source_build_method": "rpkg"});
    let added = send(
        &env,
        Some(&alice),
        "POST",
        "/api_3/package/add/alice/hello/hello/scm",
        &source,
    )
    .await;
    let added = ok(&added, "package/add");
    assert_eq!(added["name"], "hello");
    assert_eq!(added["source_type"], "scm");
    assert_eq!(added["source_dict"]["clone_url"], repo.clone_url());
    assert_eq!(added["builds"]["latest"], Value::Null);

    // Listed before any build.
    let listed = ok(
        &env.get("/api_3/package/list?ownername=alice&projectname=hello")
            .await,
        "package/list",
    );
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    assert_eq!(listed["items"][0]["source_dict"]["committish"], "main");

    let id = build_package(&env, &alice, "hello").await;
    let rpms = rpms_in(&env.data_dir().join("results/alice/hello").join(CHROOT));
    assert!(
        rpms.iter().any(|r| r.starts_with("hello-1.0-1")),
        "no hello RPM in the results: {rpms:?}"
    );
    let package = ok(
        &env.get("/api_3/package?ownername=alice&projectname=hello&packagename=hello")
            .await,
        "package",
    );
    assert_eq!(package["builds"]["latest"]["id"], id);
    assert_eq!(package["builds"]["latest"]["state"], "succeeded");
    assert_eq!(package["source_type"], "scm");

    // An edit changes what it gives and keeps the rest.
    let edited = send(
        &env,
        Some(&alice),
        "POST",
        "/api_3/package/edit/alice/hello/hello/scm",
        &json!({"committish": "HEAD", "source_build_method": null}),
    )
    .await;
    let edited = ok(&edited, "package/edit");
    assert_eq!(edited["source_dict"]["committish"], "HEAD");
    assert_eq!(edited["source_dict"]["clone_url"], repo.clone_url());
    assert_eq!(edited["source_dict"]["source_build_method"], "rpkg");

    // Deleting the package keeps its builds: it is still listed, known from them.
    let deleted = send(
        &env,
        Some(&alice),
        "DELETE",
        "/api_3/package/delete/alice/hello/hello",
        &json!({}),
    )
    .await;
    ok(&deleted, "package/delete");
    let package = ok(
        &env.get("/api_3/package?ownername=alice&projectname=hello&packagename=hello")
            .await,
        "package after delete",
    );
    assert_eq!(package["source_dict"], json!({}));
    assert_eq!(package["builds"]["latest"]["id"], id);
    let again = send(
        &env,
        Some(&alice),
        "POST",
        "/api_3/package/build",
        &json!({"ownername": "alice", "projectname": "hello", "package_name": "hello"}),
    )
    .await;
    assert_eq!(again.status, 404, "{}", again.text());
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn project_delete_removes_reads_results_and_frees_the_name() {
    let env = TestEnv::start(DbKind::Sqlite).await;
    let alice = alice_with_project(&env, "doomed").await;
    let (_, mallory) = create_user(&env.db().await, "mallory", false)
        .await
        .expect("mallory");
    let repo = hello_repo(&env);
    let added = send(
        &env,
        Some(&alice),
        "POST",
        "/api_3/package/add/alice/doomed/hello/scm",
        &json!({"clone_url": repo.clone_url(), "spec": "hello.spec"}),
    )
    .await;
    ok(&added, "package/add");
    let build = build_package(&env, &alice, "doomed").await;
    let results = env.data_dir().join("results/alice/doomed");
    assert!(!rpms_in(&results.join(CHROOT)).is_empty(), "built");

    // A deletion asked for behind the deletion pass's back (no wake-up: it runs hourly) holds
    // the name: project/add says why it refuses.
    let held = ferrocopr_schema::ProjectRef {
        owner: "alice".into(),
        project: "held".into(),
    };
    let add_held = json!({"name": "held", "chroots": [CHROOT]});
    ok(
        &send(
            &env,
            Some(&alice),
            "POST",
            "/api_3/project/add/alice",
            &add_held,
        )
        .await,
        "add held",
    );
    assert!(
        env.db()
            .await
            .request_project_deletion(&held)
            .await
            .expect("delete held")
    );
    let refused = send(
        &env,
        Some(&alice),
        "POST",
        "/api_3/project/add/alice",
        &add_held,
    )
    .await;
    assert_eq!(refused.status, 409, "{}", refused.text());
    let error = json_of(&refused, "add while deleting")["error"].to_string();
    assert!(error.contains("is being deleted"), "{error}");
    let gone = env
        .get("/api_3/project?ownername=alice&projectname=held")
        .await;
    assert_eq!(gone.status, 404, "{}", gone.text());

    let path = "/api_3/project/delete/alice/doomed";
    let refused = send(&env, Some(&mallory), "DELETE", path, &json!({})).await;
    assert_eq!(refused.status, 403, "{}", refused.text());
    let unknown = send(
        &env,
        Some(&alice),
        "DELETE",
        "/api_3/project/delete/alice/nope",
        &json!({}),
    )
    .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text());
    let deleted = send(&env, Some(&alice), "DELETE", path, &json!({})).await;
    assert_eq!(ok(&deleted, "project/delete")["full_name"], "alice/doomed");

    // Gone from every read at once.
    for read in [
        "/api_3/project?ownername=alice&projectname=doomed",
        "/api_3/package/list?ownername=alice&projectname=doomed",
        "/api_3/build/list?ownername=alice&projectname=doomed",
        "/api_3/rpmrepo/alice/doomed/fedora-41/",
        "/coprs/alice/doomed/repo/fedora-41/dnf.repo?arch=x86_64",
        "/coprs/alice/doomed/",
    ] {
        assert_eq!(env.get(read).await.status, 404, "{read}");
    }
    for read in [
        format!("/api_3/build/{build}"),
        format!("/coprs/alice/doomed/build/{build}/"),
        format!("/coprs/build/{build}/"),
    ] {
        assert_eq!(env.get(&read).await.status, 404, "{read}");
    }
    let listed = ok(
        &env.get("/api_3/project/list?ownername=alice").await,
        "list",
    );
    assert_eq!(listed["items"], json!([]));
    let again = send(&env, Some(&alice), "DELETE", path, &json!({})).await;
    assert_eq!(again.status, 404, "{}", again.text());

    // The backend's pass removes the results, then the rows: the name is free again. Until
    // then a new project of that name is refused, saying why.
    let deadline = tokio::time::Instant::now() + DELETION_TIMEOUT;
    loop {
        env.assert_running();
        let add = send(
            &env,
            Some(&alice),
            "POST",
            "/api_3/project/add/alice",
            &json!({"name": "doomed", "chroots": [CHROOT]}),
        )
        .await;
        if add.status == 200 {
            break;
        }
        assert_eq!(add.status, 409, "{}", add.text());
        let error = json_of(&add, "add while deleting")["error"].to_string();
        assert!(error.contains("being deleted"), "{error}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the deleted project's name never came free"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!results.exists(), "{} is left", results.display());
    // The pass the request woke took the held project's name back too.
    ok(
        &send(
            &env,
            Some(&alice),
            "POST",
            "/api_3/project/add/alice",
            &add_held,
        )
        .await,
        "add held again",
    );
    let fresh = ok(
        &env.get("/api_3/package/list?ownername=alice&projectname=doomed")
            .await,
        "the new project's packages",
    );
    assert_eq!(fresh["items"], json!([]), "nothing of the old project");
    env.stop().await;
}
