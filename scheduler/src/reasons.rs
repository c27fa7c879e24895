//! Why a build part failed, in the words users see: the build's fail reason (shown in commit
//! statuses and on the build page) and the backend's own line in `builder-live.log`.
//!
//! Copr keeps these reasons apart (REFERENCE §1); internal details go to the service log, not
//! here.

/// A failure the backend reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    /// The SRPM build itself failed (the packager's spec or sources).
    SrpmBuild,
    /// The SRPM could not be signed or imported into DistGit.
    Import,
    /// The RPMs were built but could not be signed or published.
    SignOrPublish,
    /// Every builder host the task was given failed.
    NoBuilder,
}

impl FailReason {
    /// The short reason stored with the build.
    pub fn text(self) -> &'static str {
        match self {
            FailReason::SrpmBuild => "SRPM build error",
            FailReason::Import => "SRPM import failed",
            FailReason::SignOrPublish => "signing or publishing failed",
            FailReason::NoBuilder => "no builder could run the task",
        }
    }

    /// The backend's line in the task's live log, before any detail.
    pub fn log_line(self) -> &'static str {
        match self {
            FailReason::SrpmBuild => "==> error: SRPM build error",
            FailReason::Import => "==> error: SRPM import failed:",
            FailReason::SignOrPublish => "==> error: signing or publishing failed:",
            FailReason::NoBuilder => "==> error: no builder could run the task (3 hosts failed)",
        }
    }
}
