//! The store's typed API on real temp databases: relations, lifecycles, panes, fallback.

use std::time::Duration;

use boocoder::model::{ItemKind, TaskStatus, TranscriptItem};
use boocoder::store::*;
use serde_json::json;
use tempfile::TempDir;

/// Every await in these tests is bounded, so a hung store thread fails instead of hanging.
async fn t<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("store call timed out")
}

async fn open(dir: &TempDir) -> Store {
    t(Store::open(dir.path().join("boo.db"))).await.unwrap()
}

fn raw(dir: &TempDir) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.path().join("boo.db")).unwrap()
}

async fn chat(store: &Store, session: i64, title: &str) -> Chat {
    t(store.create_chat(NewChat {
        session_id: session,
        title: title.into(),
        agent: "opencode".into(),
        model: Some("m1".into()),
        position: 0,
    }))
    .await
    .unwrap()
}

fn agent_session(chat: i64, worktree: Option<i64>, session: Option<i64>) -> AgentSession {
    AgentSession {
        chat_id: chat,
        agent: "opencode".into(),
        external_id: "ses_1".into(),
        config_hash: "h1".into(),
        worktree_id: worktree,
        session_id: session,
        state: "idle".into(),
        updated_at: 0,
    }
}

fn new_worktree(session: i64) -> NewWorktree {
    NewWorktree {
        session_id: session,
        repo_root: "/repo".into(),
        path: "/data/wt/1".into(),
        branch: "boo/one".into(),
        base_commit: "abc".into(),
    }
}

fn item(chat: i64, seq: i64, content: &str) -> TranscriptItem {
    TranscriptItem {
        chat_id: chat,
        seq,
        kind: ItemKind::Text,
        part_id: Some(format!("prt_{seq}")),
        content: content.into(),
        meta: json!({"n": seq}),
    }
}

#[tokio::test]
async fn store_sessions_and_chats_round_trip() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir).await;
    let a = t(store.create_session("/repo", "first")).await.unwrap();
    let b = t(store.create_session("/repo", "second")).await.unwrap();
    t(store.create_session("/other", "elsewhere"))
        .await
        .unwrap();
    assert!(dir.path().join("boo.db").exists());

    // Newest is last active; touching the older one makes it the one to reopen.
    let last = t(store.last_active_session("/repo"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.id, b.id);
    t(store.touch_session(a.id)).await.unwrap();
    let last = t(store.last_active_session("/repo"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.id, a.id);
    let ids: Vec<i64> = t(store.list_sessions("/repo"))
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, vec![a.id, b.id]);

    t(store.rename_session(a.id, "renamed")).await.unwrap();
    assert_eq!(
        t(store.session(a.id)).await.unwrap().unwrap().title,
        "renamed"
    );
    let err = t(store.rename_session(999, "x")).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");

    let c1 = chat(&store, a.id, "one").await;
    let c2 = t(store.create_chat(NewChat {
        session_id: a.id,
        title: "two".into(),
        agent: "goose".into(),
        model: None,
        position: -1,
    }))
    .await
    .unwrap();
    let titles: Vec<String> = t(store.list_chats(a.id))
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.title)
        .collect();
    assert_eq!(titles, vec!["two", "one"]);
    let up = t(store.update_chat(
        c1.id,
        ChatUpdate {
            title: Some("uno".into()),
            model: Some(None),
            ..Default::default()
        },
    ))
    .await
    .unwrap();
    assert_eq!(
        (up.title.as_str(), up.agent.as_str(), up.model),
        ("uno", "opencode", None)
    );
    assert!(t(store.delete_chat(c2.id)).await.unwrap());
    assert!(!t(store.delete_chat(c2.id)).await.unwrap());
    assert_eq!(t(store.chat(c2.id)).await.unwrap(), None);

    // A chat needs an existing session (foreign keys are on).
    let err = t(store.create_chat(NewChat {
        session_id: 4242,
        title: "orphan".into(),
        agent: "opencode".into(),
        model: None,
        position: 0,
    }))
    .await
    .unwrap_err();
    assert!(err.to_string().contains("FOREIGN KEY"), "{err}");
    t(store.close()).await.unwrap();
}

