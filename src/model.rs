//! Plain domain types shared by the modules: ids, transcript items, task states.
//! No I/O here, so every layer can use them without depending on another layer.

use serde::{Deserialize, Serialize};

pub mod transcript;
pub mod usage;

pub type SessionId = i64;
pub type ChatId = i64;
pub type PaneId = i64;
pub type WorktreeId = i64;
pub type TaskId = i64;

/// What a transcript item is; decides how the UI draws it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// The user's prompt.
    User,
    /// Assistant answer text (markdown).
    Text,
    /// Model reasoning, shown folded.
    Reasoning,
    /// A tool call; `meta` holds `{tool, status, title, input, output}`.
    Tool,
    /// A permission request; `meta` holds `{id, permission, patterns, status}`.
    Permission,
    /// A failure of the turn, shown highlighted.
    Error,
    /// Anything informational (turn queued, aborted, step usage).
    Info,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::User => "user",
            ItemKind::Text => "text",
            ItemKind::Reasoning => "reasoning",
            ItemKind::Tool => "tool",
            ItemKind::Permission => "permission",
            ItemKind::Error => "error",
            ItemKind::Info => "info",
        }
    }

    pub fn parse(s: &str) -> Option<ItemKind> {
        Some(match s {
            "user" => ItemKind::User,
            "text" => ItemKind::Text,
            "reasoning" => ItemKind::Reasoning,
            "tool" => ItemKind::Tool,
            "permission" => ItemKind::Permission,
            "error" => ItemKind::Error,
            "info" => ItemKind::Info,
            _ => return None,
        })
    }
}

/// One entry of a chat's transcript as stored and rendered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TranscriptItem {
    pub chat_id: ChatId,
    /// Position in the chat, dense from 0.
    pub seq: i64,
    pub kind: ItemKind,
    /// The agent's id for this item (opencode `prt_...`), so a later update replaces it in place.
    pub part_id: Option<String>,
    pub content: String,
    pub meta: serde_json::Value,
}

/// A change to a chat's transcript, as produced by an agent backend. Items are keyed by
/// `part_id`, so re-sent parts update in place instead of duplicating.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ItemChange {
    /// A new item, or the authoritative full state of an existing one.
    Upsert {
        part_id: String,
        kind: ItemKind,
        content: String,
        meta: serde_json::Value,
    },
    /// Text appended to an existing item's content (streaming delta).
    Append { part_id: String, delta: String },
}

/// Lifecycle of a turn (`tasks.status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Queued,
    Running,
    Done,
    Failed,
    Aborted,
    /// Found unfinished after its boocoder died.
    Interrupted,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Queued => "queued",
            TaskStatus::Running => "running",
            TaskStatus::Done => "done",
            TaskStatus::Failed => "failed",
            TaskStatus::Aborted => "aborted",
            TaskStatus::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<TaskStatus> {
        Some(match s {
            "queued" => TaskStatus::Queued,
            "running" => TaskStatus::Running,
            "done" => TaskStatus::Done,
            "failed" => TaskStatus::Failed,
            "aborted" => TaskStatus::Aborted,
            "interrupted" => TaskStatus::Interrupted,
            _ => return None,
        })
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            TaskStatus::Done | TaskStatus::Failed | TaskStatus::Aborted | TaskStatus::Interrupted
        )
    }
}
