//! The RPM task builds in mock when the host has mock and a config for the chroot (issue 5).
//! This machine has no mock, so a stand-in `mock` on the `PATH` records how it is called and
//! rebuilds the SRPM with rpmbuild, as mock would inside its chroot.

use ferrocopr_schema::model::Bconds;
use ferrocopr_schema::task::{BuilderTask, RESULTS_FILE, Results, SUCCESS_FILE, TaskKind};
use ferrocopr_tests::builder_bin::ferrocopr_binary;
use ferrocopr_tests::packages::HELLO_SPEC;
use std::path::Path;
use std::process::Command;

const FAKE_MOCK: &str = r#"#!/bin/sh
printf '%s\n' "$@" > "$MOCK_ARGS"
while [ $# -gt 0 ]; do
    case "$1" in
        --rebuild) srpm=$2; shift 2 ;;
        --resultdir) out=$2; shift 2 ;;
        *) shift ;;
    esac
done
rpmbuild --rebuild "$srpm" --define "_topdir $out/top" --define "_rpmdir $out" \
    --define '_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm' \
    --define 'dist .fc41'
rm -rf "$out/top"
"#;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.org"])
        .args(args)
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn the_rpm_task_uses_mock_when_the_host_has_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // The package as DistGit holds it: the spec and an empty `sources`.
    let repo = tmp.path().join("hello.git");
    std::fs::create_dir(&repo).expect("repo");
    git(&repo, &["init", "-q", "-b", "f41"]);
    std::fs::write(repo.join("hello.spec"), HELLO_SPEC).expect("spec");
    std::fs::write(repo.join("sources"), "").expect("sources");
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "import"]);
    let commit = git(&repo, &["rev-parse", "HEAD"]);

    let bin = tmp.path().join("bin");
    let configs = tmp.path().join("mock-configs");
    std::fs::create_dir_all(&bin).expect("bin");
    std::fs::create_dir_all(&configs).expect("configs");
    std::fs::write(bin.join("mock"), FAKE_MOCK).expect("fake mock");
    let chmod = Command::new("chmod")
        .arg("755")
        .arg(bin.join("mock"))
        .status();
    assert!(chmod.expect("chmod").success());
    std::fs::write(configs.join("fedora-41-x86_64.cfg"), "").expect("config");

    let task = BuilderTask {
        task_id: "7-fedora-41-x86_64".into(),
        build_id: 7,
        chroot: "fedora-41-x86_64".into(),
        project_owner: "alice".into(),
        project_name: "hello".into(),
        project_dirname: "hello".into(),
        timeout: 600,
        enable_net: false,
        kind: TaskKind::Rpm {
            git_repo: format!("file://{}", repo.display()),
            git_hash: commit,
            lookaside_url: "http://127.0.0.1:9/lookaside".into(),
            package_name: "hello".into(),
            dist: ".fc41".into(),
            bconds: Bconds {
                with: vec!["extra".into()],
                without: vec!["docs".into()],
            },
        },
    };
    let task_file = tmp.path().join("task.json");
    std::fs::write(&task_file, serde_json::to_vec(&task).expect("json")).expect("task");
    let results = tmp.path().join("results");
    let args_file = tmp.path().join("mock-args");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(ferrocopr_binary())
        .arg("builder")
        .arg("--task")
        .arg(&task_file)
        .arg("--resultdir")
        .arg(&results)
        .env("PATH", path)
        .env("FERROCOPR_MOCK_CONFIGS", &configs)
        .env("MOCK_ARGS", &args_file)
        .output()
        .expect("run the builder");
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{log}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(log.contains("building the RPMs in mock"), "{log}");

    let args = std::fs::read_to_string(&args_file).expect("mock was run");
    let args: Vec<&str> = args.lines().collect();
    let config = configs.join("fedora-41-x86_64.cfg");
    let after = |flag: &str| -> Vec<&str> {
        args.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1])
            .collect()
    };
    assert_eq!(after("-r"), [config.to_str().expect("utf-8")], "{args:?}");
    assert_eq!(after("--with"), ["extra"], "{args:?}");
    assert_eq!(after("--without"), ["docs"], "{args:?}");
    assert_eq!(after("--uniqueext"), ["7-fedora-41-x86_64"], "{args:?}");
    let defines = after("--define");
    for expected in [
        "copr_username alice",
        "copr_projectname hello",
        "buildtag .copr7",
        "vendor Fedora Project COPR (alice/hello)",
    ] {
        assert!(
            defines.contains(&expected),
            "{expected} is not defined: {args:?}"
        );
    }
    assert!(!args.contains(&"--enable-network"), "{args:?}");

    assert!(results.join(SUCCESS_FILE).is_file());
    let built: Results =
        serde_json::from_slice(&std::fs::read(results.join(RESULTS_FILE)).expect("results"))
            .expect("results.json");
    assert_eq!(built.packages.len(), 1);
    assert_eq!(built.packages[0].name, "hello");
    assert_eq!(built.packages[0].release, "1.fc41");
}
