//! The app's side of the agent backends: owns one dispatcher (per-chat turn queue) per backend
//! (opencode, and each CLI agent), routes a chat's turn to the backend of its agent, correlates
//! backend events with our task rows, and keeps what the UI lists (pending permissions,
//! pending-change counts, the last probe). Backend events reach the loop as `Event::Agent`;
//! failures of calls made for the user come back as `Event::Notice`.
//!
//! Agent names: `opencode` (its default agent), `opencode:<agent>` (another opencode agent,
//! e.g. `opencode:plan`), the ACP agents (`qwen`, `goose`, `opencode-acp`...), and the CLI
//! `claude` (and qwen's with `protocol = 'stream-json'`).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value as Json};
use tokio::sync::mpsc;

use super::Event;
use crate::agent::acp::{self, AcpBackend, AcpConfig};
use crate::agent::external::{CliConfig, CliKind, ExternalBackend};
use crate::agent::opencode::OpencodeConfig;
use crate::agent::probe::{self, ProbeOptions, ProbeReport, RoutedOpencode, RouterOptions};
use crate::agent::{AgentBackend, PermissionReply, SessionBinding, TurnRequest};
use crate::config::Config;
use crate::dispatch::{Dispatched, Dispatcher, Sink};
use crate::model::{ChatId, TaskId};

/// A permission request waiting for the user.
#[derive(Clone, Debug, Serialize)]
pub struct PermissionInfo {
    pub id: String,
    pub chat: ChatId,
    pub permission: String,
    pub title: String,
    pub patterns: Vec<String>,
    /// A reply is on its way: a second one is refused until it succeeded or failed.
    #[serde(skip)]
    pub replying: bool,
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
    /// The chat's agent (`opencode`, `opencode:plan`, `qwen`...).
    pub agent: String,
    pub extras: crate::agent::Extras,
}

/// The backend of an agent name and, for opencode, its own agent: `opencode:plan` ->
/// (`opencode`, `plan`).
pub fn split_agent(agent: &str) -> (&str, Option<&str>) {
    match agent.split_once(':') {
        Some((b, a)) if !a.is_empty() => (b, Some(a)),
        Some((b, _)) => (b, None),
        None => (agent, None),
    }
}

/// What a chat's agent session is stored under: the chat's agent for opencode (each of its
/// agents has sessions of its own), the backend for the others (an ACP agent's modes,
/// `qwen:plan`, are one session's).
pub fn binding_key(agent: &str) -> &str {
    match split_agent(agent) {
        ("opencode", _) => agent,
        (backend, _) => backend,
    }
}

/// Whether `agent` names something boo can run (it may still be missing on this machine);
/// an ACP agent of the user's own (`agents.<name>.protocol = 'acp'`) is checked by
/// [`Agents::is_acp`].
pub fn known_agent(agent: &str) -> bool {
    let (backend, sub) = split_agent(agent);
    backend == "opencode"
        || (sub.is_none()
            && (CliKind::parse(backend).is_some() || acp::builtin::find(backend).is_some()))
}

/// ACP file reads see the editor's buffers through the frontend (Neovim answers from memory).
pub struct FrontendBuffers(pub Arc<dyn crate::ui::Frontend>);

#[async_trait::async_trait]
impl acp::client::Buffers for FrontendBuffers {
    async fn text(&self, path: &std::path::Path) -> Option<String> {
        self.0.buffer_text(path).await
    }
}

