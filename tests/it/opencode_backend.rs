//! The opencode backend against the real `opencode serve` and the scripted fake model: plain
//! turns, concurrency, the turn queue, tools with permissions, abort, model errors, watchdog.

use std::time::Duration;

use crate::support::opencode::{rest_parts, Harness, T};
use boo_testkit::fake_model::ERROR_MESSAGE;
use boocoder::agent::{AgentBackend, AgentEvent, PermissionReply, TurnOutcome};
use boocoder::dispatch::Sent;
use boocoder::model::ItemKind;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_turn_yields_reasoning_and_text_once_and_reuses_the_session() {
    let mut h = Harness::new();
    let dir = h.dir();
    assert_eq!(
        h.dispatcher.send(h.req(1, &dir, "hello plain")),
        Sent::Starting
    );
    assert_eq!(h.done(1, T).await, TurnOutcome::Done);
    let tr = h.transcript(1);
    assert_eq!(
        tr.texts(ItemKind::Reasoning),
        vec!["Thinking about: hello plain"]
    );
    assert_eq!(tr.texts(ItemKind::Text), vec!["Echo: hello plain"]);
    assert_eq!(tr.texts(ItemKind::User), vec!["hello plain"]);
    assert!(h
        .log
        .iter()
        .any(|e| matches!(e, AgentEvent::TurnStarted { chat: 1 })));
    let binding = h.binding(1).expect("SessionBound reported");
    assert!(binding.external_id.starts_with("ses_"));
    assert!(h
        .log
        .iter()
        .any(|e| matches!(e, AgentEvent::Title { chat: 1, title } if title == boo_testkit::fake_model::TITLE)));
    let steps = tr.of_kind(ItemKind::Info);
    assert_eq!(steps.len(), 1, "{steps:?}");
    // opencode splits the fake's usage: cached tokens out of input, reasoning out of output.
    assert_eq!(steps[0].2["tokens"]["input"], json!(1000));
    assert_eq!(steps[0].2["tokens"]["cache"]["read"], json!(200));
    assert_eq!(steps[0].2["tokens"]["output"], json!(300));
    assert_eq!(steps[0].2["tokens"]["reasoning"], json!(40));
    assert_eq!(steps[0].2["cost"], json!(0.00178));

    // The same chat again: same session, and the transcript equals what opencode holds.
    let binds_before = h
        .log
        .iter()
        .filter(|e| matches!(e, AgentEvent::SessionBound { .. }))
        .count();
    h.dispatcher.send(h.req(1, &dir, "second"));
    assert_eq!(h.done(1, T).await, TurnOutcome::Done);
    let binds_after = h
        .log
        .iter()
        .filter(|e| matches!(e, AgentEvent::SessionBound { .. }))
        .count();
    assert_eq!(binds_before, binds_after, "session was not reused");
    let rest = h.rest_messages(&binding.external_id, &dir).await;
    assert_eq!(h.transcript(1).parts(), rest_parts(&rest));
    assert_eq!(
        h.transcript(1).texts(ItemKind::Text),
        vec!["Echo: hello plain", "Echo: second"]
    );

    // A write tool call creates the file in the session's directory.
    h.dispatcher
        .send(h.req(1, &dir, "[fake:write notes.txt hello world]"));
    assert_eq!(h.done(1, T).await, TurnOutcome::Done);
    let tools = h.transcript(1).of_kind(ItemKind::Tool);
    assert_eq!(tools.len(), 1, "{tools:?}");
    assert_eq!(tools[0].2["tool"], json!("write"));
    assert_eq!(tools[0].2["status"], json!("completed"));
    assert_eq!(
        std::fs::read_to_string(dir.join("notes.txt")).expect("written file"),
        "hello world"
    );
    h.backend.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_chat_queues_the_prompt_and_runs_it_next() {
    let mut h = Harness::new();
    let dir = h.dir();
    assert_eq!(
        h.dispatcher.send(h.req(1, &dir, "first [fake:slow 100]")),
        Sent::Starting
    );
    assert_eq!(h.dispatcher.send(h.req(1, &dir, "second")), Sent::Queued(1));
    assert_eq!(h.dispatcher.send(h.req(1, &dir, "third")), Sent::Queued(2));
    for _ in 0..3 {
        assert_eq!(h.done(1, T).await, TurnOutcome::Done);
    }
    let queued: Vec<_> = h
        .log
        .iter()
        .filter_map(|e| match e {
            AgentEvent::TurnQueued { chat: 1, position } => Some(*position),
            _ => None,
        })
        .collect();
    assert_eq!(queued, vec![1, 2]);
    assert_eq!(
        h.transcript(1).texts(ItemKind::Text),
        vec!["Echo: first", "Echo: second", "Echo: third"]
    );
    assert!(!h.dispatcher.is_busy(1));
    h.backend.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chats_stream_concurrently_in_two_directories_and_in_one() {
    let mut h = Harness::new();
    let a = h.dir();
    let b = h.env.new_project("other");
    // chat 1 and 3 share directory a; chat 2 is in b. A first quick turn each warms up the
    // server's per-directory instances, so the slow turns below start together.
    for (chat, dir) in [(1, &a), (2, &b), (3, &a)] {
        h.dispatcher.send(h.req(chat, dir, "warm up"));
        assert_eq!(h.done(chat, T).await, TurnOutcome::Done);
    }
    h.transcripts.clear();
    h.log.clear();
    for (chat, dir) in [(1, &a), (2, &b), (3, &a)] {
        h.dispatcher
            .send(h.req(chat, dir, &format!("chat{chat} speaks [fake:slow 120]")));
    }
    let mut done = 0;
    while done < 3 {
        if let AgentEvent::TurnDone { outcome, .. } = h.next(T).await {
            assert_eq!(outcome, TurnOutcome::Done);
            done += 1;
        }
    }
    for chat in 1..=3 {
        let tr = h.transcript(chat);
        assert_eq!(
            tr.texts(ItemKind::Text),
            vec![format!("Echo: chat{chat} speaks")],
            "chat {chat}"
        );
        assert_eq!(
            tr.texts(ItemKind::Reasoning),
            vec![format!("Thinking about: chat{chat} speaks")]
        );
    }
    // They really streamed at the same time: each pair's item events interleave.
    let idx = |chat: i64| -> Vec<usize> {
        h.log
            .iter()
            .enumerate()
            .filter(|(_, e)| matches!(e, AgentEvent::Item { chat: c, change: boocoder::model::ItemChange::Append { .. } } if *c == chat))
            .map(|(i, _)| i)
            .collect()
    };
    let (i1, i2, i3) = (idx(1), idx(2), idx(3));
    let overlap = |x: &[usize], y: &[usize]| x[0] < *y.last().unwrap() && y[0] < *x.last().unwrap();
    assert!(
        overlap(&i1, &i2),
        "chats 1 and 2 (two directories) did not overlap"
    );
    assert!(
        overlap(&i1, &i3),
        "chats 1 and 3 (same directory) did not overlap"
    );
    h.backend.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bash_permission_once_runs_the_tool_and_reject_stops_it() {
    let mut h = Harness::new();
    let dir = h.dir();

    h.dispatcher.send(h.req(1, &dir, "run [fake:bash echo hi]"));
    let asked = h
        .until(T, |e| matches!(e, AgentEvent::PermissionAsked { .. }))
        .await;
    let AgentEvent::PermissionAsked { chat, request } = asked else {
        unreachable!()
    };
    assert_eq!(chat, 1);
    assert_eq!(request.permission, "bash");
    assert_eq!(request.patterns, vec!["echo hi".to_string()]);
    let pending = h.backend.pending_permissions().await;
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].request.id, request.id);
    // Nothing is auto-answered: the turn waits.
    tokio::time::sleep(Duration::from_millis(800)).await;
    while let Ok(ev) = h.events.try_recv() {
        assert!(
            !matches!(ev, AgentEvent::TurnDone { .. }),
            "turn ended without a reply"
        );
    }
    let perm_item = h.transcript(1).of_kind(ItemKind::Permission);
    assert_eq!(perm_item.len(), 1);
    assert_eq!(perm_item[0].2["status"], json!("asked"));

    h.backend
        .reply_permission(&request.id, PermissionReply::Once)
        .await
        .expect("reply");
    assert_eq!(h.done(1, T).await, TurnOutcome::Done);
    let tr = h.transcript(1);
    let tools = tr.of_kind(ItemKind::Tool);
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0].1, "bash: echo hi");
    assert_eq!(tools[0].2["status"], json!("completed"));
    assert_eq!(tools[0].2["output"], json!("hi\n"));
    assert_eq!(
        tr.of_kind(ItemKind::Permission)[0].2["status"],
        json!("once")
    );
    assert_eq!(tr.texts(ItemKind::Text), vec!["Tool finished: hi"]);
    assert!(h.backend.pending_permissions().await.is_empty());

    h.dispatcher
        .send(h.req(2, &dir, "run [fake:bash echo nope]"));
    let asked = h
        .until(T, |e| matches!(e, AgentEvent::PermissionAsked { .. }))
        .await;
    let AgentEvent::PermissionAsked { request, .. } = asked else {
        unreachable!()
    };
    h.backend
        .reply_permission(&request.id, PermissionReply::Reject)
        .await
        .expect("reply");
    let outcome = h.done(2, T).await;
    assert_eq!(outcome, TurnOutcome::Done);
    let tools = h.transcript(2).of_kind(ItemKind::Tool);
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0].2["status"], json!("error"));
    assert!(tools[0].2["error"]
        .as_str()
        .unwrap_or_default()
        .contains("rejected"));
    // The command never ran, so no follow-up request reached the model.
    assert!(!h
        .model
        .chat_requests()
        .iter()
        .any(|r| r.is_tool_followup
            && r.last_user_text.as_deref() == Some("run [fake:bash echo nope]")));
    assert!(matches!(
        h.backend
            .reply_permission("per_missing", PermissionReply::Once)
            .await,
        Err(boocoder::agent::AgentError::UnknownPermission(_))
    ));
    h.backend.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_model_error_and_watchdog_end_turns_clearly() {
    let mut h = Harness::with(Default::default(), |c| {
        c.watchdog = Duration::from_secs(4);
        c.poll_after = Duration::from_secs(1);
    });
    let dir = h.dir();
    // The first prompt in a directory waits seconds for opencode to load its plugins, with no
    // session event meanwhile: warm up, so the short watchdog measures the model only.
    h.dispatcher.send(h.req(9, &dir, "warm up"));
    assert_eq!(h.done(9, T).await, TurnOutcome::Done);

    // Abort.
    h.dispatcher.send(h.req(1, &dir, "[fake:stall 120]"));
    h.until(T, |e| {
        matches!(
            e,
            AgentEvent::Item {
                chat: 1,
                change: boocoder::model::ItemChange::Append { .. }
            }
        )
    })
    .await;
    h.backend.abort(1).await.expect("abort");
    assert_eq!(
        h.done(1, Duration::from_secs(15)).await,
        TurnOutcome::Aborted
    );
    assert!(matches!(
        h.backend.abort(1).await,
        Err(boocoder::agent::AgentError::NotRunning(1))
    ));

    // HTTP 400 from the model.
    h.dispatcher.send(h.req(2, &dir, "bad [fake:error]"));
    match h.done(2, T).await {
        TurnOutcome::Failed(msg) => assert!(msg.contains(ERROR_MESSAGE), "{msg}"),
        o => panic!("expected failure, got {o:?}"),
    }
    assert_eq!(
        h.transcript(2).texts(ItemKind::Error),
        vec![ERROR_MESSAGE.to_string()]
    );

    // A stalled model trips the watchdog.
    let started = std::time::Instant::now();
    h.dispatcher.send(h.req(3, &dir, "[fake:stall 120]"));
    match h.done(3, Duration::from_secs(40)).await {
        TurnOutcome::Failed(msg) => assert!(msg.contains("watchdog"), "{msg}"),
        o => panic!("expected watchdog failure, got {o:?}"),
    }
    assert!(started.elapsed() >= Duration::from_secs(4));
    let errs = h.transcript(3).texts(ItemKind::Error);
    assert_eq!(errs.len(), 1, "{errs:?}");
    // The chat is usable again afterwards.
    h.dispatcher.send(h.req(3, &dir, "after watchdog"));
    assert_eq!(h.done(3, T).await, TurnOutcome::Done);
    assert!(h
        .transcript(3)
        .texts(ItemKind::Text)
        .contains(&"Echo: after watchdog".to_string()));

    // A turn waiting for the user's permission is not the agent stalling: no watchdog.
    h.dispatcher
        .send(h.req(4, &dir, "[fake:bash echo patience]"));
    let asked = h
        .until(T, |e| matches!(e, AgentEvent::PermissionAsked { .. }))
        .await;
    let AgentEvent::PermissionAsked { request, .. } = asked else {
        unreachable!()
    };
    let waited = tokio::time::timeout(Duration::from_secs(7), h.done(4, T)).await;
    assert!(
        waited.is_err(),
        "turn ended while waiting for the user: {waited:?}"
    );
    h.backend
        .reply_permission(&request.id, PermissionReply::Once)
        .await
        .expect("reply");
    assert_eq!(h.done(4, T).await, TurnOutcome::Done);
    h.backend.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_sessions_are_replaced_and_closed_chats_end_their_stream() {
    let mut h = Harness::new();
    let dir = h.dir();
    h.dispatcher.send(h.req(1, &dir, "one"));
    assert_eq!(h.done(1, T).await, TurnOutcome::Done);
    let first = h.binding(1).expect("bound");

    // A caller restarted (no live session) with a binding whose session was deleted: new one.
    h.dispatcher.close_chat(1).await;
    let server = h.backend.server().await.expect("server");
    server
        .client()
        .delete_session(&first.external_id, &dir)
        .await
        .expect("delete");
    let mut req = h.req(1, &dir, "two");
    req.binding = Some(first.clone());
    h.dispatcher.send(req);
    assert_eq!(h.done(1, T).await, TurnOutcome::Done);
    let second = h.binding(1).expect("bound");
    assert_ne!(second.external_id, first.external_id);
    assert_eq!(second.config_hash, first.config_hash);

    // A binding that still exists and fits is reused after a restart of the caller.
    h.dispatcher.close_chat(1).await;
    let binds = |h: &Harness| {
        h.log
            .iter()
            .filter(|e| matches!(e, AgentEvent::SessionBound { .. }))
            .count()
    };
    let before = binds(&h);
    let mut req = h.req(1, &dir, "three");
    req.binding = Some(second.clone());
    h.dispatcher.send(req);
    assert_eq!(h.done(1, T).await, TurnOutcome::Done);
    assert_eq!(binds(&h), before);
    assert_eq!(
        h.backend.session_of(1).as_deref(),
        Some(second.external_id.as_str())
    );

    // Another model: the config fingerprint changes, so a new session.
    let mut req = h.req(1, &dir, "four");
    req.binding = Some(second.clone());
    req.model = Some("fake/fake-model".into());
    h.dispatcher.send(req);
    assert_eq!(h.done(1, T).await, TurnOutcome::Done);
    let third = h.binding(1).expect("bound");
    assert_ne!(third.external_id, second.external_id);
    assert_ne!(third.config_hash, second.config_hash);
    let models: Vec<_> = h
        .model
        .chat_requests()
        .into_iter()
        .map(|r| r.model)
        .collect();
    assert!(
        models.iter().all(|m| m.as_deref() == Some("fake-model")),
        "{models:?}"
    );

    // Closing chats ends their streams; nothing stays parked.
    h.dispatcher.send(h.req(2, &dir, "other chat"));
    assert_eq!(h.done(2, T).await, TurnOutcome::Done);
    assert_eq!(h.backend.live_streams(), 2);
    h.dispatcher.close_chat(1).await;
    wait_for(|| h.backend.live_streams() == 1).await;
    assert_eq!(h.backend.session_of(1), None);
    h.backend.shutdown().await;
    wait_for(|| h.backend.live_streams() == 0).await;
}

async fn wait_for(mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met in 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