#[tokio::test]
async fn store_delete_chat_removes_its_agent_sessions() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir).await;
    let s = t(store.create_session("/repo", "s")).await.unwrap();
    let c = chat(&store, s.id, "c").await;
    let keep = chat(&store, s.id, "keep").await;
    t(store.upsert_agent_session(agent_session(c.id, None, Some(s.id))))
        .await
        .unwrap();
    t(store.upsert_agent_session(agent_session(keep.id, None, Some(s.id))))
        .await
        .unwrap();
    assert!(t(store.agent_session(c.id, "opencode"))
        .await
        .unwrap()
        .is_some());

    assert!(t(store.delete_chat(c.id)).await.unwrap());
    assert_eq!(
        t(store.agent_session(c.id, "opencode")).await.unwrap(),
        None
    );
    let n: i64 = raw(&dir)
        .query_row(
            "SELECT count(*) FROM agent_sessions WHERE chat_id = ?1",
            [c.id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 0);
    assert!(t(store.agent_session(keep.id, "opencode"))
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn store_delete_session_keeps_worktree_with_null_session() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir).await;
    let s = t(store.create_session("/repo", "s")).await.unwrap();
    let c = chat(&store, s.id, "c").await;
    let wt = t(store.insert_worktree(new_worktree(s.id))).await.unwrap();
    assert_eq!(wt.review_base, "abc");
    assert_eq!(
        t(store.session_worktree(s.id)).await.unwrap(),
        Some(wt.clone())
    );
    // One live worktree per session.
    assert!(t(store.insert_worktree(new_worktree(s.id))).await.is_err());

    assert!(t(store.delete_session(s.id)).await.unwrap());
    let kept = t(store.worktree(wt.id))
        .await
        .unwrap()
        .expect("worktree row kept");
    assert_eq!(kept.session_id, None);
    assert_eq!(kept.path, "/data/wt/1");
    assert_eq!(
        t(store.orphaned_worktrees("/repo")).await.unwrap(),
        vec![kept]
    );
    // Its chats went with it.
    assert_eq!(t(store.chat(c.id)).await.unwrap(), None);
}

#[tokio::test]
async fn store_delete_worktree_nulls_agent_session_worktree() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir).await;
    let s = t(store.create_session("/repo", "s")).await.unwrap();
    let c = chat(&store, s.id, "c").await;
    let wt = t(store.insert_worktree(new_worktree(s.id))).await.unwrap();
    t(store.upsert_agent_session(agent_session(c.id, Some(wt.id), Some(s.id))))
        .await
        .unwrap();
    t(store.set_review_base(wt.id, "def")).await.unwrap();
    assert_eq!(
        t(store.worktree(wt.id)).await.unwrap().unwrap().review_base,
        "def"
    );
    t(store.mark_worktree_removed(wt.id)).await.unwrap();
    assert_eq!(t(store.session_worktree(s.id)).await.unwrap(), None);

    assert!(t(store.delete_worktree(wt.id)).await.unwrap());
    let a = t(store.agent_session(c.id, "opencode"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.worktree_id, None);
    assert_eq!(a.session_id, Some(s.id));
    assert_eq!(a.external_id, "ses_1");

    // Upsert replaces in place: still one row for (chat, agent).
    let mut b = agent_session(c.id, None, Some(s.id));
    b.external_id = "ses_2".into();
    t(store.upsert_agent_session(b)).await.unwrap();
    let all = t(store.list_agent_sessions(c.id)).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].external_id, "ses_2");
    assert!(t(store.delete_agent_session(c.id, "opencode"))
        .await
        .unwrap());
    assert!(t(store.list_agent_sessions(c.id)).await.unwrap().is_empty());
}

