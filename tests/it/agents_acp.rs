//! ACP agents through the `AgentBackend` trait: the real `opencode acp` and `qwen --acp` against
//! the scripted model (streamed text and thoughts, permissions once and reject, a write that
//! lands in the worktree only, reads, cancel that leaves no agent group, restoring the session
//! in a new process), and a tiny script agent for the client's own cases (terminals, malformed
//! JSON-RPC, an agent that exits mid-turn, one that never answers `initialize`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::agents::*;
use boo_testkit::fake_model::FakeModel;
use boo_testkit::opencode::{OpencodeEnv, SandboxOptions};
use boocoder::agent::acp::client::Buffers;
use boocoder::agent::acp::{AcpBackend, AcpConfig};
use boocoder::agent::{
    AgentBackend, AgentError, AgentEvent, PermissionReply, SessionBinding, TurnOutcome, TurnRequest,
};
use boocoder::model::transcript::Transcript;
use boocoder::model::usage::Usage;
use boocoder::model::{ItemChange, ItemKind};
use serde_json::{json, Value};
use tokio::sync::mpsc;

type Rx = mpsc::UnboundedReceiver<AgentEvent>;

fn request(chat: i64, dir: &Path, text: &str, binding: Option<SessionBinding>) -> TurnRequest {
    TurnRequest {
        chat,
        task: 0,
        directory: dir.to_path_buf(),
        text: text.to_string(),
        model: None,
        agent: None,
        binding,
        extras: Default::default(),
    }
}

/// The transcript the events build: (kind, final content, meta) per item, usage steps aside.
fn transcript(events: &[AgentEvent]) -> Vec<(ItemKind, String, Value)> {
    let mut t = Transcript::default();
    for e in events {
        if let AgentEvent::Item { change, .. } = e {
            if let ItemChange::Upsert { meta, .. } = change {
                if Usage::of_step(meta).is_some() {
                    continue;
                }
            }
            t.apply(change.clone());
        }
    }
    t.items()
        .map(|i| (i.kind, i.content.clone(), i.meta.clone()))
        .collect()
}

fn done(e: &AgentEvent) -> bool {
    matches!(e, AgentEvent::TurnDone { .. })
}

fn outcome(events: &[AgentEvent]) -> TurnOutcome {
    events
        .iter()
        .find_map(|e| match e {
            AgentEvent::TurnDone { outcome, .. } => Some(outcome.clone()),
            _ => None,
        })
        .expect("a TurnDone")
}

fn tools(events: &[AgentEvent]) -> Vec<Value> {
    transcript(events)
        .into_iter()
        .filter(|(k, _, _)| *k == ItemKind::Tool)
        .map(|(_, _, m)| m)
        .collect()
}

