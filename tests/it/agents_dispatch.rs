//! Turn dispatch in front of a CLI agent: different chats run at the same time, one chat's
//! turns run one after another (the second waits, queued, and starts when the first is done),
//! and every event comes stamped with the task of the turn it belongs to.

use crate::support::agents::*;
use boocoder::agent::external::{CliConfig, CliKind, ExternalBackend};
use boocoder::agent::{AgentBackend, AgentEvent, TurnOutcome, TurnRequest};
use boocoder::dispatch::{Dispatched, Dispatcher, Sent};
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
    let (out_tx, mut out) = mpsc::unbounded_channel::<Dispatched>();
    let d = Dispatcher::new(backend, backend_rx, out_tx, None);
    let req = |chat, text: &str, task| TurnRequest {
        chat,
        task,
        directory: tmp.path().to_path_buf(),
        text: text.into(),
        model: None,
        agent: None,
        binding: None,
        extras: Default::default(),
    };
    assert_eq!(d.send(req(1, "a", 11)), Sent::Starting);
    assert_eq!(d.send(req(1, "b", 12)), Sent::Queued(1));
    assert_eq!(d.send(req(2, "c", 21)), Sent::Starting);

    // Order of starts and ends: (chat, "start"|"done").
    let mut order = Vec::new();
    let (mut tasks, mut items) = (Vec::new(), Vec::new());
    let mut done = 0;
    let deadline = tokio::time::Instant::now() + WAIT;
    while done < 3 {
        let Dispatched { task, event } = tokio::time::timeout_at(deadline, out.recv())
            .await
            .expect("in time")
            .expect("open");
        match event {
            AgentEvent::TurnStarted { chat } => {
                order.push((chat, "start"));
                tasks.push((chat, "start", task));
            }
            AgentEvent::TurnDone { chat, outcome } => {
                assert_eq!(outcome, TurnOutcome::Done);
                order.push((chat, "done"));
                tasks.push((chat, "done", task));
                done += 1;
            }
            AgentEvent::TurnQueued { chat, position } => {
                assert_eq!((chat, position, task), (1, 1, Some(12)));
                order.push((chat, "queued"));
            }
            AgentEvent::Item { chat, .. } => items.push((chat, task)),
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
    // Each start and end names its own turn, never a neighbour's by position.
    let of = |chat| {
        tasks
            .iter()
            .filter(|(c, _, _)| *c == chat)
            .map(|(_, what, t)| (*what, *t))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        of(1),
        [
            ("start", Some(11)),
            ("done", Some(11)),
            ("start", Some(12)),
            ("done", Some(12))
        ]
    );
    assert_eq!(of(2), [("start", Some(21)), ("done", Some(21))]);
    assert!(!items.is_empty());
    for (chat, task) in &items {
        let ok = if *chat == 1 {
            [Some(11), Some(12)].contains(task)
        } else {
            *task == Some(21)
        };
        assert!(ok, "item of chat {chat} stamped {task:?}");
    }
}
