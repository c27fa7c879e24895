//! The build's network (issue 5): an RPM build runs offline unless `.copr.yaml` says
//! `enable_net: true`. The package's `%build` tries to open a TCP connection to ferrocopr's own
//! HTTP port on loopback, which is reachable from this machine's network namespace only.

use ferrocopr_tests::{DbKind, Status, TestEnv};

const CHROOT: &str = "fedora-41-x86_64";

fn spec(port: u16) -> String {
    format!(
        "\
%global _buildshell /bin/bash
Name:           reach
Version:        1.0
Release:        1%{{?dist}}
Summary:        Tries the network while it builds
License:        MIT
BuildArch:      noarch

%description
Opens a connection during %build.

%build
if (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null; then
  echo NETWORK-REACHED
else
  echo NETWORK-BLOCKED
  exit 1
fi

%install
mkdir -p %{{buildroot}}/usr/share/reach

%files
/usr/share/reach
"
    )
}

fn is_final(status: &Status) -> bool {
    status.state != "pending" && status.context.as_deref() == Some("copr/rpm-build")
}

async fn build(env: &TestEnv, project: &str, enable_net: bool) -> (Status, String) {
    let port: u16 = env
        .public_url()
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .expect("the port of the public URL");
    let repo = env.new_repo(&format!("alice/{project}"));
    repo.write(
        ".copr.yaml",
        format!(
            "owner: alice\nproject: {project}\nchroots: [{CHROOT}]\nspec: reach.spec\n\
             enable_net: {enable_net}\n"
        ),
    );
    repo.write("reach.spec", spec(port));
    let sha = repo.commit("reach");
    let (code, body) = env
        .push(&format!("alice/{project}"), &repo, &sha, "main")
        .await;
    assert_eq!(code, 202, "{body}");
    let done = env.wait_for_status(&sha, is_final).await;
    let log = env
        .data_dir()
        .join("results/alice")
        .join(project)
        .join(CHROOT)
        .join("00000001-reach/builder-live.log");
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    (done, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_are_offline_unless_enable_net() {
    let env = TestEnv::start(DbKind::Sqlite).await;
    let (done, log) = build(&env, "offline", false).await;
    assert_eq!(done.state, "failure", "{done:?}\n{log}");
    assert!(log.contains("NETWORK-BLOCKED"), "{log}");
    assert!(!log.contains("NETWORK-REACHED"), "{log}");
    env.stop().await;

    let env = TestEnv::start(DbKind::Sqlite).await;
    let (done, log) = build(&env, "online", true).await;
    assert_eq!(done.state, "success", "{done:?}\n{log}");
    assert!(log.contains("NETWORK-REACHED"), "{log}");
    env.stop().await;
}
