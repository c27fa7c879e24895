//! What dnf refuses with `gpgcheck=1` (issue 6): an RPM signed by the project installs, and
//! each of these does not: a byte flipped in the signed header, a byte flipped in the payload,
//! an RPM with no signature, and an RPM signed by another project's key. Each variant gets a
//! repository of its own (written by `ferrocopr createrepo`), so dnf's only objection can be
//! the package itself.

use ferrocopr_schema::{BuildId, State};
use ferrocopr_tests::builder_bin::ferrocopr_binary;
use ferrocopr_tests::cmd::check;
use ferrocopr_tests::packages::{self, HELLO_SPEC};
use ferrocopr_tests::{DbKind, TestEnv};
use std::path::{Path, PathBuf};
use std::process::Command;

const CHROOT: &str = "fedora-41-x86_64";
const RPM: &str = "hello-1.0-1.fc41.noarch.rpm";

/// The SRPM, and the same package built here without any signature.
fn srpm_and_unsigned_rpm(dir: &Path) -> (Vec<u8>, PathBuf) {
    std::fs::write(dir.join("hello.spec"), HELLO_SPEC).expect("spec");
    let define = |k: &str, v: &Path| format!("{k} {}", v.display());
    check(
        Command::new("rpmbuild")
            .args(["-ba", "--nodeps"])
            .arg(dir.join("hello.spec"))
            .args(["--define", &define("_topdir", &dir.join("top"))])
            .args(["--define", &define("_srcrpmdir", dir)])
            .args(["--define", &define("_rpmdir", dir)])
            .args(["--define", "dist .fc41"])
            .args([
                "--define",
                "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm",
            ]),
    );
    let srpm = std::fs::read(dir.join("hello-1.0-1.fc41.src.rpm")).expect("the SRPM");
    (srpm, dir.join(RPM))
}

async fn build(env: &TestEnv, project: &str, srpm: &[u8]) -> BuildId {
    let submission = packages::submission(project, CHROOT);
    let id = env
        .submissions()
        .await
        .from_upload(submission, "hello-1.0-1.fc41.src.rpm", srpm)
        .await
        .expect("the upload is taken");
    let (_, chroots) = env.wait_for_build(id).await;
    assert_eq!(chroots[0].state, State::Succeeded, "{chroots:?}");
    id
}

/// Flips one byte of `rpm` at `offset`.
fn flip(rpm: &Path, offset: usize) {
    let mut bytes = std::fs::read(rpm).expect("read");
    bytes[offset] ^= 0x01;
    std::fs::write(rpm, bytes).expect("write");
}

/// Where the main header's data starts and ends: after the 96-byte lead and the signature
/// header (padded to 8 bytes), the header's intro and index come first.
fn main_header_data(rpm: &Path) -> (usize, usize) {
    let bytes = std::fs::read(rpm).expect("read");
    let be = |at: usize| {
        u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize
    };
    let sig = 96;
    let sig_len = 16 + be(sig + 8) * 16 + be(sig + 12);
    let header = sig + sig_len.div_ceil(8) * 8;
    let data = header + 16 + be(header + 8) * 16;
    (data, data + be(header + 12))
}

/// A repository holding only `rpm`, and an installroot whose one repository is it, checked with
/// `key`.
async fn try_install(
    env: &TestEnv,
    name: &str,
    rpm: &Path,
    key: &Path,
) -> ferrocopr_tests::cmd::CmdOutput {
    let repo = env.scratch(&format!("repos/{name}"));
    std::fs::copy(rpm, repo.join(RPM)).expect("copy the RPM");
    check(
        Command::new(ferrocopr_binary())
            .arg("createrepo")
            .arg(&repo),
    );
    let root = env.install_root(name, "41");
    std::fs::write(
        root.file("etc/yum.repos.d/test.repo"),
        format!(
            "[test]\nname=test\nbaseurl=file://{}\ngpgcheck=1\nrepo_gpgcheck=0\n\
             gpgkey=file://{}\nenabled=1\n",
            repo.display(),
            key.display()
        ),
    )
    .expect("repo file");
    root.try_install("hello").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnf_refuses_what_the_project_did_not_sign() {
    let env = TestEnv::start(DbKind::Sqlite).await;
    let (srpm, unsigned) = srpm_and_unsigned_rpm(&env.scratch("local"));
    let ours = build(&env, "hello", &srpm).await;
    let theirs = build(&env, "other", &srpm).await;
    let results = env.data_dir().join("results/alice");
    let signed = results.join(format!("hello/{CHROOT}/{}-hello/{RPM}", ours.padded()));
    let foreign = results.join(format!("other/{CHROOT}/{}-hello/{RPM}", theirs.padded()));
    let key = results.join("hello/pubkey.gpg");

    let installed = try_install(&env, "signed", &signed, &key).await;
    assert!(
        installed.success,
        "the signed RPM should install:\n{installed}"
    );

    let header = env.scratch("variants").join("header.rpm");
    std::fs::copy(&signed, &header).expect("copy");
    let (start, end) = main_header_data(&header);
    flip(&header, (start + end) / 2);
    let payload = env.scratch("variants").join("payload.rpm");
    std::fs::copy(&signed, &payload).expect("copy");
    let len = std::fs::metadata(&payload).expect("size").len() as usize;
    flip(&payload, len - 100);

    for (name, rpm) in [
        ("header-flipped", &header),
        ("payload-flipped", &payload),
        ("unsigned", &unsigned),
        ("other-project", &foreign),
    ] {
        let refused = try_install(&env, name, rpm, &key).await;
        assert!(!refused.success, "dnf installed the {name} RPM:\n{refused}");
        assert!(
            !env.install_root(name, "41")
                .file("usr/share/hello/hello.txt")
                .exists(),
            "{name}: the file was installed"
        );
    }
    env.stop().await;
}
