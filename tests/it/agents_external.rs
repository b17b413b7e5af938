//! CLI agents through the `AgentBackend` trait: the real qwen CLI against the scripted model
//! (streamed answer, resume, abort), and claude against recorded output of its documented
//! format (goose runs over ACP only, see `agents_acp`); missing CLI, failing CLI and unreadable output give one clear message.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::agents::*;
use boo_testkit::fake_model::FakeModel;
use boocoder::agent::external::{CliConfig, CliKind, ExternalBackend};
use boocoder::agent::{
    AgentBackend, AgentError, AgentEvent, SessionBinding, TurnOutcome, TurnRequest,
};
use boocoder::model::usage::Usage;
use boocoder::model::{ItemChange, ItemKind};
use tokio::sync::mpsc;

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

/// The usage steps a turn reported.
fn steps(events: &[AgentEvent]) -> Vec<Usage> {
    events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::Item {
                change: ItemChange::Upsert { meta, .. },
                ..
            } => Usage::of_step(meta),
            _ => None,
        })
        .collect()
}

/// The transcript the events build, as the app builds it: (kind, final content) per item.
fn transcript(events: &[AgentEvent]) -> Vec<(ItemKind, String)> {
    let mut t = boocoder::model::transcript::Transcript::default();
    for e in events {
        if let AgentEvent::Item { change, .. } = e {
            // Usage steps are checked on their own (`steps`).
            if let ItemChange::Upsert { meta, .. } = change {
                if Usage::of_step(meta).is_some() {
                    continue;
                }
            }
            t.apply(change.clone());
        }
    }
    t.items().map(|i| (i.kind, i.content.clone())).collect()
}

/// Whether the process group is gone within 10 s (killed members may take a moment to be
/// reaped).
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

fn qwen_backend(
    root: &Path,
    model: &FakeModel,
) -> (ExternalBackend, mpsc::UnboundedReceiver<AgentEvent>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut cfg = CliConfig::new(CliKind::Qwen);
    cfg.command = qwen();
    cfg.args = Some(qwen_args());
    cfg.env = qwen_env(root, &model.base_url());
    (ExternalBackend::new(cfg, tx), rx)
}

#[tokio::test]
async fn qwen_streams_an_answer_from_the_scripted_model_and_resumes_its_session() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = project(tmp.path());
    let model = FakeModel::start();
    let (b, mut rx) = qwen_backend(tmp.path(), &model);
    let t0 = Instant::now();
    b.start_turn(request(1, &dir, "hello there", None))
        .await
        .expect("starts");
    let evs = until(&mut rx, "first turn done", done).await;
    let first = t0.elapsed();
    assert!(
        matches!(evs[0], AgentEvent::TurnStarted { chat: 1 }),
        "{evs:#?}"
    );
    assert_eq!(outcome(&evs), TurnOutcome::Done, "{evs:#?}");
    let items = transcript(&evs);
    let answer = items
        .iter()
        .find(|(k, c)| *k == ItemKind::Text && c.starts_with("Echo:"))
        .unwrap_or_else(|| panic!("an answer: {items:#?}"));
    assert!(answer.1.trim_end().ends_with("hello there"), "{answer:?}");
    assert!(
        items
            .iter()
            .any(|(k, c)| *k == ItemKind::Reasoning && c.starts_with("Thinking about:")),
        "{items:#?}"
    );
    // Streamed: the answer grew by deltas before its final text.
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
    let session = evs
        .iter()
        .find_map(|e| match e {
            AgentEvent::SessionBound {
                agent, external_id, ..
            } if agent == "qwen" => Some(external_id.clone()),
            _ => None,
        })
        .expect("the qwen session is bound");
    let requests = model.chat_requests();
    assert!(
        requests
            .iter()
            .any(|r| r.model.as_deref() == Some("fake-model")),
        "{requests:#?}"
    );

    // The second turn resumes qwen's own session: the model sees the first exchange.
    let binding = SessionBinding {
        external_id: session.clone(),
        config_hash: "qwen".into(),
    };
    let before = model.chat_requests().len();
    b.start_turn(request(1, &dir, "second question", Some(binding)))
        .await
        .expect("starts");
    let evs = until(&mut rx, "second turn done", done).await;
    assert_eq!(outcome(&evs), TurnOutcome::Done, "{evs:#?}");
    // qwen sums the turn's model calls (here two, each reporting the fake's usage).
    let used = steps(&evs);
    assert_eq!(used.len(), 1, "{used:?}");
    let (prompt, cached, completion, _) = boo_testkit::fake_model::USAGE;
    assert_eq!(used[0].tokens_in() % prompt, 0, "{used:?}");
    let calls = used[0].tokens_in() / prompt;
    assert!(calls >= 1, "{used:?}");
    assert_eq!(
        (used[0].cache_read, used[0].tokens_out()),
        (cached * calls, completion * calls),
        "{used:?}"
    );
    let items = transcript(&evs);
    assert!(
        !items.iter().any(|(k, _)| *k == ItemKind::Info),
        "resumed without a notice: {items:#?}"
    );
    assert!(
        !evs.iter()
            .any(|e| matches!(e, AgentEvent::SessionBound { .. })),
        "same session, no new binding: {evs:#?}"
    );
    assert!(model.chat_requests().len() > before);
    eprintln!("qwen first turn: {first:?}");
}

