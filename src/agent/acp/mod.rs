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

pub mod builtin;
pub mod client;
pub mod rpc;
pub mod terminal;
pub mod translate;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use self::client::Buffers;
use self::rpc::{Conn, Inbox, Incoming, RpcError};
use self::translate::Translator;
use super::process::{self, Group};
use crate::agent::{
    AgentBackend, AgentError, AgentEvent, PendingPermission, PermissionReply, PermissionRequest,
    TurnOutcome, TurnRequest,
};
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
        }
    }
}

/// Lines of stderr kept for error messages.
const STDERR_TAIL: usize = 8;

/// One running agent process and its session, for one chat.
struct Agent {
    chat: ChatId,
    conn: Conn,
    group: Group,
    session: Mutex<String>,
    directory: PathBuf,
    /// The model it was started with.
    model: Option<String>,
    load_session: AtomicBool,
    stderr: process::StderrTail,
    terminals: terminal::Terminals,
    translator: Mutex<Translator>,
    /// Updates are dropped while `session/load` replays the history we already have.
    replaying: AtomicBool,
    aborted: AtomicBool,
}

fn tail_of(t: &process::StderrTail) -> String {
    let lines = t.lines();
    if lines.is_empty() {
        String::new()
    } else {
        format!("; stderr: {}", lines.join(" | "))
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
                n: AtomicU64::new(0),
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

    /// Starts the agent process, serves its requests and initializes it.
    async fn spawn(&self, req: &TurnRequest) -> Result<Arc<Agent>, AgentError> {
        let cfg = &self.inner.cfg;
        let model = self.model_of(req);
        let mut cmd = tokio::process::Command::new(&cfg.command);
        cmd.args(&cfg.args);
        if let (Some(flag), Some(m)) = (&cfg.model_flag, &model) {
            cmd.arg(flag).arg(m);
        }
        cmd.current_dir(&req.directory)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in &cfg.env {
            cmd.env(k, v);
        }
        process::own(&mut cmd);
        // Arguments and env may carry keys: only their count is logged.
        tracing::info!(agent = cfg.name, chat = req.chat, args = cfg.args.len(), dir = %req.directory.display(), "acp agent start");
        let mut child = cmd.spawn().map_err(|e| {
            AgentError::Cli(if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "{} not found ('{}'): install it or set agents.{}.cmd",
                    cfg.name,
                    cfg.command.display(),
                    cfg.name
                )
            } else {
                format!(
                    "{} could not be started ('{}'): {e}",
                    cfg.name,
                    cfg.command.display()
                )
            })
        })?;
        let group = Group {
            pgid: child.id().map_or(0, |p| p as i32),
        };
        let stderr = process::StderrTail::default();
        let stderr_done = child
            .stderr
            .take()
            .map(|err| stderr.collect(err, STDERR_TAIL, &cfg.name));
        let (Some(out), Some(inp)) = (child.stdout.take(), child.stdin.take()) else {
            return Err(AgentError::Cli(format!("{}: no stdio", cfg.name)));
        };
        // Reaped in the background; the group is killed when the agent is dropped.
        tokio::spawn(async move {
            let st = child.wait().await;
            tracing::info!(target: "acp", "agent exited: {st:?}");
        });
        let (conn, incoming) = Conn::start(out, inp);
        let agent = Arc::new(Agent {
            chat: req.chat,
            conn: conn.clone(),
            group,
            session: Mutex::new(String::new()),
            directory: req.directory.clone(),
            model,
            load_session: AtomicBool::new(false),
            stderr: stderr.clone(),
            terminals: terminal::Terminals::default(),
            translator: Mutex::new(Translator::new(format!(
                "acp-{}-{}",
                req.chat,
                self.unique()
            ))),
            replaying: AtomicBool::new(false),
            aborted: AtomicBool::new(false),
        });
        tokio::spawn(self.clone().serve(Arc::downgrade(&agent), incoming));
        let init = tokio::time::timeout(
            cfg.init_timeout,
            conn.request(
                "initialize",
                json!({
                    "protocolVersion": 1,
                    "clientCapabilities": {
                        "fs": {"readTextFile": true, "writeTextFile": true},
                        "terminal": true,
                    },
                    "clientInfo": {"name": "boo", "version": env!("CARGO_PKG_VERSION")},
                }),
            ),
        )
        .await;
        let caps = match init {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                // The agent's last words on stderr say why.
                if let Some(t) = stderr_done {
                    let _ = tokio::time::timeout(Duration::from_millis(500), t).await;
                }
                return Err(self.fail("failed to start", e, &stderr));
            }
            Err(_) => {
                return Err(self.fail(
                    "did not answer initialize",
                    format!("no answer within {} s", cfg.init_timeout.as_secs()),
                    &stderr,
                ))
            }
        };
        let load_session = caps
            .pointer("/agentCapabilities/loadSession")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        agent.load_session.store(load_session, Ordering::SeqCst);
        Ok(agent)
    }

    /// The model a turn asks for, when the agent can be told (`model_flag`).
    fn model_of(&self, req: &TurnRequest) -> Option<String> {
        self.inner.cfg.model_flag.as_ref()?;
        req.model
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_string)
    }

    /// The chat's agent with a session: reused, or started (also when the chat's model
    /// changed), then the bound session loaded or a new one made.
    async fn agent_for(&self, req: &TurnRequest) -> Result<Arc<Agent>, AgentError> {
        let existing = self.inner.agents.lock().get(&req.chat).cloned();
        if let Some(a) = existing {
            if a.conn.closed().is_none()
                && a.directory == req.directory
                && a.model == self.model_of(req)
            {
                return Ok(a);
            }
            self.drop_agent(req.chat);
        }
        let agent = self.spawn(req).await?;
        let conn = agent.conn.clone();
        let dir = req.directory.display().to_string();
        let timeout = self.inner.cfg.init_timeout;
        let mut loaded = None;
        if let (Some(b), true) = (&req.binding, agent.load_session.load(Ordering::SeqCst)) {
            agent.replaying.store(true, Ordering::SeqCst);
            let r = tokio::time::timeout(
                timeout,
                conn.request(
                    "session/load",
                    json!({"sessionId": b.external_id, "cwd": dir, "mcpServers": []}),
                ),
            )
            .await;
            agent.replaying.store(false, Ordering::SeqCst);
            match r {
                Ok(Ok(_)) => loaded = Some(b.external_id.clone()),
                Ok(Err(RpcError::Closed(why))) => {
                    return Err(self.fail("ended", why, &agent.stderr));
                }
                Ok(Err(e)) => {
                    tracing::info!(chat = req.chat, "session/load failed: {e}");
                    self.info(
                        req.chat,
                        format!(
                            "{}: its previous session could not be loaded ({e}); this turn starts a new one without the earlier context",
                            self.agent_name()
                        ),
                    );
                }
                Err(_) => {
                    return Err(self.fail(
                        "did not answer session/load",
                        "timed out",
                        &agent.stderr,
                    ))
                }
            }
        }
        let session = match loaded {
            Some(s) => s,
            None => {
                let r = tokio::time::timeout(
                    timeout,
                    conn.request("session/new", json!({"cwd": dir, "mcpServers": []})),
                )
                .await;
                let v = match r {
                    Ok(Ok(v)) => v,
                    Ok(Err(e)) => {
                        return Err(self.fail("could not make a session", e, &agent.stderr))
                    }
                    Err(_) => {
                        return Err(self.fail(
                            "did not answer session/new",
                            "timed out",
                            &agent.stderr,
                        ))
                    }
                };
                let Some(id) = v.get("sessionId").and_then(Value::as_str) else {
                    return Err(self.fail("made a session without an id", v, &agent.stderr));
                };
                let same = req.binding.as_ref().is_some_and(|b| b.external_id == id);
                if !same {
                    self.send(AgentEvent::SessionBound {
                        chat: req.chat,
                        agent: self.agent_name().to_string(),
                        external_id: id.to_string(),
                        config_hash: self.agent_name().to_string(),
                    });
                }
                id.to_string()
            }
        };
        *agent.session.lock() = session;
        self.inner.agents.lock().insert(req.chat, agent.clone());
        Ok(agent)
    }

    /// Forgets the chat's agent and kills its group (terminals included).
    fn drop_agent(&self, chat: ChatId) {
        if let Some(a) = self.inner.agents.lock().remove(&chat) {
            a.terminals.kill_all();
            a.group.signal(libc::SIGKILL);
        }
    }

    /// Handles what the agent sends until its connection closes.
    async fn serve(self, agent: std::sync::Weak<Agent>, mut incoming: Inbox) {
        while let Some(m) = incoming.next().await {
            let Some(a) = agent.upgrade() else { break };
            match m {
                Incoming::Notification { method, params } => {
                    if method == "session/update" && !a.replaying.load(Ordering::SeqCst) {
                        let mut out = Vec::new();
                        if let Some(u) = params.get("update") {
                            a.translator.lock().update(u, &mut out);
                        }
                        for c in out {
                            self.item(a.chat, c);
                        }
                    }
                }
                Incoming::Request { id, method, params } => {
                    let me = self.clone();
                    tokio::spawn(async move {
                        let r = me.answer(&a, &method, &params).await;
                        if let Err(e) = &r {
                            tracing::info!(target: "acp", method, "refused: {e}");
                        }
                        a.conn.respond(id, r.map_err(|e| (-32603, e)));
                    });
                }
            }
        }
    }

    /// The answer to one request of the agent.
    async fn answer(&self, a: &Arc<Agent>, method: &str, p: &Value) -> Result<Value, String> {
        let dir = &a.directory;
        match method {
            "session/request_permission" => Ok(self.permission(a, p).await),
            "fs/read_text_file" => client::read(dir, p, self.inner.buffers.as_deref()).await,
            "fs/write_text_file" => client::write(dir, p).await,
            "terminal/create" => {
                let (tx, mut rx) = mpsc::unbounded_channel();
                let id = a.terminals.create(dir, p, tx)?;
                // The terminal's output goes into the tool block that shows it.
                let (me, weak) = (self.clone(), Arc::downgrade(a));
                tokio::spawn(async move {
                    while let Some((term, text)) = rx.recv().await {
                        let Some(a) = weak.upgrade() else { break };
                        let change = a.translator.lock().terminal_output(&term, &text);
                        if let Some(c) = change {
                            me.item(a.chat, c);
                        }
                    }
                });
                Ok(json!({ "terminalId": id }))
            }
            "terminal/output" => a.terminals.output(p),
            "terminal/wait_for_exit" => a.terminals.wait(p).await,
            "terminal/kill" => a.terminals.kill(p),
            "terminal/release" => a.terminals.release(p),
            other => Err(format!("method not supported by boo: {other}")),
        }
    }

    /// `session/request_permission`: asked through the same inbox as opencode's; the answer is
    /// the agent's option nearest to the user's reply (`cancelled` when the turn is aborted).
    async fn permission(&self, a: &Arc<Agent>, p: &Value) -> Value {
        let call = p.get("toolCall").cloned().unwrap_or(Value::Null);
        let title = call
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or("tool")
            .to_string();
        let kind = call
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("other")
            .to_string();
        let id = format!("acp-perm-{}-{}", a.chat, self.unique());
        let mut metadata = json!({"options": p.get("options")});
        if let Some(c) = call.pointer("/rawInput/command") {
            metadata["command"] = c.clone();
        }
        let request = PermissionRequest {
            id: id.clone(),
            session_id: a.session.lock().clone(),
            permission: kind,
            patterns: vec![title],
            always: Vec::new(),
            metadata,
            call_id: call
                .get("toolCallId")
                .and_then(Value::as_str)
                .map(str::to_string),
        };
        let (tx, rx) = oneshot::channel();
        self.inner.permissions.lock().insert(
            id.clone(),
            Asked {
                chat: a.chat,
                request: request.clone(),
                reply: tx,
            },
        );
        self.item(a.chat, permission_item(&request, "asked"));
        self.send(AgentEvent::PermissionAsked {
            chat: a.chat,
            request: request.clone(),
        });
        let reply = rx.await.ok();
        let options = p.get("options").cloned().unwrap_or(Value::Null);
        let status = reply.map_or("cancelled", PermissionReply::as_str);
        self.item(a.chat, permission_item(&request, status));
        self.send(AgentEvent::PermissionReplied {
            chat: a.chat,
            id: id.clone(),
            reply: status.to_string(),
        });
        match reply.and_then(|r| client::pick_option(&options, r)) {
            Some(option) => json!({"outcome": {"outcome": "selected", "optionId": option}}),
            None => json!({"outcome": {"outcome": "cancelled"}}),
        }
    }

    /// Runs one prompt to its end and reports it.
    async fn turn(self, a: Arc<Agent>, req: TurnRequest) {
        let chat = req.chat;
        // No reset of `aborted`: an aborted agent is never reused.
        a.translator.lock().new_turn();
        let session = a.session.lock().clone();
        let prompt = json!([{"type": "text", "text": req.text_with_attachments()}]);
        let r = a
            .conn
            .request(
                "session/prompt",
                json!({"sessionId": session, "prompt": prompt}),
            )
            .await;
        let aborted = a.aborted.load(Ordering::SeqCst);
        let outcome = match r {
            Ok(v) => {
                if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
                    let id = format!("acp-{chat}-step-{}", self.unique());
                    self.item(chat, translate::step(id, u));
                }
                match v.get("stopReason").and_then(Value::as_str) {
                    Some("cancelled") => TurnOutcome::Aborted,
                    _ if aborted => TurnOutcome::Aborted,
                    Some("refusal") => {
                        TurnOutcome::Failed(format!("{} refused the prompt", self.agent_name()))
                    }
                    _ => TurnOutcome::Done,
                }
            }
            Err(_) if aborted => TurnOutcome::Aborted,
            Err(RpcError::Remote { message, .. }) => {
                TurnOutcome::Failed(format!("{}: {message}", self.agent_name()))
            }
            Err(RpcError::Closed(why)) => {
                // Let the stderr reader catch up with the agent's last lines.
                tokio::time::sleep(Duration::from_millis(200)).await;
                TurnOutcome::Failed(format!(
                    "{}: {why}{}",
                    self.agent_name(),
                    tail_of(&a.stderr)
                ))
            }
        };
        let mut out = Vec::new();
        a.translator.lock().end_turn(&mut out);
        for c in out {
            self.item(chat, c);
        }
        a.terminals.kill_all();
        // An agent that is gone, or was told to stop, is not reused.
        if a.conn.closed().is_some() || aborted {
            self.drop_agent(chat);
        }
        self.inner.running.lock().remove(&chat);
        if let TurnOutcome::Failed(m) = &outcome {
            tracing::warn!(chat, agent = self.agent_name(), "turn failed: {m}");
        }
        self.send(AgentEvent::TurnDone { chat, outcome });
    }
}

