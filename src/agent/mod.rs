//! Agent backends: the [`AgentBackend`] trait, the events a backend reports, and the opencode
//! implementation ([`opencode::OpencodeBackend`]); CLI agents ([`external::ExternalBackend`])
//! implement the same trait. [`probe`] finds out which agents and models are available.
//!
//! A backend does not use the database: the caller passes what it knows about a chat (its
//! agent session binding) with each prompt and persists what the backend reports back
//! ([`AgentEvent::SessionBound`], [`AgentEvent::Item`], [`AgentEvent::TurnDone`]).
//!
//! Wiring (see `tests/opencode_*.rs`): make an `mpsc::unbounded_channel`, give its sender to
//! [`opencode::OpencodeBackend::new`], and put a [`crate::dispatch::Dispatcher`] in front
//! (it takes the receiver and forwards every event to the app's channel, adding the per-chat
//! queue). Send prompts with `Dispatcher::send`; answer permissions, abort, close and shut
//! down through the backend (`Dispatcher::close_chat` also drops the chat's queue).
//!
//! Transcript items are keyed by the agent's part id: `Upsert` replaces or inserts, `Append`
//! extends. The user's prompt comes back from opencode as a `User` item keyed by its own part
//! id, so the caller need not insert one itself (or must key its own differently). Turn
//! failures, tool states, permission requests and step usage are items too.

pub mod acp;
pub mod external;
#[cfg(test)]
mod fuzz;
pub mod opencode;
pub mod probe;
pub mod process;

use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::model::{ChatId, ItemChange, TaskId};

/// Errors of the agent layer. Display is one line meant for the user.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum AgentError {
    #[error("opencode not found ({0}); install it or set the opencode command in the config")]
    NotFound(String),
    #[error("opencode server failed to start: {0}")]
    Start(String),
    #[error("opencode server unreachable: {0}")]
    Unreachable(String),
    #[error("opencode answered {status} for {what}: {message}")]
    Http {
        what: String,
        status: u16,
        message: String,
    },
    #[error("opencode sent an unexpected answer for {what}: {message}")]
    Protocol { what: String, message: String },
    #[error("no pending permission request {0}")]
    UnknownPermission(String),
    #[error("chat {0} already has a running turn")]
    Busy(ChatId),
    #[error("invalid model '{0}': expected provider/model")]
    BadModel(String),
    #[error("chat {0} has no running turn")]
    NotRunning(ChatId),
    #[error("the agent backend is shut down")]
    Shutdown,
    /// A CLI agent (claude, qwen's CLI) could not run; the message names it and says why.
    #[error("{0}")]
    Cli(String),
}

/// The user's answer to a permission request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PermissionReply {
    Once,
    Always,
    Reject,
}

impl PermissionReply {
    pub fn as_str(self) -> &'static str {
        match self {
            PermissionReply::Once => "once",
            PermissionReply::Always => "always",
            PermissionReply::Reject => "reject",
        }
    }

    pub fn parse(s: &str) -> Option<PermissionReply> {
        Some(match s {
            "once" => PermissionReply::Once,
            "always" => PermissionReply::Always,
            "reject" => PermissionReply::Reject,
            _ => return None,
        })
    }
}

/// A permission request of the agent, as asked (opencode `permission.asked`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PermissionRequest {
    /// `per_...`
    pub id: String,
    pub session_id: String,
    /// e.g. `bash`, `edit`
    pub permission: String,
    /// What it is asked for (e.g. the command).
    pub patterns: Vec<String>,
    /// What `always` would allow from now on.
    pub always: Vec<String>,
    pub metadata: serde_json::Value,
    /// The tool call it belongs to, if any.
    pub call_id: Option<String>,
}

/// A pending permission request with the chat it belongs to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingPermission {
    pub chat: ChatId,
    pub request: PermissionRequest,
}

/// How a turn ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum TurnOutcome {
    Done,
    Failed(String),
    Aborted,
}

/// The agent's own session for a chat, as the caller stored it (`agent_sessions`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionBinding {
    /// opencode `ses_...`
    pub external_id: String,
    /// Fingerprint of the model/config the session was created with.
    pub config_hash: String,
}

