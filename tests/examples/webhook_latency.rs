//! Benchmark (issue 3): the time from a webhook's arrival to the first pending status reaching
//! the forge, and how many webhooks a burst gets accepted.
//!
//! ferrocopr runs in this process on SQLite (the embedded default) with the fake forge as
//! GitHub on loopback; the real octocrab client reads `.copr.yaml` at each pushed commit and
//! posts the statuses. No local builders run (`local_builders: 0`), so the figures are the
//! frontend's alone: verify, record durably, answer 202, read the file, request the build,
//! post "accepted". Each push is a different commit, so each is a build of its own.
//!
//! Run: `cargo run -p ferrocopr-tests --example webhook_latency -- [SEQUENTIAL] [BURST]`
//! (defaults 1000 and 1000). Figures from one run on one machine; `docs/performance.md` keeps
//! them with the machine they came from.

use ferrocopr_tests::fake_forge::{FakeForge, TOKEN};
use ferrocopr_tests::{TestRepo, http, new_delivery_id, push_payload, webhook};
use std::time::{Duration, Instant};

const REPO: &str = "alice/hello";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Sends one signed push; `Err` when the connection failed (refused, reset).
async fn send_push(url: &str, clone_url: &str, sha: &str) -> Result<u16, String> {
    let body = push_payload(REPO, clone_url, sha, "main");
    let headers = vec![
        ("X-GitHub-Event".to_owned(), "push".to_owned()),
        ("X-GitHub-Delivery".to_owned(), new_delivery_id()),
        (
            "X-Hub-Signature-256".to_owned(),
            webhook::signature(webhook::SECRET, &body),
        ),
        ("Content-Type".to_owned(), "application/json".to_owned()),
    ];
    let url = format!("{url}/webhooks/github");
    tokio::task::spawn_blocking(move || {
        // One connection per webhook, as forges send them.
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_idle_connections(0)
            .build()
            .into();
        let mut request = agent.post(&url);
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        request
            .send(&body[..])
            .map(|r| r.status().as_u16())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Waits until every commit of `shas` has its first status; gives each its arrival time.
async fn first_statuses(forge: &FakeForge, shas: &[String]) -> Vec<Instant> {
    let mut changes = forge.subscribe();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        changes.borrow_and_update();
        let seen: Vec<Option<Instant>> = shas.iter().map(|s| forge.first_status_at(s)).collect();
        if seen.iter().all(Option::is_some) {
            return seen.into_iter().flatten().collect();
        }
        assert!(Instant::now() < deadline, "statuses missing after 600 s");
        let _ = tokio::time::timeout(Duration::from_secs(1), changes.changed()).await;
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let sequential: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let burst: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);

    let dir = tempfile::tempdir()?;
    let forge = FakeForge::start().await;
    let repo = TestRepo::new(dir.path().join("repo"));
    forge.register_repo(REPO, repo.path());
    repo.write(
        ".copr.yaml",
        "chroots: [fedora-41-x86_64]\nspec: hello.spec\n",
    );
    repo.write("hello.spec", "Name: hello\n");
    let shas: Vec<String> = (0..sequential + burst)
        .map(|i| {
            repo.write("n.txt", i.to_string());
            repo.commit(&format!("commit {i}"))
        })
        .collect();
    let clone_url = repo.clone_url();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let config = ferrocopr::Config {
        data_dir: dir.path().join("data"),
        database_url: None,
        public_url: url.clone(),
        github_webhook_secrets: vec![ferrocopr::Secret::new(webhook::SECRET.to_owned())?],
        github_token: Some(ferrocopr::Secret::new(TOKEN.to_owned())?),
        github_api_url: forge.url().to_owned(),
        gitlab_webhook_secrets: Vec::new(),
        gitlab_token: None,
        gitlab_url: "https://gitlab.com".to_owned(),
        pr_dir_retention: Duration::from_secs(30 * 24 * 3600),
        prune_days: ferrocopr_scheduler::prune::DEFAULT_PRUNE_DAYS,
        builder_program: "/bin/false".into(),
        local_builders: 0,
        scheduler_config: None,
        signer_domain: "example.org".to_owned(),
        signer_kek_file: None,
        signer_key_algorithm: ferrocopr_signer::KeyAlgorithm::default(),
        signer_remote: None,
        chroots: vec!["fedora-41-x86_64".to_owned()],
        distgit_instances: ferrocopr_schema::model::default_distgit_instances(),
        repodata_compression: Default::default(),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ferrocopr::run(config, listener, async move {
        let _ = stopped.await;
    }));
    while http::get(&format!("{url}/")).await.status != 200 {}

    // One webhook at a time: each waits for its status before the next is sent.
    let (sequential_shas, burst_shas) = shas.split_at(sequential);
    let mut latencies = Vec::with_capacity(sequential);
    for sha in sequential_shas {
        let sent = Instant::now();
        let code = send_push(&url, &clone_url, sha).await;
        anyhow::ensure!(code == Ok(202), "webhook answered {code:?}");
        let arrived = first_statuses(&forge, std::slice::from_ref(sha)).await[0];
        latencies.push(arrived - sent);
    }
    latencies.sort();

    // A burst: every webhook at once.
    let started = Instant::now();
    let sends: Vec<_> = burst_shas
        .iter()
        .map(|sha| {
            let (url, clone_url, sha) = (url.clone(), clone_url.clone(), sha.clone());
            tokio::spawn(async move { (Instant::now(), send_push(&url, &clone_url, &sha).await) })
        })
        .collect();
    let mut sent = Vec::with_capacity(burst);
    let mut failures: Vec<String> = Vec::new();
    for (send, sha) in sends.into_iter().zip(burst_shas) {
        let (at, code) = send.await?;
        match code {
            Ok(202) => sent.push((at, sha.clone())),
            Ok(code) => failures.push(format!("HTTP {code}")),
            Err(e) => failures.push(e),
        }
    }
    let accepted = sent.len();
    let answered = started.elapsed();
    let accepted_shas: Vec<String> = sent.iter().map(|(_, sha)| sha.clone()).collect();
    let arrivals = first_statuses(&forge, &accepted_shas).await;
    let drained = started.elapsed();
    let mut burst_latencies: Vec<Duration> = arrivals
        .iter()
        .zip(&sent)
        .map(|(a, (s, _))| *a - *s)
        .collect();
    burst_latencies.sort();

    println!(
        "webhook → first pending status (ferrocopr in-process, SQLite, fake GitHub on loopback)"
    );
    println!(
        "sequential, {sequential} webhooks: p50 {}  p99 {}  max {}",
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0)),
        ms(percentile(&latencies, 100.0)),
    );
    println!(
        "burst of {burst} at once: accepted {accepted}/{burst} ({:.1} %), all answered in {}, \
         {:.0} webhooks/s; first statuses p50 {}  p99 {}; all statuses after {}",
        100.0 * accepted as f64 / burst.max(1) as f64,
        ms(answered),
        burst as f64 / answered.as_secs_f64(),
        ms(percentile(&burst_latencies, 50.0)),
        ms(percentile(&burst_latencies, 99.0)),
        ms(drained),
    );
    failures.sort();
    failures.dedup();
    if !failures.is_empty() {
        println!("refused or failed in the burst: {failures:?}");
    }
    let _ = stop.send(());
    server.await??;
    Ok(())
}
