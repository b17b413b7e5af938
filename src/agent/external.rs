//! CLI agents (claude, and qwen on request) behind the same [`AgentBackend`] trait as opencode.
//! goose has no CLI path: it runs over ACP (`goose acp`), which made its JSON parser redundant.
//!
//! One process per turn, in the session's worktree and in its own process group, run in the
//! CLI's non-interactive JSON-lines mode. The prompt goes in on stdin (never through a shell,
//! never as an argument that could be read as an option). Its output is translated into the
//! same transcript changes as opencode's ([`stream`]). Abort signals the whole process group.
//! A missing CLI, a non-zero exit or unreadable output ends the turn with one message that
//! carries the tail of the CLI's stderr. The next turn resumes the CLI's own session
//! (`--resume`); when that session is gone, the turn starts a new one and says so.

mod stream;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use serde_json::json;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

pub use self::stream::{LineParser, Out, StreamJson};
use crate::agent::{
    AgentBackend, AgentError, AgentEvent, PendingPermission, PermissionReply, TurnOutcome,
    TurnRequest,
};
use crate::model::{ChatId, ItemChange, ItemKind};

/// The CLI agents boo knows how to drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CliKind {
    Qwen,
    Claude,
}

impl CliKind {
    pub const ALL: [CliKind; 2] = [CliKind::Qwen, CliKind::Claude];

    pub fn name(self) -> &'static str {
        match self {
            CliKind::Qwen => "qwen",
            CliKind::Claude => "claude",
        }
    }

    pub fn parse(s: &str) -> Option<CliKind> {
        CliKind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// How to install it, for the "not found" message.
    pub fn install_hint(self) -> &'static str {
        match self {
            CliKind::Qwen => "npm install -g @qwen-code/qwen-code",
            CliKind::Claude => "npm install -g @anthropic-ai/claude-code",
        }
    }

    /// Arguments that are always given (output format and the like).
    fn base_args(self) -> Vec<String> {
        let v: &[&str] = match self {
            CliKind::Qwen => &["-o", "stream-json", "--include-partial-messages"],
            CliKind::Claude => &[
                "-p",
                "--output-format",
                "stream-json",
                "--verbose",
                "--include-partial-messages",
            ],
        };
        v.iter().map(|s| s.to_string()).collect()
    }

    /// Arguments added unless the user configured their own (`agents.<name>.args`): how much
    /// the agent may do without asking (there is nobody to ask in a headless run). Edits are
    /// allowed (they land in the session's worktree and are reviewed); other tools are not.
    pub fn default_args(self) -> Vec<String> {
        let v: &[&str] = match self {
            CliKind::Qwen => &["--approval-mode", "auto-edit"],
            CliKind::Claude => &["--permission-mode", "acceptEdits"],
        };
        v.iter().map(|s| s.to_string()).collect()
    }

    /// The full argument list of one turn.
    pub fn args(self, extra: &[String], model: Option<&str>, resume: Option<&str>) -> Vec<String> {
        let mut a = self.base_args();
        a.extend(extra.iter().cloned());
        if let Some(m) = model.map(str::trim).filter(|m| !m.is_empty()) {
            a.push(
                if self == CliKind::Qwen {
                    "-m"
                } else {
                    "--model"
                }
                .to_string(),
            );
            a.push(m.to_string());
        }
        // The CLI reports its session id; the next turn resumes it.
        if let Some(id) = resume {
            a.extend(["--resume".to_string(), id.to_string()]);
        }
        a
    }

    fn parser(self, prefix: String) -> Box<dyn LineParser> {
        match self {
            // qwen counts cached tokens inside `input_tokens`; Claude does not.
            CliKind::Qwen => Box::new(StreamJson::new(prefix).input_includes_cache()),
            CliKind::Claude => Box::new(StreamJson::new(prefix)),
        }
    }
}

/// How to run one CLI.
#[derive(Clone, Debug)]
pub struct CliConfig {
    pub kind: CliKind,
    /// The command (the CLI's name on `PATH` by default).
    pub command: PathBuf,
    /// Replaces [`CliKind::default_args`] when set.
    pub args: Option<Vec<String>>,
    /// Extra environment (e.g. `OPENAI_BASE_URL` for qwen).
    pub env: Vec<(String, String)>,
    /// Grace between SIGTERM and SIGKILL on abort.
    pub kill_grace: Duration,
    /// Stop a turn whose CLI printed nothing for this long (default 10 min: tools such as a
    /// build may be silent for a while).
    pub watchdog: Duration,
}

impl CliConfig {
    pub fn new(kind: CliKind) -> CliConfig {
        CliConfig {
            kind,
            command: PathBuf::from(kind.name()),
            args: None,
            env: Vec::new(),
            kill_grace: Duration::from_secs(2),
            watchdog: Duration::from_secs(600),
        }
    }
}

