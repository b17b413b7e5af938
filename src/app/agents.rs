//! The app's side of the agent backends: starts turns, forwards aborts and permission replies,
//! and keeps what the UI lists (pending permissions, pending-change counts). Backend events
//! come back into the loop as `Event::Agent`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde::Serialize;
use serde_json::{json, Value as Json};
use tokio::sync::mpsc;

use super::config::Config;
use super::Event;
use crate::model::{ChatId, ItemChange, SessionId, TaskId};

/// A permission request waiting for the user.
#[derive(Clone, Debug, Serialize)]
pub struct PermissionInfo {
    pub id: String,
    pub chat: ChatId,
    pub permission: String,
    pub title: String,
    pub patterns: Vec<String>,
}

/// How a turn ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Done,
    Failed(String),
    Aborted,
}

/// What backends report about turns.
#[derive(Clone, Debug)]
pub enum AgentEvent {
    /// The prompt waits behind the chat's running turn.
    Queued {
        chat: ChatId,
        turn: TaskId,
    },
    /// The agent accepted the prompt and works on it.
    Started {
        chat: ChatId,
        turn: TaskId,
    },
    Item {
        chat: ChatId,
        change: ItemChange,
    },
    Permission(PermissionInfo),
    PermissionClosed {
        id: String,
    },
    Done {
        chat: ChatId,
        turn: TaskId,
        outcome: Outcome,
    },
}

/// What a turn needs.
#[derive(Clone, Debug)]
pub struct TurnRequest {
    pub chat: ChatId,
    pub turn: TaskId,
    pub dir: PathBuf,
    pub text: String,
    pub model: Option<String>,
}

pub struct Agents {
    events: mpsc::UnboundedSender<Event>,
    config: Config,
    permissions: BTreeMap<String, PermissionInfo>,
    pending_changes: HashMap<SessionId, usize>,
}

impl Agents {
    pub fn new(events: mpsc::UnboundedSender<Event>) -> Agents {
        Agents {
            events,
            config: Config::default(),
            permissions: BTreeMap::new(),
            pending_changes: HashMap::new(),
        }
    }

    pub fn configure(&mut self, config: &Config) {
        self.config = config.clone();
    }

    fn emit(&self, e: AgentEvent) {
        let _ = self.events.send(Event::Agent(e));
    }

    /// Starts (or queues) a turn; everything after comes back as events.
    pub fn send(&mut self, req: TurnRequest) {
        tracing::info!(chat = req.chat, turn = req.turn, dir = %req.dir.display(), "turn requested");
        self.emit(AgentEvent::Done {
            chat: req.chat,
            turn: req.turn,
            outcome: Outcome::Failed("the opencode backend is not wired in yet".into()),
        });
    }

    pub fn abort(&mut self, chat: ChatId) {
        tracing::info!(chat, "abort requested");
    }

    pub fn reply_permission(&mut self, id: &str, reply: &str) -> Result<(), String> {
        if self.permissions.remove(id).is_none() {
            return Err(format!("no pending permission request {id}"));
        }
        tracing::info!(id, reply, "permission answered");
        Ok(())
    }

    pub fn note_permission(&mut self, p: PermissionInfo) {
        self.permissions.insert(p.id.clone(), p);
    }

    pub fn forget_permission(&mut self, id: &str) {
        self.permissions.remove(id);
    }

    pub fn close_chat(&mut self, chat: ChatId) {
        self.permissions.retain(|_, p| p.chat != chat);
    }

    pub fn permissions_json(&self) -> Json {
        Json::Array(self.permissions.values().map(|p| json!(p)).collect())
    }

    pub fn permission_count(&self) -> usize {
        self.permissions.len()
    }

    pub fn pending_changes(&self, session: SessionId) -> usize {
        self.pending_changes.get(&session).copied().unwrap_or(0)
    }

    pub async fn shutdown(&mut self) {}
}
