//! `GET /api/queue`: the backend's queue as JSON, for the web UI and for people wondering why
//! their build has not started: every task waiting for a builder (pending), waiting for the
//! machine it was given (starting) and running, with who, what and since when, and a summary
//! per owner and architecture.
//!
//! It only reads: the scheduler alone moves tasks (seed steps 2-4 and 8-11).

use crate::BotState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrocopr_schema::db::QueuedTask;
use ferrocopr_schema::{Chroot, State as TaskState};
use serde::Serialize;
use std::collections::BTreeMap;

/// Tasks listed per state at most; the summary counts them all.
const LISTED: usize = 500;

#[derive(Debug, Serialize)]
struct Task {
    build_id: i64,
    chroot: String,
    arch: String,
    owner: String,
    project: String,
    sandbox: String,
    background: bool,
    /// Seconds since the epoch: submitted (pending) or started (starting, running).
    since: i64,
}

#[derive(Debug, Default, Serialize)]
struct Summary {
    owner: String,
    arch: String,
    pending: usize,
    starting: usize,
    running: usize,
    /// The oldest pending task's submission, seconds since the epoch.
    waiting_since: Option<i64>,
}

#[derive(Debug, Default, Serialize)]
struct Queue {
    pending: Vec<Task>,
    starting: Vec<Task>,
    running: Vec<Task>,
    summary: Vec<Summary>,
}

/// The architecture a task's builder has; SRPM tasks are shown as `srpm`.
fn arch_of(task: &QueuedTask) -> String {
    if task.is_srpm() {
        return "srpm".to_owned();
    }
    Chroot::parse(&task.chroot).map_or_else(|| "unknown".to_owned(), |c| c.arch)
}

pub async fn queue(State(state): State<BotState>) -> Response {
    let tasks = match state
        .db
        .tasks_in(&[TaskState::Pending, TaskState::Starting, TaskState::Running])
        .await
    {
        Ok(tasks) => tasks,
        Err(e) => {
            tracing::error!(error = %e, "reading the queue failed");
            let body = serde_json::json!({"error": crate::texts::INTERNAL_ERROR});
            return (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response();
        }
    };
    let mut queue = Queue::default();
    let mut summary: BTreeMap<(String, String), Summary> = BTreeMap::new();
    for task in tasks {
        let arch = arch_of(&task);
        let line = summary
            .entry((task.owner.clone(), arch.clone()))
            .or_insert_with(|| Summary {
                owner: task.owner.clone(),
                arch: arch.clone(),
                ..Summary::default()
            });
        let (count, list) = match task.state {
            TaskState::Pending => {
                line.waiting_since =
                    Some(line.waiting_since.map_or(task.since, |s| s.min(task.since)));
                (&mut line.pending, &mut queue.pending)
            }
            TaskState::Starting => (&mut line.starting, &mut queue.starting),
            _ => (&mut line.running, &mut queue.running),
        };
        *count += 1;
        if list.len() < LISTED {
            list.push(Task {
                build_id: task.build_id.0,
                sandbox: task.sandbox(),
                chroot: task.chroot,
                arch,
                owner: task.owner,
                project: task.project,
                background: task.background,
                since: task.since,
            });
        }
    }
    queue.summary = summary.into_values().collect();
    Json(queue).into_response()
}
