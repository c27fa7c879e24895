//! Repodata publish benchmark (issue #6): ferrocopr's native writer against `createrepo_c`, on
//! the same generated RPMs, full and after adding one package; and the publisher's incremental
//! path (one build directory per package, a new build published into a chroot of all the others).
//! Prints a table; the figures go to `docs/performance.md`. Not a test: nothing is asserted.
//!
//! ```sh
//! cargo run --release -p ferrocopr-repo-publisher --example publish_bench -- 2000 20000
//! ```
//!
//! Needs `createrepo_c` on the host. Ours runs in this process (the same code as
//! `ferrocopr createrepo`); createrepo_c as its own process, `--no-database`, default workers.

#[path = "../tests/common/mod.rs"]
mod common;

use ferrocopr_repo_publisher::Publisher;
use ferrocopr_repo_publisher::repodata::{self, Compression};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Rounds of "add one package, update" per tool; the median is reported.
const INCREMENTAL_ROUNDS: usize = 3;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `--publisher`: only the publisher's rows (for profiling its incremental path).
    let publisher_only = args.iter().any(|a| a == "--publisher");
    let sizes: Vec<usize> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let sizes = if sizes.is_empty() {
        vec![2_000, 20_000]
    } else {
        sizes
    };
    sha256_throughput();
    let mut rows = Vec::new();
    for n in sizes {
        rows.extend(bench(n, publisher_only)?);
    }
    println!();
    println!("| packages | what | ferrocopr | createrepo_c | createrepo_c / ferrocopr |");
    println!("|---:|---|---:|---:|---:|");
    for row in rows {
        match row.theirs {
            Some(theirs) => println!(
                "| {} | {} | {} | {} | **{:.1}×** |",
                row.packages,
                row.what,
                show(row.ours),
                show(theirs),
                theirs.as_secs_f64() / row.ours.as_secs_f64()
            ),
            None => println!(
                "| {} | {} | {} | – | – |",
                row.packages,
                row.what,
                show(row.ours)
            ),
        }
    }
    Ok(())
}

/// SHA-256 over 256 MiB: about 2 GB/s means sha2 found the CPU's SHA extensions (SHA-NI), a
/// few hundred MB/s that it fell back to software.
fn sha256_throughput() {
    use sha2::Digest;
    let data = vec![0x5au8; 256 << 20];
    let (digest, took) = timed(|| sha2::Sha256::digest(&data));
    eprintln!(
        "sha256: {:.2} GB/s ({:02x}…)",
        data.len() as f64 / took.as_secs_f64() / 1e9,
        digest[0]
    );
}

struct Row {
    packages: usize,
    what: &'static str,
    ours: Duration,
    theirs: Option<Duration>,
}