/// Snapshots a numbered turn's worktree before it starts and after it ended (nothing of the
/// agent runs then); the commit comes back as a checkpoint event.
fn checkpoint_hook(events: mpsc::UnboundedSender<Event>) -> crate::dispatch::TurnHook {
    use crate::dispatch::HookPoint;
    use crate::worktree::Side;
    Arc::new(move |req: &TurnRequest, point: HookPoint| {
        let events = events.clone();
        let (chat, dir, turn) = (req.chat, req.directory.clone(), req.extras.checkpoint);
        Box::pin(async move {
            let Some(turn) = turn else { return };
            let side = match point {
                HookPoint::BeforeStart => Side::Before,
                HookPoint::AfterEnd => Side::After,
            };
            let r = tokio::task::spawn_blocking(move || {
                crate::worktree::snapshot_dir(&dir, chat, turn, side)
            })
            .await;
            match r {
                Ok(Ok(commit)) => {
                    let _ = events.send(Event::Checkpoint(
                        super::checkpoints::CheckpointEvent::Snapped {
                            chat,
                            turn,
                            side,
                            commit,
                        },
                    ));
                }
                Ok(Err(e)) => tracing::warn!(chat, turn, "no checkpoint for the turn: {e}"),
                Err(e) => tracing::warn!(chat, turn, "checkpoint task failed: {e}"),
            }
        })
    })
}

pub struct Agents {
    events: mpsc::UnboundedSender<Event>,
    config: Config,
    /// One per backend name (`opencode`, `qwen`...), made on first use.
    dispatchers: HashMap<String, Dispatcher>,
    /// The backend of each chat's turns in flight (for abort).
    in_flight: HashMap<ChatId, String>,
    /// The last probe, and whether one runs now.
    pub probe: Option<ProbeReport>,
    pub probing: bool,
    permissions: BTreeMap<String, PermissionInfo>,
    /// The editor's unsaved buffer text, for ACP agents' file reads.
    buffers: Option<Arc<dyn acp::client::Buffers>>,
    /// boo's MCP server, for the opencode server we start.
    mcp: Option<crate::agent::opencode::server::McpRemote>,
    /// Shut down: no backend is made again (a late warm-up would start a new server).
    shut: bool,
}

impl Agents {
    pub fn new(events: mpsc::UnboundedSender<Event>) -> Agents {
        Agents {
            events,
            config: Config::default(),
            dispatchers: HashMap::new(),
            in_flight: HashMap::new(),
            probe: None,
            probing: false,
            permissions: BTreeMap::new(),
            buffers: None,
            mcp: None,
            shut: false,
        }
    }

    /// boo's MCP server: the opencode server started from now on is given it.
    pub fn set_mcp(&mut self, mcp: Option<crate::agent::opencode::server::McpRemote>) {
        self.mcp = mcp;
    }

    /// Whether a chat has a turn of `backend` in flight (which chat called over MCP).
    pub fn runs_on(&self, chat: ChatId, backend: &str) -> bool {
        self.in_flight.get(&chat).is_some_and(|b| b == backend)
    }

    /// Where ACP agents read the editor's unsaved text from.
    pub fn set_buffers(&mut self, b: Arc<dyn acp::client::Buffers>) {
        self.buffers = Some(b);
    }

    /// New settings: CLI agents use them from their next turn (an idle CLI backend is made
    /// anew), the next probe looks again; the opencode server keeps running as it is.
    pub fn configure(&mut self, config: &Config) {
        self.config = config.clone();
        self.probe = None;
        let busy: std::collections::HashSet<String> = self.in_flight.values().cloned().collect();
        self.dispatchers
            .retain(|name, _| name == "opencode" || busy.contains(name));
    }

    /// The opencode server's settings from the config.
    fn opencode_config(&self) -> OpencodeConfig {
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
        cfg.mcp = self.mcp.clone();
        cfg
    }

