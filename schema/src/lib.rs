//! The shared model of ferrocopr: what every part agrees on.
//!
//! - [`state`]: build and chroot states and their legal transitions;
//! - [`model`]: projects, CoprDirs, chroots, build ids and sources;
//! - [`copr_yaml`]: the `.copr.yaml` a packager writes;
//! - [`task`]: the task the scheduler hands to a builder;
//! - [`permissions`]: who may do what to a project;
//! - [`db`]: the database facade, the only place with SQL.

pub mod copr_yaml;
pub mod db;
pub mod model;
pub mod permissions;
pub mod state;
pub mod task;

pub use db::Db;
pub use model::{BuildId, BuildSource, Chroot, ForgeOrigin, ProjectRef};
pub use state::{Event, Part, State, Transition};
