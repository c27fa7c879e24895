//! The SRPM task end to end: a git repository with a spec but no tarball becomes a `.src.rpm`
//! with `results.json` and `success`, through the same `main` the `ferrocopr builder`
//! subcommand calls. Needs rpmbuild, rpm and git on the host; fails without them.

use ferrocopr_schema::copr_yaml::SrpmMethod;
use ferrocopr_schema::model::BuildSource;
use ferrocopr_schema::task::{BuilderTask, RESULTS_FILE, Results, SUCCESS_FILE, TaskKind};
use std::path::Path;
use std::process::ExitCode;

const SPEC: &str = r#"Name: hello
Version: 1.0
Release: 1%{?dist}
Summary: Says hello
License: MIT
BuildArch: noarch
Source0: https://example.com/%{name}-%{version}.tar.gz

%description
Says hello.

%prep
%setup -q

%build

%install
mkdir -p %{buildroot}/usr/share/hello
install -m 0644 hello.txt %{buildroot}/usr/share/hello/hello.txt

%files
/usr/share/hello/hello.txt
"#;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A repository with `hello.txt` at the top and the spec in `rpm/`; returns the commit.
fn make_repo(dir: &Path) -> Result<String, Box<dyn std::error::Error>> {
    let repo = git2::Repository::init(dir)?;
    std::fs::write(dir.join("hello.txt"), "hello\n")?;
    std::fs::create_dir(dir.join("rpm"))?;
    std::fs::write(dir.join("rpm/hello.spec"), SPEC)?;
    let mut index = repo.index()?;
    index.add_path(Path::new("hello.txt"))?;
    index.add_path(Path::new("rpm/hello.spec"))?;
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let sig = git2::Signature::now("Packager", "packager@example.com")?;
    let commit = repo.commit(Some("HEAD"), &sig, &sig, "hello 1.0", &tree, &[])?;
    Ok(commit.to_string())
}

fn task(clone_url: String, committish: String) -> BuilderTask {
    BuilderTask {
        task_id: "7".into(),
        build_id: 7,
        chroot: "srpm-builds".into(),
        project_owner: "alice".into(),
        project_name: "hello".into(),
        project_dirname: "hello".into(),
        timeout: 600,
        enable_net: false,
        kind: TaskKind::Srpm {
            source: BuildSource::Scm {
                clone_url,
                committish,
                spec: "rpm/hello.spec".into(),
                srpm: SrpmMethod::Spec,
            },
            distgit: None,
        },
    }
}

fn run(task: &BuilderTask, dir: &Path) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let task_file = dir.join("task.json");
    std::fs::write(&task_file, serde_json::to_vec(task)?)?;
    Ok(ferrocopr_builder::main(&task_file, &dir.join("results")))
}

#[test]
fn srpm_from_git_without_tarball() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let repo = tmp.path().join("repo");
    std::fs::create_dir(&repo)?;
    let commit = make_repo(&repo)?;

    let url = format!("file://{}", repo.display());
    let code = run(&task(url, commit), tmp.path())?;
    assert_eq!(code, ExitCode::SUCCESS);

    let results_dir = tmp.path().join("results");
    assert!(results_dir.join("hello-1.0-1.src.rpm").is_file());
    assert!(results_dir.join(SUCCESS_FILE).is_file());
    let results: Results = serde_json::from_slice(&std::fs::read(results_dir.join(RESULTS_FILE))?)?;
    assert_eq!(results.packages.len(), 1);
    let p = &results.packages[0];
    assert_eq!(
        (
            p.name.as_str(),
            p.epoch,
            p.version.as_str(),
            p.release.as_str(),
            p.arch.as_str()
        ),
        ("hello", None, "1.0", "1", "src")
    );
    // The tarball was made in the builder's checkout, never in the packager's repository.
    assert!(!repo.join("rpm/hello-1.0.tar.gz").exists());
    Ok(())
}

#[test]
fn failures_exit_1_without_success() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let repo = tmp.path().join("repo");
    std::fs::create_dir(&repo)?;
    make_repo(&repo)?;
    let path = repo.display().to_string();

    let mut bad_spec = task(path.clone(), "HEAD".into());
    if let TaskKind::Srpm {
        source: BuildSource::Scm { spec, .. },
        ..
    } = &mut bad_spec.kind
    {
        *spec = "../hello.spec".into();
    }
    for t in [task(path.clone(), "no-such-branch".into()), bad_spec] {
        let out = tempfile::tempdir()?;
        assert_eq!(run(&t, out.path())?, ExitCode::FAILURE);
        assert!(!out.path().join("results").join(SUCCESS_FILE).exists());
    }
    Ok(())
}