#[tokio::test]
async fn store_task_lifecycle() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir).await;
    let s = t(store.create_session("/repo", "s")).await.unwrap();
    let c = chat(&store, s.id, "c").await;
    let new = |prompt: &str| NewTask {
        chat_id: c.id,
        session_id: s.id,
        agent: "opencode".into(),
        model: None,
        prompt: prompt.into(),
        creator: "user".into(),
    };
    let t1 = t(store.create_task(new("one"))).await.unwrap();
    let t2 = t(store.create_task(new("two"))).await.unwrap();
    let task = t(store.task(t1)).await.unwrap().unwrap();
    assert_eq!(
        (task.status, task.started_at, task.finished_at),
        (TaskStatus::Queued, None, None)
    );

    let run = t(store.set_task_status(t1, TaskStatus::Running, None))
        .await
        .unwrap();
    assert!(run.started_at.is_some() && run.finished_at.is_none());
    let done = t(store.set_task_status(t1, TaskStatus::Failed, Some("boom".into())))
        .await
        .unwrap();
    assert_eq!(done.status, TaskStatus::Failed);
    assert_eq!(done.error.as_deref(), Some("boom"));
    assert_eq!(done.started_at, run.started_at);
    assert!(done.finished_at.is_some());
    let err = t(store.set_task_status(t1, TaskStatus::Running, None))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::TaskTransition { .. }), "{err}");

    t(store.set_task_status(t2, TaskStatus::Aborted, None))
        .await
        .unwrap();
    let list = t(store.list_tasks(c.id)).await.unwrap();
    let got: Vec<(i64, TaskStatus)> = list.iter().map(|t| (t.id, t.status)).collect();
    assert_eq!(
        got,
        vec![(t1, TaskStatus::Failed), (t2, TaskStatus::Aborted)]
    );
}

#[tokio::test]
async fn store_pending_changes_replaced_as_a_whole() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir).await;
    let s = t(store.create_session("/repo", "s")).await.unwrap();
    let change = |path: &str| PendingChange {
        path: path.into(),
        status: "modified".into(),
        additions: 3,
        deletions: 1,
        patch: format!("--- a/{path}\n+++ b/{path}\n"),
    };
    t(store.replace_pending_changes(s.id, "opencode", vec![change("a.rs"), change("b.rs")]))
        .await
        .unwrap();
    t(store.replace_pending_changes(s.id, "goose", vec![change("z.rs")]))
        .await
        .unwrap();
    t(store.replace_pending_changes(s.id, "opencode", vec![change("c.rs")]))
        .await
        .unwrap();
    let got: Vec<(String, String)> = t(store.list_pending_changes(s.id))
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.agent, r.change.path))
        .collect();
    let want = [("goose", "z.rs"), ("opencode", "c.rs")];
    assert_eq!(got, want.map(|(a, p)| (a.to_string(), p.to_string())));

    // A failing replace (duplicate path) changes nothing.
    let err =
        t(store.replace_pending_changes(s.id, "opencode", vec![change("d.rs"), change("d.rs")]))
            .await;
    assert!(err.is_err());
    let paths: Vec<String> = t(store.list_pending_changes(s.id))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.change.path)
        .collect();
    assert_eq!(paths, vec!["z.rs", "c.rs"]);
}

#[tokio::test]
async fn store_closed_pane_stack_keeps_last_ten_newest_first() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir).await;
    let s = t(store.create_session("/repo", "s")).await.unwrap();
    let mut chats = Vec::new();
    for i in 0..13 {
        chats.push(chat(&store, s.id, &format!("c{i}")).await.id);
    }
    let kinds = [PaneKind::Float, PaneKind::Split, PaneKind::Vsplit];
    let pane = |i: usize| Pane {
        kind: kinds[i % 3],
        chat_ids: vec![chats[i], chats[(i + 1) % 13]],
        active_chat: Some(chats[(i + 1) % 13]),
    };
    for i in 0..12 {
        t(store.push_closed_pane(s.id, pane(i))).await.unwrap();
    }
    let stack = t(store.list_closed_panes(s.id)).await.unwrap();
    assert_eq!(stack.len(), CLOSED_PANES_CAP);
    let want: Vec<Pane> = (2..12).rev().map(pane).collect();
    let got: Vec<Pane> = stack.into_iter().map(|c| c.pane).collect();
    assert_eq!(got, want);
    let rows: i64 = raw(&dir)
        .query_row(
            "SELECT count(*) FROM panes WHERE closed_at IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 10, "oldest rows are dropped, not just hidden");

    assert_eq!(
        t(store.pop_closed_pane(s.id)).await.unwrap(),
        Some(pane(11))
    );
    // A closed chat disappears from the panes that showed it.
    t(store.delete_chat(chats[10])).await.unwrap();
    let top = t(store.pop_closed_pane(s.id)).await.unwrap().unwrap();
    assert_eq!(top.chat_ids, vec![chats[11]]);
    assert_eq!(top.active_chat, Some(chats[11]));
    assert_eq!(t(store.list_closed_panes(s.id)).await.unwrap().len(), 8);
}

