//! The opencode backend: one warm `opencode serve` (started on first use, or attached), one
//! opencode session per `(chat, agent)`, one SSE subscription per live session.
//!
//! * `server`: process lifecycle; `client`: REST routes; `sse`: SSE framing;
//!   `translate`: events -> transcript changes (pure); `session`: the per-session actor.

pub mod client;
pub mod drift;
pub mod parts;
pub mod server;
pub mod session;
pub mod sse;
pub mod translate;
pub mod warm;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use self::client::{Client, ModelRef};
use self::server::{Server, ServerSpec};
use self::session::{Actor, Cmd, PermissionMap, Timings};
use crate::agent::{
    AgentBackend, AgentError, AgentEvent, PendingPermission, PermissionReply, TurnRequest,
};
use crate::model::ChatId;

/// What the product configures for opencode.
#[derive(Clone, Debug)]
pub struct OpencodeConfig {
    /// The `opencode` command (`opencode` from `PATH` by default).
    pub command: PathBuf,
    /// Extra environment for the server.
    pub env: Vec<(String, String)>,
    /// Working directory of the server process.
    pub cwd: Option<PathBuf>,
    /// Use this server instead of starting one (`http://host:port`).
    pub attach_url: Option<String>,
    pub attach_username: Option<String>,
    pub attach_password: Option<String>,
    /// Fail a turn after this long without an event for its session (default 180 s).
    pub watchdog: Duration,
    /// Poll REST when only heartbeats arrived for this long while busy (default 15 s).
    pub poll_after: Duration,
    /// Fail a turn when the event stream stays down this long (default 5 s).
    pub reconnect_give_up: Duration,
    /// Grace between SIGTERM and SIGKILL when stopping the server (default 2 s).
    pub stop_grace: Duration,
    /// Wait at most this long for `listening on` (default 30 s).
    pub start_timeout: Duration,
    /// boo's MCP server for the agents of a server we start.
    pub mcp: Option<server::McpRemote>,
}

impl Default for OpencodeConfig {
    fn default() -> Self {
        OpencodeConfig {
            command: server::default_command(),
            env: Vec::new(),
            cwd: None,
            attach_url: None,
            attach_username: None,
            attach_password: None,
            watchdog: Duration::from_secs(180),
            poll_after: Duration::from_secs(15),
            reconnect_give_up: Duration::from_secs(5),
            stop_grace: Duration::from_secs(2),
            start_timeout: Duration::from_secs(30),
            mcp: None,
        }
    }
}

/// The default opencode agent.
pub const DEFAULT_AGENT: &str = "build";

