//! The build's sandbox (seed step 11): what the RPM build may reach. Copr builds offline in
//! mock unless the project enables the network (REFERENCE §9); here rpmbuild runs in a network
//! namespace of its own, with only a loopback interface that is down, unless the task says
//! `enable_net`. Sources come from DistGit before the build starts, so an offline build lacks
//! nothing it was meant to have.

use std::process::Command;

/// `program` as a command, in a new network namespace unless `enable_net`.
pub(crate) fn offline_unless(enable_net: bool, program: &str) -> Command {
    if enable_net {
        println!("==> the network is enabled for this build");
        return Command::new(program);
    }
    println!("==> the build runs without network (enable_net is off)");
    let mut command = Command::new("unshare");
    // root may make a network namespace outright; anyone else needs a user namespace too.
    if !is_root() {
        command.arg("--map-root-user");
    }
    command.arg("--net").arg("--").arg(program);
    command
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|uids| uids.split_whitespace().nth(1))
            == Some("0")
    })
}
