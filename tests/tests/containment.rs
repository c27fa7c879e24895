//! Results never escape the result directory (issue 5): a build whose `%install` leaves a
//! symbolic link to a file of the host among its results fails, the link is gone, and the file
//! it pointed to is never served.

use ferrocopr_schema::State;
use ferrocopr_tests::{DbKind, TestEnv, packages};

const CHROOT: &str = "fedora-41-x86_64";

const SPEC: &str = "\
Name:           sneaky
Version:        1.0
Release:        1%{?dist}
Summary:        Leaves a link among its results
License:        MIT
BuildArch:      noarch

%description
Tries to publish the host's /etc/passwd.

%install
mkdir -p %{buildroot}/usr/share/sneaky
touch %{buildroot}/usr/share/sneaky/x
ln -s /etc/passwd %{_rpmdir}/passwd.txt

%files
/usr/share/sneaky/x
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_linking_out_is_rejected() {
    let env = TestEnv::start(DbKind::Sqlite).await;
    let srpm = packages::srpm(&env.scratch("sneaky"), "sneaky", SPEC);
    let submission = packages::submission("sneaky", CHROOT);
    let id = env
        .submissions()
        .await
        .from_upload(submission, "sneaky-1.0-1.src.rpm", &srpm)
        .await
        .expect("the upload is taken");
    let (build, chroots) = env.wait_for_build(id).await;
    assert_eq!(build.source_state, State::Succeeded);
    assert_eq!(chroots[0].state, State::Failed, "{chroots:?}");

    let relative = format!("results/alice/sneaky/{CHROOT}/{}-sneaky", id.padded());
    let dir = env.data_dir().join(&relative);
    let log = std::fs::read_to_string(dir.join("builder-live.log")).expect("the log");
    assert!(
        log.contains("the results were rejected") && log.contains("passwd.txt"),
        "{log}"
    );
    assert!(
        dir.join("passwd.txt").symlink_metadata().is_err(),
        "the link is still there"
    );
    assert!(!dir.join("success").exists());
    let served = env.get(&format!("/{relative}/passwd.txt")).await;
    assert_eq!(served.status, 404, "{}", served.text());
    env.stop().await;
}
