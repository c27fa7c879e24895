//! Publishing a chroot: only builds that succeeded reach the repodata, `pubkey.gpg` is written
//! beside it, and a publish reads only the packages of builds it has not published before. Uses
//! the real rpmbuild and dnf (they must be installed).

mod common;

use ferrocopr_repo_publisher::repodata::{Compression, Outcome};
use ferrocopr_repo_publisher::{Published, Publisher};
use std::path::{Path, PathBuf};
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

/// Creates build directory `<chroot>/<id>-gen/` holding `rpms` generated packages, numbered
/// from `first`, marked `success` and `signed`.
fn signed_build(chroot: &Path, id: usize, first: usize, rpms: usize) -> PathBuf {
    let build = chroot.join(format!("{id:08}-gen"));
    std::fs::create_dir_all(&build).expect("mkdir");
    for i in first..first + rpms {
        common::write_rpm(&build, i);
    }
    std::fs::write(build.join("success"), "").expect("success");
    std::fs::write(build.join("signed"), "").expect("signed");
    build
}

/// The names of the packages dnf finds in the repository at `dir`, sorted, read into a fresh
/// cache (dnf may not notice a repository rewritten within the same second).
fn dnf_names(dir: &Path, work: &Path) -> Vec<String> {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let root = work.join(format!("root-{}", std::process::id()));
    let repos = root.join("etc/yum.repos.d");
    std::fs::create_dir_all(&repos).expect("mkdir installroot");
    let out = Command::new("dnf")
        .args(["-q", "--releasever=41", "--disableplugin=local"])
        .arg(format!("--installroot={}", root.display()))
        .arg(format!("--setopt=reposdir={}", repos.display()))
        .arg(format!(
            "--setopt=cachedir={}",
            work.join(format!("dnf-cache-{call}")).display()
        ))
        .arg(format!("--repofrompath=t,file://{}", dir.display()))
        .args(["--repo=t", "repoquery", "--available", "--qf", "%{name}"])
        .output()
        .expect("dnf must be installed");
    assert!(
        out.status.success(),
        "dnf cannot read the repository ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

fn expected(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(common::package_name).collect()
}

fn written(published: Published) -> Outcome {
    match published {
        Published::Written(outcome) => outcome,
        Published::Merged => panic!("a lone publish was merged"),
    }
}

/// Overwrites every RPM under `build` with bytes no RPM reader accepts: a publish that read one
/// of them would fail.
fn spoil_rpms(build: &Path) {
    for entry in std::fs::read_dir(build).expect("list build") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "rpm") {
            std::fs::write(&path, "not an RPM").expect("spoil");
        }
    }
}

#[tokio::test]
async fn publishing_one_more_build_reads_only_its_packages() {
    for compression in [Compression::Gzip, Compression::Zstd] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let chroot = tmp.path().join("alice/hello/fedora-41-x86_64");
        let mut builds = Vec::new();
        for b in 0..6 {
            builds.push(signed_build(&chroot, b + 1, b * 3, 3));
        }
        let publisher = Publisher::with_compression(compression);
        let first = written(publisher.publish_chroot(&chroot).await.expect("publish"));
        assert_eq!(
            first,
            Outcome {
                packages: 18,
                reused: 0,
                read: 18
            }
        );
        assert_eq!(dnf_names(&chroot, tmp.path()), expected(0..18));

        // The published builds' RPMs are not read again: they could be anything now.
        for build in &builds {
            spoil_rpms(build);
        }
        signed_build(&chroot, 7, 18, 2);
        let second = written(publisher.publish_chroot(&chroot).await.expect("publish"));
        assert_eq!(
            second,
            Outcome {
                packages: 20,
                reused: 18,
                read: 2
            },
            "{compression:?}"
        );
        assert_eq!(dnf_names(&chroot, tmp.path()), expected(0..20));

        // A removed build's segment goes, and nothing is read.
        std::fs::remove_dir_all(&builds[2]).expect("remove a build");
        let third = written(publisher.publish_chroot(&chroot).await.expect("publish"));
        assert_eq!(
            third,
            Outcome {
                packages: 17,
                reused: 17,
                read: 0
            }
        );
        let mut left = expected(0..6);
        left.extend(expected(9..20));
        assert_eq!(dnf_names(&chroot, tmp.path()), left);

        // The metadata names files of the right compression, and the cache keeps only what the
        // current metadata is made of: segments of several builds, here all in one or two.
        let repomd = std::fs::read_to_string(chroot.join("repodata/repomd.xml")).expect("repomd");
        assert!(
            repomd.contains(&format!("-primary.xml.{}\"", compression.extension())),
            "{repomd}"
        );
        let cached = std::fs::read_dir(chroot.join("repodata/.cache"))
            .expect("the segment cache")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".seg"))
            })
            .count();
        assert!((1..=3).contains(&cached), "{cached} segments for 6 builds");
    }
}

#[tokio::test]
async fn builds_spread_over_many_segments_are_found_again() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let chroot = tmp.path().join("alice/big/fedora-41-x86_64");
    let mut builds = Vec::new();
    for b in 0..120 {
        builds.push(signed_build(&chroot, b + 1, b, 1));
    }
    let publisher = Publisher::new();
    written(publisher.publish_chroot(&chroot).await.expect("publish"));
    let segments = std::fs::read_dir(chroot.join("repodata/.cache"))
        .expect("the segment cache")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".seg"))
        })
        .count();
    assert!(segments > 2, "only {segments} segments for 120 builds");
    for build in &builds {
        spoil_rpms(build);
    }
    // Builds added in the middle of the order (ids between the others') and at the end.
    signed_build(&chroot, 200, 120, 1);
    let build = chroot.join("00000050-gen-extra");
    std::fs::create_dir_all(&build).expect("mkdir");
    common::write_rpm(&build, 121);
    std::fs::write(build.join("success"), "").expect("success");
    std::fs::write(build.join("signed"), "").expect("signed");
    let outcome = written(publisher.publish_chroot(&chroot).await.expect("publish"));
    assert_eq!((outcome.packages, outcome.read), (122, 2));
    for gone in [&builds[10], &builds[70]] {
        std::fs::remove_dir_all(gone).expect("remove a build");
    }
    let outcome = written(publisher.publish_chroot(&chroot).await.expect("publish"));
    assert_eq!((outcome.packages, outcome.read), (120, 0));
    let mut left = expected(0..122);
    left.retain(|name| *name != common::package_name(10) && *name != common::package_name(70));
    assert_eq!(dnf_names(&chroot, tmp.path()), left);
}
