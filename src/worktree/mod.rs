//! Session worktrees and their review: the only module that talks to git (libgit2 via `git2`).
//!
//! Every session's agent works in its own linked worktree on branch `boo/<slug>`. Its edits reach
//! the user's checkout only through [`accept`]; [`reject`] reverts them in the worktree.
//!
//! The API is synchronous and returns plain, serde-serializable data (no git2 types); the app
//! calls it from `tokio::task::spawn_blocking`.
//!
//! | function | job |
//! |---|---|
//! | [`repo_dir_name`] | `<repo>-<hash>` directory name for a repository's worktrees |
//! | [`create`] | new worktree + branch `boo/<slug>` at the user's HEAD; copies configured ignored files |
//! | [`create_with_progress`] | the same, reporting the checkout's progress (files written of total) |
//! | [`open`] / [`list`] | find one / all session worktrees of a repository |
//! | [`pending`] | the reviewable diff: worktree (committed, uncommitted, untracked) vs review base |
//! | [`pending_file`] | the same for one path (refreshing one entry of the review view) |
//! | [`accept`] | 3-way apply of a file or some of its hunks to the user's checkout; advances review base |
//! | [`reject`] | revert a file or some of its hunks in the worktree to the review base |
//! | [`risk`] / [`stash`] / [`remove`] | what would be lost, keep it on a branch, delete the worktree |
//! | [`accept_all`] / [`reject_all`] | the same for several files as one transaction (all or nothing) |
//! | [`review::act`] | a user's accept/reject request (hunk ids, paths, unsaved buffers) -> one line |
//! | [`check_inside`] | the path check of every write: inside the root, nothing beyond a symlink |
//! | [`snapshot`] / [`restore`] / [`turn_diff`] | turn checkpoints: the worktree's state as a hidden commit, going back to one, a turn's own diff |
//! | [`list_files`] / [`uncommitted_patch`] | what a prompt can mention: files (`@`), a checkout's changes (`#gitdiff`) |
//!
//! # Review base
//!
//! The pending diff is "worktree vs review base". The review base starts at `base_commit` and is a
//! commit kept alive by the ref `refs/boo/<slug>/review-base` (shared by all worktrees of the
//! repository, invisible to `git branch`). Accepting creates a new commit whose parent is the old
//! review base and whose tree is the old tree plus exactly what was accepted (for a hunk: the
//! review-base file with only that hunk applied), then moves the ref (compare-and-swap, so two
//! concurrent accepts cannot lose each other). The accepted text is then identical on both sides
//! of the diff and is never offered again, whatever the agent does later. The ref is the truth;
//! [`SessionWorktree::review_base`] is a snapshot returned for the caller's database, and the ref is
//! re-created from it if it went missing.
//!
//! # What this module keeps in git
//!
//! * branch `boo/<slug>`: the worktree's branch (the agent may commit on it);
//! * `refs/boo/<slug>/base`: `base_commit`; `refs/boo/<slug>/review-base`: see above;
//! * `refs/boo/<slug>/turns/<chat>/<n>/{before,after}`: turn checkpoints (see [`snapshot`]);
//! * branch `boo-stash/<slug>`: written by [`stash`], so `git branch` shows kept work;
//! * libgit2 worktree metadata named `<slug>`.
//!
//! [`remove`] deletes the `refs/boo/<slug>/*` refs, and the branch when nothing was at risk.
//! The user's index and HEAD are never written; accepting only writes working files.
//!
//! # Hunk indices
//!
//! Hunk indices refer to the order of [`FileChange::hunks`] in the latest [`pending`] result;
//! accept/reject recompute the same diff (same algorithm and context) so they resolve identically
//! as long as the file did not change in between.