async fn group_gone(pgid: i32) -> bool {
    let t0 = Instant::now();
    loop {
        // SAFETY: signal 0 only checks whether the group exists.
        if unsafe { libc::kill(-pgid, 0) } != 0 {
            return true;
        }
        if t0.elapsed() > Duration::from_secs(10) {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A turn to its end: its events.
async fn turn(b: &AcpBackend, rx: &mut Rx, req: TurnRequest) -> Vec<AgentEvent> {
    b.start_turn(req).await.expect("the turn starts");
    until(rx, "turn done", done).await
}

/// Answers every permission request of a turn with `reply`, until the turn ends.
async fn turn_answering(
    b: &AcpBackend,
    rx: &mut Rx,
    req: TurnRequest,
    reply: PermissionReply,
) -> Vec<AgentEvent> {
    b.start_turn(req).await.expect("the turn starts");
    let mut all = Vec::new();
    loop {
        let evs = until(rx, "a permission or the end", |e| {
            done(e) || matches!(e, AgentEvent::PermissionAsked { .. })
        })
        .await;
        let last = evs.last().cloned();
        all.extend(evs);
        match last {
            Some(AgentEvent::PermissionAsked { request, .. }) => {
                assert_eq!(b.pending_permissions().await.len(), 1);
                b.reply_permission(&request.id, reply)
                    .await
                    .expect("reply delivered");
            }
            _ => return all,
        }
    }
}

struct Agent {
    name: &'static str,
    backend: AcpBackend,
    rx: Rx,
    dir: PathBuf,
    cfg: AcpConfig,
    model: FakeModel,
    _env: Option<OpencodeEnv>,
    _tmp: tempfile::TempDir,
}

fn opencode_acp() -> Agent {
    let model = FakeModel::start();
    let env = OpencodeEnv::new(&model, &SandboxOptions::default());
    let mut cfg = AcpConfig::new(
        "opencode-acp",
        boo_testkit::tools::opencode(),
        vec!["acp".into()],
    );
    cfg.env = env.vars().to_vec();
    let (tx, rx) = mpsc::unbounded_channel();
    Agent {
        name: "opencode-acp",
        backend: AcpBackend::new(cfg.clone(), tx),
        rx,
        dir: env.project_dir().to_path_buf(),
        cfg,
        model,
        _env: Some(env),
        _tmp: tempfile::tempdir().expect("tmp"),
    }
}

fn qwen_acp_with(buffers: Option<Arc<dyn Buffers>>) -> Agent {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = project(tmp.path());
    let model = FakeModel::start();
    // Not `--bare`: that leaves out qwen's file-writing tools.
    let args = ["--acp", "--auth-type", "openai"]
        .map(String::from)
        .to_vec();
    let mut cfg = AcpConfig::new("qwen", qwen(), args);
    cfg.env = qwen_env(tmp.path(), &model.base_url());
    let (tx, rx) = mpsc::unbounded_channel();
    Agent {
        name: "qwen",
        backend: AcpBackend::with_buffers(cfg.clone(), tx, buffers),
        rx,
        dir,
        cfg,
        model,
        _env: None,
        _tmp: tmp,
    }
}

fn qwen_acp() -> Agent {
    qwen_acp_with(None)
}

/// Streamed thoughts and text, usage, the session bound, the process reused for a second turn.
async fn streams_and_reuses(mut a: Agent) {
    let t0 = Instant::now();
    let evs = turn(
        &a.backend,
        &mut a.rx,
        request(1, &a.dir, "hello there", None),
    )
    .await;
    let first = t0.elapsed();
    assert!(
        matches!(
            evs[0],
            AgentEvent::TurnStarted { chat: 1 } | AgentEvent::SessionBound { .. }
        ),
        "{evs:#?}"
    );
    assert_eq!(outcome(&evs), TurnOutcome::Done, "{evs:#?}");
    let items = transcript(&evs);
    let answer = items
        .iter()
        .find(|(k, c, _)| *k == ItemKind::Text && c.starts_with("Echo:"))
        .unwrap_or_else(|| panic!("an answer: {items:#?}"));
    assert!(answer.1.trim_end().ends_with("hello there"), "{answer:?}");
    assert!(
        items
            .iter()
            .any(|(k, c, _)| *k == ItemKind::Reasoning && c.starts_with("Thinking about:")),
        "{items:#?}"
    );
    let deltas = evs
        .iter()
        .filter(|e| {
            matches!(
                e,
                AgentEvent::Item {
                    change: ItemChange::Append { .. },
                    ..
                }
            )
        })
        .count();
    assert!(deltas >= 2, "streamed deltas: {deltas}");
    let steps: Vec<Usage> = evs
        .iter()
        .filter_map(|e| match e {
            AgentEvent::Item {
                change: ItemChange::Upsert { meta, .. },
                ..
            } => Usage::of_step(meta),
            _ => None,
        })
        .collect();
    assert!(
        !steps.is_empty() && steps[0].tokens_out() > 0,
        "usage reported: {steps:?}"
    );
    // `usage_update` gives the steps the context window (opencode's config names the fake
    // model's; qwen tells it when it knows the window).
    let mut whole = Transcript::default();
    for e in &evs {
        if let AgentEvent::Item { change, .. } = e {
            whole.apply(change.clone());
        }
    }
    let total = Usage::of_transcript(&whole);
    eprintln!("{}: usage {total:?}", a.name);
    if a.name == "opencode-acp" {
        assert_eq!(
            total.context_limit,
            boo_testkit::opencode::CONTEXT_LIMIT,
            "{total:?}"
        );
        assert!(total.fill().is_some() && total.context > 0, "{total:?}");
    }
    assert!(
        evs.iter()
            .any(|e| matches!(e, AgentEvent::SessionBound { agent, .. } if agent == a.name)),
        "{evs:#?}"
    );
    let pgid = a
        .backend
        .process_group(1)
        .expect("the agent stays for the next turn");
    let t1 = Instant::now();
    let evs = turn(
        &a.backend,
        &mut a.rx,
        request(1, &a.dir, "second question", None),
    )
    .await;
    assert_eq!(outcome(&evs), TurnOutcome::Done, "{evs:#?}");
    // Nothing of the first turn came after its end (updates are handled before the answer).
    assert!(
        matches!(evs[0], AgentEvent::TurnStarted { chat: 1 }),
        "{evs:#?}"
    );
    assert_eq!(a.backend.process_group(1), Some(pgid), "same process");
    assert!(transcript(&evs)
        .iter()
        .any(|(_, c, _)| c.contains("Echo:") && c.contains("second question")));
    assert!(a.model.chat_requests().len() >= 2);
    eprintln!(
        "{}: first turn {first:?} (start included), second {:?}",
        a.name,
        t1.elapsed()
    );
    a.backend.shutdown().await;
    assert!(group_gone(pgid).await, "shutdown ends the agent");
}

#[tokio::test]
async fn opencode_acp_streams_thoughts_and_text_and_reuses_its_process() {
    streams_and_reuses(opencode_acp()).await;
}

#[tokio::test]
async fn qwen_acp_streams_thoughts_and_text_and_reuses_its_process() {
    streams_and_reuses(qwen_acp()).await;
}

/// A command that needs permission: once runs it, reject does not.
async fn permission_once_and_reject(mut a: Agent, marker: impl Fn(&str) -> String) {
    let made = a.dir.join("made.txt");
    let evs = turn_answering(
        &a.backend,
        &mut a.rx,
        request(1, &a.dir, &marker("touch made.txt"), None),
        PermissionReply::Once,
    )
    .await;
    assert_eq!(outcome(&evs), TurnOutcome::Done, "{evs:#?}");
    let asked = evs
        .iter()
        .filter(|e| matches!(e, AgentEvent::PermissionAsked { .. }))
        .count();
    assert_eq!(asked, 1, "{evs:#?}");
    assert!(made.exists(), "allowed once: the command ran");
    let items = transcript(&evs);
    assert!(
        items
            .iter()
            .any(|(k, _, m)| *k == ItemKind::Permission && m["status"] == "once"),
        "{items:#?}"
    );
    assert!(a.backend.pending_permissions().await.is_empty());

    let other = a.dir.join("rejected.txt");
    let evs = turn_answering(
        &a.backend,
        &mut a.rx,
        request(1, &a.dir, &marker("touch rejected.txt"), None),
        PermissionReply::Reject,
    )
    .await;
    assert!(
        matches!(outcome(&evs), TurnOutcome::Done | TurnOutcome::Failed(_)),
        "{evs:#?}"
    );
    assert!(
        evs.iter()
            .any(|e| matches!(e, AgentEvent::PermissionReplied { reply, .. } if reply == "reject")),
        "{evs:#?}"
    );
    assert!(!other.exists(), "rejected: the command did not run");
    a.backend.shutdown().await;
}

#[tokio::test]
async fn opencode_acp_permission_once_runs_the_command_and_reject_does_not() {
    permission_once_and_reject(opencode_acp(), |c| format!("[fake:bash {c}]")).await;
}

#[tokio::test]
async fn qwen_acp_permission_once_runs_the_command_and_reject_does_not() {
    permission_once_and_reject(qwen_acp(), |c| {
        format!("[fake:tool run_shell_command {}]", json!({ "command": c }))
    })
    .await;
}

/// An editor with one file open (by name) and edited: the Neovim side is tested end to end.
struct Unsaved(String);

#[async_trait::async_trait]
impl Buffers for Unsaved {
    async fn text(&self, path: &Path) -> Option<String> {
        (path.file_name()? == self.0.as_str()).then(|| "unsaved buffer text\n".to_string())
    }
}

#[tokio::test]
async fn qwen_acp_writes_land_in_the_worktree_only_and_reads_see_the_editor_text() {
    let tmp = tempfile::tempdir().expect("tmp");
    // The editor has `open.txt` open, with edits not saved yet.
    let mut a = qwen_acp_with(Some(Arc::new(Unsaved("open.txt".into()))));
    let target = a.dir.join("src/new.txt");
    let write = |path: &Path, content: &str| {
        format!(
            "[fake:tool write_file {}]",
            json!({"file_path": path.display().to_string(), "content": content})
        )
    };
    let evs = turn(
        &a.backend,
        &mut a.rx,
        request(1, &a.dir, &write(&target, "from the agent"), None),
    )
    .await;
    assert_eq!(outcome(&evs), TurnOutcome::Done, "{evs:#?}");
    assert_eq!(
        std::fs::read_to_string(&target).ok().as_deref(),
        Some("from the agent"),
        "{evs:#?}"
    );
    let t = tools(&evs);
    assert!(
        t.iter().any(|m| m["status"] == "completed"
            && m["output"]
                .as_str()
                .is_some_and(|o| o.contains("+from the agent"))),
        "the diff in the tool block: {t:#?}"
    );
    // In the pending diff: git sees the new file in the worktree.
    let st = std::process::Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=all"])
        .current_dir(&a.dir)
        .output()
        .expect("git status");
    assert!(
        String::from_utf8_lossy(&st.stdout).contains("src/new.txt"),
        "{st:?}"
    );

    // Outside the worktree: refused, nothing written.
    let outside = tmp.path().join("outside.txt");
    // qwen asks before writing outside its folder; even allowed, boo refuses the write.
    let evs = turn_answering(
        &a.backend,
        &mut a.rx,
        request(1, &a.dir, &write(&outside, "escape"), None),
        PermissionReply::Once,
    )
    .await;
    assert!(!outside.exists(), "{evs:#?}");
    let t = tools(&evs);
    assert!(
        t.iter().any(|m| m["status"] == "error"),
        "the write failed visibly: {t:#?}"
    );

    // A read of a file open in the editor returns its unsaved text; without one, the file.
    std::fs::write(a.dir.join("open.txt"), "saved text\n").expect("write");
    let read = |name: &str| {
        format!(
            "[fake:tool read_file {}]",
            json!({"file_path": a.dir.join(name).display().to_string()})
        )
    };
    let evs = turn(
        &a.backend,
        &mut a.rx,
        request(1, &a.dir, &read("open.txt"), None),
    )
    .await;
    let t = tools(&evs);
    assert!(
        t.iter().any(|m| m["output"]
            .as_str()
            .is_some_and(|o| o.contains("unsaved buffer text"))),
        "{t:#?}"
    );
    let evs = turn(
        &a.backend,
        &mut a.rx,
        request(1, &a.dir, &read("README.md"), None),
    )
    .await;
    let t = tools(&evs);
    let disk = std::fs::read_to_string(a.dir.join("README.md")).expect("readme");
    assert!(
        t.iter().any(|m| m["output"]
            .as_str()
            .is_some_and(|o| o.contains(disk.trim()))),
        "{t:#?}"
    );
    a.backend.shutdown().await;
}

/// Abort mid-turn: `Aborted`, and the agent's process group is gone.
async fn cancel_mid_turn(mut a: Agent) {
    a.backend
        .start_turn(request(1, &a.dir, "[fake:long 400 30] go", None))
        .await
        .expect("starts");
    until(&mut a.rx, "streaming", |e| {
        matches!(
            e,
            AgentEvent::Item {
                change: ItemChange::Append { .. },
                ..
            }
        )
    })
    .await;
    let pgid = a.backend.process_group(1).expect("runs");
    let t0 = Instant::now();
    a.backend.abort(1).await.expect("aborts");
    let evs = until(&mut a.rx, "aborted", done).await;
    assert_eq!(outcome(&evs), TurnOutcome::Aborted, "{evs:#?}");
    assert!(group_gone(pgid).await, "the agent's group is gone");
    eprintln!("{}: abort to group gone {:?}", a.name, t0.elapsed());
    assert!(a.backend.process_group(1).is_none());
    // The next turn starts the agent anew.
    let evs = turn(
        &a.backend,
        &mut a.rx,
        request(1, &a.dir, "after abort", None),
    )
    .await;
    assert_eq!(outcome(&evs), TurnOutcome::Done, "{evs:#?}");
    a.backend.shutdown().await;
}

#[tokio::test]
async fn opencode_acp_cancel_mid_turn_leaves_no_agent_group() {
    cancel_mid_turn(opencode_acp()).await;
}

#[tokio::test]
async fn qwen_acp_cancel_mid_turn_leaves_no_agent_group() {
    cancel_mid_turn(qwen_acp()).await;
}

/// After a restart (a new backend, a new process), the bound session is loaded: the model
/// sees the first exchange.
async fn restores_its_session(make: fn() -> Agent) {
    let mut a = make();
    let evs = turn(
        &a.backend,
        &mut a.rx,
        request(1, &a.dir, "remember banana", None),
    )
    .await;
    assert_eq!(outcome(&evs), TurnOutcome::Done, "{evs:#?}");
    let session = evs
        .iter()
        .find_map(|e| match e {
            AgentEvent::SessionBound { external_id, .. } => Some(external_id.clone()),
            _ => None,
        })
        .expect("bound");
    a.backend.shutdown().await;
    // The same environment, a new backend: as after a boocoder restart.
    let (tx, rx) = mpsc::unbounded_channel();
    let b = AcpBackend::new(a.cfg.clone(), tx);
    let mut rx = rx;
    let binding = SessionBinding {
        external_id: session.clone(),
        config_hash: a.name.into(),
    };
    let before = a.model.chat_requests().len();
    let evs = turn(
        &b,
        &mut rx,
        request(1, &a.dir, "what did I say", Some(binding)),
    )
    .await;
    assert_eq!(outcome(&evs), TurnOutcome::Done, "{evs:#?}");
    assert!(
        !evs.iter()
            .any(|e| matches!(e, AgentEvent::SessionBound { .. })),
        "same session: {evs:#?}"
    );
    let items = transcript(&evs);
    assert!(
        !items
            .iter()
            .any(|(_, c, _)| c.contains("remember banana") && !c.contains("what did I say")),
        "the replayed history is not shown again: {items:#?}"
    );
    let reqs = a.model.requests();
    let last = reqs[before..]
        .iter()
        .rev()
        .find(|r| !r.is_title)
        .expect("a model call");
    assert!(
        last.history.iter().any(|m| m.contains("remember banana")),
        "the model saw the first exchange: {last:#?}"
    );
    b.shutdown().await;
}

#[tokio::test]
async fn opencode_acp_restores_its_session_in_a_new_process() {
    restores_its_session(opencode_acp).await;
}

#[tokio::test]
async fn qwen_acp_restores_its_session_in_a_new_process() {
    restores_its_session(qwen_acp).await;
}

fn script_agent(
    mode: &str,
    init_timeout: Duration,
) -> (AcpBackend, Rx, tempfile::TempDir, PathBuf) {
    script_agent_with(mode, |c| c.init_timeout = init_timeout)
}

fn script_agent_with(
    mode: &str,
    set: impl FnOnce(&mut AcpConfig),
) -> (AcpBackend, Rx, tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = project(tmp.path());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/acp/script_agent.py");
    let mut cfg = AcpConfig::new(
        "scripted",
        "python3",
        vec![script.display().to_string(), mode.into()],
    );
    set(&mut cfg);
    let (tx, rx) = mpsc::unbounded_channel();
    (AcpBackend::new(cfg, tx), rx, tmp, dir)
}

/// The error of a turn that did not start, within `limit`.
async fn start_error(b: &AcpBackend, dir: &Path, limit: Duration) -> String {
    let t0 = Instant::now();
    let r = tokio::time::timeout(limit, b.start_turn(request(1, dir, "hi", None)))
        .await
        .expect("no hang");
    let Err(AgentError::Cli(msg)) = r else {
        panic!("a clear error: {r:?}")
    };
    assert!(!msg.contains('\n'), "one line: {msg}");
    eprintln!("start error after {:?}: {msg}", t0.elapsed());
    msg
}

#[tokio::test]
async fn a_silent_agent_is_stopped_by_the_watchdog_but_not_while_it_waits_on_a_terminal() {
    let (b, mut rx, _tmp, dir) = script_agent_with("stalls", |c| {
        c.watchdog = Some(Duration::from_secs(1));
        c.cancel_grace = Duration::from_millis(500);
    });
    let t0 = Instant::now();
    b.start_turn(request(1, &dir, "hi", None))
        .await
        .expect("starts");
    let pgid = b.process_group(1).expect("runs");
    let evs = tokio::time::timeout(Duration::from_secs(20), until(&mut rx, "done", done))
        .await
        .expect("the watchdog ends the turn");
    let took = t0.elapsed();
    let TurnOutcome::Failed(msg) = outcome(&evs) else {
        panic!("{evs:#?}")
    };
    assert!(
        msg.contains(
            "scripted sent nothing for 1 s and was stopped (agents.scripted.watchdog_seconds)"
        ) && msg.contains("waiting for a lock")
            && !msg.contains('\n'),
        "{msg}"
    );
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(8),
        "{took:?}"
    );
    assert!(group_gone(pgid).await, "the deaf agent's group is killed");
    assert!(b.process_group(1).is_none());
    eprintln!("watchdog of 1 s ended the turn after {took:?}");

    // 3 s on a terminal of ours is not silence.
    let (b, mut rx, _tmp, dir) = script_agent_with("slowterm", |c| {
        c.watchdog = Some(Duration::from_secs(1));
    });
    let evs = turn(&b, &mut rx, request(1, &dir, "hi", None)).await;
    assert_eq!(outcome(&evs), TurnOutcome::Done, "{evs:#?}");
    assert!(transcript(&evs).iter().any(|(_, c, _)| c == "slept"));
}

/// Modes and models the session offers, set in the same process before a turn: by
/// `session/set_mode` / `set_model`, or by `set_config_option` where those are all it has.
#[tokio::test]
async fn a_turn_sets_the_chosen_mode_and_model_in_the_same_session() {
    for mode in ["options", "cfgoptions"] {
        let (b, mut rx, _tmp, dir) = script_agent(mode, Duration::from_secs(20));
        let evs = turn(&b, &mut rx, request(1, &dir, "hi", None)).await;
        assert!(
            transcript(&evs)
                .iter()
                .any(|(_, c, _)| c == "mode ask model a"),
            "{mode}: {evs:#?}"
        );
        let offered = evs
            .iter()
            .find_map(|e| match e {
                AgentEvent::Options { options, .. } => Some(options.clone()),
                _ => None,
            })
            .expect("the options told");
        assert_eq!(
            (offered.modes, offered.models, offered.mode.as_deref()),
            (
                vec!["scripted:ask".to_string(), "scripted:auto".to_string()],
                vec!["a".to_string(), "b".to_string()],
                Some("ask")
            ),
            "{mode}"
        );
        let pgid = b.process_group(1).expect("kept");
        let mut req = request(1, &dir, "again", None);
        req.agent = Some("auto".into());
        req.model = Some("b".into());
        let evs = turn(&b, &mut rx, req).await;
        assert!(
            transcript(&evs)
                .iter()
                .any(|(_, c, _)| c == "mode auto model b"),
            "{mode}: {evs:#?}"
        );
        assert_eq!(b.process_group(1), Some(pgid), "{mode}: the same process");
        let now = evs.iter().rev().find_map(|e| match e {
            AgentEvent::Options { options, .. } => Some(options.clone()),
            _ => None,
        });
        assert_eq!(
            now.map(|o| (o.mode, o.model)),
            Some((Some("auto".into()), Some("b".into()))),
            "{mode}"
        );
        // No mode or model named: back to those the session started with. An unknown mode:
        // one line.
        let evs = turn(&b, &mut rx, request(1, &dir, "plain", None)).await;
        assert!(
            transcript(&evs)
                .iter()
                .any(|(_, c, _)| c == "mode ask model a"),
            "{mode}: {evs:#?}"
        );
        let mut req = request(1, &dir, "bogus", None);
        req.agent = Some("bogus".into());
        let evs = turn(&b, &mut rx, req).await;
        assert!(
            transcript(&evs)
                .iter()
                .any(|(_, c, _)| c.contains("no mode 'bogus' (modes: scripted:ask, scripted:auto)")),
            "{mode}: {evs:#?}"
        );
        b.shutdown().await;
    }
}

/// A restarted backend and a bound session: `resume` where the agent can (no new session),
/// else one line and a new session bound.
#[tokio::test]
async fn without_load_a_session_is_resumed_or_a_new_one_said_so() {
    for (mode, resumes) in [("resumable", true), ("plain", false)] {
        let (b, mut rx, _tmp, dir) = script_agent(mode, Duration::from_secs(20));
        let evs = turn(&b, &mut rx, request(1, &dir, "hi", None)).await;
        let first = evs
            .iter()
            .find_map(|e| match e {
                AgentEvent::SessionBound { external_id, .. } => Some(external_id.clone()),
                _ => None,
            })
            .expect("bound");
        b.shutdown().await;
        let (b, mut rx, _tmp2, _) = script_agent(mode, Duration::from_secs(20));
        let binding = SessionBinding {
            external_id: first.clone(),
            config_hash: "scripted".into(),
        };
        let evs = turn(&b, &mut rx, request(1, &dir, "again", Some(binding))).await;
        assert_eq!(outcome(&evs), TurnOutcome::Done, "{evs:#?}");
        let items = transcript(&evs);
        let bound = evs
            .iter()
            .any(|e| matches!(e, AgentEvent::SessionBound { .. }));
        let said = items
            .iter()
            .any(|(_, c, _)| c.contains("cannot load or resume its earlier session"));
        let same = items
            .iter()
            .any(|(_, c, _)| c == &format!("in session {first}"));
        assert_eq!(
            (same, bound, said),
            (resumes, !resumes, !resumes),
            "{mode}: {items:#?}"
        );
        b.shutdown().await;
    }
}

#[tokio::test]
async fn an_agent_that_never_answers_initialize_gives_one_line_with_its_stderr() {
    let (b, _rx, _tmp, dir) = script_agent("silent", Duration::from_secs(2));
    let msg = start_error(&b, &dir, Duration::from_secs(20)).await;
    assert!(msg.contains("did not answer initialize"), "{msg}");
    assert!(
        msg.contains("starting up, please wait"),
        "the end of its stderr: {msg}"
    );
    assert!(b.process_group(1).is_none());
}

#[tokio::test]
async fn malformed_json_rpc_gives_one_line_with_the_line_and_stderr() {
    let (b, _rx, _tmp, dir) = script_agent("garbage", Duration::from_secs(20));
    let msg = start_error(&b, &dir, Duration::from_secs(20)).await;
    assert!(
        msg.contains("malformed JSON-RPC: 'Welcome to agent v1!'"),
        "{msg}"
    );
    assert!(msg.contains("legacy output mode"), "{msg}");
}

#[tokio::test]
async fn an_agent_that_exits_mid_turn_fails_the_turn_with_its_stderr() {
    let (b, mut rx, _tmp, dir) = script_agent("dies", Duration::from_secs(20));
    let evs = turn(&b, &mut rx, request(1, &dir, "hi", None)).await;
    let TurnOutcome::Failed(msg) = outcome(&evs) else {
        panic!("{evs:#?}")
    };
    assert!(
        msg.contains("exited") && msg.contains("fatal: out of cheese"),
        "{msg}"
    );
    assert!(transcript(&evs)
        .iter()
        .any(|(_, c, _)| c == "Working on it"));
    assert!(b.process_group(1).is_none(), "a dead agent is not reused");
    // The next turn starts a new one (which dies the same way: no hang, no panic).
    let evs = turn(&b, &mut rx, request(1, &dir, "again", None)).await;
    assert!(matches!(outcome(&evs), TurnOutcome::Failed(_)));
}

#[tokio::test]
async fn a_terminal_runs_in_the_worktree_and_its_output_shows_in_the_tool_block() {
    let (b, mut rx, _tmp, dir) = script_agent("terminal", Duration::from_secs(20));
    let evs = turn(&b, &mut rx, request(1, &dir, "run it", None)).await;
    assert_eq!(outcome(&evs), TurnOutcome::Done, "{evs:#?}");
    let t = tools(&evs);
    let out = t
        .iter()
        .find_map(|m| m["output"].as_str().filter(|o| o.contains("term-out")))
        .unwrap_or_else(|| panic!("terminal output in the tool block: {t:#?}"));
    assert!(
        out.contains(&dir.display().to_string()),
        "ran in the worktree: {out}"
    );
    assert!(out.contains("err-out"), "stderr too: {out}");
    let items = transcript(&evs);
    let texts: Vec<&str> = items
        .iter()
        .filter(|(k, _, _)| *k == ItemKind::Text)
        .map(|(_, c, _)| c.as_str())
        .collect();
    assert!(
        texts
            .iter()
            .any(|c| c.contains("outside") && c.contains("outside the session")),
        "a cwd outside is refused: {texts:?}"
    );
    assert!(texts.iter().any(|c| c.contains("exit 0")), "{texts:?}");
    b.shutdown().await;
}

#[tokio::test]
async fn two_acp_chats_and_an_opencode_chat_stream_at_the_same_time_in_one_worktree() {
    let model = FakeModel::start();
    let env = OpencodeEnv::new(&model, &SandboxOptions::default());
    let dir = env.project_dir().to_path_buf();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut cfg = AcpConfig::new(
        "opencode-acp",
        boo_testkit::tools::opencode(),
        vec!["acp".into()],
    );
    cfg.env = env.vars().to_vec();
    let acp = AcpBackend::new(cfg, tx.clone());
    let oc =
        boocoder::agent::opencode::OpencodeBackend::new(crate::support::opencode::config(&env), tx);
    // The opencode chat first (three cold starts at once overload a small machine); it streams
    // a little, then holds its turn open while both ACP chats stream at once.
    // The server and the directory's instance ready first; its event subscription has only
    // 5 s, which a loaded machine can miss: tried up to three times.
    oc.prepare(Some(dir.clone())).await;
    let mut tries = 0;
    loop {
        tries += 1;
        match oc
            .start_turn(request(3, &dir, "[fake:stall 120] wait", None))
            .await
        {
            Ok(()) => break,
            Err(AgentError::Unreachable(e)) if tries < 3 => eprintln!("opencode start: {e}; again"),
            Err(e) => panic!("opencode starts: {e:?}"),
        }
    }
    until(&mut rx, "opencode streaming", |e| {
        matches!(
            e,
            AgentEvent::Item {
                chat: 3,
                change: ItemChange::Append { .. }
            }
        )
    })
    .await;
    let t0 = Instant::now();
    let prompt = "[fake:long 200 25] go";
    let (a, b) = tokio::join!(
        acp.start_turn(request(1, &dir, prompt, None)),
        acp.start_turn(request(2, &dir, prompt, None)),
    );
    a.and(b).expect("both ACP chats start");
    // For each ACP chat: when its first delta and its end arrived.
    let mut first = std::collections::HashMap::new();
    let mut end = std::collections::HashMap::new();
    while end.len() < 2 {
        let e = tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("no hang")
            .expect("events");
        match e {
            AgentEvent::Item {
                chat,
                change: ItemChange::Append { .. },
            } if chat != 3 => {
                first.entry(chat).or_insert(t0.elapsed());
            }
            AgentEvent::TurnDone { chat, outcome } => {
                assert_ne!(chat, 3, "the opencode turn is still running: {outcome:?}");
                assert_eq!(outcome, TurnOutcome::Done, "chat {chat}");
                end.insert(chat, t0.elapsed());
            }
            _ => {}
        }
    }
    let earliest_end = end.values().min().copied().expect("ends");
    for chat in [1, 2] {
        let f = first.get(&chat).copied().expect("streamed");
        assert!(
            f < earliest_end,
            "chat {chat} streamed before the other finished: first {first:?}, ends {end:?}"
        );
    }
    // The opencode chat was mid-turn all along.
    oc.abort(3).await.expect("aborts");
    let evs = until(&mut rx, "opencode aborted", |e| {
        matches!(e, AgentEvent::TurnDone { chat: 3, .. })
    })
    .await;
    assert!(
        matches!(
            evs.last(),
            Some(AgentEvent::TurnDone {
                outcome: TurnOutcome::Aborted,
                ..
            })
        ),
        "{evs:#?}"
    );
    assert_ne!(
        acp.process_group(1),
        acp.process_group(2),
        "one agent per chat"
    );
    eprintln!("two ACP chats while an opencode turn runs: first deltas {first:?}, ends {end:?}");
    acp.shutdown().await;
    oc.shutdown().await;
}

/// An ACP agent `name` that plays the recorded turn `file` of `tests/data/acp`.
fn replaying(name: &str, file: &str) -> (AcpBackend, mpsc::UnboundedReceiver<AgentEvent>) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/acp");
    let cfg = AcpConfig::new(
        name,
        "python3",
        vec![
            script.join("script_agent.py").display().to_string(),
            "replay".into(),
            script.join(file).display().to_string(),
        ],
    );
    let (tx, rx) = mpsc::unbounded_channel();
    (AcpBackend::new(cfg, tx), rx)
}

/// A recorded turn of an agent not installed here (claude-agent-acp's message shapes, from the
/// protocol schema), replayed through the client: thoughts, plan, a permission answered once
/// (the agent gets its `allow_once` option), an edit's diff, a failed command, text, usage.
#[tokio::test]
async fn a_recorded_claude_agent_acp_turn_replays_through_the_client() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = project(tmp.path());
    let (b, mut rx) = replaying("claude", "claude_agent_acp_turn.jsonl");
    let evs = turn_answering(
        &b,
        &mut rx,
        request(1, &dir, "greet louder", None),
        PermissionReply::Once,
    )
    .await;
    assert_eq!(outcome(&evs), TurnOutcome::Done, "{evs:#?}");
    let items: Vec<(ItemKind, String)> = transcript(&evs)
        .into_iter()
        .map(|(k, c, _)| (k, c))
        .collect();
    assert_eq!(
        items,
        vec![
            (ItemKind::Reasoning, "The user wants a greeting in hello.py.".into()),
            (
                ItemKind::Info,
                "Plan:\n- [x] Read hello.py\n- [~] Change the greeting\n- [ ] Run it".into()
            ),
            (ItemKind::Tool, "edit: Edit `hello.py`".into()),
            (ItemKind::Permission, "edit: Edit `hello.py`".into()),
            (ItemKind::Text, "client answered: {\"outcome\": {\"optionId\": \"allow\", \"outcome\": \"selected\"}}".into()),
            (ItemKind::Tool, "bash: `python hello.py`".into()),
            (ItemKind::Text, "I changed the greeting; running it failed.".into()),
        ],
        "{evs:#?}"
    );
    let t = tools(&evs);
    assert_eq!(t[0]["status"], "completed");
    assert_eq!(
        t[0]["output"],
        "--- hello.py\n+++ hello.py\n-print('hi')\n+print('hello')\n"
    );
    assert_eq!(
        (t[1]["status"].as_str(), t[1]["error"].as_str()),
        (Some("error"), Some("python: command not found"))
    );
    let steps: Vec<Usage> = evs
        .iter()
        .filter_map(|e| match e {
            AgentEvent::Item {
                change: ItemChange::Upsert { meta, .. },
                ..
            } => Usage::of_step(meta),
            _ => None,
        })
        .collect();
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert_eq!(
        (
            steps[0].tokens_in(),
            steps[0].cache_read,
            steps[0].tokens_out()
        ),
        (5000, 4000, 120)
    );
    assert_eq!(
        b.commands(dir.clone()).await,
        vec![(
            "review".to_string(),
            "Review the current changes".to_string()
        )]
    );
    b.shutdown().await;
}

