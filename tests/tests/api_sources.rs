//! Builds from the API v3's other sources (issue 7), each ending with RPMs built by the real
//! builder: `create/scm` of a local git repository (the default branch, the spec found in the
//! package's subdirectory) and `create/custom` (a script that writes a spec and its tarball into
//! its result directory). Along the way: chroot patterns pick the project's chroots,
//! `background` shows as `is_background`, and `build/list` filters by state and pages in either
//! order, counting only the builds that pass the filter.

use ferrocopr_bot::users::{Credentials, create_user};
use ferrocopr_schema::BuildId;
use ferrocopr_tests::http::{HttpResponse, api_request, basic_auth};
use ferrocopr_tests::{DbKind, TestEnv, packages};
use serde_json::{Value, json};

const CHROOTS: [&str; 3] = ["fedora-41-x86_64", "fedora-42-x86_64", "epel-9-x86_64"];

/// Runs in an empty directory and leaves the spec and its tarball in `out/`.
const SCRIPT: &str = "\
mkdir -p out/hello-3.0
echo hello > out/hello-3.0/hello.txt
tar -C out -czf out/hello-3.0.tar.gz hello-3.0
rm -r out/hello-3.0
cat > out/hello.spec <<'EOF'
@SPEC@EOF
";

async fn post(env: &TestEnv, alice: &Credentials, path: &str, body: Value) -> HttpResponse {
    let authorization = Some(basic_auth(&alice.login, &alice.token));
    api_request("POST", &env.url(path), authorization, &body).await
}

fn json_of(response: &HttpResponse, what: &str) -> Value {
    assert_eq!(response.status, 200, "{what}: {}", response.text());
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("{what}: {e}: {}", response.text()))
}

/// Waits for build `id`, checks it succeeded and returns the names of the RPMs in its results
/// for `chroot`.
async fn built_rpms(env: &TestEnv, id: i64, chroot: &str) -> Vec<String> {
    let (build, chroots) = env.wait_for_build(BuildId(id)).await;
    let log = std::fs::read_to_string(env.data_dir().join(format!(
        "results/alice/hello/srpm-builds/{id:08}/builder-live.log"
    )))
    .unwrap_or_default();
    assert_eq!(
        build.source_state.name(),
        "succeeded",
        "build {id}'s SRPM log:\n{log}"
    );
    assert!(
        chroots.iter().all(|c| c.state.name() == "succeeded"),
        "{chroots:?}"
    );
    let dir = env
        .data_dir()
        .join(format!("results/alice/hello/{chroot}/{id:08}-hello"));
    let mut rpms: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".noarch.rpm"))
        .collect();
    rpms.sort();
    rpms
}

