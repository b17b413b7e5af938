//! Migrations on hand-built old databases: an upgrade in place, and a failing backfill check
//! that must leave the file exactly as it was.

use std::time::Duration;

use boocoder::store::schema::{self, count_zero, Migration, MIGRATIONS};
use boocoder::store::{Store, StoreError};
use rusqlite::{Connection, Transaction};
use tempfile::TempDir;

async fn t<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("store call timed out")
}

/// A version-1 database, as the first boocoder release left it, with some rows.
fn v1_database(path: &std::path::Path) -> Connection {
    let mut conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    assert_eq!(schema::migrate(&mut conn, &MIGRATIONS[..1]).unwrap(), 1);
    conn.execute_batch(
        "
        INSERT INTO sessions (id, repo_root, title, created_at, updated_at)
            VALUES (1, '/repo', 'old', 1000, 1000), (2, '/repo', 'newer', 2000, 2500);
        INSERT INTO chats (id, session_id, title, agent, model, position, created_at, updated_at)
            VALUES (10, 1, 'tab', 'opencode', NULL, 0, 1000, 1000);
        INSERT INTO tasks (id, chat_id, session_id, agent, prompt, creator, status, created_at)
            VALUES (100, 10, 1, 'opencode', 'hi', 'User', 'done', 1000),
                   (101, 10, 1, 'opencode', 'fix', 'Sel', 'queued', 1001);
        INSERT INTO transcript (chat_id, seq, kind, part_id, content, meta, updated_at)
            VALUES (10, 0, 'user', NULL, 'hi', '{}', 1000),
                   (10, 1, 'text', 'prt_1', 'hello', '{}', 1000);
        ",
    )
    .unwrap();
    conn
}

/// Schema and every row of every table, to compare a database before and after.
fn dump(conn: &Connection) -> Vec<String> {
    let mut out = Vec::new();
    let mut st = conn
        .prepare("SELECT type, name, coalesce(sql, '') FROM sqlite_master ORDER BY name")
        .unwrap();
    let objects: Vec<(String, String, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (kind, name, sql) in objects {
        out.push(sql);
        if kind != "table" {
            continue;
        }
        let mut st = conn.prepare(&format!("SELECT * FROM \"{name}\"")).unwrap();
        let n = st.column_count();
        let rows = st
            .query_map([], |r| {
                let cols: Vec<rusqlite::types::Value> =
                    (0..n).map(|i| r.get(i)).collect::<Result<_, _>>()?;
                Ok(format!("{name}: {cols:?}"))
            })
            .unwrap();
        out.extend(rows.map(Result::unwrap));
    }
    out
}

fn version(conn: &Connection) -> u32 {
    schema::user_version(conn).unwrap()
}

#[tokio::test]
async fn store_migrate_upgrades_old_database_in_place() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("boo.db");
    drop(v1_database(&path));

    let store = t(Store::open(&path)).await.unwrap();
    // The backfill gave old sessions their creation time as last activity.
    let old = t(store.session(1)).await.unwrap().unwrap();
    assert_eq!((old.title.as_str(), old.last_active_at), ("old", 1000));
    let last = t(store.last_active_session("/repo"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.id, 2);
    // Old rows are all still there and readable through the API.
    let items = t(store.load_transcript(10)).await.unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[1].content, "hello");
    assert_eq!(t(store.list_tasks(10)).await.unwrap().len(), 2);
    // And the upgraded schema is in use: touching moves last activity.
    t(store.touch_session(1)).await.unwrap();
    assert_eq!(
        t(store.last_active_session("/repo"))
            .await
            .unwrap()
            .unwrap()
            .id,
        1
    );
    t(store.close()).await.unwrap();

    let conn = Connection::open(&path).unwrap();
    assert_eq!(version(&conn), schema::latest_version());
    assert!(version(&conn) >= 2);
    // Running the migrations again changes nothing.
    let before = dump(&conn);
    let mut conn = conn;
    schema::migrate(&mut conn, MIGRATIONS).unwrap();
    assert_eq!(dump(&conn), before);
}

/// A test-only step 2: normalizes `tasks.creator` and checks nothing was left unconverted.
fn normalize_creator(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch(
        "
        CREATE TABLE creators (name TEXT PRIMARY KEY);
        INSERT INTO creators VALUES ('user'), ('selection'), ('api');
        UPDATE tasks SET creator = CASE creator
            WHEN 'User' THEN 'user' WHEN 'Sel' THEN 'selection' ELSE creator END;
        ",
    )
}

fn normalize_creator_check(tx: &Transaction) -> Result<(), String> {
    count_zero(
        tx,
        "SELECT count(*) FROM tasks WHERE creator NOT IN (SELECT name FROM creators)",
        "tasks with an unknown creator",
    )
}

const TEST_LIST: [Migration; 2] = [
    MIGRATIONS[0],
    Migration {
        version: 2,
        name: "normalize_creator",
        up: normalize_creator,
        check: Some(normalize_creator_check),
    },
];

