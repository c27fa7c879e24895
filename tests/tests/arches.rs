//! ExclusiveArch at import (issue 5): a chroot whose architecture the spec rules out is
//! `skipped`, not built.

use ferrocopr_schema::{BuildId, State};
use ferrocopr_tests::{DbKind, TestEnv};

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

    let (_, chroots) = env.wait_for_build(BuildId(1)).await;
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