    fn router_options(&self) -> Option<RouterOptions> {
        let r = &self.config.router;
        let url = r.url.clone().filter(|u| !u.trim().is_empty())?;
        Some(RouterOptions {
            name: r
                .name
                .clone()
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| probe::DEFAULT_ROUTER_NAME.to_string()),
            url,
            api_key: r.api_key.clone(),
        })
    }

    /// How to run a CLI agent, from `agents.<name>` of the config.
    fn cli_config(&self, kind: CliKind) -> CliConfig {
        let mut cfg = CliConfig::new(kind);
        if let Some(a) = self.config.agents.get(kind.name()) {
            if let Some(cmd) = a.cmd.as_deref().filter(|c| !c.is_empty()) {
                cfg.command = PathBuf::from(cmd);
            }
            cfg.args = a.args.clone();
            cfg.env = a.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            // 0 turns it off (a timeout that never comes).
            if let Some(s) = a.watchdog_seconds {
                cfg.watchdog = if s > 0 {
                    Duration::from_secs(s)
                } else {
                    Duration::MAX
                };
            }
        }
        cfg
    }

    /// How to run `name` as an ACP agent, if it is one: a built-in ACP agent (a CLI agent only
    /// with `protocol = 'acp'`), or any name the config gives `protocol = 'acp'` and a `cmd`.
    pub fn acp_config(&self, name: &str) -> Option<AcpConfig> {
        let user = self.config.agents.get(name);
        let protocol = user.and_then(|a| a.protocol.as_deref());
        let builtin = acp::builtin::find(name);
        let is_acp = match (builtin, protocol) {
            (_, Some(p)) => p == "acp",
            (Some(b), None) => !b.also_cli,
            (None, None) => false,
        };
        if !is_acp {
            return None;
        }
        let cmd = user
            .and_then(|a| a.cmd.clone())
            .filter(|c| !c.is_empty())
            .or_else(|| self.builtin_cmd(name))?;
        // The built-in arguments make it speak ACP; the user's come after them.
        let mut args: Vec<String> = builtin
            .map(|b| b.args.iter().map(|s| s.to_string()).collect())
            .unwrap_or_default();
        args.extend(user.and_then(|a| a.args.clone()).unwrap_or_default());
        let mut cfg = AcpConfig::new(name, cmd, args);
        cfg.model_flag = builtin.and_then(|b| b.model_flag).map(str::to_string);
        if let Some(a) = user {
            cfg.env = a.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            // 0 turns it off.
            if let Some(s) = a.watchdog_seconds {
                cfg.watchdog = (s > 0).then(|| Duration::from_secs(s));
            }
        }
        Some(cfg)
    }

    /// A built-in ACP agent's command; `opencode acp` runs the configured opencode.
    fn builtin_cmd(&self, name: &str) -> Option<String> {
        if name == "opencode-acp" {
            return Some(self.opencode_config().command.display().to_string());
        }
        acp::builtin::find(name).map(|b| b.cmd.to_string())
    }

    /// Whether `name` runs as an ACP agent with the current config.
    pub fn is_acp(&self, name: &str) -> bool {
        self.acp_config(name).is_some()
    }

    /// Every ACP agent to probe: the built-in ones and the user's own.
    fn acp_specs(&self) -> Vec<probe::AcpSpec> {
        let mut names: Vec<String> = acp::builtin::BUILTIN
            .iter()
            .map(|b| b.name.to_string())
            .collect();
        names.extend(
            self.config
                .agents
                .iter()
                .filter(|(n, a)| a.protocol.as_deref() == Some("acp") && !names.contains(n))
                .map(|(n, _)| n.clone())
                .collect::<Vec<_>>(),
        );
        names
            .into_iter()
            .map(|n| {
                // As it runs; for one that runs as a CLI now, its ACP command (the report says
                // which is which).
                let b = acp::builtin::find(&n);
                let user = self.config.agents.get(&n);
                let cmd = match self.acp_config(&n) {
                    Some(c) => c.command,
                    None => PathBuf::from(self.builtin_cmd(&n).unwrap_or_default()),
                };
                let env = user
                    .map(|a| a.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default();
                probe::AcpSpec {
                    active: self.is_acp(&n),
                    install: b.map_or("set agents.<name>.cmd", |b| b.install).to_string(),
                    name: n,
                    command: cmd,
                    env,
                }
            })
            .collect()
    }

    /// What the probe looks at: the opencode backend the chats use (its warm server) and the
    /// same commands and settings as the other backends.
    pub fn probe_options(&mut self) -> Result<ProbeOptions, String> {
        let oc = self.opencode_config();
        let source = oc
            .attach_url
            .clone()
            .unwrap_or_else(|| oc.command.display().to_string());
        let directory = oc
            .cwd
            .clone()
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("/"));
        let opencode = self.dispatcher("opencode")?.backend().clone();
        Ok(ProbeOptions {
            opencode,
            opencode_source: source,
            directory,
            router: self.router_options(),
            clis: CliKind::ALL
                .iter()
                .map(|k| {
                    let c = self.cli_config(*k);
                    (*k, c.command, c.env)
                })
                .collect(),
            acp: self.acp_specs(),
            search_path: None,
            timeout: Duration::from_secs(60),
        })
    }

    /// Starts a probe in the background unless one runs; its report comes back as
    /// `Event::Probe`.
    pub fn start_probe(&mut self) {
        if self.probing {
            return;
        }
        let opts = match self.probe_options() {
            Ok(o) => o,
            Err(e) => return tracing::warn!("probe not started: {e}"),
        };
        self.probing = true;
        let events = self.events.clone();
        tokio::spawn(async move {
            let report = probe::run(opts).await;
            tracing::info!(
                took_ms = report.took_ms,
                models = report.models().len(),
                "probe done"
            );
            let _ = events.send(Event::Probe(Box::new(report)));
        });
    }

    /// The dispatcher of a backend (`opencode`, `qwen`...), made on first use (the opencode
    /// server itself starts on the first turn).
    fn dispatcher(&mut self, backend: &str) -> Result<Dispatcher, String> {
        if let Some(d) = self.dispatchers.get(backend) {
            return Ok(d.clone());
        }
        if self.shut {
            return Err("boocoder is shutting down".into());
        }
        let (backend_tx, backend_rx) = mpsc::unbounded_channel();
        let (b, default_model): (Arc<dyn AgentBackend>, Option<String>) = if backend == "opencode" {
            let cfg = self.opencode_config();
            (
                Arc::new(RoutedOpencode::new(cfg, self.router_options(), backend_tx)),
                self.config.opencode.model.clone(),
            )
        } else if let Some(cfg) = self.acp_config(backend) {
            let buffers = self.buffers.clone();
            (
                Arc::new(AcpBackend::with_buffers(cfg, backend_tx, buffers)),
                None,
            )
        } else {
            let kind = CliKind::parse(backend).ok_or_else(|| {
                format!(
                    "unknown agent '{backend}' (opencode, opencode:<agent>, qwen, claude, goose, opencode-acp, gemini, codex-acp, or agents.<name> with protocol = 'acp')"
                )
            })?;
            (
                Arc::new(ExternalBackend::new(self.cli_config(kind), backend_tx)),
                None,
            )
        };
        let events = self.events.clone();
        let sink = Sink::new(move |d| {
            let _ = events.send(Event::Agent(d));
        });
        let d = Dispatcher::new(b, backend_rx, sink, default_model);
        d.set_hook(checkpoint_hook(self.events.clone()));
        self.dispatchers.insert(backend.to_string(), d.clone());
        Ok(d)
    }

    /// Starts (or queues) a turn; everything after comes back as events.
    pub fn send(&mut self, turn: Turn) {
        tracing::info!(chat = turn.chat, task = turn.task, dir = %turn.dir.display(), "turn");
        let (backend, sub) = split_agent(&turn.agent);
        let d = match self.dispatcher(backend) {
            Ok(d) => d,
            Err(e) => {
                // Reported like a turn that did not start: an error item and TurnDone.
                let _ = self.events.send(Event::Agent(Dispatched {
                    task: Some(turn.task),
                    event: crate::agent::AgentEvent::TurnDone {
                        chat: turn.chat,
                        outcome: crate::agent::TurnOutcome::Failed(e),
                    },
                }));
                return;
            }
        };
        self.in_flight.insert(turn.chat, backend.to_string());
        d.send(TurnRequest {
            chat: turn.chat,
            task: turn.task,
            directory: turn.dir,
            text: turn.text,
            model: turn.model,
            agent: sub.map(str::to_string),
            binding: turn.binding,
            extras: turn.extras,
        });
    }

    /// The backend that runs `agent`'s turns (made on first use), for calls outside a turn.
    pub fn backend_of(&mut self, agent: &str) -> Option<Arc<dyn AgentBackend>> {
        let (backend, _) = split_agent(agent);
        self.dispatcher(backend).ok().map(|d| d.backend().clone())
    }

    /// The agent's own commands in `dir` (opencode's), listed in the background and sent to
    /// `done`.
    pub fn commands(
        &mut self,
        agent: &str,
        dir: PathBuf,
        done: impl FnOnce(Vec<(String, String)>) + Send + 'static,
    ) {
        let (backend, _) = split_agent(agent);
        let Ok(d) = self.dispatcher(backend) else {
            return;
        };
        tokio::spawn(async move { done(d.backend().commands(dir).await) });
    }

    /// Readies the backend of `agent` for a first prompt in `dir` (opencode: starts the server
    /// and loads the directory), in the background; CLI and ACP agents need nothing ahead.
    pub fn prepare(&mut self, agent: &str, dir: Option<PathBuf>) {
        let (backend, _) = split_agent(agent);
        if backend != "opencode" {
            return;
        }
        let Ok(d) = self.dispatcher(backend) else {
            return;
        };
        tokio::spawn(async move { d.backend().prepare(dir).await });
    }

    /// Warms a spare worktree's directory in the agent's server, if that server is running
    /// (a spare never starts one: it may come as boocoder is about to exit).
    pub fn prepare_spare(&mut self, agent: &str, dir: PathBuf) {
        let (backend, _) = split_agent(agent);
        if self.shut || !self.dispatchers.contains_key(backend) {
            return;
        }
        self.prepare(agent, Some(dir));
    }

    /// A turn of the chat ended: when none of its turns is left, it has no backend in flight.
    pub fn turn_over(&mut self, chat: ChatId) {
        let idle = self
            .in_flight
            .get(&chat)
            .and_then(|b| self.dispatchers.get(b))
            .is_none_or(|d| !d.is_busy(chat));
        if idle {
            self.in_flight.remove(&chat);
        }
    }

    pub fn abort(&mut self, chat: ChatId) {
        let Some(d) = self
            .in_flight
            .get(&chat)
            .and_then(|b| self.dispatchers.get(b))
            .cloned()
        else {
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

    /// Sends the user's answer. The request stays listed until the reply succeeded: a reply
    /// that fails (server down or hung) leaves it pending and answerable, and the turn keeps
    /// waiting for it. The result comes back as `Event::PermissionReply`.
    pub fn reply_permission(&mut self, id: &str, reply: &str) -> Result<(), String> {
        let reply = PermissionReply::parse(reply).ok_or_else(|| {
            format!("unknown permission reply '{reply}' (once, always or reject)")
        })?;
        // The backend of the chat that asked (opencode, or an ACP agent).
        let chat = self.permissions.get(id).map(|p| p.chat);
        let backend = chat
            .and_then(|c| self.in_flight.get(&c).cloned())
            .unwrap_or_else(|| "opencode".to_string());
        let d = self.dispatchers.get(&backend).cloned();
        let (Some(d), Some(p)) = (d, self.permissions.get_mut(id)) else {
            return Err(format!("no pending permission request {id}"));
        };
        if p.replying {
            return Err(format!("permission request {id} is being answered"));
        }
        p.replying = true;
        let id = id.to_string();
        let events = self.events.clone();
        tokio::spawn(async move {
            let result = d
                .backend()
                .reply_permission(&id, reply)
                .await
                .map_err(|e| e.to_string());
            let _ = events.send(Event::PermissionReply { id, result });
        });
        Ok(())
    }

    /// The end of a reply: gone when it was delivered; else pending again. Returns the
    /// request when it stays pending.
    pub fn permission_reply_done(
        &mut self,
        id: &str,
        result: &Result<(), String>,
    ) -> Option<PermissionInfo> {
        if result.is_ok() {
            self.permissions.remove(id);
            return None;
        }
        let p = self.permissions.get_mut(id)?;
        p.replying = false;
        Some(p.clone())
    }

    /// A chat's turn ended: its permission requests ended with it.
    pub fn forget_chat_permissions(&mut self, chat: ChatId) {
        self.permissions.retain(|_, p| p.chat != chat);
    }

    /// Forgets a chat (its session was deleted): queued prompts are dropped, its stream ends.
    pub fn close_chat(&mut self, chat: ChatId) {
        self.permissions.retain(|_, p| p.chat != chat);
        self.in_flight.remove(&chat);
        // Every backend the chat may have used (its opencode session, a running CLI).
        for d in self.dispatchers.values() {
            let d = d.clone();
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

    /// Ends the agent processes (the opencode server and running CLIs, with their process
    /// groups).
    pub async fn shutdown(&mut self) {
        self.shut = true;
        for (name, d) in self.dispatchers.drain() {
            let backend = d.backend().clone();
            if tokio::time::timeout(Duration::from_secs(5), backend.shutdown())
                .await
                .is_err()
            {
                tracing::warn!("agent backend {name} did not stop within 5 s");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agents_with(config: serde_json::Value) -> Agents {
        let (tx, _rx) = mpsc::unbounded_channel();
        let mut a = Agents::new(tx);
        a.configure(&Config::decode(Some(&config)));
        a
    }

    #[test]
    fn which_agents_run_over_acp_and_how() {
        let a = agents_with(json!({
            "opencode": {"cmd": "/opt/opencode"},
            "agents": {
                "qwen": {"args": ["--auth-type", "openai"], "env": {"K": "v"}},
                "goose": {"watchdog_seconds": 0},
                "claude": {},
                "mine": {"protocol": "acp", "cmd": "/bin/mine", "args": ["--stdio"]},
                "nocmd": {"protocol": "acp"},
            }
        }));
        let q = a.acp_config("qwen").expect("qwen is ACP by default");
        assert_eq!(q.args, ["--acp", "--auth-type", "openai"]);
        assert_eq!(q.env, [("K".to_string(), "v".to_string())]);
        assert_eq!(q.model_flag.as_deref(), Some("-m"));
        assert_eq!(q.watchdog, Some(Duration::from_secs(600)));
        let g = a.acp_config("goose").expect("goose is ACP only");
        assert_eq!((g.args, g.watchdog), (vec!["acp".to_string()], None));
        assert!(a.acp_config("claude").is_none(), "claude stays a CLI");
        let oc = a.acp_config("opencode-acp").expect("built in");
        assert_eq!(
            (oc.command, oc.args),
            (PathBuf::from("/opt/opencode"), vec!["acp".to_string()])
        );
        let m = a.acp_config("mine").expect("an ACP agent of one's own");
        assert_eq!(
            (m.command, m.args),
            (PathBuf::from("/bin/mine"), vec!["--stdio".to_string()])
        );
        assert!(a.acp_config("nocmd").is_none(), "nothing to run");
        assert!(a.is_acp("gemini") && !a.is_acp("opencode"));
        let cli = agents_with(json!({"agents": {"qwen": {"protocol": "stream-json"}}}));
        assert!(cli.acp_config("qwen").is_none(), "qwen's CLI on request");
    }
}