#[tokio::test]
async fn a_lost_qwen_session_starts_a_new_one_and_says_so() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = project(tmp.path());
    let model = FakeModel::start();
    let (b, mut rx) = qwen_backend(tmp.path(), &model);
    let binding = SessionBinding {
        external_id: "0b1c2d3e-gone".into(),
        config_hash: "qwen".into(),
    };
    b.start_turn(request(2, &dir, "hello again", Some(binding)))
        .await
        .expect("starts");
    let evs = until(&mut rx, "turn done", done).await;
    assert_eq!(outcome(&evs), TurnOutcome::Done, "{evs:#?}");
    let items = transcript(&evs);
    assert!(
        items
            .iter()
            .any(|(k, c)| *k == ItemKind::Info && c.contains("could not be resumed")),
        "{items:#?}"
    );
    assert!(evs
        .iter()
        .any(|e| matches!(e, AgentEvent::SessionBound { .. })));
}

#[tokio::test]
async fn abort_kills_the_process_group() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = project(tmp.path());
    let model = FakeModel::start();
    let (b, mut rx) = qwen_backend(tmp.path(), &model);
    b.start_turn(request(3, &dir, "[fake:stall 600] wait", None))
        .await
        .expect("starts");
    let pgid = b.process_group(3).expect("a running process group");
    // Wait until the model is asked, so qwen is really mid-turn.
    let deadline = Instant::now() + WAIT;
    while model.chat_requests().is_empty() {
        assert!(Instant::now() < deadline, "qwen never asked the model");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let t0 = Instant::now();
    b.abort(3).await.expect("abort");
    let evs = until(&mut rx, "aborted", done).await;
    assert_eq!(outcome(&evs), TurnOutcome::Aborted, "{evs:#?}");
    // The whole group is gone.
    assert!(group_gone(pgid).await, "process group {pgid} still alive");
    assert!(b.process_group(3).is_none());
    eprintln!("abort to TurnDone: {:?}", t0.elapsed());
    assert!(matches!(b.abort(3).await, Err(AgentError::NotRunning(3))));
}

#[tokio::test]
async fn a_missing_cli_is_one_clear_message() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (tx, _rx) = mpsc::unbounded_channel();
    let mut cfg = CliConfig::new(CliKind::Qwen);
    cfg.command = tmp.path().join("no-such-qwen");
    let b = ExternalBackend::new(cfg, tx);
    let err = b
        .start_turn(request(4, tmp.path(), "hi", None))
        .await
        .expect_err("cannot start");
    let msg = err.to_string();
    assert!(msg.starts_with("qwen not found"), "{msg}");
    assert!(msg.contains("@qwen-code/qwen-code"), "{msg}");
    assert!(msg.contains("agents.qwen.cmd"), "{msg}");
}

