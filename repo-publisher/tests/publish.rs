//! Publishing a chroot: only builds that succeeded reach the repodata, and `pubkey.gpg` is
//! written beside it. Uses the real rpmbuild (it must be installed).

use ferrocopr_repo_publisher::{Published, Publisher};
use std::path::Path;
use std::process::Command;

fn build_rpm(name: &str, into: &Path) {
    let spec = into.join(format!("{name}.spec"));
    std::fs::write(
        &spec,
        format!(
            "Name: {name}\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\nBuildArch: noarch\n\
             %description\nd\n%files\n"
        ),
    )
    .expect("write spec");
    let out = Command::new("rpmbuild")
        .args(["-bb", "--nodeps", "--define"])
        .arg(format!("_topdir {}", into.join("top").display()))
        .arg("--define")
        .arg(format!("_rpmdir {}", into.display()))
        .args(["--define", "_build_name_fmt %%{NAME}.rpm"])
        .arg(&spec)
        .output()
        .expect("rpmbuild must be installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(spec).expect("remove spec");
    std::fs::remove_dir_all(into.join("top")).expect("remove topdir");
}

/// The primary.xml that `repomd.xml` names (older ones stay beside it for a while).
fn primary_xml(chroot: &Path) -> String {
    let repomd =
        std::fs::read_to_string(chroot.join("repodata/repomd.xml")).expect("read repomd.xml");
    let href = repomd
        .split("<location href=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().expect("a closing quote"))
        .find(|href| href.ends_with("-primary.xml.gz"))
        .expect("repomd names a primary");
    let out = Command::new("zcat")
        .arg(chroot.join(href))
        .output()
        .expect("zcat");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn only_succeeded_builds_are_published() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let chroot = tmp.path().join("alice/hello/fedora-41-x86_64");
    let good = chroot.join("00000001-good");
    let bad = chroot.join("00000002-bad");
    for dir in [&good, &bad] {
        std::fs::create_dir_all(dir).expect("mkdir");
    }
    build_rpm("good", &good);
    build_rpm("bad", &bad);
    std::fs::write(good.join("success"), "").expect("success");
    std::fs::write(good.join("signed"), "").expect("signed");
    // Built but never signed (a canceled build, say): not published either.
    std::fs::write(bad.join("success"), "").expect("success");

    let publisher = Publisher::new();
    publisher.publish_chroot(&chroot).await.expect("publish");
    let primary = primary_xml(&chroot);
    assert!(primary.contains("<name>good</name>"), "{primary}");
    assert!(
        !primary.contains("<name>bad</name>"),
        "a failed build was published: {primary}"
    );

    // A second publish after the other build is signed picks it up.
    std::fs::write(bad.join("signed"), "").expect("signed");
    publisher
        .publish_chroot(&chroot)
        .await
        .expect("publish again");
    assert!(primary_xml(&chroot).contains("<name>bad</name>"));

    let project = tmp.path().join("alice/hello");
    publisher
        .publish_pubkey(&project, b"KEY")
        .await
        .expect("pubkey");
    publisher
        .publish_pubkey(&project, b"KEY")
        .await
        .expect("pubkey again");
    assert_eq!(
        std::fs::read(project.join("pubkey.gpg")).expect("read"),
        b"KEY"
    );
}

#[tokio::test]
async fn publishes_requested_during_a_write_are_merged_into_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let chroot = tmp.path().join("alice/hello/fedora-41-x86_64");
    let build = chroot.join("00000001-good");
    std::fs::create_dir_all(&build).expect("mkdir");
    build_rpm("good", &build);
    std::fs::write(build.join("success"), "").expect("success");
    std::fs::write(build.join("signed"), "").expect("signed");

    let publisher = Publisher::new();
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let publisher = publisher.clone();
        let chroot = chroot.clone();
        requests.spawn(async move { publisher.publish_chroot(&chroot).await });
    }
    let mut writes = 0;
    while let Some(done) = requests.join_next().await {
        if let Published::Written(_) = done.expect("no panic").expect("publish") {
            writes += 1;
        }
    }
    // The first request writes; the seven made during its write wait, and one write serves them.
    assert_eq!(writes, 2);
    assert!(primary_xml(&chroot).contains("<name>good</name>"));
}
