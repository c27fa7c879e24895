//! Package signing throughput (issue 6): ferrocopr's signer against `rpmsign --addsign`, with
//! the same key, on the same packages.
//!
//! ```sh
//! cargo run --release -p ferrocopr-signer --example sign_bench -- [COUNT] [rsa4096|ed25519|both]
//! ```
//!
//! COUNT small RPMs (default 500) are made with rpm's `PackageBuilder`. For each key algorithm,
//! one key is made and used by both sides: ferrocopr signs copies of the packages exactly as
//! the scheduler does (`sign_rpm` through a `SignerClient`: the header goes to the signer, the
//! signature comes back into the package), with as many packages in flight as twice the
//! machine's cores; `rpmsign --addsign` signs other copies in one invocation over all files,
//! with the key imported into a temporary GNUPGHOME (no passphrase), after a first signature
//! has started gpg-agent. Copying and key generation are not timed. One package of each side
//! is then checked with `rpmkeys --checksig`.

use anyhow::Context;
use ferrocopr_schema::ProjectRef;
use ferrocopr_signer::keys::{generate_with, sign_detached, user_id};
use ferrocopr_signer::rpm_header::sign_rpm;
use ferrocopr_signer::{KeyAlgorithm, KeyPolicy, LocalSigner, SignerClient};
use sequoia_openpgp::serialize::SerializeInto;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let count: usize = match args.next() {
        Some(n) => n.parse().context("COUNT must be a number")?,
        None => 500,
    };
    let algorithms = match args.next().as_deref() {
        None | Some("both") => vec![KeyAlgorithm::Rsa4096, KeyAlgorithm::Ed25519],
        Some(name) => vec![name.parse().map_err(anyhow::Error::msg)?],
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let tmp = tempfile::Builder::new().prefix("sign-bench").tempdir()?;
    let unsigned = tmp.path().join("unsigned");
    let started = Instant::now();
    let packages = make_packages(&unsigned, count)?;
    println!(
        "made {count} RPMs in {:.1?}; {} cores; rpm {}",
        started.elapsed(),
        cores(),
        tool_version("rpm")
    );
    let mut rows = Vec::new();
    for algorithm in algorithms {
        let dir = tmp.path().join(algorithm.name());
        let row = runtime.block_on(compare(&dir, algorithm, &packages))?;
        rows.push((algorithm, row));
    }
    println!();
    println!(
        "| key | packages | ferrocopr (sign_rpm, {} in flight) | rpmsign --addsign | ratio |",
        2 * cores()
    );
    println!("|---|---|---|---|---|");
    for (algorithm, (ours, theirs)) in rows {
        let rate = |d: Duration| count as f64 / d.as_secs_f64();
        println!(
            "| {algorithm} | {count} | {:.1?} ({:.0} sig/s) | {:.1?} ({:.0} sig/s) | {:.1}× |",
            ours,
            rate(ours),
            theirs,
            rate(theirs),
            theirs.as_secs_f64() / ours.as_secs_f64()
        );
    }
    Ok(())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn tool_version(tool: &str) -> String {
    Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// `count` small noarch packages, each with one file, uncompressed payload.
fn make_packages(dir: &Path, count: usize) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    (0..count)
        .map(|i| {
            let name = format!("bench{i}");
            let package = rpm::PackageBuilder::new(&name, "1.0", "MIT", "noarch", "benchmark")
                .using_config(rpm::BuildConfig::v4().compression(rpm::CompressionType::None))
                .with_file_contents(
                    format!("package {i}\n"),
                    rpm::FileOptions::new(format!("/usr/share/{name}/file")),
                )?
                .build()?;
            let path = dir.join(format!("{name}.rpm"));
            package.write_file(&path)?;
            Ok(path)
        })
        .collect()
}

fn copies(packages: &[PathBuf], dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    packages
        .iter()
        .map(|p| {
            let to = dir.join(p.file_name().context("file name")?);
            std::fs::copy(p, &to)?;
            Ok(to)
        })
        .collect()
}

/// Times both sides with one key of `algorithm`; returns (ours, rpmsign's).
async fn compare(
    dir: &Path,
    algorithm: KeyAlgorithm,
    packages: &[PathBuf],
) -> anyhow::Result<(Duration, Duration)> {
    let project = ProjectRef {
        owner: "bench".into(),
        project: "signing".into(),
    };
    let policy = KeyPolicy {
        algorithm,
        ..KeyPolicy::default()
    };
    let uid = user_id(&project, "example.org");
    let tsk = generate_with(&uid, &policy)?;
    // The signer takes a key stored in the clear and encrypts it on first use; gpg gets the
    // same key.
    let keys = dir.join("keys");
    std::fs::create_dir_all(keys.join("bench"))?;
    std::fs::write(
        keys.join("bench/signing.tsk.asc"),
        tsk.as_tsk().armored().to_vec()?,
    )?;
    let signer = Arc::new(LocalSigner::with_policy(
        keys,
        "example.org".into(),
        None,
        policy,
    )?);
    let public = signer.public_key(&project).await?;
    let key_file = dir.join("pubkey.gpg");
    std::fs::write(&key_file, &public)?;

    // The private-key operation alone, one thread, 20 signatures of a header-sized input:
    // sequoia's own key pair (for RSA: no CRT) against the signer's cached key.
    let header = vec![0x42u8; 4096];
    let mut keypair = tsk
        .primary_key()
        .key()
        .clone()
        .parts_into_secret()?
        .into_keypair()?;
    let started = Instant::now();
    for _ in 0..20 {
        sign_detached(&mut keypair, &header)?;
    }
    let sequoia_each = started.elapsed() / 20;
    let started = Instant::now();
    for _ in 0..20 {
        signer.sign(&project, header.clone()).await?;
    }
    let store_each = started.elapsed() / 20;
    println!(
        "{algorithm}: one signature, one thread: sequoia's key pair {sequoia_each:.2?}, \
         the signer's cached key {store_each:.2?}"
    );

    // Ours.
    let ours = copies(packages, &dir.join("ferrocopr"))?;
    sign_rpm(signer.as_ref(), &project, &ours[0]).await?; // unlock and cache the key
    let ours = copies(packages, &dir.join("ferrocopr"))?;
    let limit = Arc::new(tokio::sync::Semaphore::new(2 * cores()));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for rpm in ours.clone() {
        let signer = Arc::clone(&signer);
        let project = project.clone();
        let permit = Arc::clone(&limit).acquire_owned().await?;
        tasks.spawn(async move {
            let signed = sign_rpm(signer.as_ref(), &project, &rpm).await;
            drop(permit);
            signed
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let ours_took = started.elapsed();

    // rpmsign's, with the same key in a fresh GNUPGHOME (short path: gpg-agent's socket).
    let home = tempfile::Builder::new().prefix("gh").tempdir_in("/tmp")?;
    std::fs::set_permissions(
        home.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )?;
    let secret_file = dir.join("secret.asc");
    std::fs::write(&secret_file, tsk.as_tsk().armored().to_vec()?)?;
    let gpg = |args: &[&std::ffi::OsStr]| -> anyhow::Result<()> {
        let out = Command::new("gpg")
            .env("GNUPGHOME", home.path())
            .args(["--batch", "--yes"])
            .args(args)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    };
    gpg(&["--import".as_ref(), secret_file.as_os_str()])?;
    // Starts gpg-agent and unlocks the key before timing, as a long-running signer host would.
    let warm = dir.join("warm");
    std::fs::write(&warm, b"warm")?;
    gpg(&[
        "--local-user".as_ref(),
        uid.as_ref(),
        "--detach-sign".as_ref(),
        warm.as_os_str(),
    ])?;
    let theirs = copies(packages, &dir.join("rpmsign"))?;
    let started = Instant::now();
    let out = Command::new("rpmsign")
        .env("GNUPGHOME", home.path())
        .arg("--define")
        .arg(format!("_gpg_name {uid}"))
        .arg("--define")
        .arg(format!("_gpg_path {}", home.path().display()))
        // Debian's rpm looks for gpg2, which gnupg 2.2 and later no longer install.
        .arg("--define")
        .arg(format!("__gpg {}", on_path("gpg")?.display()))
        .arg("--addsign")
        .args(&theirs)
        .output()?;
    let theirs_took = started.elapsed();
    anyhow::ensure!(
        out.status.success(),
        "rpmsign: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = Command::new("gpgconf")
        .env("GNUPGHOME", home.path())
        .args(["--kill", "gpg-agent"])
        .status();

    // Both sides' packages verify with the key, and carry it in the same tag.
    let db = dir.join("rpmdb");
    std::fs::create_dir_all(&db)?;
    let dbpath = format!("_dbpath {}", db.display());
    let rpmkeys = |args: &[&std::ffi::OsStr]| -> anyhow::Result<String> {
        let out = Command::new("rpmkeys")
            .args(["--define", &dbpath, "--define", "_pkgverify_level all"])
            .args(args)
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        anyhow::ensure!(out.status.success(), "rpmkeys {args:?}: {text}");
        Ok(text)
    };
    rpmkeys(&["--import".as_ref(), key_file.as_os_str()])?;
    for (side, rpm) in [("ferrocopr", &ours[0]), ("rpmsign", &theirs[0])] {
        let checked = rpmkeys(&["--checksig".as_ref(), rpm.as_os_str()])?;
        let tags = signature_tags(rpm)?;
        println!(
            "{algorithm} {side}: {} signature tags {tags:?}",
            checked.trim()
        );
    }
    println!(
        "{algorithm}: ferrocopr {ours_took:.1?}, rpmsign {theirs_took:.1?} for {} packages",
        packages.len()
    );
    Ok((ours_took, theirs_took))
}

/// `program`'s full path, from `PATH`.
fn on_path(program: &str) -> anyhow::Result<PathBuf> {
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(program))
                .find(|candidate| candidate.is_file())
        })
        .with_context(|| format!("{program} is not on PATH"))
}

/// The header-signature tags in the package's signature header (267 DSA, 268 RSA, 278
/// OpenPGP).
fn signature_tags(rpm: &Path) -> anyhow::Result<Vec<u32>> {
    let package = rpm::Package::open(rpm)?;
    Ok(package
        .metadata
        .signature
        .get_all_entries()?
        .into_iter()
        .map(|(tag, _)| tag)
        .filter(|tag| [267, 268, 278].contains(tag))
        .collect())
}
