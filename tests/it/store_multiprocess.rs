//! Real OS processes on one database file: two writers at once, and a writer killed with
//! SIGKILL mid-stream. The children are this test binary re-executed with `--exact <child>
//! --ignored`; an environment variable tells them what to do (they do nothing without it).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use boocoder::model::{ItemKind, TaskStatus, TranscriptItem};
use boocoder::store::{NewChat, NewTask, Store, StoreOptions};
use rusqlite::Connection;
use serde_json::json;
use tempfile::TempDir;

const ROLE: &str = "BOO_STORE_TEST_ROLE";
const DB: &str = "BOO_STORE_TEST_DB";
const GO: &str = "BOO_STORE_TEST_GO";
const ITEMS: i64 = 5_000;
const BATCH: i64 = 100;

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

fn item(chat: i64, seq: i64, content: String) -> TranscriptItem {
    TranscriptItem {
        chat_id: chat,
        seq,
        kind: ItemKind::Text,
        part_id: Some(format!("prt_{seq}")),
        content,
        meta: json!({"seq": seq}),
    }
}

fn spawn_child(child_test: &str, role: &str, db: &Path, go: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            &format!("store_multiprocess::{child_test}"),
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, role)
        .env(DB, db)
        .env(GO, go)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Lines the child printed with our prefix, delivered as they come (harness output skipped).
fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            // With --nocapture the harness's "test name ... " may share our line.
            if let Some(at) = line.find("@@ ") {
                if tx.send(line[at + 3..].to_string()).is_err() {
                    break;
                }
            }
        }
    });
    rx
}

/// Everything the child printed until it closed stdout (it has exited, so that is soon).
fn drain(rx: &mpsc::Receiver<String>) -> Vec<String> {
    let until = Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    loop {
        match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(line) => out.push(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => return out,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("child stdout not closed: {out:?}"),
        }
    }
}

