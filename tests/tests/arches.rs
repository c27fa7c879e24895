//! ExclusiveArch at import (issue 5): a chroot whose architecture the spec rules out is
//! `skipped`, not built.

use ferrocopr_schema::state::build_state;
use ferrocopr_schema::{BuildId, State};
use ferrocopr_tests::{DbKind, TestEnv};
use std::time::{Duration, Instant};

const SPEC: &str = "\
Name:           armonly
Version:        1.0
Release:        1%{?dist}
Summary:        Built for aarch64 only
License:        MIT
BuildArch:      noarch
ExclusiveArch:  aarch64

%description
Rules x86_64 out.

%install
mkdir -p %{buildroot}/usr/share/armonly

%files
/usr/share/armonly
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chroot_ruled_out_by_exclusive_arch_is_skipped() {
    let env = TestEnv::start(DbKind::Sqlite).await;
    let repo = env.new_repo("alice/armonly");
    repo.write(
        ".copr.yaml",
        "owner: alice\nproject: armonly\nchroots: [fedora-41-x86_64, fedora-41-aarch64]\n\
         spec: armonly.spec\n",
    );
    repo.write("armonly.spec", SPEC);
    let sha = repo.commit("armonly");
    let (code, body) = env.push("alice/armonly", &repo, &sha, "main").await;
    assert_eq!(code, 202, "{body}");

    let db = env.db().await;
    let deadline = Instant::now() + Duration::from_secs(300);
    let chroots = loop {
        let build = db.build(BuildId(1)).await.expect("read");
        if let Some(build) = build {
            let chroots = db.build_chroots(build.id).await.expect("chroots");
            let states: Vec<State> = chroots.iter().map(|c| c.state).collect();
            if build_state(build.cancel_requested, build.source_state, &states).is_finished() {
                break chroots;
            }
        }
        assert!(Instant::now() < deadline, "the build never finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let x86 = chroots
        .iter()
        .find(|c| c.chroot == "fedora-41-x86_64")
        .expect("the x86_64 chroot");
    assert_eq!(x86.state, State::Skipped, "{chroots:?}");
    let aarch64 = chroots
        .iter()
        .find(|c| c.chroot == "fedora-41-aarch64")
        .expect("the aarch64 chroot");
    assert_ne!(
        aarch64.state,
        State::Skipped,
        "aarch64 is not ruled out: {chroots:?}"
    );
    env.stop().await;
}
