//! Rows as the rest of the app sees them. Plain data, serializable for the RPC layer.

use serde::{Deserialize, Serialize};

use crate::model::{ChatId, PaneId, SessionId, TaskId, TaskStatus, WorktreeId};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: SessionId,
    pub repo_root: String,
    pub title: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_active_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewChat {
    pub session_id: SessionId,
    pub title: String,
    pub agent: String,
    pub model: Option<String>,
    pub position: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chat {
    pub id: ChatId,
    pub session_id: SessionId,
    pub title: String,
    pub agent: String,
    pub model: Option<String>,
    pub position: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Fields of a chat to change; `None` leaves one as it is (`model: Some(None)` clears it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatUpdate {
    pub title: Option<String>,
    pub agent: Option<String>,
    pub model: Option<Option<String>>,
    pub position: Option<i64>,
}

/// The agent's own session for one chat and one agent (opencode `ses_...`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSession {
    pub chat_id: ChatId,
    pub agent: String,
    pub external_id: String,
    /// Fingerprint of model/config; a mismatch makes the session stale.
    pub config_hash: String,
    pub worktree_id: Option<WorktreeId>,
    pub session_id: Option<SessionId>,
    pub state: String,
    /// Set by the store on every upsert.
    pub updated_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewWorktree {
    pub session_id: SessionId,
    pub repo_root: String,
    pub path: String,
    pub branch: String,
    /// The commit the worktree was created from; the first `review_base`.
    pub base_commit: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Worktree {
    pub id: WorktreeId,
    /// `None` once its session was deleted: the record outlives it.
    pub session_id: Option<SessionId>,
    pub repo_root: String,
    pub path: String,
    pub branch: String,
    pub base_commit: String,
    pub review_base: String,
    pub created_at: i64,
    pub removed_at: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTask {
    pub chat_id: ChatId,
    pub session_id: SessionId,
    pub agent: String,
    pub model: Option<String>,
    pub prompt: String,
    /// Who asked: "user", "selection", "api", "arena"...
    pub creator: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub id: TaskId,
    pub chat_id: ChatId,
    pub session_id: SessionId,
    pub agent: String,
    pub model: Option<String>,
    pub prompt: String,
    pub creator: String,
    pub status: TaskStatus,
    pub error: Option<String>,
    pub created_at: i64,
    /// Set when the task first becomes running.
    pub started_at: Option<i64>,
    /// Set when the task reaches a final status.
    pub finished_at: Option<i64>,
}

/// One file of a session's reviewable diff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingChange {
    pub path: String,
    /// "added", "modified", "deleted", "renamed" (as the worktree module reports it).
    pub status: String,
    pub additions: i64,
    pub deletions: i64,
    pub patch: String,
}

/// A stored pending change with the agent whose turn produced it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingChangeRow {
    pub agent: String,
    pub change: PendingChange,
    pub updated_at: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaneKind {
    Float,
    Split,
    Vsplit,
    Tab,
}

impl PaneKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PaneKind::Float => "float",
            PaneKind::Split => "split",
            PaneKind::Vsplit => "vsplit",
            PaneKind::Tab => "tab",
        }
    }

    pub fn parse(s: &str) -> Option<PaneKind> {
        Some(match s {
            "float" => PaneKind::Float,
            "split" => PaneKind::Split,
            "vsplit" => PaneKind::Vsplit,
            "tab" => PaneKind::Tab,
            _ => return None,
        })
    }
}

/// A pane as saved: what it is and which chats (tabs) it shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pane {
    pub kind: PaneKind,
    pub chat_ids: Vec<ChatId>,
    pub active_chat: Option<ChatId>,
}

/// An entry of the closed-pane stack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedPane {
    pub id: PaneId,
    pub pane: Pane,
    pub closed_at: i64,
}

/// What the transcript batching did so far (for tests, benchmarks and `:checkhealth`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlushStats {
    /// Transactions that wrote a batch.
    pub flushes: u64,
    /// Items written by them (after last-write-wins merging).
    pub items: u64,
    /// Batches that failed and were kept for a retry.
    pub failed: u64,
    /// Duration of the most recent flushes in microseconds, oldest first (bounded).
    pub recent_micros: Vec<u64>,
}

impl FlushStats {
    const RECENT: usize = 4096;

    pub(super) fn record(&mut self, items: usize, took: std::time::Duration) {
        self.flushes += 1;
        self.items += items as u64;
        if self.recent_micros.len() == Self::RECENT {
            self.recent_micros.remove(0);
        }
        self.recent_micros
            .push(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
    }
}