fn wait(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let until = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("child did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn child_env() -> Option<(String, PathBuf, PathBuf)> {
    let role = std::env::var(ROLE).ok()?;
    Some((
        role,
        std::env::var_os(DB)?.into(),
        std::env::var_os(GO)?.into(),
    ))
}

/// Marks this child as ready (its store is open), so the parent knows when to say go.
fn ready_file(go: &Path, tag: &str) -> PathBuf {
    go.with_file_name(format!("ready-{tag}"))
}

/// The parent says go only once every child has opened its store: started merely together,
/// one child could finish its writes before the other had opened the file.
fn say_go_when_ready(go: &Path, tags: &[&str]) {
    let until = Instant::now() + Duration::from_secs(60);
    while !tags.iter().all(|t| ready_file(go, t).exists()) {
        assert!(Instant::now() < until, "children never became ready");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::fs::write(go, "").unwrap();
}

/// Children start together: the parent creates the "go" file once both are running.
fn wait_for_go(go: &Path) {
    let until = Instant::now() + Duration::from_secs(30);
    while !go.exists() {
        assert!(Instant::now() < until, "no go signal");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Child: writes ITEMS transcript items to its own chat while also doing other writes
/// (tasks, session touches) and frequent flushes, so both processes contend for the lock.
#[tokio::test]
#[ignore = "child process of store_two_processes_hammer_one_file"]
async fn store_child_hammer() {
    let Some((tag, db, go)) = child_env() else {
        return;
    };
    let store = Store::open(&db).await.unwrap();
    let session = store.create_session("/repo", &tag).await.unwrap();
    let chat = store
        .create_chat(NewChat {
            session_id: session.id,
            title: tag.clone(),
            agent: "opencode".into(),
            model: None,
            position: 0,
        })
        .await
        .unwrap();
    std::fs::write(ready_file(&go, &tag), "").unwrap();
    wait_for_go(&go);
    println!("@@ START {}", now_ms());
    for seq in 0..ITEMS {
        store
            .put_item(item(chat.id, seq, format!("{tag}-{seq}")))
            .unwrap();
        if seq % BATCH == 0 {
            let task = store
                .create_task(NewTask {
                    chat_id: chat.id,
                    session_id: session.id,
                    agent: "opencode".into(),
                    model: None,
                    prompt: format!("p{seq}"),
                    creator: "user".into(),
                })
                .await
                .unwrap();
            store
                .set_task_status(task, TaskStatus::Done, None)
                .await
                .unwrap();
            store.touch_session(session.id).await.unwrap();
        }
        if seq % 20 == 19 {
            store.flush().await.unwrap();
        }
    }
    store.close().await.unwrap();
    println!("@@ END {}", now_ms());
    println!("@@ CHAT {}", chat.id);
}

#[test]
fn store_two_processes_hammer_one_file() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("boo.db");
    let go = dir.path().join("go");
    let mut children: Vec<(Child, mpsc::Receiver<String>)> = ["a", "b"]
        .into_iter()
        .map(|tag| {
            let mut c = spawn_child("store_child_hammer", tag, &db, &go);
            let rx = lines(&mut c);
            (c, rx)
        })
        .collect();
    say_go_when_ready(&go, &["a", "b"]);

    let mut spans = Vec::new();
    let mut chats = Vec::new();
    for (child, rx) in &mut children {
        let status = wait(child, Duration::from_secs(240));
        assert!(status.success(), "writer failed: {status}");
        let out = drain(rx);
        let field = |key: &str| -> u128 {
            out.iter()
                .find_map(|l| l.strip_prefix(key))
                .unwrap_or_else(|| panic!("no {key} in {out:?}"))
                .trim()
                .parse()
                .unwrap()
        };
        spans.push((field("START"), field("END")));
        chats.push(field("CHAT") as i64);
    }
    eprintln!("writer spans (unix ms): {spans:?}");
    // The writes really overlapped in time, so the lock was contended.
    assert!(
        spans[0].0 < spans[1].1 && spans[1].0 < spans[0].1,
        "writers did not overlap: {spans:?}"
    );

    let conn = Connection::open(&db).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    for (chat, tag) in chats.iter().zip(["a", "b"]) {
        let mut st = conn
            .prepare("SELECT seq, content FROM transcript WHERE chat_id = ?1 ORDER BY seq")
            .unwrap();
        let rows: Vec<(i64, String)> = st
            .query_map([chat], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len() as i64, ITEMS, "chat {chat} ({tag})");
        for (i, (seq, content)) in rows.iter().enumerate() {
            assert_eq!(
                (*seq, content.as_str()),
                (i as i64, format!("{tag}-{i}").as_str())
            );
        }
        let tasks: i64 = conn
            .query_row(
                "SELECT count(*) FROM tasks WHERE chat_id = ?1 AND status = 'done'",
                [chat],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tasks, ITEMS / BATCH);
    }
}

/// Child: streams batches of BATCH items (explicitly flushed, each reported on stdout) until it
/// is killed; items are large so the kill is likely to land inside a write.
#[tokio::test]
#[ignore = "child process of store_kill_9_mid_stream_keeps_flushed_batches"]
async fn store_child_stream() {
    let Some((tag, db, _go)) = child_env() else {
        return;
    };
    let opts = StoreOptions {
        flush_interval: Duration::from_secs(3600),
        max_batch: 1_000_000,
        ..StoreOptions::default()
    };
    let store = Store::open_with(&db, opts).await.unwrap();
    let session = store.create_session("/repo", &tag).await.unwrap();
    let chat = store
        .create_chat(NewChat {
            session_id: session.id,
            title: tag.clone(),
            agent: "opencode".into(),
            model: None,
            position: 0,
        })
        .await
        .unwrap();
    let body = "x".repeat(4096);
    let until = Instant::now() + Duration::from_secs(60);
    let mut seq = 0;
    while Instant::now() < until {
        for _ in 0..BATCH {
            store
                .put_item(item(chat.id, seq, format!("{seq} {body}")))
                .unwrap();
            seq += 1;
        }
        store.flush().await.unwrap();
        println!("@@ FLUSHED {} {seq}", chat.id);
    }
}

#[test]
fn store_kill_9_mid_stream_keeps_flushed_batches() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("boo.db");
    let go = dir.path().join("go");
    // Several rounds on the same file: each must find it intact and add to it.
    // Varying delays before the kill spread it over puts, commits and checkpoints.
    let rounds = [(7, 0), (13, 1), (21, 3), (5, 7), (9, 2)];
    for (round, (kill_after, delay_ms)) in rounds.into_iter().enumerate() {
        let mut child = spawn_child("store_child_stream", &format!("r{round}"), &db, &go);
        let rx = lines(&mut child);
        let mut last = None;
        let mut seen = 0;
        while seen < kill_after {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("writer reported no progress");
            let mut f = line.strip_prefix("FLUSHED ").unwrap().split(' ');
            let chat: i64 = f.next().unwrap().parse().unwrap();
            let n: i64 = f.next().unwrap().parse().unwrap();
            last = Some((chat, n));
            seen += 1;
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        assert!(!status.success());
        let (chat, flushed) = last.unwrap();
        // What the child printed after our last read was flushed too; count it.
        let flushed = drain(&rx)
            .iter()
            .filter_map(|l| l.rsplit(' ').next()?.parse::<i64>().ok())
            .fold(flushed, i64::max);

        let conn = Connection::open(&db).unwrap();
        let ok: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok", "round {round}");
        let (count, max): (i64, Option<i64>) = conn
            .query_row(
                "SELECT count(*), max(seq) FROM transcript WHERE chat_id = ?1",
                [chat],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        eprintln!("round {round}: reported {flushed}, found {count}");
        // Every reported batch is there; at most the batch in flight is missing, and batches
        // are all-or-nothing.
        assert!(count >= flushed, "round {round}: {count} < {flushed}");
        assert!(
            count <= flushed + BATCH,
            "round {round}: {count} > {flushed} + {BATCH}"
        );
        assert_eq!(count % BATCH, 0, "round {round}: a torn batch ({count})");
        assert_eq!(max, Some(count - 1));
        let bad: i64 = conn
            .query_row(
                "SELECT count(*) FROM transcript WHERE chat_id = ?1
                 AND content NOT LIKE seq || ' x%'",
                [chat],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(bad, 0);
    }
    // And the store itself opens it normally afterwards.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = Store::open(&db).await.unwrap();
        assert_eq!(
            store.list_sessions("/repo").await.unwrap().len(),
            rounds.len()
        );
        store.close().await.unwrap();
    });
}