/// Fingerprint of what a session was created with (model + agent). Stable across runs and
/// Rust versions (FNV-1a), so the caller can persist it.
pub fn config_hash(model: Option<&str>, agent: &str) -> String {
    let s = format!(
        "opencode;model={};agent={agent}",
        model.unwrap_or("default")
    );
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

struct ChatSession {
    session_id: String,
    directory: PathBuf,
    config_hash: String,
    server: Arc<Server>,
    cmds: mpsc::UnboundedSender<Cmd>,
}

struct Inner {
    cfg: OpencodeConfig,
    events: mpsc::UnboundedSender<AgentEvent>,
    server: tokio::sync::Mutex<Option<Arc<Server>>>,
    chats: Mutex<HashMap<ChatId, ChatSession>>,
    permissions: PermissionMap,
    shut: std::sync::atomic::AtomicBool,
    live: Arc<std::sync::atomic::AtomicUsize>,
    /// Context window per `provider/model`, asked once per server (for context fill).
    limits: session::ContextLimits,
}

/// The opencode implementation of [`AgentBackend`]. Cheap to clone.
#[derive(Clone)]
pub struct OpencodeBackend {
    inner: Arc<Inner>,
}

impl OpencodeBackend {
    /// A backend reporting on `events`. Nothing starts until the first prompt.
    pub fn new(cfg: OpencodeConfig, events: mpsc::UnboundedSender<AgentEvent>) -> OpencodeBackend {
        OpencodeBackend {
            inner: Arc::new(Inner {
                cfg,
                events,
                server: tokio::sync::Mutex::new(None),
                chats: Mutex::new(HashMap::new()),
                permissions: Arc::new(Mutex::new(HashMap::new())),
                shut: std::sync::atomic::AtomicBool::new(false),
                live: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
                limits: Default::default(),
            }),
        }
    }

    fn is_shut(&self) -> bool {
        self.inner.shut.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The running server (started or attached on first use; restarted when it died).
    pub async fn server(&self) -> Result<Arc<Server>, AgentError> {
        self.server_reporting(true).await
    }

    /// [`Self::server`]; a failure to start is sent as `ServerError` only when `report`.
    async fn server_reporting(&self, report: bool) -> Result<Arc<Server>, AgentError> {
        if self.is_shut() {
            return Err(AgentError::Shutdown);
        }
        let mut guard = self.inner.server.lock().await;
        if let Some(s) = guard.as_ref() {
            if s.is_alive() {
                return Ok(s.clone());
            }
            tracing::warn!("opencode server is gone; starting a new one");
        }
        let cfg = &self.inner.cfg;
        let started = match &cfg.attach_url {
            Some(url) => {
                Server::attach(
                    url,
                    cfg.attach_username.as_deref().unwrap_or("opencode"),
                    cfg.attach_password.clone(),
                )
                .await
            }
            None => {
                Server::spawn(&ServerSpec {
                    command: cfg.command.clone(),
                    env: cfg.env.clone(),
                    cwd: cfg.cwd.clone(),
                    start_timeout: cfg.start_timeout,
                    mcp: cfg.mcp.clone(),
                })
                .await
            }
        };
        match started {
            Ok(s) => {
                let s = Arc::new(s);
                *guard = Some(s.clone());
                Ok(s)
            }
            Err(e) => {
                if report {
                    let _ = self
                        .inner
                        .events
                        .send(AgentEvent::ServerError(e.to_string()));
                }
                Err(e)
            }
        }
    }

    /// Number of session streams (SSE subscriptions with their task) running now.
    pub fn live_streams(&self) -> usize {
        self.inner.live.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The opencode session a chat is bound to right now, if live.
    pub fn session_of(&self, chat: ChatId) -> Option<String> {
        self.inner
            .chats
            .lock()
            .get(&chat)
            .map(|c| c.session_id.clone())
    }

    fn timings(&self) -> Timings {
        let c = &self.inner.cfg;
        Timings {
            watchdog: c.watchdog,
            poll_after: c.poll_after,
            reconnect_give_up: c.reconnect_give_up,
            abort_grace: Duration::from_secs(5),
        }
    }

    /// Asks the server for its models' context windows once, in the background (a turn takes
    /// longer than this local request, so its step usage finds them).
    fn learn_limits(&self, client: &Client, dir: &Path) {
        if !self.inner.limits.lock().is_empty() {
            return;
        }
        let (client, dir, limits) = (client.clone(), dir.to_path_buf(), self.inner.limits.clone());
        tokio::spawn(async move {
            match client.providers(&dir).await {
                Ok(v) => *limits.lock() = session::context_limits(&v),
                Err(e) => tracing::debug!("no context limits: {e}"),
            }
        });
    }

    /// Finds or makes the live session of `req.chat` (stale guard included).
    async fn live_session(
        &self,
        req: &TurnRequest,
        server: &Arc<Server>,
        hash: &str,
        agent: &str,
        avoid: Option<&str>,
    ) -> Result<mpsc::UnboundedSender<Cmd>, AgentError> {
        {
            let mut chats = self.inner.chats.lock();
            if let Some(c) = chats.get(&req.chat) {
                let same = Arc::ptr_eq(&c.server, server)
                    && c.directory == req.directory
                    && c.config_hash == hash
                    && !c.cmds.is_closed()
                    && avoid != Some(c.session_id.as_str());
                if same {
                    return Ok(c.cmds.clone());
                }
                let _ = c.cmds.send(Cmd::Close);
                chats.remove(&req.chat);
            }
        }
        let client = server.client();
        self.learn_limits(client, &req.directory);
        // The caller's binding, if it still exists and fits.
        let mut session_id = None;
        if let Some(b) = &req.binding {
            if b.config_hash == hash && avoid != Some(b.external_id.as_str()) {
                match client.get_session(&b.external_id, &req.directory).await? {
                    Some(_) => session_id = Some(b.external_id.clone()),
                    None => {
                        tracing::info!(session = %b.external_id, "bound session is gone; creating a new one")
                    }
                }
            } else {
                tracing::info!(chat = req.chat, "model/config changed; new session");
            }
        }
        let session_id = match session_id {
            Some(s) => s,
            None => {
                let id = client.create_session(&req.directory, Some(agent)).await?;
                let _ = self.inner.events.send(AgentEvent::SessionBound {
                    chat: req.chat,
                    agent: agent.to_string(),
                    external_id: id.clone(),
                    config_hash: hash.to_string(),
                });
                id
            }
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        let actor = Actor::new(
            req.chat,
            session_id.clone(),
            req.directory.clone(),
            client.clone(),
            server.watch_alive(),
            self.inner.events.clone(),
            self.inner.permissions.clone(),
            self.timings(),
            self.inner.live.clone(),
        )
        .with_limits(self.inner.limits.clone());
        tokio::spawn(actor.run(rx, ready_tx));
        match tokio::time::timeout(Duration::from_secs(10), ready_rx).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => return Err(e),
            _ => return Err(AgentError::Unreachable("event stream did not open".into())),
        }
        self.inner.chats.lock().insert(
            req.chat,
            ChatSession {
                session_id,
                directory: req.directory.clone(),
                config_hash: hash.to_string(),
                server: server.clone(),
                cmds: tx.clone(),
            },
        );
        Ok(tx)
    }

    async fn try_start(&self, req: &TurnRequest, avoid: Option<&str>) -> Result<(), AgentError> {
        let model = match req
            .model
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
        {
            Some(m) => Some(ModelRef::parse(m).ok_or_else(|| AgentError::BadModel(m.to_string()))?),
            None => None,
        };
        let agent = req
            .agent
            .as_deref()
            .filter(|a| !a.is_empty())
            .unwrap_or(DEFAULT_AGENT)
            .to_string();
        let hash = config_hash(
            req.model.as_deref().filter(|m| !m.trim().is_empty()),
            &agent,
        );
        let server = self.server().await?;
        let cmds = self
            .live_session(req, &server, &hash, &agent, avoid)
            .await?;
        let (tx, rx) = oneshot::channel();
        cmds.send(Cmd::Start {
            parts: parts::prompt_parts(&req.text, &req.extras.attachments),
            command: req.extras.command.clone(),
            model,
            agent: Some(agent),
            reply: tx,
        })
        .map_err(|_| AgentError::Unreachable("session stream closed".into()))?;
        rx.await
            .map_err(|_| AgentError::Unreachable("session stream closed".into()))?
    }
}

#[async_trait]
impl AgentBackend for OpencodeBackend {
    fn name(&self) -> &str {
        "opencode"
    }

    async fn start_turn(&self, req: TurnRequest) -> Result<(), AgentError> {
        match self.try_start(&req, None).await {
            // The session vanished between the check and the prompt: once more, in a new one.
            Err(AgentError::Http { status: 404, .. }) => {
                let gone = self.session_of(req.chat);
                self.try_start(&req, gone.as_deref()).await
            }
            r => r,
        }
    }

    async fn abort(&self, chat: ChatId) -> Result<(), AgentError> {
        let cmds = self
            .inner
            .chats
            .lock()
            .get(&chat)
            .map(|c| c.cmds.clone())
            .ok_or(AgentError::NotRunning(chat))?;
        let (tx, rx) = oneshot::channel();
        cmds.send(Cmd::Abort { reply: tx })
            .map_err(|_| AgentError::NotRunning(chat))?;
        rx.await.map_err(|_| AgentError::NotRunning(chat))?
    }

    async fn reply_permission(&self, id: &str, reply: PermissionReply) -> Result<(), AgentError> {
        let dir = self
            .inner
            .permissions
            .lock()
            .get(id)
            .map(|(_, d)| d.clone())
            .ok_or_else(|| AgentError::UnknownPermission(id.to_string()))?;
        let server = self.server().await?;
        server
            .client()
            .reply_permission(id, &dir, reply.as_str())
            .await?;
        self.inner.permissions.lock().remove(id);
        Ok(())
    }

    async fn pending_permissions(&self) -> Vec<PendingPermission> {
        let mut v: Vec<PendingPermission> = self
            .inner
            .permissions
            .lock()
            .values()
            .map(|(p, _)| p.clone())
            .collect();
        v.sort_by(|a, b| a.request.id.cmp(&b.request.id));
        v
    }

    async fn rewind(
        &self,
        directory: std::path::PathBuf,
        external_id: String,
        before: Option<String>,
    ) -> Result<(), AgentError> {
        let server = self.server().await?;
        let client = server.client();
        match before {
            Some(m) => client.revert(&external_id, &directory, &m).await,
            None => client.unrevert(&external_id, &directory).await,
        }
    }

    async fn fork(
        &self,
        directory: std::path::PathBuf,
        external_id: String,
        before: Option<String>,
    ) -> Result<String, AgentError> {
        let server = self.server().await?;
        server
            .client()
            .fork(&external_id, &directory, before.as_deref())
            .await
    }

    async fn close_chat(&self, chat: ChatId) {
        if let Some(c) = self.inner.chats.lock().remove(&chat) {
            let _ = c.cmds.send(Cmd::Close);
        }
    }

    async fn server_client(&self) -> Option<Result<client::Client, AgentError>> {
        // Not reported as `ServerError`: the probe's report says what went wrong.
        Some(
            self.server_reporting(false)
                .await
                .map(|s| s.client().clone()),
        )
    }

    async fn prepare(&self, directory: Option<PathBuf>) {
        let t = std::time::Instant::now();
        let server = match self.server_reporting(false).await {
            Ok(s) => s,
            Err(e) => return tracing::info!("opencode not started ahead of the prompt: {e}"),
        };
        let Some(dir) = directory else {
            return tracing::info!(ms = t.elapsed().as_millis() as u64, "opencode ready");
        };
        if !server.mark_ready(&dir) {
            return tracing::info!(dir = %dir.display(), "opencode ready for the directory (before)");
        }
        // opencode loads the first part of a directory's instance (config, agents, project) on
        // its first request there, and the rest with its first prompt (see `warm`).
        let prepared = if server.can_warm() {
            warm::warm(server.client(), &dir).await.map(|_| "warmed")
        } else {
            server.client().agents(&dir).await.map(|_| "listed")
        };
        match prepared {
            Ok(how) => tracing::info!(
                ms = t.elapsed().as_millis() as u64,
                dir = %dir.display(),
                how,
                "opencode ready for the directory"
            ),
            Err(e) => tracing::info!(dir = %dir.display(), "opencode directory not prepared: {e}"),
        }
    }

    async fn commands(&self, directory: PathBuf) -> Vec<(String, String)> {
        let Ok(server) = self.server_reporting(false).await else {
            return Vec::new();
        };
        match server.client().commands(&directory).await {
            Ok(Value::Array(list)) => list
                .iter()
                .filter_map(|c| {
                    let name = c.get("name")?.as_str()?.to_string();
                    let desc = c
                        .get("description")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    Some((name, desc.to_string()))
                })
                .collect(),
            Ok(_) => Vec::new(),
            Err(e) => {
                tracing::info!("opencode commands not listed: {e}");
                Vec::new()
            }
        }
    }

    async fn shutdown(&self) {
        self.inner
            .shut
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let chats: Vec<ChatSession> = self.inner.chats.lock().drain().map(|(_, c)| c).collect();
        for c in chats {
            let _ = c.cmds.send(Cmd::Close);
        }
        let server = self.inner.server.lock().await.take();
        if let Some(s) = server {
            s.stop(self.inner.cfg.stop_grace).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_hash_is_stable_and_distinguishes() {
        assert_eq!(config_hash(None, "build"), config_hash(None, "build"));
        assert_ne!(
            config_hash(None, "build"),
            config_hash(Some("a/b"), "build")
        );
        assert_ne!(
            config_hash(Some("a/b"), "build"),
            config_hash(Some("a/b"), "plan")
        );
        assert_eq!(config_hash(None, "build").len(), 16);
    }
}