mod apply;
pub mod conflicts;
mod convert;
mod create;
mod diff;
mod discover;
mod files;
mod paths;
pub mod review;
mod risk;
mod scan;
pub mod snapshot;
mod spare;
mod txn;
mod watch;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use apply::{accept, accept_all, preview_accept, reject, reject_all, Pick, Preview};
pub use create::{create, create_with_progress, list, open, open_at, Progress};
pub use diff::{pending, pending_file, LARGE_FILE};
pub use discover::discover;
pub use files::{list_files, uncommitted_patch};
pub use paths::{check_inside, repo_dir_name};
pub use risk::{remove, risk, risk_with, stash};
pub use scan::PendingScanner;
pub use snapshot::{
    changed_since, restore, snapshot, snapshot_dir, turn_diff, turn_ref, Restored, Side, TurnFile,
};
pub use spare::{adopt_spare, ensure_spare, fresh_spare, is_spare};

/// Lines of context around hunks, for `pending` and for resolving hunk indices alike.
pub const CONTEXT_LINES: u32 = 3;

/// One session's worktree. Plain data: store it, send it, pass it back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionWorktree {
    /// Working directory of the user's checkout (where accepted changes are written).
    pub repo_root: PathBuf,
    /// Directory of the session's worktree.
    pub path: PathBuf,
    /// The session's slug; also the libgit2 worktree name.
    pub slug: String,
    /// `boo/<slug>`.
    pub branch: String,
    /// The user's HEAD commit when the worktree was created (hex).
    pub base_commit: String,
    /// Review base commit (hex) when this value was produced; see the module docs.
    pub review_base: String,
}

/// Options of [`create`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateOptions {
    /// Relative paths of files (usually ignored ones such as `.env`) copied from the user's
    /// checkout into the new worktree when they exist.
    pub copy_files: Vec<String>,
}

/// What happened to a file between the review base and the worktree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeStatus {
    Added,
    Modified,
    Deleted,
    Renamed,
    /// File <-> symlink.
    Typechange,
}

/// One line of a hunk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HunkLine {
    /// `' '` context, `'+'` added, `'-'` removed; `'='`, `'>'`, `'<'` mark "no newline at end
    /// of file" notes (libgit2's convention).
    pub origin: char,
    pub old_lineno: Option<u32>,
    pub new_lineno: Option<u32>,
    /// The text including its line terminator (lossy UTF-8).
    pub content: String,
}

/// One hunk of a file's patch; `new_start`/`new_lines` map a cursor in the worktree file to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hunk {
    pub index: usize,
    /// `@@ -a,b +c,d @@ ...` without the trailing newline.
    pub header: String,
    pub old_start: u32,
    pub old_lines: u32,
    pub new_start: u32,
    pub new_lines: u32,
    pub lines: Vec<HunkLine>,
}

/// One pending file change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChange {
    /// Path in the worktree (the new path of a rename), `/`-separated, relative.
    pub path: String,
    /// Path in the review base when it differs (renames).
    pub old_path: Option<String>,
    pub status: ChangeStatus,
    pub additions: usize,
    pub deletions: usize,
    pub binary: bool,
    /// Over [`LARGE_FILE`]: its contents were not read; no hunks, accept or reject it whole.
    pub large: bool,
    /// git file modes (octal values such as 0o100644); 0 when the side does not exist.
    pub old_mode: u32,
    pub new_mode: u32,
    /// The executable bit differs between the two sides.
    pub exec_changed: bool,
    /// Unified patch text (`diff --git` header included); a one-line note for binary files.
    pub patch: String,
    pub hunks: Vec<Hunk>,
    /// A submodule whose commit differs: shown, never accepted or rejected.
    pub submodule: bool,
}

/// Result of [`accept`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptOutcome {
    pub result: AcceptResult,
    /// The review base after the call (unchanged on conflict).
    pub review_base: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum AcceptResult {
    /// The change landed; `written` lists the user's files written or deleted (may be empty when
    /// the user's checkout already had it).
    Applied { written: Vec<String> },
    /// The user changed the same lines (or the file) since the review base; nothing was written.
    Conflict {
        path: String,
        reason: String,
        /// For text conflicts, the merge with conflict markers, so the UI can show it.
        merged_with_markers: Option<String>,
    },
}

/// Result of [`reject`]: the worktree files written or deleted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectOutcome {
    pub reverted: Vec<String>,
}

