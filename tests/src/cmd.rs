//! Running the real tools (dnf, rpm, gpg, gzip) the way a user would, non-interactively, and
//! keeping everything they print for the failure message.

use std::ffi::OsStr;
use std::fmt;
use tokio::process::Command;

/// What a finished command printed.
#[derive(Debug, Clone)]
pub struct CmdOutput {
    /// The command line, for messages.
    pub command: String,
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    /// Panics with the whole output unless the command succeeded.
    #[track_caller]
    pub fn expect_success(self) -> CmdOutput {
        assert!(self.success, "command failed:\n{self}");
        self
    }
}

impl fmt::Display for CmdOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "$ {}", self.command)?;
        writeln!(f, "exit code: {:?}", self.code)?;
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        write!(f, "--- stderr ---\n{}", self.stderr)
    }
}

/// Runs `program args…` with stdin closed; panics clearly if `program` is not installed.
pub async fn run<I, S>(program: &str, args: I) -> CmdOutput
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_with_env(program, args, &[]).await
}

/// [`run`] with extra environment variables.
pub async fn run_with_env<I, S>(program: &str, args: I, env: &[(&str, &OsStr)]) -> CmdOutput
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let command = std::iter::once(program.to_owned())
        .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = Command::new(program);
    cmd.args(&args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    for (name, value) in env {
        cmd.env(name, value);
    }
    let output = match cmd.output().await {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "`{program}` is not installed, and the end-to-end tests need it (the README's test \
             command installs rpm, dnf, dnf-plugins-core, createrepo-c and gnupg): {command}"
        ),
        Err(e) => panic!("could not start `{command}`: {e}"),
    };
    CmdOutput {
        command,
        success: output.status.success(),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs a prepared blocking command (for tests' setup outside the runtime: rpmbuild, rpmsign,
/// `ferrocopr createrepo`); panics with everything it printed unless it succeeded, and returns
/// its stdout and stderr.
#[track_caller]
pub fn check(cmd: &mut std::process::Command) -> String {
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{text}",
        out.status
    );
    text
}