#[tokio::test]
async fn store_open_panes_save_and_load() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir).await;
    let s = t(store.create_session("/repo", "s")).await.unwrap();
    let other = t(store.create_session("/repo", "other")).await.unwrap();
    let a = chat(&store, s.id, "a").await.id;
    let b = chat(&store, s.id, "b").await.id;
    let o = chat(&store, other.id, "o").await.id;
    let panes = vec![
        Pane {
            kind: PaneKind::Float,
            chat_ids: vec![a, b],
            active_chat: Some(b),
        },
        Pane {
            kind: PaneKind::Vsplit,
            chat_ids: vec![b],
            active_chat: Some(b),
        },
    ];
    t(store.save_panes(s.id, panes.clone())).await.unwrap();
    let other_panes = vec![Pane {
        kind: PaneKind::Tab,
        chat_ids: vec![o],
        active_chat: Some(o),
    }];
    t(store.save_panes(other.id, other_panes.clone()))
        .await
        .unwrap();
    assert_eq!(t(store.load_panes(s.id)).await.unwrap(), panes);
    t(store.save_panes(s.id, panes[1..].to_vec()))
        .await
        .unwrap();
    assert_eq!(
        t(store.load_panes(s.id)).await.unwrap(),
        panes[1..].to_vec()
    );
    assert_eq!(t(store.load_panes(other.id)).await.unwrap(), other_panes);
    // Survives a restart.
    t(store.close()).await.unwrap();
    let store = open(&dir).await;
    assert_eq!(
        t(store.load_panes(s.id)).await.unwrap(),
        panes[1..].to_vec()
    );
}

#[tokio::test]
async fn store_transcript_last_write_wins_and_reload() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir).await;
    let s = t(store.create_session("/repo", "s")).await.unwrap();
    let c = chat(&store, s.id, "c").await;
    for seq in 0..5 {
        store.put_item(item(c.id, seq, "draft")).unwrap();
    }
    // Streaming updates of one item: only its final state is kept.
    for n in 0..20 {
        store.put_item(item(c.id, 2, &"x".repeat(n))).unwrap();
    }
    let mut tool = item(c.id, 5, "");
    tool.kind = ItemKind::Tool;
    tool.meta = json!({"tool": "bash", "status": "running", "input": {"cmd": "ls"}});
    store.put_item(tool.clone()).unwrap();
    // Not flushed yet, but a load sees it all.
    let items = t(store.load_transcript(c.id)).await.unwrap();
    assert_eq!(items.len(), 6);
    assert_eq!(items[2].content, "x".repeat(19));
    assert_eq!(items[5], tool);
    assert_eq!(
        items.iter().map(|i| i.seq).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4, 5]
    );
    assert_eq!(t(store.next_seq(c.id)).await.unwrap(), 6);
    assert_eq!(
        t(store.find_part(c.id, "prt_3")).await.unwrap(),
        Some(item(c.id, 3, "draft"))
    );

    // Items of a chat deleted meanwhile are dropped without losing the rest of the batch.
    let gone = chat(&store, s.id, "gone").await;
    t(store.delete_chat(gone.id)).await.unwrap();
    store.put_item(item(gone.id, 0, "lost")).unwrap();
    store.put_item(item(c.id, 6, "kept")).unwrap();
    t(store.flush()).await.unwrap();

    assert_eq!(t(store.truncate_transcript(c.id, 4)).await.unwrap(), 3);
    store.put_item(item(c.id, 4, "again")).unwrap();
    t(store.close()).await.unwrap();
    assert!(matches!(
        store.put_item(item(c.id, 9, "late")),
        Err(StoreError::Closed)
    ));

    let store = open(&dir).await;
    let items = t(store.load_transcript(c.id)).await.unwrap();
    let got: Vec<(i64, String)> = items.into_iter().map(|i| (i.seq, i.content)).collect();
    let want = [
        (0, "draft"),
        (1, "draft"),
        (2, &"x".repeat(19)[..]),
        (3, "draft"),
        (4, "again"),
    ];
    assert_eq!(got, want.map(|(s, c)| (s, c.to_string())));
    assert!(t(store.load_transcript(gone.id)).await.unwrap().is_empty());
}

