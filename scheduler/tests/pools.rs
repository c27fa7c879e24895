//! Pools with resalloc's semantics, run in-process with real shell scripts: tickets, tags,
//! reuse within a sandbox only, `max`, the `RESALLOC_*` environment, livecheck failures and
//! discarded machines.

use ferrocopr_scheduler::alloc::{Allocator, TicketId, TicketState};
use ferrocopr_scheduler::pools::{PoolConfig, Pools};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Pools whose `cmd_new` prints YAML naming the slot and appends its environment to `log`.
fn pools(dir: &Path, yaml_extra: &str) -> BTreeMap<String, PoolConfig> {
    let log = dir.join("log");
    let yaml = format!(
        "\
x86:
  max: 2
  tags: [copr_builder, arch_x86_64]
  cmd_new: 'echo \"new $RESALLOC_POOL_ID $RESALLOC_ID_IN_POOL $RESALLOC_NAME\" >> {log}; printf \"host: 127.0.0.$((RESALLOC_ID_IN_POOL + 1))\\nssh_port: 22$RESALLOC_ID_IN_POOL\\n\"'
  cmd_delete: 'echo \"delete $RESALLOC_ID_IN_POOL $(echo $RESALLOC_RESOURCE_DATA | base64 -d | head -1)\" >> {log}'
  cmd_release: 'echo \"release $RESALLOC_ID_IN_POOL\" >> {log}'
  reuse_opportunity_time: 60
{yaml_extra}
aarch64:
  max: 1
  tags: [copr_builder, arch_aarch64]
  cmd_new: 'echo 192.0.2.9'
",
        log = log.display()
    );
    serde_saphyr::from_str(&yaml).expect("pools.yaml")
}

fn tags(arch: &str) -> Vec<String> {
    vec!["copr_builder".into(), format!("arch_{arch}")]
}

async fn ready(pools: &Pools, ticket: TicketId) -> ferrocopr_scheduler::alloc::Resource {
    for _ in 0..100 {
        match pools.collect(ticket).await.expect("collect") {
            TicketState::Ready(resource) => return resource,
            TicketState::Waiting => tokio::time::sleep(Duration::from_millis(50)).await,
            other => panic!("ticket {ticket}: {other:?}"),
        }
    }
    panic!("ticket {ticket} never got a resource");
}

async fn stays_waiting(pools: &Pools, ticket: TicketId) {
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        pools.collect(ticket).await.expect("collect"),
        TicketState::Waiting
    );
}

fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("log")).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_get_fitting_machines_reused_only_within_their_sandbox() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stop = CancellationToken::new();
    let pools: Arc<Pools> = Pools::start(pools(dir.path(), ""), stop.clone());
    pools.open();
    assert_eq!(pools.capacity(&tags("x86_64")), 2);
    assert_eq!(pools.capacity(&tags("aarch64")), 1);
    assert!(pools.take(&tags("s390x"), "a/p--a").await.is_err());

    // The output is YAML (host, ssh_port) made from RESALLOC_ID_IN_POOL.
    let t1 = pools
        .take(&tags("x86_64"), "alice/p--alice")
        .await
        .expect("take");
    let r1 = ready(&pools, t1).await;
    assert_eq!((r1.host.as_str(), r1.ssh_port), ("127.0.0.1", 220));
    // An arch tag the x86 pool lacks goes to the aarch64 pool; its output is a bare address.
    let ta = pools
        .take(&tags("aarch64"), "alice/p--alice")
        .await
        .expect("take");
    assert_eq!(ready(&pools, ta).await.host, "192.0.2.9");

    let t2 = pools
        .take(&tags("x86_64"), "bob/p--bob")
        .await
        .expect("take");
    let r2 = ready(&pools, t2).await;
    assert_eq!(r2.host, "127.0.0.2", "the second machine of the pool");
    // max: 2 — a third ticket waits.
    let t3 = pools
        .take(&tags("x86_64"), "alice/p--alice")
        .await
        .expect("take");
    stays_waiting(&pools, t3).await;

    // Alice's machine, released, serves alice's next ticket (reuse within the sandbox)...
    pools.close(t1).await.expect("close");
    assert_eq!(ready(&pools, t3).await.host, "127.0.0.1");
    // ...while a released machine of bob's is never handed to carol: it is deleted and a new
    // one made in its slot.
    pools.close(t2).await.expect("close");
    let t4 = pools
        .take(&tags("x86_64"), "carol/p--carol")
        .await
        .expect("take");
    let r4 = ready(&pools, t4).await;
    assert_eq!(r4.host, "127.0.0.2");
    let log = log(dir.path());
    assert!(log.contains("new x86 0 x86_00000001"), "{log}");
    assert!(log.contains("release 0"), "{log}");
    assert!(
        log.contains("delete 1 host: 127.0.0.2"),
        "RESALLOC_RESOURCE_DATA: {log}"
    );
    assert_eq!(log.matches("new x86 1").count(), 2, "{log}");
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_machine_fails_its_ticket_and_a_discarded_slot_comes_last() {
    let dir = tempfile::tempdir().expect("tempdir");
    let alive = dir.path().join("alive");
    std::fs::write(&alive, "").expect("write");
    let extra = format!(
        "  cmd_livecheck: 'test -e {}'\n  livecheck_period: 1\n",
        alive.display()
    );
    let stop = CancellationToken::new();
    let pools = Pools::start(pools(dir.path(), &extra), stop.clone());
    pools.open();
    let t1 = pools.take(&tags("x86_64"), "a/p--a").await.expect("take");
    assert_eq!(ready(&pools, t1).await.host, "127.0.0.1");
    std::fs::remove_file(&alive).expect("remove");
    let mut state = TicketState::Waiting;
    for _ in 0..60 {
        state = pools.collect(t1).await.expect("collect");
        if state == TicketState::Failed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        state,
        TicketState::Failed,
        "livecheck failure fails the ticket"
    );
    pools
        .close(t1)
        .await
        .expect("closing a failed ticket is fine");
    std::fs::write(&alive, "").expect("write");

    // A machine that failed its task is discarded: the next resource goes to the other slot.
    let t2 = pools.take(&tags("x86_64"), "a/p--a").await.expect("take");
    let first = ready(&pools, t2).await;
    pools.discard(t2);
    let t3 = pools.take(&tags("x86_64"), "a/p--a").await.expect("take");
    let next = ready(&pools, t3).await;
    assert_ne!(first.host, next.host, "the retry lands on another machine");
    stop.cancel();
}
