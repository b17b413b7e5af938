//! One chat's agent process: started in the session's worktree in its own group, its requests
//! served, `initialize` answered (or the failure in one line with the end of its stderr).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{json, Value};

use super::options::SessionOptions;
use super::rpc::Conn;
use super::translate::Translator;
use super::{terminal, AcpBackend};
use crate::agent::process::{self, Group};
use crate::agent::{AgentError, TurnRequest};
use crate::model::ChatId;

/// Lines of stderr kept for error messages.
pub(super) const STDERR_TAIL: usize = 8;

/// One running agent process and its session, for one chat.
pub(super) struct Agent {
    pub(super) chat: ChatId,
    pub(super) conn: Conn,
    pub(super) group: Group,
    pub(super) session: Mutex<String>,
    pub(super) directory: PathBuf,
    /// The model it was started with.
    pub(super) model: Option<String>,
    pub(super) load_session: AtomicBool,
    /// It can take up a session without replaying it (`session/resume`).
    pub(super) resume_session: AtomicBool,
    pub(super) stderr: process::StderrTail,
    pub(super) terminals: terminal::Terminals,
    pub(super) translator: Mutex<Translator>,
    /// Updates are dropped while `session/load` replays the history we already have.
    pub(super) replaying: AtomicBool,
    pub(super) aborted: AtomicBool,
    /// When the agent last sent anything, for the watchdog.
    pub(super) heard: Mutex<Instant>,
    /// Requests of the agent being answered (a permission, a terminal it waits for): the
    /// agent waits on us then, it is not silent.
    pub(super) serving: AtomicUsize,
    /// The watchdog stopped the turn.
    pub(super) stalled: AtomicBool,
    /// The session's modes and models.
    pub(super) options: Mutex<SessionOptions>,
    /// What the app was last told of them.
    pub(super) options_sent: Mutex<Option<crate::agent::AgentOptions>>,
}

pub(super) fn tail_of(t: &process::StderrTail) -> String {
    let lines = t.lines();
    if lines.is_empty() {
        String::new()
    } else {
        format!("; stderr: {}", lines.join(" | "))
    }
}

impl AcpBackend {
    /// Starts the agent process, serves its requests and initializes it.
    pub(super) async fn spawn(&self, req: &TurnRequest) -> Result<Arc<Agent>, AgentError> {
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
            resume_session: AtomicBool::new(false),
            stderr: stderr.clone(),
            terminals: terminal::Terminals::default(),
            translator: Mutex::new(Translator::new(format!(
                "acp-{}-{}",
                req.chat,
                self.unique()
            ))),
            replaying: AtomicBool::new(false),
            aborted: AtomicBool::new(false),
            heard: Mutex::new(Instant::now()),
            serving: AtomicUsize::new(0),
            stalled: AtomicBool::new(false),
            options: Mutex::new(SessionOptions::default()),
            options_sent: Mutex::new(None),
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
        let resume = caps
            .pointer("/agentCapabilities/sessionCapabilities/resume")
            .is_some_and(|r| !r.is_null());
        agent.resume_session.store(resume, Ordering::SeqCst);
        Ok(agent)
    }
}