/// goose runs over ACP only (its stream-json parser is gone): a recorded turn in the message
/// shapes of `goose acp` (goose's tool names, a permission with its option ids), replayed through
/// the client, gives the transcript its CLI output used to give.
#[tokio::test]
async fn a_recorded_goose_acp_turn_replays_through_the_client() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = project(tmp.path());
    let (b, mut rx) = replaying("goose", "goose_acp_turn.jsonl");
    let evs = turn_answering(
        &b,
        &mut rx,
        request(1, &dir, "list the files", None),
        PermissionReply::Reject,
    )
    .await;
    assert_eq!(outcome(&evs), TurnOutcome::Done, "{evs:#?}");
    let items: Vec<(ItemKind, String)> = transcript(&evs)
        .into_iter()
        .map(|(k, c, _)| (k, c))
        .collect();
    assert_eq!(
        items,
        vec![
            (ItemKind::Text, "I will list the files.".into()),
            (ItemKind::Tool, "developer__shell: ls".into()),
            (ItemKind::Permission, "developer__shell: ls".into()),
            (
                ItemKind::Text,
                "client answered: {\"outcome\": {\"optionId\": \"reject_once\", \"outcome\": \"selected\"}}".into()
            ),
            (
                ItemKind::Text,
                "There are two entries: README.md and src.".into()
            ),
        ],
        "{evs:#?}"
    );
    assert_eq!(tools(&evs)[0]["output"], "README.md\nsrc");
    b.shutdown().await;
}