/// The ids of every page of `query` with one build per page, until an empty page.
async fn paged_ids(env: &TestEnv, query: &str) -> Vec<i64> {
    let mut ids = Vec::new();
    for offset in 0.. {
        let page = env
            .get(&format!(
                "/api_3/build/list?ownername=alice&projectname=hello&limit=1&offset={offset}&{query}"
            ))
            .await;
        let page = json_of(&page, query);
        let items = page["items"].as_array().expect("items");
        if items.is_empty() {
            break;
        }
        assert_eq!(items.len(), 1, "{page}");
        ids.push(items[0]["id"].as_i64().expect("id"));
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scm_and_custom_builds_end_with_rpms() {
    let env = TestEnv::start(DbKind::Sqlite).await;
    let db = env.db().await;
    let (_, alice) = create_user(&db, "alice", false).await.expect("alice");
    let added = post(
        &env,
        &alice,
        "/api_3/project/add/alice",
        json!({"name": "hello", "chroots": CHROOTS}),
    )
    .await;
    json_of(&added, "project/add");

    // The package lives in `pkg/`; the tarball `git archive` makes holds the whole tree.
    let repo = env.new_repo("alice/hello-src");
    repo.write("pkg/hello.spec", packages::HELLO_TARBALL_SPEC);
    repo.write("hello.txt", "hello\n");
    repo.commit("hello 1.0");
    let scm = post(
        &env,
        &alice,
        "/api_3/build/create/scm",
        json!({"ownername": "alice", "projectname": "hello", "clone_url": repo.clone_url(),
               "committish": "", "subdirectory": "pkg", "spec": "", "scm_type": "git",
               "source_build_method": "rpkg", "chroots": ["fedora-4?-x86_64"],
               "exclude_chroots": ["fedora-42-*"]}),
    )
    .await;
    let scm = json_of(&scm, "create/scm");
    assert_eq!(scm["chroots"], json!(["fedora-41-x86_64"]), "{scm}");
    assert_eq!(scm["is_background"], false);
    assert_eq!(scm["source_package"]["url"], repo.clone_url());
    let scm_id = scm["id"].as_i64().expect("an id");

    let script = SCRIPT.replace(
        "@SPEC@",
        &packages::HELLO_TARBALL_SPEC.replace("Version:        1.0", "Version:        3.0"),
    );
    let custom = post(
        &env,
        &alice,
        "/api_3/build/create/custom",
        json!({"ownername": "alice", "projectname": "hello", "script": script,
               "chroot": "fedora-latest-x86_64", "builddeps": "tar gzip", "resultdir": "out",
               "chroots": ["*-x86_64"], "exclude_chroots": ["epel-*", "fedora-42-x86_64"],
               "background": true}),
    )
    .await;
    let custom = json_of(&custom, "create/custom");
    assert_eq!(custom["chroots"], json!(["fedora-41-x86_64"]), "{custom}");
    assert_eq!(custom["is_background"], true);
    let custom_id = custom["id"].as_i64().expect("an id");

    assert_eq!(
        built_rpms(&env, scm_id, "fedora-41-x86_64").await,
        ["hello-1.0-1.fc41.noarch.rpm"]
    );
    assert_eq!(
        built_rpms(&env, custom_id, "fedora-41-x86_64").await,
        ["hello-3.0-1.fc41.noarch.rpm"]
    );
    let shown = json_of(
        &env.get(&format!("/api_3/build/{custom_id}")).await,
        "build",
    );
    assert_eq!(shown["is_background"], true);
    assert_eq!(shown["state"], "succeeded");
    let log = std::fs::read_to_string(env.data_dir().join(format!(
        "results/alice/hello/srpm-builds/{custom_id:08}/builder-live.log"
    )))
    .expect("the custom build's SRPM log");
    assert!(log.contains("tar gzip; NOT installed"), "{log}");

    // A third build fails: its script leaves no spec.
    let failing = post(
        &env,
        &alice,
        "/api_3/build/create/custom",
        json!({"ownername": "alice", "projectname": "hello", "script": "mkdir out",
               "resultdir": "out", "chroots": ["fedora-41-x86_64"]}),
    )
    .await;
    let failed_id = json_of(&failing, "failing create/custom")["id"]
        .as_i64()
        .expect("an id");
    env.wait_for_build(BuildId(failed_id)).await;

    // The state filter pages over the builds in that state only, in either order.
    assert_eq!(
        paged_ids(&env, "status=succeeded").await,
        [custom_id, scm_id]
    );
    assert_eq!(
        paged_ids(&env, "status=succeeded&order=id&order_type=ASC").await,
        [scm_id, custom_id]
    );
    assert_eq!(paged_ids(&env, "status=failed").await, [failed_id]);
    assert_eq!(paged_ids(&env, "status=running").await, Vec::<i64>::new());
    assert_eq!(
        paged_ids(&env, "order_type=asc").await,
        [scm_id, custom_id, failed_id]
    );
    let page = json_of(
        &env.get("/api_3/build/list?ownername=alice&projectname=hello&order_type=asc&status=succeeded&offset=1")
            .await,
        "list",
    );
    assert_eq!(page["meta"]["order"], "id");
    assert_eq!(page["meta"]["order_type"], "ASC");
    assert_eq!(page["meta"]["offset"], 1);
    assert_eq!(page["items"][0]["id"], custom_id);
    env.stop().await;
}