/// One prompt for a chat.
#[derive(Clone, Debug, PartialEq)]
pub struct TurnRequest {
    pub chat: ChatId,
    /// The turn's task row (0 when it could not be recorded): the dispatcher stamps every event
    /// of the turn with it.
    pub task: TaskId,
    /// The session's worktree; the agent runs there.
    pub directory: PathBuf,
    pub text: String,
    /// `provider/model`; `None` (or empty) means the default (see `dispatch::coalesce_model`).
    pub model: Option<String>,
    /// opencode agent name (`build` when `None`).
    pub agent: Option<String>,
    /// The binding the caller knows for `(chat, agent)`, if any.
    pub binding: Option<SessionBinding>,
    /// Attachments and the agent's own command, if the prompt is one.
    pub extras: Extras,
}

/// What a prompt carries besides its text.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Extras {
    /// Mentioned files and editor context, sent after the text.
    pub attachments: Vec<Attachment>,
    /// Run this agent command (opencode's custom `/commands`) with the text as its arguments.
    pub command: Option<String>,
    /// The turn's number in its chat: the dispatcher's hook snapshots the worktree around it
    /// (see `dispatch::TurnHook`).
    pub checkpoint: Option<u32>,
}

/// Something attached to a prompt (see `app/compose.rs`).
#[derive(Clone, Debug, PartialEq)]
pub enum Attachment {
    /// A file of the worktree, read by the agent: `path` absolute, `rel` as the user wrote it,
    /// `lines` the 1-based inclusive range asked for.
    File {
        path: PathBuf,
        rel: String,
        mime: String,
        lines: Option<(usize, usize)>,
    },
    /// Delimited text: editor context, or a file cut at the size limit.
    Text { label: String, text: String },
}

impl Attachment {
    /// The attachment as delimited text, for agents that take one prompt string (CLI agents).
    pub fn as_text(&self) -> String {
        match self {
            Attachment::File {
                rel, lines, mime, ..
            } => {
                let range = lines.map_or(String::new(), |(a, b)| format!(" lines {a}-{b}"));
                format!("<file path=\"{rel}\"{range} mime=\"{mime}\"/> (read it from the worktree)")
            }
            Attachment::Text { label, text } => {
                format!("<context name=\"{label}\">\n{text}\n</context>")
            }
        }
    }
}

impl TurnRequest {
    /// The text with every attachment appended as delimited text.
    pub fn text_with_attachments(&self) -> String {
        let mut out = match &self.extras.command {
            Some(c) => format!("/{c} {}", self.text),
            None => self.text.clone(),
        };
        for a in &self.extras.attachments {
            out.push_str("\n\n");
            out.push_str(&a.as_text());
        }
        out
    }
}

/// What a backend reports. Sent on the `tokio::sync::mpsc` channel given at construction.
#[derive(Clone, Debug, PartialEq)]
pub enum AgentEvent {
    /// The chat was busy: the prompt waits at `position` (1 = next).
    TurnQueued { chat: ChatId, position: usize },
    /// The prompt was accepted by the agent.
    TurnStarted { chat: ChatId },
    /// A transcript change of the chat.
    Item { chat: ChatId, change: ItemChange },
    /// The agent asks for a permission; answer with `reply_permission`.
    PermissionAsked {
        chat: ChatId,
        request: PermissionRequest,
    },
    /// A permission request was answered (by us or by another client).
    PermissionReplied {
        chat: ChatId,
        id: String,
        reply: String,
    },
    /// The turn is over.
    TurnDone { chat: ChatId, outcome: TurnOutcome },
    /// The chat is now bound to this agent session: persist it.
    SessionBound {
        chat: ChatId,
        agent: String,
        external_id: String,
        config_hash: String,
    },
    /// The agent titled the chat's session (opencode's title generator).
    Title { chat: ChatId, title: String },
    /// The agent is retrying (e.g. provider unreachable); informational.
    Retrying { chat: ChatId, message: String },
    /// A problem of the server, not of one turn.
    ServerError(String),
    /// The agent changed these files (worktree-relative or absolute) during the turn.
    FilesChanged { chat: ChatId, files: Vec<String> },
    /// What the chat's agent session offers (ACP modes and models), and what it uses now.
    Options { chat: ChatId, options: AgentOptions },
}