#[tokio::test]
async fn store_falls_back_to_memory_when_path_is_unusable() {
    let dir = TempDir::new().unwrap();
    // The parent "directory" is a file: nothing can be created there, even as root.
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "x").unwrap();
    let path = blocker.join("boo.db");
    let (store, err) = t(Store::open_or_memory(&path)).await;
    let msg = err.expect("fallback reported").to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("history will not persist"), "{msg}");
    assert!(!msg.contains('\n'));
    assert!(!store.is_persistent());
    let s = t(store.create_session("/repo", "still works"))
        .await
        .unwrap();
    assert_eq!(
        t(store.session(s.id)).await.unwrap().unwrap().title,
        "still works"
    );

    let err = t(Store::open(&path)).await.unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err}");
}

#[tokio::test]
async fn store_falls_back_to_memory_when_file_is_corrupt() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("boo.db");
    std::fs::write(&path, vec![0x5a_u8; 8192]).unwrap();
    let (store, err) = t(Store::open_or_memory(&path)).await;
    let msg = err.expect("fallback reported").to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("not a database"), "{msg}");
    assert!(msg.contains("history will not persist"), "{msg}");
    assert!(t(store.create_session("/repo", "x")).await.is_ok());
    // The corrupt file is left alone for the user to inspect.
    assert_eq!(std::fs::read(&path).unwrap(), vec![0x5a_u8; 8192]);

    let (good, err) = t(Store::open_or_memory(dir.path().join("sub/dir/ok.db"))).await;
    assert!(err.is_none());
    assert!(good.is_persistent());
}

#[tokio::test]
async fn store_falls_back_to_memory_when_a_page_is_damaged() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("boo.db");
    let store = t(Store::open(&path)).await.unwrap();
    let s = t(store.create_session("/repo", "s")).await.unwrap();
    let c = chat(&store, s.id, "c").await;
    for seq in 0..400 {
        store.put_item(item(c.id, seq, &"y".repeat(1000))).unwrap();
    }
    t(store.close()).await.unwrap();
    assert!(
        !dir.path().join("boo.db-wal").exists()
            || std::fs::metadata(dir.path().join("boo.db-wal"))
                .unwrap()
                .len()
                == 0
    );

    // Scribble over a page in the middle: the header and schema stay readable.
    let mut bytes = std::fs::read(&path).unwrap();
    let pages = bytes.len() / 4096;
    assert!(pages > 20, "{pages} pages");
    let mid = pages / 2 * 4096;
    bytes[mid..mid + 4096].fill(0xa5);
    std::fs::write(&path, &bytes).unwrap();

    let (store, err) = t(Store::open_or_memory(&path)).await;
    let msg = err.expect("damage detected at open").to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(
        msg.contains("corrupt") || msg.contains("malformed"),
        "{msg}"
    );
    assert!(msg.contains("history will not persist"), "{msg}");
    assert!(!store.is_persistent());
    assert!(t(store.create_session("/repo", "x")).await.is_ok());
}