#[test]
fn a_spec_naming_a_directory_means_the_one_spec_there() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let repo = tmp.path().join("repo");
    std::fs::create_dir(&repo)?;
    make_repo(&repo)?;
    let url = format!("file://{}", repo.display());
    let with_spec = |spec: &str| {
        let mut t = task(url.clone(), "HEAD".into());
        if let TaskKind::Srpm {
            source: BuildSource::Scm { spec: s, .. },
            ..
        } = &mut t.kind
        {
            *s = spec.into();
        }
        t
    };
    let out = tempfile::tempdir()?;
    assert_eq!(run(&with_spec("rpm/"), out.path())?, ExitCode::SUCCESS);
    assert!(out.path().join("results/hello-1.0-1.src.rpm").is_file());
    // The top of the repository holds no spec.
    let out = tempfile::tempdir()?;
    assert_eq!(run(&with_spec(""), out.path())?, ExitCode::FAILURE);
    Ok(())
}

fn custom_task(script: &str, resultdir: &str) -> BuilderTask {
    let mut t = task(String::new(), String::new());
    t.kind = TaskKind::Srpm {
        source: BuildSource::Custom {
            script: script.into(),
            chroot: Some("fedora-latest-x86_64".into()),
            builddeps: vec!["tar".into()],
            resultdir: resultdir.into(),
        },
        distgit: None,
    };
    t
}

#[test]
fn a_custom_script_makes_the_srpm_from_nothing() -> TestResult {
    let spec = SPEC.replace(
        "Source0: https://example.com/%{name}-%{version}.tar.gz",
        "Source0: hello-1.0.tar.gz",
    );
    let script = format!(
        "test -z \"$(ls -A)\"\nmkdir -p out/hello-1.0\necho hello > out/hello-1.0/hello.txt\n\
         tar -C out -czf out/hello-1.0.tar.gz hello-1.0\nrm -r out/hello-1.0\n\
         cat > out/hello.spec <<'EOF'\n{spec}EOF\n"
    );
    let out = tempfile::tempdir()?;
    assert_eq!(
        run(&custom_task(&script, "out"), out.path())?,
        ExitCode::SUCCESS
    );
    assert!(out.path().join("results/hello-1.0-1.src.rpm").is_file());

    // No spec, two specs, a failing script, a result directory outside: no SRPM.
    for (script, resultdir) in [
        ("mkdir out", "out"),
        ("touch a.spec b.spec", ""),
        ("touch a.spec; exit 3", ""),
        ("touch a.spec", "../.."),
    ] {
        let out = tempfile::tempdir()?;
        assert_eq!(
            run(&custom_task(script, resultdir), out.path())?,
            ExitCode::FAILURE,
            "{script}"
        );
        assert!(!out.path().join("results").join(SUCCESS_FILE).exists());
    }
    Ok(())
}

/// One build per host: while another build holds the host's lock, the builder waits, and it
/// runs as soon as the lock is free.
#[test]
fn a_second_build_waits_for_the_host_lock() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let repo = tmp.path().join("repo");
    std::fs::create_dir(&repo)?;
    let commit = make_repo(&repo)?;
    let task_file = tmp.path().join("task.json");
    let task = task(format!("file://{}", repo.display()), commit);
    std::fs::write(&task_file, serde_json::to_vec(&task)?)?;
    let lock = tmp.path().join("builder.lock");
    let held = std::fs::File::create(&lock)?;
    held.lock()?;

    let results = tmp.path().join("results");
    let second = {
        let (task_file, results, lock) = (task_file.clone(), results.clone(), lock.clone());
        std::thread::spawn(move || {
            ferrocopr_builder::main_on_host(&task_file, &results, Some(&lock))
        })
    };
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert!(
        !second.is_finished(),
        "the builder ran while the host was taken"
    );
    assert!(!results.exists());

    held.unlock()?;
    let code = second.join().map_err(|_| "the builder panicked")?;
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(results.join(SUCCESS_FILE).is_file());
    Ok(())
}