/// The modes (as `agent:mode`) and models an agent session offers, and its current ones.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AgentOptions {
    pub modes: Vec<String>,
    pub mode: Option<String>,
    pub models: Vec<String>,
    pub model: Option<String>,
}

impl AgentEvent {
    /// The chat the event is about (`None`: the server's own).
    pub fn chat(&self) -> Option<ChatId> {
        match self {
            AgentEvent::TurnQueued { chat, .. }
            | AgentEvent::TurnStarted { chat }
            | AgentEvent::Item { chat, .. }
            | AgentEvent::PermissionAsked { chat, .. }
            | AgentEvent::PermissionReplied { chat, .. }
            | AgentEvent::TurnDone { chat, .. }
            | AgentEvent::SessionBound { chat, .. }
            | AgentEvent::Title { chat, .. }
            | AgentEvent::Retrying { chat, .. }
            | AgentEvent::FilesChanged { chat, .. }
            | AgentEvent::Options { chat, .. } => Some(*chat),
            AgentEvent::ServerError(_) => None,
        }
    }
}

/// An agent backend. Methods return quickly; progress and results arrive as [`AgentEvent`]s.
#[async_trait]
pub trait AgentBackend: Send + Sync {
    /// Short name (`opencode`).
    fn name(&self) -> &str;

    /// Starts a turn. Returns once the agent accepted the prompt (after `TurnStarted`); its end
    /// is reported by `TurnDone`. An error means the turn did not start (no `TurnDone` follows).
    async fn start_turn(&self, req: TurnRequest) -> Result<(), AgentError>;

    /// Aborts the chat's running turn (its `TurnDone` says `Aborted`).
    async fn abort(&self, chat: ChatId) -> Result<(), AgentError>;

    /// Answers a pending permission request.
    async fn reply_permission(&self, id: &str, reply: PermissionReply) -> Result<(), AgentError>;

    /// Pending permission requests of all chats.
    async fn pending_permissions(&self) -> Vec<PendingPermission>;

    /// Ends the chat's stream and forgets its session (a running turn is aborted).
    async fn close_chat(&self, chat: ChatId);

    /// Stops everything (and the server this backend started).
    async fn shutdown(&self);

    /// Gets ready for a first prompt in `directory` (or, without one, in general) before it is
    /// sent: opencode starts its server and loads the directory's instance. Failures are only
    /// logged; the prompt itself reports them.
    async fn prepare(&self, _directory: Option<PathBuf>) {}

    /// The client of the backend's server (opencode: the warm one, started if needed), for
    /// the probe to ask instead of starting a server of its own. `None`: not a server agent.
    async fn server_client(&self) -> Option<Result<opencode::client::Client, AgentError>> {
        None
    }

    /// The agent's own commands for `directory`: (name, description).
    async fn commands(&self, _directory: PathBuf) -> Vec<(String, String)> {
        Vec::new()
    }

    /// Rewinds the agent's session `external_id` (in `directory`) to just before its message
    /// `before` (that message and all later ones are forgotten, recoverably); `None` brings back
    /// everything rewound. An agent that cannot says so with an error.
    async fn rewind(
        &self,
        _directory: PathBuf,
        _external_id: String,
        _before: Option<String>,
    ) -> Result<(), AgentError> {
        Err(AgentError::Cli(format!(
            "{} cannot forget a turn: it still remembers it",
            self.name()
        )))
    }

    /// A new session of the agent holding the messages of `external_id` before message
    /// `before` (all of them with `None`). Returns its id.
    async fn fork(
        &self,
        _directory: PathBuf,
        _external_id: String,
        _before: Option<String>,
    ) -> Result<String, AgentError> {
        Err(AgentError::Cli(format!(
            "{} cannot fork a conversation",
            self.name()
        )))
    }
}
