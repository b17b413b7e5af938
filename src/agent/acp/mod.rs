//! Agents that speak the Agent Client Protocol (ACP: JSON-RPC over the agent's stdio), behind
//! the same [`AgentBackend`] trait as opencode's server and the CLI parsers.
//!
//! One agent process per chat, started on the chat's first turn in the session's worktree
//! (`process::own`: own group, dies with boocoder) and reused for the next turns. `initialize`
//! offers file reads/writes and terminals; `session/new` (or `session/load` of the bound session
//! when the agent can) gives the agent session; `session/prompt` runs a turn while
//! `session/update`s stream in ([`translate`]). The agent's requests are served by [`client`]
//! (files, permissions) and [`terminal`]. Abort sends `session/cancel`, waits a moment for the
//! agent to end the turn, then kills the agent's group (its tools go with it); the next turn
//! starts the agent anew and loads the session. An agent that exits, sends something that is
//! not JSON-RPC or never answers `initialize` ends the turn with one line and its stderr tail.
//!
//! Files: `agent.rs` the process and `initialize`, `session.rs` new/load, `turn.rs` one prompt,
//! `serve.rs` what the agent sends, `backend.rs` the trait.

mod agent;
mod backend;
pub mod builtin;
pub mod client;
mod options;
pub mod rpc;
mod serve;
mod session;
pub mod terminal;
pub mod translate;
mod turn;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use self::agent::{tail_of, Agent};
use self::client::Buffers;
use super::process;
use crate::agent::{AgentError, AgentEvent, PermissionReply, PermissionRequest, TurnRequest};
use crate::model::{ChatId, ItemChange, ItemKind};

/// How to run one ACP agent (`agents.<name>` with `protocol = 'acp'`).
#[derive(Clone, Debug)]
pub struct AcpConfig {
    /// The agent's name in boo (`qwen`, `opencode-acp`...).
    pub name: String,
    pub command: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// The option that picks the model (`-m`); without one a chat's model is not passed on.
    pub model_flag: Option<String>,
    /// How long `initialize` (and `session/new`) may take.
    pub init_timeout: Duration,
    /// After `session/cancel`, how long the agent may take to end the turn before its group is
    /// killed.
    pub cancel_grace: Duration,
    /// A turn with no message from the agent for this long is cancelled; `None`: never.
    pub watchdog: Option<Duration>,
}

impl AcpConfig {
    pub fn new(name: &str, command: impl Into<PathBuf>, args: Vec<String>) -> AcpConfig {
        AcpConfig {
            name: name.to_string(),
            command: command.into(),
            args,
            env: Vec::new(),
            model_flag: None,
            init_timeout: Duration::from_secs(60),
            cancel_grace: Duration::from_secs(2),
            watchdog: Some(Duration::from_secs(600)),
        }
    }
}

struct Asked {
    chat: ChatId,
    request: PermissionRequest,
    reply: oneshot::Sender<PermissionReply>,
}

struct Inner {
    cfg: AcpConfig,
    events: mpsc::UnboundedSender<AgentEvent>,
    agents: Mutex<HashMap<ChatId, Arc<Agent>>>,
    /// Chats with a turn in flight.
    running: Mutex<std::collections::HashSet<ChatId>>,
    /// Chats aborted while their agent was still starting.
    abort_on_start: Mutex<std::collections::HashSet<ChatId>>,
    permissions: Mutex<HashMap<String, Asked>>,
    buffers: Option<Arc<dyn Buffers>>,
    shut: AtomicBool,
    n: AtomicU64,
    /// Models an agent session listed as settable (`session/set_model`): a chat asking for
    /// one starts the agent without `model_flag` and sets it in the session.
    known_models: Mutex<Vec<String>>,
}

/// An ACP agent as an [`AgentBackend`]. Cheap to clone.
#[derive(Clone)]
pub struct AcpBackend {
    inner: Arc<Inner>,
}

impl AcpBackend {
    pub fn new(cfg: AcpConfig, events: mpsc::UnboundedSender<AgentEvent>) -> AcpBackend {
        AcpBackend::with_buffers(cfg, events, None)
    }

    /// With a source of the editor's unsaved buffer text for `fs/read_text_file`.
    pub fn with_buffers(
        cfg: AcpConfig,
        events: mpsc::UnboundedSender<AgentEvent>,
        buffers: Option<Arc<dyn Buffers>>,
    ) -> AcpBackend {
        AcpBackend {
            inner: Arc::new(Inner {
                cfg,
                events,
                agents: Mutex::new(HashMap::new()),
                running: Mutex::new(Default::default()),
                abort_on_start: Mutex::new(Default::default()),
                permissions: Mutex::new(HashMap::new()),
                buffers,
                shut: AtomicBool::new(false),
                n: AtomicU64::new(id_base()),
                known_models: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The process group of the chat's agent, if it runs.
    pub fn process_group(&self, chat: ChatId) -> Option<i32> {
        self.inner.agents.lock().get(&chat).map(|a| a.group.pgid)
    }

    fn agent_name(&self) -> &str {
        &self.inner.cfg.name
    }

    fn send(&self, e: AgentEvent) {
        let _ = self.inner.events.send(e);
    }

    fn unique(&self) -> u64 {
        self.inner.n.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn item(&self, chat: ChatId, change: ItemChange) {
        self.send(AgentEvent::Item { chat, change });
    }

    fn info(&self, chat: ChatId, text: String) {
        let part_id = format!("acp-{chat}-info-{}", self.unique());
        self.item(
            chat,
            ItemChange::Upsert {
                part_id,
                kind: ItemKind::Info,
                content: text,
                meta: json!({}),
            },
        );
    }

    /// One line for a failure: what happened and the end of the agent's stderr.
    fn fail(
        &self,
        what: &str,
        e: impl std::fmt::Display,
        stderr: &process::StderrTail,
    ) -> AgentError {
        AgentError::Cli(format!(
            "{} {what}: {e}{}",
            self.agent_name(),
            tail_of(stderr)
        ))
    }

    /// The model a turn asks for, when the agent can be told (`model_flag`).
    /// (Not one the agent's sessions can be told, `known_models`.)
    fn model_of(&self, req: &TurnRequest) -> Option<String> {
        self.inner.cfg.model_flag.as_ref()?;
        requested_model(req).filter(|m| !self.inner.known_models.lock().contains(m))
    }

    /// Forgets the chat's agent and kills its group (terminals included).
    fn drop_agent(&self, chat: ChatId) {
        if let Some(a) = self.inner.agents.lock().remove(&chat) {
            a.terminals.kill_all();
            a.group.signal(libc::SIGKILL);
        }
    }
}

/// The model a turn asks for, if any.
fn requested_model(req: &TurnRequest) -> Option<String> {
    req.model
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_string)
}

/// Where this process's item ids start: the clock in milliseconds, times 1000. Items are
/// stored under their ids, so a restarted boocoder must not count from 1 again and overwrite
/// the chat's earlier turns.
fn id_base() -> u64 {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    ms.saturating_mul(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_backend_never_reuses_an_earlier_ones_ids() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let a = AcpBackend::new(AcpConfig::new("x", "x", Vec::new()), tx.clone());
        let first: Vec<u64> = (0..3).map(|_| a.unique()).collect();
        std::thread::sleep(Duration::from_millis(2));
        let b = AcpBackend::new(AcpConfig::new("x", "x", Vec::new()), tx);
        assert!(b.unique() > first[2], "{first:?}");
    }
}