#[tokio::test]
async fn failing_and_unreadable_clis_end_the_turn_with_their_stderr() {
    let tmp = tempfile::tempdir().expect("tmp");
    let bin = tmp.path().join("bin");
    let cases = [
        (
            "exit 3 after stderr",
            "cat >/dev/null; echo 'starting' >&2; echo 'Error: no API key configured' >&2; exit 3",
            vec!["exited with status 3", "no API key configured"],
        ),
        (
            "plain text instead of JSON",
            "cat >/dev/null; echo 'Hello, I am not JSON'; echo 'warning: odd' >&2; exit 0",
            vec!["cannot read: 'Hello, I am not JSON'", "warning: odd"],
        ),
        (
            "killed by a signal",
            "cat >/dev/null; kill -9 $$",
            vec!["killed by a signal"],
        ),
    ];
    for (i, (what, body, needles)) in cases.into_iter().enumerate() {
        let cmd = script(&bin, &format!("qwen{i}"), body);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut cfg = CliConfig::new(CliKind::Qwen);
        cfg.command = cmd;
        let b = ExternalBackend::new(cfg, tx);
        b.start_turn(request(5, tmp.path(), "hi", None))
            .await
            .expect("starts");
        let evs = until(&mut rx, what, done).await;
        match outcome(&evs) {
            TurnOutcome::Failed(m) => {
                assert!(m.starts_with("qwen"), "{what}: {m}");
                for n in needles {
                    assert!(m.contains(n), "{what}: '{n}' not in: {m}");
                }
                assert!(!m.contains('\n'), "one line: {m}");
            }
            other => panic!("{what}: {other:?}"),
        }
    }
}

/// A fake CLI that replays a recorded output file (and checks it got the prompt on stdin).
fn replaying(
    dir: &Path,
    kind: CliKind,
    file: &str,
    code: i32,
) -> (ExternalBackend, mpsc::UnboundedReceiver<AgentEvent>) {
    let rec = recorded(file);
    let body = format!(
        "read -r prompt; [ -n \"$prompt\" ] || exit 9; cat '{}'; exit {code}",
        rec.display()
    );
    let cmd = script(dir, kind.name(), &body);
    let (tx, rx) = mpsc::unbounded_channel();
    let mut cfg = CliConfig::new(kind);
    cfg.command = cmd;
    (ExternalBackend::new(cfg, tx), rx)
}

#[tokio::test]
async fn recorded_claude_and_qwen_outputs_become_transcripts() {
    let tmp = tempfile::tempdir().expect("tmp");
    let want = vec![
        (ItemKind::Text, "Let me list the files.".to_string()),
        (ItemKind::Tool, "Bash: ls".to_string()),
        (
            ItemKind::Text,
            "There are two entries: README.md and src.".to_string(),
        ),
    ];
    let (b, mut rx) = replaying(
        &tmp.path().join("c"),
        CliKind::Claude,
        "claude_tool.jsonl",
        0,
    );
    b.start_turn(request(6, tmp.path(), "list the files\n", None))
        .await
        .expect("starts");
    let evs = until(&mut rx, "claude done", done).await;
    assert_eq!(outcome(&evs), TurnOutcome::Done);
    assert_eq!(transcript(&evs), want);
    assert!(evs.iter().any(|e| matches!(e, AgentEvent::SessionBound { external_id, .. } if external_id == "5e0c8f7a-claude-session")));
    let tool_done = evs.iter().any(|e| matches!(e, AgentEvent::Item { change: ItemChange::Upsert { kind: ItemKind::Tool, meta, .. }, .. } if meta["status"] == "completed" && meta["output"] == "README.md\nsrc"));
    assert!(tool_done, "{evs:#?}");

    let (b, mut rx) = replaying(&tmp.path().join("q"), CliKind::Qwen, "qwen_error.jsonl", 1);
    b.start_turn(request(9, tmp.path(), "[fake:error]\n", None))
        .await
        .expect("starts");
    let evs = until(&mut rx, "qwen error", done).await;
    assert_eq!(
        outcome(&evs),
        TurnOutcome::Failed("qwen: [API Error: 400 fake model refuses: bad request]".into())
    );
}