/// What removing a worktree would lose.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Risk {
    /// Paths with changes not yet accepted (vs the review base).
    pub unaccepted: Vec<String>,
    /// Paths not committed in the worktree (modified, staged, untracked).
    pub uncommitted: Vec<String>,
    /// The current worktree state is already saved by [`stash`].
    pub stashed: bool,
}

impl Risk {
    /// True when removal would lose work that exists nowhere else.
    pub fn at_risk(&self) -> bool {
        !self.stashed && (!self.unaccepted.is_empty() || !self.uncommitted.is_empty())
    }
}

/// Where [`stash`] kept the work.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StashInfo {
    /// Branch (`boo-stash/<slug>`), listed by `git branch`.
    pub branch: String,
    pub commit: String,
}

/// How [`remove`] treats work at risk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoveMode {
    /// Refuse when [`Risk::at_risk`].
    Safe,
    /// Stash first when at risk, then remove.
    Stash,
    /// Remove whatever is lost.
    Force,
    /// [`RemoveMode::Force`], and the branch goes too (an arena's losers: nothing is left).
    Discard,
}

/// Result of [`remove`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveOutcome {
    pub stash: Option<StashInfo>,
    /// `boo/<slug>` was kept because it may hold work (otherwise it is deleted).
    pub branch_kept: bool,
}

/// Errors of the worktree engine; `Display` is one line meant for the user.
#[derive(Debug, Error)]
pub enum WorktreeError {
    #[error("not a git repository: {0}")]
    NotARepo(String),
    #[error("bare repository (no working tree to review into): {0}")]
    Bare(String),
    #[error("repository has no commits yet; commit once before starting a session: {0}")]
    NoCommits(String),
    #[error("invalid session name {0:?} (use letters, digits, '-', '_', '.')")]
    InvalidSlug(String),
    #[error("branch {0} already exists")]
    BranchExists(String),
    #[error("a worktree named {0:?} already exists")]
    WorktreeExists(String),
    #[error("destination already exists and is not empty: {0}")]
    DestinationExists(String),
    #[error("no session worktree {0:?} in this repository")]
    NotFound(String),
    #[error("path {0:?} is not inside the worktree/repository")]
    PathOutside(String),
    #[error("{path}: refused, {link} is a symbolic link (no writes beyond a symlink)")]
    BeyondSymlink { path: String, link: String },
    /// A check before the first write failed; nothing was written.
    #[error("{path}: {reason}; nothing was written")]
    Refused { path: String, reason: String },
    /// A write failed half-way; what was already written was restored.
    #[error("{cause}; nothing was changed (the files already written were restored)")]
    RolledBack { cause: String },
    #[error("no pending change for {0}")]
    NoSuchChange(String),
    #[error("{0} is binary, large or a symlink/type change: accept or reject the whole file")]
    WholeFileOnly(String),
    #[error("{path} has {count} hunk(s); hunk {index} does not exist (refresh the review)")]
    HunkOutOfRange {
        path: String,
        index: usize,
        count: usize,
    },
    #[error("no hunks selected for {0}")]
    NoHunks(String),
    #[error("worktree has work that would be lost ({0}); stash it or force removal")]
    AtRisk(String),
    /// The worktree changed since the checkpoint a restore starts from; nothing was written.
    #[error(
        "the worktree changed since that turn ({0}); nothing was changed, so those edits are kept"
    )]
    EditedSince(String),
    #[error("the review base moved during the operation; refresh and retry")]
    ReviewBaseMoved,
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("git: {0}")]
    Git(String),
}

impl WorktreeError {
    pub(crate) fn io(path: &std::path::Path, e: std::io::Error) -> WorktreeError {
        WorktreeError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    }
}

// Internal convenience for `?`; callers only ever see the message.
impl From<git2::Error> for WorktreeError {
    fn from(e: git2::Error) -> WorktreeError {
        WorktreeError::Git(e.message().to_string())
    }
}

pub type Result<T> = std::result::Result<T, WorktreeError>;