#[tokio::test]
async fn store_unreadable_rows_load_as_placeholders_and_stay_on_disk() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir).await;
    let s = t(store.create_session("/repo", "s")).await.unwrap();
    let c = chat(&store, s.id, "c").await;
    for seq in 0..3 {
        store.put_item(item(c.id, seq, "fine")).unwrap();
    }
    t(store.close()).await.unwrap();
    // A newer version's kind and broken JSON: rows this version cannot read.
    let conn = raw(&dir);
    conn.execute(
        "UPDATE transcript SET kind = 'hologram' WHERE chat_id = ?1 AND seq = 1",
        [c.id],
    )
    .unwrap();
    conn.execute(
        "UPDATE transcript SET meta = '{broken' WHERE chat_id = ?1 AND seq = 2",
        [c.id],
    )
    .unwrap();
    drop(conn);

    let store = open(&dir).await;
    assert!(
        t(store.load_transcript(c.id)).await.is_err(),
        "strict load fails"
    );
    let (items, bad) = t(store.load_transcript_lenient(c.id)).await.unwrap();
    assert_eq!(bad, 2);
    assert_eq!(
        items.iter().map(|i| i.seq).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert_eq!(items[0].content, "fine");
    assert!(
        items[1].content.starts_with("(unreadable item"),
        "{:?}",
        items[1]
    );
    assert_eq!(items[2].part_id, None);
    t(store.close()).await.unwrap();
    // Loading changed nothing on disk.
    let kind: String = raw(&dir)
        .query_row(
            "SELECT kind FROM transcript WHERE chat_id = ?1 AND seq = 1",
            [c.id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kind, "hologram");
}

#[tokio::test]
async fn store_turns_of_a_dead_boocoder_are_marked_interrupted_with_an_item() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir).await;
    let s = t(store.create_session("/repo", "s")).await.unwrap();
    let c = chat(&store, s.id, "c").await;
    store.put_item(item(c.id, 0, "question")).unwrap();
    let new = |prompt: &str| NewTask {
        chat_id: c.id,
        session_id: s.id,
        agent: "opencode".into(),
        model: None,
        prompt: prompt.into(),
        creator: "user".into(),
    };
    let dead = t(store.create_task(new("dead"))).await.unwrap();
    t(store.set_task_status(dead, TaskStatus::Running, None))
        .await
        .unwrap();
    let queued = t(store.create_task(new("queued"))).await.unwrap();
    let live = t(store.create_task(new("live"))).await.unwrap();
    t(store.close()).await.unwrap();
    // The first two belonged to a process that is gone; the third is this (live) process's.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let gone = child.id();
    child.wait().unwrap();
    raw(&dir)
        .execute(
            "UPDATE tasks SET owner_pid = ?1 WHERE id IN (?2, ?3)",
            rusqlite::params![gone, dead, queued],
        )
        .unwrap();

    let store = open(&dir).await;
    assert_eq!(t(store.interrupt_orphaned_tasks()).await.unwrap(), 2);
    for id in [dead, queued] {
        let task = t(store.task(id)).await.unwrap().unwrap();
        assert_eq!(task.status, TaskStatus::Interrupted);
    }
    assert_eq!(
        t(store.task(live)).await.unwrap().unwrap().status,
        TaskStatus::Queued
    );
    let items = t(store.load_transcript(c.id)).await.unwrap();
    assert_eq!(items[0].content, "question", "the stored item is kept");
    assert!(items[1].content.contains("interrupted"), "{items:?}");
    assert_eq!(items.len(), 3);
    // Nothing left to mark a second time.
    assert_eq!(t(store.interrupt_orphaned_tasks()).await.unwrap(), 0);
}

#[tokio::test]
async fn store_a_locked_database_reports_why_and_keeps_the_items_until_written() {
    let dir = TempDir::new().unwrap();
    let opts = StoreOptions {
        busy_timeout: Duration::from_millis(20),
        ..StoreOptions::default()
    };
    let store = t(Store::open_with(dir.path().join("boo.db"), opts))
        .await
        .unwrap();
    let s = t(store.create_session("/repo", "s")).await.unwrap();
    let c = chat(&store, s.id, "c").await;
    assert_eq!(store.write_error(), None);
    // Another process holds the write lock.
    let other = raw(&dir);
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    store.put_item(item(c.id, 0, "kept in memory")).unwrap();
    assert!(
        t(store.flush()).await.is_err(),
        "the write cannot happen yet"
    );
    let why = store.write_error().expect("a reason while locked");
    assert!(!why.is_empty());
    other.execute_batch("COMMIT").unwrap();
    drop(other);
    // The buffered item is written on the retry, and the reason clears.
    t(store.flush()).await.unwrap();
    assert_eq!(store.write_error(), None);
    t(store.close()).await.unwrap();
    let store = open(&dir).await;
    let items = t(store.load_transcript(c.id)).await.unwrap();
    assert_eq!(items[0].content, "kept in memory");
}