fn permission_item(req: &PermissionRequest, status: &str) -> ItemChange {
    ItemChange::Upsert {
        part_id: req.id.clone(),
        kind: ItemKind::Permission,
        content: format!("{}: {}", req.permission, req.patterns.join(", ")),
        meta: json!({
            "id": req.id,
            "permission": req.permission,
            "patterns": req.patterns,
            "always": req.always,
            "call_id": req.call_id,
            "status": status,
        }),
    }
}

#[async_trait]
impl AgentBackend for AcpBackend {
    fn name(&self) -> &str {
        self.agent_name()
    }

    async fn start_turn(&self, req: TurnRequest) -> Result<(), AgentError> {
        if self.inner.shut.load(Ordering::SeqCst) {
            return Err(AgentError::Shutdown);
        }
        if !self.inner.running.lock().insert(req.chat) {
            return Err(AgentError::Busy(req.chat));
        }
        let agent = match self.agent_for(&req).await {
            Ok(a) => a,
            Err(e) => {
                self.drop_agent(req.chat);
                self.inner.abort_on_start.lock().remove(&req.chat);
                self.inner.running.lock().remove(&req.chat);
                tracing::warn!(chat = req.chat, agent = self.agent_name(), "{e}");
                return Err(e);
            }
        };
        self.send(AgentEvent::TurnStarted { chat: req.chat });
        if self.inner.abort_on_start.lock().remove(&req.chat) {
            // Aborted while it started: the prompt is not sent.
            self.drop_agent(req.chat);
            self.inner.running.lock().remove(&req.chat);
            self.send(AgentEvent::TurnDone {
                chat: req.chat,
                outcome: TurnOutcome::Aborted,
            });
            return Ok(());
        }
        tokio::spawn(self.clone().turn(agent, req));
        Ok(())
    }

