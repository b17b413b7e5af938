//! The app's side of the agent backends: owns the dispatcher (per-chat turn queue in front of
//! the opencode backend), correlates backend events with our task rows, and keeps what the UI
//! lists (pending permissions, pending-change counts). Backend events reach the loop as
//! `Event::Agent`; failures of calls made for the user come back as `Event::Notice`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value as Json};
use tokio::sync::mpsc;

use super::config::Config;
use super::Event;
use crate::agent::opencode::{OpencodeBackend, OpencodeConfig};
use crate::agent::{AgentBackend, PermissionReply, SessionBinding, TurnRequest};
use crate::dispatch::Dispatcher;
use crate::model::{ChatId, TaskId};

/// A permission request waiting for the user.
#[derive(Clone, Debug, Serialize)]
pub struct PermissionInfo {
    pub id: String,
    pub chat: ChatId,
    pub permission: String,
    pub title: String,
    pub patterns: Vec<String>,
}

/// A prompt for a chat, as the app knows it.
#[derive(Clone, Debug)]
pub struct Turn {
    pub chat: ChatId,
    pub task: TaskId,
    pub dir: PathBuf,
    pub text: String,
    pub model: Option<String>,
    pub binding: Option<SessionBinding>,
}

pub struct Agents {
    events: mpsc::UnboundedSender<Event>,
    config: Config,
    dispatcher: Option<Dispatcher>,
    /// Task ids of each chat's turns, oldest (running) first: backend events name the chat,
    /// and turns of a chat run in order.
    turns: HashMap<ChatId, VecDeque<TaskId>>,
    permissions: BTreeMap<String, PermissionInfo>,
}

impl Agents {
    pub fn new(events: mpsc::UnboundedSender<Event>) -> Agents {
        Agents {
            events,
            config: Config::default(),
            dispatcher: None,
            turns: HashMap::new(),
            permissions: BTreeMap::new(),
        }
    }

    pub fn configure(&mut self, config: &Config) {
        self.config = config.clone();
    }

    /// The dispatcher, made on first use (the opencode server itself starts on the first turn).
    fn dispatcher(&mut self) -> Dispatcher {
        if let Some(d) = &self.dispatcher {
            return d.clone();
        }
        let oc = &self.config.opencode;
        let mut cfg = OpencodeConfig::default();
        if let Some(cmd) = oc.cmd.as_deref().filter(|c| !c.is_empty()) {
            cfg.command = PathBuf::from(cmd);
        }
        cfg.attach_url = oc.url.clone().filter(|u| !u.is_empty());
        cfg.attach_password = oc.password.clone();
        if let Some(s) = oc.watchdog_seconds.filter(|s| *s > 0) {
            cfg.watchdog = Duration::from_secs(s);
        }
        let (backend_tx, backend_rx) = mpsc::unbounded_channel();
        let backend: Arc<dyn AgentBackend> = Arc::new(OpencodeBackend::new(cfg, backend_tx));
        let (out_tx, mut out_rx) = mpsc::unbounded_channel();
        let d = Dispatcher::new(backend, backend_rx, out_tx, oc.model.clone());
        let events = self.events.clone();
        tokio::spawn(async move {
            while let Some(e) = out_rx.recv().await {
                if events.send(Event::Agent(e)).is_err() {
                    break;
                }
            }
        });
        self.dispatcher = Some(d.clone());
        d
    }

    /// Starts (or queues) a turn; everything after comes back as events.
    pub fn send(&mut self, turn: Turn) {
        tracing::info!(chat = turn.chat, task = turn.task, dir = %turn.dir.display(), "turn");
        self.turns
            .entry(turn.chat)
            .or_default()
            .push_back(turn.task);
        let d = self.dispatcher();
        d.send(TurnRequest {
            chat: turn.chat,
            directory: turn.dir,
            text: turn.text,
            model: turn.model,
            agent: None,
            binding: turn.binding,
        });
    }

    /// The task of the chat's running (oldest) turn.
    pub fn current_task(&self, chat: ChatId) -> Option<TaskId> {
        self.turns.get(&chat).and_then(|q| q.front().copied())
    }

    /// The task of the chat's queued turn at `position` (1 = next after the running one).
    pub fn queued_task(&self, chat: ChatId, position: usize) -> Option<TaskId> {
        self.turns.get(&chat).and_then(|q| q.get(position).copied())
    }

    /// A turn of the chat ended: its task, if known.
    pub fn finish(&mut self, chat: ChatId) -> Option<TaskId> {
        let q = self.turns.get_mut(&chat)?;
        let t = q.pop_front();
        if q.is_empty() {
            self.turns.remove(&chat);
        }
        t
    }

    pub fn abort(&mut self, chat: ChatId) {
        let Some(d) = self.dispatcher.clone() else {
            return;
        };
        let events = self.events.clone();
        tokio::spawn(async move {
            if let Err(e) = d.backend().abort(chat).await {
                let _ = events.send(Event::Notice {
                    msg: format!("boo: abort: {e}"),
                    level: 3,
                });
            }
        });
    }

    pub fn reply_permission(&mut self, id: &str, reply: &str) -> Result<(), String> {
        let reply = PermissionReply::parse(reply).ok_or_else(|| {
            format!("unknown permission reply '{reply}' (once, always or reject)")
        })?;
        let Some(d) = self.dispatcher.clone() else {
            return Err(format!("no pending permission request {id}"));
        };
        if self.permissions.remove(id).is_none() {
            return Err(format!("no pending permission request {id}"));
        }
        let id = id.to_string();
        let events = self.events.clone();
        tokio::spawn(async move {
            if let Err(e) = d.backend().reply_permission(&id, reply).await {
                let _ = events.send(Event::Notice {
                    msg: format!("boo: permission reply: {e}"),
                    level: 4,
                });
            }
        });
        Ok(())
    }

    /// Forgets a chat (its session was deleted): queued prompts are dropped, its stream ends.
    pub fn close_chat(&mut self, chat: ChatId) {
        self.permissions.retain(|_, p| p.chat != chat);
        self.turns.remove(&chat);
        if let Some(d) = self.dispatcher.clone() {
            tokio::spawn(async move {
                let dropped = d.close_chat(chat).await;
                if !dropped.is_empty() {
                    tracing::info!(
                        chat,
                        dropped = dropped.len(),
                        "queued prompts dropped with their chat"
                    );
                }
            });
        }
    }

    pub fn note_permission(&mut self, p: PermissionInfo) {
        self.permissions.insert(p.id.clone(), p);
    }

    pub fn forget_permission(&mut self, id: &str) {
        self.permissions.remove(id);
    }

    pub fn permissions_json(&self) -> Json {
        Json::Array(self.permissions.values().map(|p| json!(p)).collect())
    }

    pub fn permission_count(&self) -> usize {
        self.permissions.len()
    }

    /// Ends the agent processes (the opencode server with its process group).
    pub async fn shutdown(&mut self) {
        if let Some(d) = self.dispatcher.take() {
            let backend = d.backend().clone();
            if tokio::time::timeout(Duration::from_secs(5), backend.shutdown())
                .await
                .is_err()
            {
                tracing::warn!("agent backend did not stop within 5 s");
            }
        }
    }
}