#[tokio::test]
async fn qwen_acp_a_new_model_restarts_the_agent_which_loads_the_session() {
    let mut a = qwen_acp();
    a.backend = {
        let (tx, rx) = mpsc::unbounded_channel();
        a.rx = rx;
        a.cfg.model_flag = Some("-m".into());
        AcpBackend::new(a.cfg.clone(), tx)
    };
    let evs = turn(
        &a.backend,
        &mut a.rx,
        request(1, &a.dir, "remember kiwi", None),
    )
    .await;
    assert_eq!(outcome(&evs), TurnOutcome::Done, "{evs:#?}");
    let session = evs
        .iter()
        .find_map(|e| match e {
            AgentEvent::SessionBound { external_id, .. } => Some(external_id.clone()),
            _ => None,
        })
        .expect("bound");
    let pgid = a.backend.process_group(1).expect("runs");
    let binding = SessionBinding {
        external_id: session,
        config_hash: "qwen".into(),
    };
    let mut req = request(1, &a.dir, "and now", Some(binding));
    req.model = Some("other-model".into());
    let evs = turn(&a.backend, &mut a.rx, req).await;
    assert_eq!(outcome(&evs), TurnOutcome::Done, "{evs:#?}");
    assert_ne!(
        a.backend.process_group(1),
        Some(pgid),
        "restarted for the model"
    );
    assert!(group_gone(pgid).await, "the old agent is gone");
    assert!(
        !evs.iter()
            .any(|e| matches!(e, AgentEvent::SessionBound { .. })),
        "the session was loaded: {evs:#?}"
    );
    let last = a.model.chat_requests().last().cloned().expect("a call");
    assert_eq!(last.model.as_deref(), Some("other-model"), "{last:#?}");
    assert!(
        last.history.iter().any(|m| m.contains("remember kiwi")),
        "{last:#?}"
    );
    a.backend.shutdown().await;
}