struct Running {
    pgid: i32,
    aborted: Arc<AtomicBool>,
}

struct Inner {
    cfg: CliConfig,
    events: mpsc::UnboundedSender<AgentEvent>,
    running: Mutex<HashMap<ChatId, Running>>,
    shut: AtomicBool,
}

/// A CLI agent as an [`AgentBackend`]. Cheap to clone.
#[derive(Clone)]
pub struct ExternalBackend {
    inner: Arc<Inner>,
}

/// Lines of stderr kept for error messages.
const STDERR_TAIL: usize = 12;

use super::process::signal_group;

fn unique() -> u64 {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    t * 1000 + N.fetch_add(1, Ordering::Relaxed) % 1000
}

/// One line (without its end), also when it is not UTF-8; `None` at the end or on a read error.
async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> Option<String> {
    buf.clear();
    match r.read_until(b'\n', buf).await {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(String::from_utf8_lossy(buf).trim_end().to_string()),
    }
}

/// How a finished process is judged.
struct Ending {
    status: Option<i32>,
    signaled: bool,
    aborted: bool,
    /// Stopped by the watchdog after this many seconds without output.
    stalled: Option<u64>,
    reported: Option<Option<String>>,
    parsed_lines: usize,
    bad_line: Option<String>,
    stderr: Vec<String>,
}

impl Ending {
    fn outcome(&self, name: &str) -> TurnOutcome {
        if self.aborted {
            return TurnOutcome::Aborted;
        }
        let tail = if self.stderr.is_empty() {
            String::new()
        } else {
            format!("; stderr: {}", self.stderr.join(" | "))
        };
        if let Some(secs) = self.stalled {
            return TurnOutcome::Failed(format!(
                "{name} printed nothing for {secs} s and was stopped (agents.{name}.watchdog_seconds){tail}"
            ));
        }
        if let Some(Some(msg)) = &self.reported {
            return TurnOutcome::Failed(format!("{name}: {msg}"));
        }
        if self.status != Some(0) {
            let how = match self.status {
                Some(c) => format!("exited with status {c}"),
                None if self.signaled => "was killed by a signal".to_string(),
                None => "ended abnormally".to_string(),
            };
            return TurnOutcome::Failed(format!("{name} {how}{tail}"));
        }
        if self.parsed_lines == 0 {
            let what = match &self.bad_line {
                Some(l) => format!(
                    "output boo cannot read: '{}'",
                    l.chars().take(120).collect::<String>()
                ),
                None => "no output".to_string(),
            };
            return TurnOutcome::Failed(format!("{name} gave {what}{tail}"));
        }
        TurnOutcome::Done
    }
}

impl ExternalBackend {
    pub fn new(cfg: CliConfig, events: mpsc::UnboundedSender<AgentEvent>) -> ExternalBackend {
        ExternalBackend {
            inner: Arc::new(Inner {
                cfg,
                events,
                running: Mutex::new(HashMap::new()),
                shut: AtomicBool::new(false),
            }),
        }
    }

    pub fn kind(&self) -> CliKind {
        self.inner.cfg.kind
    }

    /// The process group of the chat's running turn (its CLI's pid), if any.
    pub fn process_group(&self, chat: ChatId) -> Option<i32> {
        self.inner.running.lock().get(&chat).map(|r| r.pgid)
    }

    fn send(&self, e: AgentEvent) {
        let _ = self.inner.events.send(e);
    }

    fn item(&self, chat: ChatId, kind: ItemKind, content: String, meta: serde_json::Value) {
        self.send(AgentEvent::Item {
            chat,
            change: ItemChange::Upsert {
                part_id: format!("{}-{}", self.kind().name(), unique()),
                kind,
                content,
                meta,
            },
        });
    }

    fn spawn(
        &self,
        req: &TurnRequest,
        resume: Option<&str>,
    ) -> Result<tokio::process::Child, AgentError> {
        let cfg = &self.inner.cfg;
        let kind = cfg.kind;
        let extra = cfg.args.clone().unwrap_or_else(|| kind.default_args());
        let args = kind.args(&extra, req.model.as_deref(), resume);
        let mut cmd = tokio::process::Command::new(&cfg.command);
        cmd.args(&args)
            .current_dir(&req.directory)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in &cfg.env {
            cmd.env(k, v);
        }
        super::process::own(&mut cmd);
        // Arguments and env may carry keys and the prompt: only their count is logged.
        tracing::info!(cli = kind.name(), chat = req.chat, args = args.len(), dir = %req.directory.display(), "cli turn");
        match cmd.spawn() {
            Ok(c) => Ok(c),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(AgentError::Cli(format!(
                "{} not found ('{}'): install it ({}) or set agents.{}.cmd",
                kind.name(),
                cfg.command.display(),
                kind.install_hint(),
                kind.name()
            ))),
            Err(e) => Err(AgentError::Cli(format!(
                "{} could not be started ('{}'): {e}",
                kind.name(),
                cfg.command.display()
            ))),
        }
    }