fn show(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn createrepo_c(dir: &Path, update: bool) -> anyhow::Result<()> {
    let mut cmd = Command::new("createrepo_c");
    cmd.args(["--no-database", "--quiet"]);
    if update {
        cmd.arg("--update");
    }
    let out = cmd.arg(dir).output()?;
    anyhow::ensure!(
        out.status.success(),
        "createrepo_c failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Generates `n` packages into `dir`, on every core.
fn generate(dir: &Path, range: std::ops::Range<usize>) {
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    std::thread::scope(|scope| {
        for w in 0..workers {
            let range = range.clone();
            scope.spawn(move || {
                for i in range.skip(w).step_by(workers) {
                    common::write_rpm(dir, i);
                }
            });
        }
    });
}

/// Hard links every file of `from` into `to` (same bytes and mtime, no copy).
fn link_all(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        std::fs::hard_link(entry.path(), to.join(entry.file_name()))?;
    }
    Ok(())
}

/// A publisher chroot of the first `n` packages of `pool`, `per_build` to a build directory,
/// each `success` and `signed`; returns how many builds it made.
fn chroot_of(pool: &Path, n: usize, per_build: usize, chroot: &Path) -> anyhow::Result<usize> {
    let mut rpms: Vec<PathBuf> = std::fs::read_dir(pool)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    rpms.sort();
    rpms.truncate(n);
    let mut builds = 0;
    for group in rpms.chunks(per_build) {
        builds += 1;
        add_build(chroot, builds, group)?;
    }
    Ok(builds)
}

fn add_build(chroot: &Path, id: usize, rpms: &[PathBuf]) -> anyhow::Result<()> {
    let build = chroot.join(format!("{id:08}-gen"));
    std::fs::create_dir_all(&build)?;
    for rpm in rpms {
        let name = rpm
            .file_name()
            .ok_or_else(|| anyhow::anyhow!("no file name"))?;
        std::fs::hard_link(rpm, build.join(name))?;
    }
    std::fs::write(build.join("success"), "")?;
    std::fs::write(build.join("signed"), "")?;
    Ok(())
}

fn bench(n: usize, publisher_only: bool) -> anyhow::Result<Vec<Row>> {
    let tmp = tempfile::tempdir()?;
    let pool = tmp.path().join("pool");
    std::fs::create_dir_all(&pool)?;
    eprintln!("{n}: generating packages…");
    let ((), took) = timed(|| generate(&pool, 0..n));
    eprintln!("{n}: generated in {}", show(took));
    let mut rows = Vec::new();
    if publisher_only {
        bench_publisher(n, &pool, tmp.path(), None, &mut rows)?;
        return Ok(rows);
    }
    let ours = tmp.path().join("ours");
    let ours_zstd = tmp.path().join("ours-zstd");
    let theirs = tmp.path().join("theirs");
    for dir in [&ours, &ours_zstd, &theirs] {
        link_all(&pool, dir)?;
    }

    eprintln!("{n}: full runs…");
    let (outcome, ours_full) = timed(|| repodata::createrepo(&ours, false));
    anyhow::ensure!(outcome?.packages == n, "ours listed a wrong count");
    let (done, theirs_full) = timed(|| createrepo_c(&theirs, false));
    done?;
    let (done, zstd_full) =
        timed(|| repodata::createrepo_with(&ours_zstd, false, Compression::Zstd));
    done?;
    rows.push(Row {
        packages: n,
        what: "full (gz)",
        ours: ours_full,
        theirs: Some(theirs_full),
    });
    rows.push(Row {
        packages: n,
        what: "full, ferrocopr with zstd",
        ours: zstd_full,
        theirs: None,
    });

    eprintln!("{n}: adding one package at a time…");
    let (mut ours_times, mut theirs_times, mut zstd_times) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..INCREMENTAL_ROUNDS {
        let added = common::write_rpm(&pool, n + round);
        let name = added
            .file_name()
            .ok_or_else(|| anyhow::anyhow!("no file name"))?;
        for dir in [&ours, &ours_zstd, &theirs] {
            std::fs::hard_link(&added, dir.join(name))?;
        }
        let (outcome, took) = timed(|| repodata::createrepo(&ours, true));
        let outcome = outcome?;
        anyhow::ensure!(outcome.read == 1, "ours read {} packages", outcome.read);
        ours_times.push(took);
        let (done, took) = timed(|| createrepo_c(&theirs, true));
        done?;
        theirs_times.push(took);
        let (done, took) = timed(|| repodata::createrepo_with(&ours_zstd, true, Compression::Zstd));
        done?;
        zstd_times.push(took);
    }
    let theirs_update = median(theirs_times);
    rows.push(Row {
        packages: n,
        what: "`--update` after adding one package (gz)",
        ours: median(ours_times),
        theirs: Some(theirs_update),
    });
    rows.push(Row {
        packages: n,
        what: "`--update` after adding one package, ferrocopr with zstd",
        ours: median(zstd_times),
        theirs: None,
    });

    bench_publisher(n, &pool, tmp.path(), Some(theirs_update), &mut rows)?;
    Ok(rows)
}

/// The publisher's rows: a chroot of the packages of `pool`, one build per package and then
/// four per build (a package with -devel, -debuginfo and -debugsource), published, then one more
/// build published, [`INCREMENTAL_ROUNDS`] times.
fn bench_publisher(
    n: usize,
    pool: &Path,
    work: &Path,
    theirs_update: Option<Duration>,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    let extra = common::write_rpm(pool, n + 2 * INCREMENTAL_ROUNDS);
    for (per_build, first, again) in [
        (
            1,
            "publisher: first publish, one build per package",
            "publisher: one more build, one build per package (vs `createrepo_c --update`)",
        ),
        (
            4,
            "publisher: first publish, 4 packages per build",
            "publisher: one more build, 4 packages per build (vs `createrepo_c --update`)",
        ),
    ] {
        eprintln!("{n}: the publisher, {per_build} packages per build…");
        let chroot = work.join(format!("chroot-{per_build}"));
        let builds = chroot_of(pool, n, per_build, &chroot)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let publisher = Publisher::new();
        let (done, publisher_full) = timed(|| runtime.block_on(publisher.publish_chroot(&chroot)));
        done?;
        let mut publisher_times = Vec::new();
        for round in 0..INCREMENTAL_ROUNDS {
            add_build(&chroot, builds + round + 1, std::slice::from_ref(&extra))?;
            let (done, took) = timed(|| runtime.block_on(publisher.publish_chroot(&chroot)));
            if let ferrocopr_repo_publisher::Published::Written(outcome) = done? {
                anyhow::ensure!(outcome.read == 1, "the publisher read {}", outcome.read);
            }
            publisher_times.push(took);
        }
        rows.push(Row {
            packages: n,
            what: first,
            ours: publisher_full,
            theirs: None,
        });
        rows.push(Row {
            packages: n,
            // Copr runs `createrepo_c --update` per finished build: the `--update` row above.
            what: again,
            ours: median(publisher_times),
            theirs: theirs_update,
        });
    }
    Ok(())
}