    async fn abort(&self, chat: ChatId) -> Result<(), AgentError> {
        if !self.inner.running.lock().contains(&chat) {
            return Err(AgentError::NotRunning(chat));
        }
        let Some(a) = self.inner.agents.lock().get(&chat).cloned() else {
            // Still starting: the turn ends as soon as the agent is up.
            self.inner.abort_on_start.lock().insert(chat);
            return Ok(());
        };
        a.aborted.store(true, Ordering::SeqCst);
        let session = a.session.lock().clone();
        a.conn
            .notify("session/cancel", json!({ "sessionId": session }));
        // Its pending permission requests are answered `cancelled`.
        self.inner.permissions.lock().retain(|_, p| p.chat != chat);
        a.terminals.kill_all();
        let grace = self.inner.cfg.cancel_grace;
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            // The agent did not end its turn: the group goes (the turn then ends Aborted).
            let same = me
                .inner
                .agents
                .lock()
                .get(&chat)
                .is_some_and(|b| Arc::ptr_eq(b, &a));
            if same && me.inner.running.lock().contains(&chat) {
                a.group.signal(libc::SIGKILL);
            }
        });
        Ok(())
    }

    async fn reply_permission(&self, id: &str, reply: PermissionReply) -> Result<(), AgentError> {
        let asked = self
            .inner
            .permissions
            .lock()
            .remove(id)
            .ok_or_else(|| AgentError::UnknownPermission(id.to_string()))?;
        asked
            .reply
            .send(reply)
            .map_err(|_| AgentError::UnknownPermission(id.to_string()))
    }

    async fn pending_permissions(&self) -> Vec<PendingPermission> {
        self.inner
            .permissions
            .lock()
            .values()
            .map(|p| PendingPermission {
                chat: p.chat,
                request: p.request.clone(),
            })
            .collect()
    }

    async fn close_chat(&self, chat: ChatId) {
        let _ = self.abort(chat).await;
        self.inner.permissions.lock().retain(|_, p| p.chat != chat);
        self.drop_agent(chat);
    }

    async fn shutdown(&self) {
        self.inner.shut.store(true, Ordering::SeqCst);
        self.inner.permissions.lock().clear();
        let chats: Vec<ChatId> = self.inner.agents.lock().keys().copied().collect();
        for c in chats {
            if let Some(a) = self.inner.agents.lock().get(&c) {
                a.aborted.store(true, Ordering::SeqCst);
            }
            self.drop_agent(c);
        }
    }

    async fn commands(&self, _directory: PathBuf) -> Vec<(String, String)> {
        let agents = self.inner.agents.lock();
        agents
            .values()
            .next()
            .map(|a| a.translator.lock().commands.clone())
            .unwrap_or_default()
    }
}