    /// Runs one process to its end; returns how it ended.
    async fn run(
        &self,
        mut child: tokio::process::Child,
        req: &TurnRequest,
        aborted: Arc<AtomicBool>,
        resuming: bool,
    ) -> Ending {
        let chat = req.chat;
        let kind = self.kind();
        if let Some(mut stdin) = child.stdin.take() {
            let text = req.text_with_attachments();
            tokio::spawn(async move {
                let _ = stdin.write_all(text.as_bytes()).await;
                let _ = stdin.shutdown().await;
            });
        }
        let stderr_tail = super::process::StderrTail::default();
        let err_task = child
            .stderr
            .take()
            .map(|err| stderr_tail.collect(err, STDERR_TAIL, kind.name()));
        let mut parser = kind.parser(format!("{}-{}", kind.name(), unique()));
        let mut ending = Ending {
            status: None,
            signaled: false,
            aborted: false,
            stalled: None,
            reported: None,
            parsed_lines: 0,
            bad_line: None,
            stderr: Vec::new(),
        };
        let mut session: Option<String> = None;
        let pgid = child.id().map_or(0, |p| p as i32);
        let watchdog = self.inner.cfg.watchdog;
        if let Some(out) = child.stdout.take() {
            let mut r = BufReader::new(out);
            let mut buf = Vec::new();
            let mut outs = Vec::new();
            loop {
                let line = match tokio::time::timeout(watchdog, read_line(&mut r, &mut buf)).await {
                    Ok(Some(l)) => l,
                    Ok(None) => break,
                    Err(_) => {
                        tracing::warn!(
                            chat,
                            cli = kind.name(),
                            "no output for {watchdog:?}; stopping it"
                        );
                        ending.stalled = Some(watchdog.as_secs());
                        signal_group(pgid, libc::SIGKILL);
                        break;
                    }
                };
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                outs.clear();
                match parser.line(line, &mut outs) {
                    Ok(()) => ending.parsed_lines += 1,
                    Err(e) => {
                        tracing::debug!(target: "cli", "unreadable line ({e}): {line}");
                        if ending.bad_line.is_none() {
                            ending.bad_line = Some(line.to_string());
                        }
                        continue;
                    }
                }
                for o in outs.drain(..) {
                    match o {
                        Out::Change(change) => self.send(AgentEvent::Item { chat, change }),
                        Out::Session(id) => session = Some(id),
                        Out::Finished(r) => ending.reported = Some(r),
                    }
                }
            }
        }
        match child.wait().await {
            Ok(st) => {
                use std::os::unix::process::ExitStatusExt;
                ending.status = st.code();
                ending.signaled = st.signal().is_some();
            }
            Err(e) => tracing::warn!("waiting for {}: {e}", kind.name()),
        }
        // The turn is over: what the CLI left running in its group (a `sleep &`, a dev server)
        // goes with it.
        signal_group(pgid, libc::SIGKILL);
        if let Some(t) = err_task {
            let _ = tokio::time::timeout(Duration::from_secs(1), t).await;
        }
        ending.stderr = stderr_tail.lines();
        ending.aborted = aborted.load(Ordering::SeqCst);
        // A session worth resuming next time: bind it (also when this turn failed later on).
        if let Some(id) = session {
            let same = resuming && req.binding.as_ref().is_some_and(|b| b.external_id == id);
            if !same && ending.parsed_lines > 0 {
                self.send(AgentEvent::SessionBound {
                    chat,
                    agent: kind.name().to_string(),
                    external_id: id,
                    config_hash: kind.name().to_string(),
                });
            }
        }
        ending
    }

