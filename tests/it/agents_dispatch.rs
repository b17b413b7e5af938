//! Turn dispatch in front of a CLI agent: different chats run at the same time, one chat's
//! turns run one after another (the second waits, queued, and starts when the first is done).

use crate::support::agents::*;
use boocoder::agent::external::{CliConfig, CliKind, ExternalBackend};
use boocoder::agent::{AgentBackend, AgentEvent, TurnOutcome, TurnRequest};
use boocoder::dispatch::{Dispatcher, Sent};
use tokio::sync::mpsc;

#[tokio::test]
async fn chats_run_concurrently_and_one_chat_runs_one_turn_at_a_time() {
    let tmp = tempfile::tempdir().expect("tmp");
    // Each turn takes about a second, then answers with the recorded claude output.
    let cmd = script(
        &tmp.path().join("bin"),
        "claude",
        &format!(
            "cat >/dev/null; sleep 1; cat '{}'",
            recorded("claude_tool.jsonl").display()
        ),
    );
    let (backend_tx, backend_rx) = mpsc::unbounded_channel();
    let mut cfg = CliConfig::new(CliKind::Claude);
    cfg.command = cmd;
    let backend: std::sync::Arc<dyn AgentBackend> =
        std::sync::Arc::new(ExternalBackend::new(cfg, backend_tx));
    let (out_tx, mut out) = mpsc::unbounded_channel();
    let d = Dispatcher::new(backend, backend_rx, out_tx, None);
    let req = |chat, text: &str| TurnRequest {
        chat,
        directory: tmp.path().to_path_buf(),
        text: text.into(),
        model: None,
        agent: None,
        binding: None,
        extras: Default::default(),
    };
    assert_eq!(d.send(req(1, "a")), Sent::Starting);
    assert_eq!(d.send(req(1, "b")), Sent::Queued(1));
    assert_eq!(d.send(req(2, "c")), Sent::Starting);

    // Order of starts and ends: (chat, "start"|"done").
    let mut order = Vec::new();
    let mut done = 0;
    let deadline = tokio::time::Instant::now() + WAIT;
    while done < 3 {
        let e = tokio::time::timeout_at(deadline, out.recv())
            .await
            .expect("in time")
            .expect("open");
        match e {
            AgentEvent::TurnStarted { chat } => order.push((chat, "start")),
            AgentEvent::TurnDone { chat, outcome } => {
                assert_eq!(outcome, TurnOutcome::Done);
                order.push((chat, "done"));
                done += 1;
            }
            AgentEvent::TurnQueued { chat, position } => {
                assert_eq!((chat, position), (1, 1));
                order.push((chat, "queued"));
            }
            _ => {}
        }
    }
    let pos = |ev: (i64, &str), nth: usize| {
        order
            .iter()
            .enumerate()
            .filter(|(_, e)| **e == ev)
            .nth(nth)
            .map(|(i, _)| i)
            .unwrap_or_else(|| panic!("{ev:?} #{nth} in {order:?}"))
    };
    // Chat 2 started while chat 1's first turn was still running.
    assert!(pos((2, "start"), 0) < pos((1, "done"), 0), "{order:?}");
    // Chat 1's second turn started only after its first was done.
    assert!(pos((1, "start"), 1) > pos((1, "done"), 0), "{order:?}");
    assert!(!d.is_busy(1) && !d.is_busy(2));
}
