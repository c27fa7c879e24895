//! Packages the end-to-end tests build and submit: a spec made into an SRPM with the real
//! rpmbuild, and the submission that uploads one for alice, as the API would.

use crate::Submission;
use ferrocopr_schema::model::ProjectRef;
use std::path::Path;
use std::process::Command;

/// A noarch package that installs one file, `/usr/share/hello/hello.txt`.
pub const HELLO_SPEC: &str = "\
Name:           hello
Version:        1.0
Release:        1%{?dist}
Summary:        A greeting
License:        MIT
BuildArch:      noarch

%description
Says hello.

%install
mkdir -p %{buildroot}/usr/share/hello
echo hello > %{buildroot}/usr/share/hello/hello.txt

%files
/usr/share/hello/hello.txt
";

/// `hello` 1.0 built from a source tarball `hello-1.0.tar.gz` holding `hello.txt`: what a
/// repository with the spec and `hello.txt` at its top becomes with the spec method (`git
/// archive` makes the tarball) or a script that packs it.
pub const HELLO_TARBALL_SPEC: &str = "\
Name:           hello
Version:        1.0
Release:        1%{?dist}
Summary:        A greeting
License:        MIT
BuildArch:      noarch
Source0:        hello-%{version}.tar.gz

%description
A file that says hello.

%prep
%setup -q

%install
mkdir -p %{buildroot}/usr/share/hello
install -m 0644 hello.txt %{buildroot}/usr/share/hello/hello.txt

%files
/usr/share/hello/hello.txt
";

/// Writes `spec` as `<name>.spec` into `dir` and makes its SRPM there with `rpmbuild -bs`;
/// returns the SRPM's bytes. Panics if rpmbuild fails or `dir` ends up with other SRPMs of
/// `name`.
pub fn srpm(dir: &Path, name: &str, spec: &str) -> Vec<u8> {
    let spec_file = dir.join(format!("{name}.spec"));
    std::fs::write(&spec_file, spec).expect("write the spec");
    let define = |k: &str, v: &Path| format!("{k} {}", v.display());
    let status = Command::new("rpmbuild")
        .args(["-bs", "--nodeps"])
        .arg(&spec_file)
        .args(["--define", &define("_topdir", &dir.join("top"))])
        .args(["--define", &define("_srcrpmdir", dir)])
        .status()
        .expect("run rpmbuild");
    assert!(
        status.success(),
        "rpmbuild -bs {} failed",
        spec_file.display()
    );
    let made: Vec<_> = std::fs::read_dir(dir)
        .expect("list the SRPM's directory")
        .map(|e| e.expect("list").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{name}-")) && n.ends_with(".src.rpm"))
        })
        .collect();
    assert_eq!(
        made.len(),
        1,
        "one SRPM of {name} in {}: {made:?}",
        dir.display()
    );
    std::fs::read(&made[0]).expect("the SRPM")
}

/// alice asks for a build of `alice/<project>` in `chroot`, offline, with the defaults.
pub fn submission(project: &str, chroot: &str) -> Submission {
    Submission {
        project: ProjectRef {
            owner: "alice".into(),
            project: project.into(),
        },
        dirname: None,
        chroots: vec![chroot.to_owned()],
        submitter: "alice".into(),
        enable_net: false,
        timeout: None,
        bconds: Default::default(),
        background: false,
    }
}