#[tokio::test]
async fn an_abort_while_the_agent_starts_ends_the_turn_without_sending_the_prompt() {
    let (b, mut rx, _tmp, dir) = script_agent("slowstart", Duration::from_secs(20));
    let (started, aborted) = tokio::join!(b.start_turn(request(1, &dir, "hi", None)), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        b.abort(1).await
    });
    started.expect("starts");
    aborted.expect("abort accepted while starting");
    let evs = until(&mut rx, "aborted", done).await;
    assert_eq!(outcome(&evs), TurnOutcome::Aborted, "{evs:#?}");
    assert!(
        !transcript(&evs)
            .iter()
            .any(|(_, c, _)| c.contains("the prompt ran")),
        "{evs:#?}"
    );
    assert!(b.process_group(1).is_none());
}

#[tokio::test]
async fn abort_kills_the_agents_terminals() {
    let (b, mut rx, _tmp, dir) = script_agent("termhang", Duration::from_secs(20));
    b.start_turn(request(1, &dir, "run forever", None))
        .await
        .expect("starts");
    let pid_file = dir.join("term.pid");
    let t0 = Instant::now();
    let pid: i32 = loop {
        if let Some(p) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            break p;
        }
        assert!(t0.elapsed() < WAIT, "the terminal never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    b.abort(1).await.expect("aborts");
    let evs = until(&mut rx, "aborted", done).await;
    assert_eq!(outcome(&evs), TurnOutcome::Aborted, "{evs:#?}");
    // The terminal's own group (its pid leads it) is gone, and the agent saw it killed.
    assert!(group_gone(pid).await, "terminal {pid} killed");
    assert!(
        transcript(&evs)
            .iter()
            .any(|(_, c, _)| c.contains("terminal ended") && c.contains("\"signal\": \"9\"")),
        "{evs:#?}"
    );
}