#[tokio::test]
async fn a_silent_cli_is_stopped_by_the_watchdog_and_binary_output_does_not_hang() {
    let tmp = tempfile::tempdir().expect("tmp");
    let bin = tmp.path().join("bin");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut cfg = CliConfig::new(CliKind::Qwen);
    cfg.command = script(
        &bin,
        "silent",
        "cat >/dev/null; echo 'thinking hard' >&2; sleep 60",
    );
    cfg.watchdog = Duration::from_secs(1);
    let b = ExternalBackend::new(cfg, tx);
    let t0 = Instant::now();
    b.start_turn(request(10, tmp.path(), "hi", None))
        .await
        .expect("starts");
    let pgid = b.process_group(10).expect("running");
    let evs = until(&mut rx, "stopped", done).await;
    match outcome(&evs) {
        TurnOutcome::Failed(m) => {
            assert!(m.contains("printed nothing for 1 s"), "{m}");
            assert!(m.contains("thinking hard"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    assert!(group_gone(pgid).await, "process group {pgid} still alive");

    // Bytes that are not UTF-8 are read past (and reported as unreadable), then the answer.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut cfg = CliConfig::new(CliKind::Claude);
    let rec = recorded("claude_tool.jsonl");
    cfg.command = script(
        &bin,
        "binary",
        &format!(
            "cat >/dev/null; printf '\\377\\376 junk\\n'; cat '{}'",
            rec.display()
        ),
    );
    let b = ExternalBackend::new(cfg, tx);
    b.start_turn(request(11, tmp.path(), "hi", None))
        .await
        .expect("starts");
    let evs = until(&mut rx, "binary", done).await;
    assert_eq!(outcome(&evs), TurnOutcome::Done, "{evs:#?}");
    assert_eq!(transcript(&evs).len(), 3);
}

/// Whether a process runs (a zombie does not count).
fn running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next())
            .is_some_and(|state| state != 'Z'),
        Err(_) => false,
    }
}

/// The child side of `a_cli_dies_with_a_killed_boocoder`: starts a CLI turn that never ends.
#[tokio::test]
#[ignore = "run as a child process by a_cli_dies_with_a_killed_boocoder"]
async fn child_runs_a_cli_turn_forever() {
    let Some(dir) = std::env::var_os("BOO_TEST_CHILD_DIR") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let pid_file = dir.join("cli.pid");
    let cmd = script(
        &dir.join("bin"),
        "qwen",
        &format!("echo $$ > '{}'; exec sleep 600", pid_file.display()),
    );
    let (tx, _rx) = mpsc::unbounded_channel();
    let mut cfg = CliConfig::new(CliKind::Qwen);
    cfg.command = cmd;
    let b = ExternalBackend::new(cfg, tx);
    b.start_turn(request(12, &dir, "hi", None))
        .await
        .expect("starts");
    tokio::time::sleep(Duration::from_secs(600)).await;
}

#[tokio::test]
async fn a_cli_dies_with_a_killed_boocoder() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "agents_external::child_runs_a_cli_turn_forever",
            "--ignored",
        ])
        .env("BOO_TEST_CHILD_DIR", tmp.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("child");
    let pid_file = tmp.path().join("cli.pid");
    let deadline = Instant::now() + WAIT;
    let pid: i32 = loop {
        if let Some(p) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            break p;
        }
        assert!(Instant::now() < deadline, "the CLI never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(running(pid));
    // SIGKILL: no chance to clean up; the parent-death signal must do it.
    child.kill().expect("kill the child");
    let _ = child.wait();
    let t0 = Instant::now();
    while running(pid) && t0.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!running(pid), "the CLI {pid} outlived its parent");
}

#[tokio::test]
async fn what_a_cli_left_in_its_group_ends_with_its_turn() {
    let tmp = tempfile::tempdir().expect("tmp");
    let bin = tmp.path().join("bin");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut cfg = CliConfig::new(CliKind::Claude);
    let rec = recorded("claude_tool.jsonl");
    // A CLI that answers and exits, leaving a background job (a dev server, say) behind.
    cfg.command = script(
        &bin,
        "leaves-a-job",
        &format!(
            "cat >/dev/null; sleep 600 </dev/null >/dev/null 2>&1 & cat '{}'",
            rec.display()
        ),
    );
    let b = ExternalBackend::new(cfg, tx);
    b.start_turn(request(12, tmp.path(), "hi", None))
        .await
        .expect("starts");
    let pgid = b.process_group(12).expect("running");
    let evs = until(&mut rx, "answered", done).await;
    assert_eq!(outcome(&evs), TurnOutcome::Done, "{evs:#?}");
    assert!(
        group_gone(pgid).await,
        "the CLI's background job (group {pgid}) outlived its turn"
    );
}
