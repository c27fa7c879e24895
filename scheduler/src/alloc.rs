//! Builder allocation with resalloc's semantics (REFERENCE §6): seed steps 3 and 9, "a builder
//! is asked for".
//!
//! A task takes a *ticket* carrying tags (`copr_builder`, `arch_<arch>`, chroot tags) and its
//! sandbox; the allocator answers, now or later, with a *resource* whose tags include them all.
//! The ticket is closed on every path once the task is done with the machine. [`Allocator`] is the
//! seam: [`crate::pools`] runs pools from a YAML file in this process, and
//! [`crate::resalloc`] talks to an existing resalloc server over XML-RPC.

use async_trait::async_trait;
use serde::Deserialize;

/// A ticket number, as resalloc gives them.
pub type TicketId = i64;

/// Where a ticket stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketState {
    /// No resource yet.
    Waiting,
    /// A resource is assigned to the ticket.
    Ready(Resource),
    /// The ticket's resource died or could not be made; take a new ticket.
    Failed,
    /// The ticket was closed.
    Closed,
}

/// A machine that a ticket got: how to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    pub host: String,
    /// The resource's name in its pool, for logs.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "default_ssh_port")]
    pub ssh_port: u16,
}

fn default_ssh_port() -> u16 {
    22
}

/// Why the allocator could not answer.
#[derive(Debug, thiserror::Error)]
pub enum AllocError {
    /// No pool has a resource whose tags include all the ticket's tags.
    #[error("no pool offers a resource with tags {0:?}")]
    NoPool(Vec<String>),
    #[error("unknown ticket {0}")]
    UnknownTicket(TicketId),
    /// The allocator itself is unreachable or broken.
    #[error("allocator: {0}")]
    Internal(String),
}

impl Resource {
    /// Reads what `cmd_new` printed (resalloc's ticket output): either a bare address (IPv4,
    /// IPv6 or a host name) or YAML with `host`, and optionally `name` and `ssh_port`.
    pub fn parse(output: &str) -> Result<Resource, String> {
        let trimmed = output.trim();
        if trimmed.is_empty() {
            return Err("the resource's output is empty".to_owned());
        }
        let single_line = !trimmed.contains('\n');
        if single_line && !trimmed.contains(": ") && !trimmed.starts_with('{') {
            return Ok(Resource {
                host: trimmed.to_owned(),
                name: None,
                ssh_port: default_ssh_port(),
            });
        }
        serde_saphyr::from_str::<Resource>(trimmed)
            .map_err(|e| format!("the resource's output is neither an address nor YAML: {e}"))
    }
}

/// Gives out builder machines for tickets.
#[async_trait]
pub trait Allocator: Send + Sync {
    /// Asks for a resource whose tags include all of `tags`, for `sandbox`
    /// (`<owner>/<project>--<submitter>`): a resource may be reused within one sandbox, never
    /// shared across sandboxes.
    async fn take(&self, tags: &[String], sandbox: &str) -> Result<TicketId, AllocError>;
    /// Where the ticket stands, without waiting.
    async fn collect(&self, ticket: TicketId) -> Result<TicketState, AllocError>;
    /// Gives the ticket (and its resource) back. Closing a closed ticket is not an error.
    async fn close(&self, ticket: TicketId) -> Result<(), AllocError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmd_new_output_is_an_address_or_yaml() {
        assert_eq!(
            Resource::parse("192.0.2.7\n").expect("parses"),
            Resource {
                host: "192.0.2.7".into(),
                name: None,
                ssh_port: 22
            }
        );
        assert_eq!(
            Resource::parse("2001:db8::1").expect("parses").host,
            "2001:db8::1"
        );
        let yaml = "host: 127.0.0.1\nname: x86-1\nssh_port: 2222\n";
        assert_eq!(
            Resource::parse(yaml).expect("parses"),
            Resource {
                host: "127.0.0.1".into(),
                name: Some("x86-1".into()),
                ssh_port: 2222
            }
        );
        assert!(Resource::parse("").is_err());
        assert!(Resource::parse("host: a\nport: 1\n").is_err());
    }
}