#[test]
fn store_migrate_failing_backfill_leaves_database_unchanged() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("boo.db");
    let mut conn = v1_database(&path);
    conn.execute(
        "INSERT INTO tasks (id, chat_id, session_id, agent, prompt, creator, status, created_at)
         VALUES (102, 10, 1, 'opencode', '?', 'Martian', 'done', 1002)",
        [],
    )
    .unwrap();
    let before = dump(&conn);

    let err = schema::migrate(&mut conn, &TEST_LIST).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            StoreError::Migration {
                version: 2,
                name: "normalize_creator",
                ..
            }
        ),
        "{msg}"
    );
    assert!(msg.contains("migration 2 (normalize_creator)"), "{msg}");
    assert!(msg.contains("1 tasks with an unknown creator"), "{msg}");
    assert_eq!(version(&conn), 1);
    assert_eq!(dump(&conn), before, "the failed step left no trace");
    drop(conn);
    // Also as seen from a fresh connection (nothing half-committed on disk).
    let mut conn = Connection::open(&path).unwrap();
    assert_eq!(dump(&conn), before);
    assert_eq!(version(&conn), 1);

    // Once the bad row is fixed the same step goes through, exactly once.
    conn.execute("UPDATE tasks SET creator = 'api' WHERE id = 102", [])
        .unwrap();
    assert_eq!(schema::migrate(&mut conn, &TEST_LIST).unwrap(), 2);
    let creators: Vec<String> = conn
        .prepare("SELECT creator FROM tasks ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(creators, vec!["user", "selection", "api"]);
    let after = dump(&conn);
    assert_eq!(schema::migrate(&mut conn, &TEST_LIST).unwrap(), 2);
    assert_eq!(dump(&conn), after);
}

#[tokio::test]
async fn store_open_refuses_a_newer_schema_and_names_the_path() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("boo.db");
    let conn = v1_database(&path);
    conn.pragma_update(None, "user_version", 999).unwrap();
    let before = dump(&conn);
    drop(conn);

    let err = t(Store::open(&path)).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("999"), "{msg}");
    let (store, err) = t(Store::open_or_memory(&path)).await;
    assert!(err
        .unwrap()
        .to_string()
        .contains("history will not persist"));
    assert!(!store.is_persistent());
    assert_eq!(dump(&Connection::open(&path).unwrap()), before);
}

/// A version-5 database whose sessions 3 and 7 were deleted (7's worktree record and branch
/// kept, as boo keeps a worktree that held work), then upgraded: ids are never given again.
#[tokio::test]
async fn store_migrate_session_ids_are_never_reused_after_the_upgrade() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("boo.db");
    {
        let mut conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        assert_eq!(schema::migrate(&mut conn, &MIGRATIONS[..5]).unwrap(), 5);
        conn.execute_batch(
            "
            INSERT INTO sessions (id, repo_root, title, created_at, updated_at, last_active_at)
                VALUES (1, '/repo', 'one', 1, 1, 1), (2, '/repo', 'two', 2, 2, 2),
                       (3, '/repo', 'three', 3, 3, 3);
            INSERT INTO chats (id, session_id, title, agent, model, position, created_at, updated_at)
                VALUES (10, 2, 'tab', 'opencode', NULL, 0, 1, 1);
            INSERT INTO transcript (chat_id, seq, kind, part_id, content, meta, updated_at)
                VALUES (10, 0, 'user', NULL, 'kept', '{}', 1);
            INSERT INTO worktrees (id, session_id, repo_root, path, branch, base_commit,
                                   review_base, created_at)
                VALUES (1, NULL, '/repo', '/w/fix-it-7', 'boo/fix-it-7', 'c', 'c', 1),
                       (2, 2, '/repo', '/w/two-2', 'boo/two-2', 'c', 'c', 1);
            DELETE FROM sessions WHERE id = 3;
            ",
        )
        .unwrap();
    }
    let store = t(Store::open(&path)).await.unwrap();
    // Every row survived the rebuild of `sessions` (no cascade), keys intact.
    assert_eq!(t(store.session(2)).await.unwrap().unwrap().title, "two");
    assert_eq!(
        t(store.load_transcript(10)).await.unwrap()[0].content,
        "kept"
    );
    assert_eq!(
        t(store.session_worktree(2)).await.unwrap().map(|w| w.id),
        Some(2)
    );
    // Above the highest id a worktree branch names, and never again after a delete.
    let a = t(store.create_session("/repo", "a")).await.unwrap();
    assert_eq!(a.id, 8);
    assert!(t(store.delete_session(a.id)).await.unwrap());
    let b = t(store.create_session("/repo", "b")).await.unwrap();
    assert_eq!(b.id, 9);
    // Deleting a session still cascades to its chats.
    assert!(t(store.delete_session(2)).await.unwrap());
    assert!(t(store.load_transcript(10)).await.unwrap().is_empty());
    t(store.close()).await.unwrap();

    let mut conn = Connection::open(&path).unwrap();
    assert_eq!(version(&conn), schema::latest_version());
    let before = dump(&conn);
    schema::migrate(&mut conn, MIGRATIONS).unwrap();
    assert_eq!(dump(&conn), before);
}

#[tokio::test]
async fn store_fresh_database_never_reuses_a_deleted_session_id() {
    let dir = TempDir::new().unwrap();
    let store = t(Store::open(&dir.path().join("boo.db"))).await.unwrap();
    let one = t(store.create_session("/r", "one")).await.unwrap();
    let two = t(store.create_session("/r", "two")).await.unwrap();
    assert!(t(store.delete_session(two.id)).await.unwrap());
    let three = t(store.create_session("/r", "three")).await.unwrap();
    assert_eq!((one.id, two.id, three.id), (1, 2, 3));
    t(store.close()).await.unwrap();
}