    async fn turn(self, req: TurnRequest, child: tokio::process::Child, aborted: Arc<AtomicBool>) {
        let chat = req.chat;
        let kind = self.kind();
        let resume = req.binding.as_ref().map(|b| b.external_id.clone());
        let mut ending = self
            .run(child, &req, aborted.clone(), resume.is_some())
            .await;
        // The CLI's session is gone (its history was deleted, another machine...): start anew.
        if resume.is_some()
            && !ending.aborted
            && ending.parsed_lines == 0
            && ending.status != Some(0)
        {
            tracing::info!(
                chat,
                cli = kind.name(),
                "resume failed; new session: {:?}",
                ending.stderr
            );
            self.item(
                chat,
                ItemKind::Info,
                format!(
                    "{}: its previous session could not be resumed; this turn starts a new one without the earlier context",
                    kind.name()
                ),
                json!({}),
            );
            let fresh = TurnRequest {
                binding: None,
                ..req.clone()
            };
            match self.spawn(&fresh, None) {
                Ok(child) => {
                    if let Some(pid) = child.id() {
                        if let Some(r) = self.inner.running.lock().get_mut(&chat) {
                            r.pgid = pid as i32;
                        }
                    }
                    ending = self.run(child, &fresh, aborted, false).await;
                }
                Err(e) => {
                    self.inner.running.lock().remove(&chat);
                    self.send(AgentEvent::TurnDone {
                        chat,
                        outcome: TurnOutcome::Failed(e.to_string()),
                    });
                    return;
                }
            }
        }
        self.inner.running.lock().remove(&chat);
        let outcome = ending.outcome(kind.name());
        if let TurnOutcome::Failed(m) = &outcome {
            tracing::warn!(chat, cli = kind.name(), "turn failed: {m}");
        }
        self.send(AgentEvent::TurnDone { chat, outcome });
    }
}

#[async_trait]
impl AgentBackend for ExternalBackend {
    fn name(&self) -> &str {
        self.kind().name()
    }

    async fn start_turn(&self, req: TurnRequest) -> Result<(), AgentError> {
        if self.inner.shut.load(Ordering::SeqCst) {
            return Err(AgentError::Shutdown);
        }
        if self.inner.running.lock().contains_key(&req.chat) {
            return Err(AgentError::Busy(req.chat));
        }
        let resume = req.binding.as_ref().map(|b| b.external_id.as_str());
        let child = self.spawn(&req, resume)?;
        let aborted = Arc::new(AtomicBool::new(false));
        self.inner.running.lock().insert(
            req.chat,
            Running {
                pgid: child.id().map_or(0, |p| p as i32),
                aborted: aborted.clone(),
            },
        );
        self.send(AgentEvent::TurnStarted { chat: req.chat });
        tokio::spawn(self.clone().turn(req, child, aborted));
        Ok(())
    }

    async fn abort(&self, chat: ChatId) -> Result<(), AgentError> {
        let pgid = {
            let running = self.inner.running.lock();
            let r = running.get(&chat).ok_or(AgentError::NotRunning(chat))?;
            r.aborted.store(true, Ordering::SeqCst);
            r.pgid
        };
        signal_group(pgid, libc::SIGTERM);
        let grace = self.inner.cfg.kill_grace;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            // Whatever is left of the group (the CLI ignored SIGTERM, or tools it started).
            signal_group(pgid, libc::SIGKILL);
        });
        Ok(())
    }

    async fn reply_permission(&self, id: &str, _reply: PermissionReply) -> Result<(), AgentError> {
        Err(AgentError::UnknownPermission(id.to_string()))
    }

    async fn pending_permissions(&self) -> Vec<PendingPermission> {
        Vec::new()
    }

    async fn close_chat(&self, chat: ChatId) {
        let _ = self.abort(chat).await;
    }

    async fn shutdown(&self) {
        self.inner.shut.store(true, Ordering::SeqCst);
        let groups: Vec<i32> = self
            .inner
            .running
            .lock()
            .values()
            .map(|r| {
                r.aborted.store(true, Ordering::SeqCst);
                r.pgid
            })
            .collect();
        for g in groups {
            signal_group(g, libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_of_a_turn() {
        let a = CliKind::Qwen.args(&[], Some("m1"), Some("s1"));
        assert_eq!(
            a,
            [
                "-o",
                "stream-json",
                "--include-partial-messages",
                "-m",
                "m1",
                "--resume",
                "s1"
            ]
        );
        let a = CliKind::Claude.args(&["--x".into()], None, None);
        assert_eq!(a[0], "-p");
        assert!(a.contains(&"--x".to_string()));
    }

    #[test]
    fn endings_become_one_clear_message() {
        let base = Ending {
            status: Some(0),
            signaled: false,
            aborted: false,
            stalled: None,
            reported: Some(None),
            parsed_lines: 3,
            bad_line: None,
            stderr: vec![],
        };
        assert_eq!(base.outcome("qwen"), TurnOutcome::Done);
        let e = Ending {
            status: Some(1),
            reported: None,
            parsed_lines: 0,
            stderr: vec!["auth failed".into()],
            ..base
        };
        assert_eq!(
            e.outcome("qwen"),
            TurnOutcome::Failed("qwen exited with status 1; stderr: auth failed".into())
        );
        let e = Ending {
            status: Some(0),
            bad_line: Some("hello".into()),
            ..e
        };
        assert!(
            matches!(e.outcome("qwen"), TurnOutcome::Failed(m) if m.contains("cannot read: 'hello'") && m.contains("auth failed"))
        );
        let e = Ending { aborted: true, ..e };
        assert_eq!(e.outcome("qwen"), TurnOutcome::Aborted);
    }
}
