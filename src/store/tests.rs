//! Unit tests of the store thread: batching, the flush timer, shutdown, busy handling.

use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde_json::json;
use tempfile::TempDir;

use super::*;
use crate::model::{ItemKind, TranscriptItem};

async fn t<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("store call timed out")
}

fn opts(flush_interval: Duration, max_batch: usize) -> StoreOptions {
    StoreOptions {
        flush_interval,
        max_batch,
        ..StoreOptions::default()
    }
}

fn item(chat: i64, seq: i64, content: &str) -> TranscriptItem {
    TranscriptItem {
        chat_id: chat,
        seq,
        kind: ItemKind::Reasoning,
        part_id: None,
        content: content.into(),
        meta: json!(null),
    }
}

/// A store on a temp file with one session and chat; returns (dir, store, chat id).
async fn setup(o: StoreOptions) -> (TempDir, Store, i64) {
    let dir = TempDir::new().unwrap();
    let store = t(Store::open_with(dir.path().join("boo.db"), o))
        .await
        .unwrap();
    let s = t(store.create_session("/r", "s")).await.unwrap();
    let c = t(store.create_chat(NewChat {
        session_id: s.id,
        title: "c".into(),
        agent: "opencode".into(),
        model: None,
        position: 0,
    }))
    .await
    .unwrap();
    (dir, store, c.id)
}

fn raw_count(dir: &TempDir) -> i64 {
    let conn = Connection::open(dir.path().join("boo.db")).unwrap();
    conn.query_row("SELECT count(*) FROM transcript", [], |r| r.get(0))
        .unwrap()
}

/// Polls a condition for up to 5 s (the thread works on its own schedule).
async fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test]
async fn a_stream_of_deltas_is_one_transaction() {
    let (_dir, store, chat) = setup(opts(Duration::from_secs(3600), 1_000_000)).await;
    for seq in 0..300 {
        store.put_item(item(chat, seq, "a")).unwrap();
    }
    // 50 deltas to each of 10 items: merged, not written one by one.
    for round in 0..50 {
        for seq in 0..10 {
            store
                .put_item(item(chat, seq, &format!("v{round}")))
                .unwrap();
        }
    }
    t(store.flush()).await.unwrap();
    let stats = t(store.flush_stats()).await.unwrap();
    assert_eq!((stats.flushes, stats.items, stats.failed), (1, 300, 0));
    assert_eq!(stats.recent_micros.len(), 1);
    let items = t(store.load_transcript(chat)).await.unwrap();
    assert_eq!(items.len(), 300);
    assert_eq!(items[9].content, "v49");
    assert_eq!(items[10].content, "a");
}

#[tokio::test]
async fn a_full_buffer_flushes_early() {
    let (_dir, store, chat) = setup(opts(Duration::from_secs(3600), 100)).await;
    for seq in 0..350 {
        store.put_item(item(chat, seq, "x")).unwrap();
    }
    let stats = t(store.flush_stats()).await.unwrap();
    assert_eq!((stats.flushes, stats.items), (3, 300));
    t(store.flush()).await.unwrap();
    let stats = t(store.flush_stats()).await.unwrap();
    assert_eq!((stats.flushes, stats.items), (4, 350));
}

#[tokio::test]
async fn the_timer_flushes_without_any_call() {
    let (dir, store, chat) = setup(opts(Duration::from_millis(20), 1_000_000)).await;
    store.put_item(item(chat, 0, "x")).unwrap();
    store.put_item(item(chat, 1, "y")).unwrap();
    assert!(eventually(|| raw_count(&dir) == 2).await);
    let stats = t(store.flush_stats()).await.unwrap();
    assert_eq!((stats.flushes, stats.items), (1, 2));
}

#[tokio::test]
async fn dropping_the_last_handle_flushes() {
    let (dir, store, chat) = setup(opts(Duration::from_secs(3600), 1_000_000)).await;
    let clone = store.clone();
    for seq in 0..25 {
        clone.put_item(item(chat, seq, "x")).unwrap();
    }
    drop(clone);
    drop(store);
    assert!(eventually(|| raw_count(&dir) == 25).await);
}

#[tokio::test]
async fn a_panicking_call_does_not_stop_the_store() {
    let store = t(Store::open_in_memory()).await.unwrap();
    let r: Result<(), StoreError> = t(store.call(|_| panic!("bug in a query"))).await;
    assert!(matches!(r, Err(StoreError::Closed)));
    assert!(t(store.create_session("/r", "still here")).await.is_ok());
}

/// Another process holding the write lock: short waits are absorbed by the busy timeout and
/// the retry; a lock held past all of them is a clear `Busy` error, and a failed transcript
/// flush keeps its items for the next one.
#[tokio::test]
async fn a_held_lock_is_waited_for_then_reported() {
    let o = StoreOptions {
        busy_timeout: Duration::from_millis(10),
        ..opts(Duration::from_secs(3600), 1_000_000)
    };
    let (dir, store, chat) = setup(o).await;
    let mut other = Connection::open(dir.path().join("boo.db")).unwrap();

    let tx = other
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    store.put_item(item(chat, 0, "x")).unwrap();
    let err = t(store.flush()).await.unwrap_err();
    assert!(matches!(err, StoreError::Busy { .. }), "{err}");
    assert!(err.to_string().contains("locked"), "{err}");
    tx.rollback().unwrap();
    t(store.flush()).await.unwrap();
    let stats = t(store.flush_stats()).await.unwrap();
    assert_eq!((stats.flushes, stats.items, stats.failed), (1, 1, 1));

    // Held for a while, then released: the retry rides it out.
    let (locked, is_locked) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let tx = other
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        locked.send(Instant::now()).unwrap();
        std::thread::sleep(Duration::from_millis(150));
        tx.commit().unwrap();
    });
    let since = is_locked.recv_timeout(Duration::from_secs(10)).unwrap();
    t(store.create_session("/r", "after the lock"))
        .await
        .unwrap();
    assert!(since.elapsed() >= Duration::from_millis(150));
    holder.join().unwrap();
}

/// While puts keep arriving the channel is never empty, so a timer that only fires on an idle
/// `recv_timeout` would never fire. Here the thread is held busy while a backlog of updates
/// piles up; the flush must happen while it drains them, before the stats request behind them.
#[tokio::test]
async fn the_timer_fires_during_a_steady_stream() {
    let (_dir, store, chat) = setup(opts(Duration::from_millis(1), 1_000_000)).await;
    let busy = store.clone();
    let (resume, resumed) = std::sync::mpsc::channel::<()>();
    let pause = tokio::spawn(async move {
        busy.call(move |_| {
            // Holds the thread until the whole backlog is queued behind this call.
            let _ = resumed.recv_timeout(Duration::from_secs(20));
            Ok(())
        })
        .await
    });
    tokio::task::yield_now().await; // lets the spawned task send its call first
    for n in 0..100_000 {
        store.put_item(item(chat, 0, &n.to_string())).unwrap();
    }
    resume.send(()).unwrap();
    let stats = t(store.flush_stats()).await.unwrap();
    t(pause).await.unwrap().unwrap();
    assert!(
        stats.flushes >= 1,
        "no flush while draining a stream: {stats:?}"
    );
}
