//! Schema migrations, versioned by `PRAGMA user_version`.
//!
//! Each migration runs in its own `BEGIN IMMEDIATE` transaction that first re-reads the version,
//! so running the list twice (or from two processes at once) is a no-op the second time. A
//! migration that backfills also checks its own result; the version only moves when the check
//! passes, otherwise everything it did is rolled back.

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::error::StoreError;
use super::thread::retry_busy;

/// A backfill's self-check: `Err(reason)` when rows were left unconverted.
pub type Check = fn(&Transaction) -> Result<(), String>;

/// One step of the schema. Plain fn pointers so tests can build their own lists.
#[derive(Clone, Copy)]
pub struct Migration {
    /// The `user_version` after this step; strictly increasing along a list.
    pub version: u32,
    pub name: &'static str,
    pub up: fn(&Transaction) -> rusqlite::Result<()>,
    /// Runs after `up`, inside the same transaction; an `Err` rolls the step back.
    pub check: Option<Check>,
}

/// The real schema history. Never edit a released step; append a new one.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        up: v1_initial,
        check: None,
    },
    Migration {
        version: 2,
        name: "session_last_active",
        up: v2_last_active,
        check: Some(v2_check),
    },
    Migration {
        version: 3,
        name: "task_owner",
        up: v3_task_owner,
        check: None,
    },
    Migration {
        version: 4,
        name: "session_owner",
        up: v4_session_owner,
        check: None,
    },
    Migration {
        version: 5,
        name: "prompt_history",
        up: v5_prompt_history,
        check: None,
    },
    Migration {
        version: 6,
        name: "session_ids_never_reused",
        up: v6_session_autoincrement,
        check: Some(v6_check),
    },
    Migration {
        version: 7,
        name: "checkpoints",
        up: v7_checkpoints,
        check: None,
    },
];

/// The version a database has after all of `MIGRATIONS`.
pub fn latest_version() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

pub fn user_version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Brings `conn` up to the last version of `list`; returns that version.
pub fn migrate(conn: &mut Connection, list: &[Migration]) -> Result<u32, StoreError> {
    let supported = list.last().map_or(0, |m| m.version);
    let found = retry_busy(|| user_version(conn).map_err(StoreError::from))?;
    if found > supported {
        return Err(StoreError::TooNew { found, supported });
    }
    // A step may rebuild a table (SQLite's way to change a column): with foreign keys on,
    // dropping the old table would cascade to its children. Off for the steps (it cannot change
    // inside a transaction), each step checks the keys itself before it commits.
    let fk: bool = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let result = list.iter().try_for_each(|m| retry_busy(|| apply(conn, m)));
    conn.pragma_update(None, "foreign_keys", fk)?;
    result?;
    retry_busy(|| user_version(conn).map_err(StoreError::from))
}

/// Rows whose foreign key points nowhere, as `table(rowid) -> parent`.
fn dangling_keys(tx: &Transaction) -> rusqlite::Result<Vec<String>> {
    let mut st = tx.prepare("PRAGMA foreign_key_check")?;
    let rows = st.query_map([], |r| {
        let (table, rowid, parent): (String, Option<i64>, String) =
            (r.get(0)?, r.get(1)?, r.get(2)?);
        Ok(format!("{table}({}) -> {parent}", rowid.unwrap_or(-1)))
    })?;
    rows.collect()
}

fn apply(conn: &mut Connection, m: &Migration) -> Result<(), StoreError> {
    let fail = |reason: String| StoreError::Migration {
        version: m.version,
        name: m.name,
        reason,
    };
    // Busy errors are returned as they are so the caller retries the whole step.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if user_version(&tx)? >= m.version {
        return Ok(()); // dropped transaction rolls back: nothing was written
    }
    (m.up)(&tx).map_err(|e| {
        if super::error::is_busy(&e) {
            StoreError::Sqlite(e)
        } else {
            fail(e.to_string())
        }
    })?;
    if let Some(check) = m.check {
        check(&tx).map_err(&fail)?;
    }
    let dangling = dangling_keys(&tx).map_err(|e| fail(e.to_string()))?;
    if !dangling.is_empty() {
        return Err(fail(format!(
            "foreign keys broken: {}",
            dangling.join(", ")
        )));
    }
    // user_version lives in the file header, so it commits or rolls back with the step.
    tx.pragma_update(None, "user_version", m.version)
        .map_err(|e| fail(e.to_string()))?;
    tx.commit()?;
    tracing::info!(
        version = m.version,
        name = m.name,
        "store migration applied"
    );
    Ok(())
}

fn v1_initial(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch(
        "
        CREATE TABLE sessions (
            id          INTEGER PRIMARY KEY,
            repo_root   TEXT NOT NULL,
            title       TEXT NOT NULL,
            created_at  INTEGER NOT NULL,
            updated_at  INTEGER NOT NULL
        );
        CREATE INDEX sessions_repo ON sessions(repo_root);

        CREATE TABLE chats (
            id          INTEGER PRIMARY KEY,
            session_id  INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            title       TEXT NOT NULL,
            agent       TEXT NOT NULL,
            model       TEXT,
            position    INTEGER NOT NULL,
            created_at  INTEGER NOT NULL,
            updated_at  INTEGER NOT NULL
        );
        CREATE INDEX chats_session ON chats(session_id, position);

        -- A worktree record outlives its session: the files on disk may still hold work.
        CREATE TABLE worktrees (
            id           INTEGER PRIMARY KEY,
            session_id   INTEGER REFERENCES sessions(id) ON DELETE SET NULL,
            repo_root    TEXT NOT NULL,
            path         TEXT NOT NULL,
            branch       TEXT NOT NULL,
            base_commit  TEXT NOT NULL,
            review_base  TEXT NOT NULL,
            created_at   INTEGER NOT NULL,
            removed_at   INTEGER
        );
        -- One live worktree per session (removed or orphaned ones do not count).
        CREATE UNIQUE INDEX worktrees_one_per_session ON worktrees(session_id)
            WHERE session_id IS NOT NULL AND removed_at IS NULL;

        CREATE TABLE agent_sessions (
            chat_id      INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
            agent        TEXT NOT NULL,
            external_id  TEXT NOT NULL,
            config_hash  TEXT NOT NULL,
            worktree_id  INTEGER REFERENCES worktrees(id) ON DELETE SET NULL,
            session_id   INTEGER REFERENCES sessions(id) ON DELETE SET NULL,
            state        TEXT NOT NULL,
            updated_at   INTEGER NOT NULL,
            PRIMARY KEY (chat_id, agent)
        );
        CREATE INDEX agent_sessions_worktree ON agent_sessions(worktree_id);
        CREATE INDEX agent_sessions_session ON agent_sessions(session_id);

        CREATE TABLE tasks (
            id           INTEGER PRIMARY KEY,
            chat_id      INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
            session_id   INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            agent        TEXT NOT NULL,
            model        TEXT,
            prompt       TEXT NOT NULL,
            creator      TEXT NOT NULL,
            status       TEXT NOT NULL,
            error        TEXT,
            created_at   INTEGER NOT NULL,
            started_at   INTEGER,
            finished_at  INTEGER
        );
        CREATE INDEX tasks_chat ON tasks(chat_id, id);
        CREATE INDEX tasks_session ON tasks(session_id);

        CREATE TABLE transcript (
            chat_id     INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
            seq         INTEGER NOT NULL,
            kind        TEXT NOT NULL,
            part_id     TEXT,
            content     TEXT NOT NULL,
            meta        TEXT NOT NULL,
            updated_at  INTEGER NOT NULL,
            PRIMARY KEY (chat_id, seq)
        );
        CREATE INDEX transcript_part ON transcript(chat_id, part_id);

        CREATE TABLE pending_changes (
            session_id  INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            agent       TEXT NOT NULL,
            path        TEXT NOT NULL,
            status      TEXT NOT NULL,
            additions   INTEGER NOT NULL,
            deletions   INTEGER NOT NULL,
            patch       TEXT NOT NULL,
            updated_at  INTEGER NOT NULL,
            PRIMARY KEY (session_id, agent, path)
        );

        -- Open panes of a session and the stack of recently closed ones (closed_at NOT NULL).
        CREATE TABLE panes (
            id          INTEGER PRIMARY KEY,
            session_id  INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            kind        TEXT NOT NULL,
            chat_ids    TEXT NOT NULL,
            active_chat INTEGER,
            position    INTEGER NOT NULL,
            closed_at   INTEGER
        );
        CREATE INDEX panes_session ON panes(session_id, closed_at);
        ",
    )
}

/// Restart reopens the last active session of a repo, so sessions need that time;
/// existing rows start from their creation time.
fn v2_last_active(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch(
        "
        ALTER TABLE sessions ADD COLUMN last_active_at INTEGER;
        UPDATE sessions SET last_active_at = created_at WHERE last_active_at IS NULL;
        CREATE INDEX sessions_last_active ON sessions(repo_root, last_active_at);
        ",
    )
}

/// The pid of the boocoder that runs a task, so a later start can tell a turn that died with
/// its process from one another editor is running.
fn v3_task_owner(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch("ALTER TABLE tasks ADD COLUMN owner_pid INTEGER;")
}

/// The pid of the boocoder that drives a session (a lease; a dead owner's lease is free).
fn v4_session_owner(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch("ALTER TABLE sessions ADD COLUMN owner_pid INTEGER;")
}

/// Each chat's sent prompts (input history) and unsent draft.
fn v5_prompt_history(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE prompts (
            id          INTEGER PRIMARY KEY,
            chat_id     INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
            text        TEXT NOT NULL,
            created_at  INTEGER NOT NULL
        );
        CREATE INDEX prompts_chat ON prompts(chat_id, id);
        CREATE TABLE drafts (
            chat_id     INTEGER PRIMARY KEY REFERENCES chats(id) ON DELETE CASCADE,
            text        TEXT NOT NULL,
            updated_at  INTEGER NOT NULL
        );",
    )
}

/// `AUTOINCREMENT` on `sessions.id`: a deleted session's id is never given again, so its
/// worktree branch (kept when it held work) never meets a new session of the same name.
/// SQLite cannot change a column, so the table is rebuilt (foreign keys are off, see
/// `migrate`; children refer to it by name). Ids deleted before this step are unknown, except
/// those that named worktrees (`boo/<slug>-<id>`): the sequence starts above them too.
fn v6_session_autoincrement(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch(
        "
        CREATE TABLE sessions_v6 (
            id              INTEGER PRIMARY KEY AUTOINCREMENT,
            repo_root       TEXT NOT NULL,
            title           TEXT NOT NULL,
            created_at      INTEGER NOT NULL,
            updated_at      INTEGER NOT NULL,
            last_active_at  INTEGER,
            owner_pid       INTEGER
        );
        INSERT INTO sessions_v6 (id, repo_root, title, created_at, updated_at, last_active_at,
                                 owner_pid)
            SELECT id, repo_root, title, created_at, updated_at, last_active_at, owner_pid
            FROM sessions;
        DROP TABLE sessions;
        ALTER TABLE sessions_v6 RENAME TO sessions;
        CREATE INDEX sessions_repo ON sessions(repo_root);
        CREATE INDEX sessions_last_active ON sessions(repo_root, last_active_at);
        ",
    )?;
    let mut floor: i64 = tx.query_row("SELECT coalesce(max(id), 0) FROM sessions", [], |r| {
        r.get(0)
    })?;
    let mut st = tx.prepare("SELECT branch FROM worktrees")?;
    let branches = st.query_map([], |r| r.get::<_, String>(0))?;
    for b in branches {
        // Every number in the name: over-counting only skips ids.
        let b = b?;
        let most = b
            .split(['-', '/'])
            .filter_map(|t| t.parse::<i64>().ok())
            .max();
        floor = floor.max(most.unwrap_or(0));
    }
    tx.execute("DELETE FROM sqlite_sequence WHERE name = 'sessions'", [])?;
    tx.execute(
        "INSERT INTO sqlite_sequence (name, seq) VALUES ('sessions', ?1)",
        [floor],
    )?;
    Ok(())
}

fn v6_check(tx: &Transaction) -> Result<(), String> {
    let sql: String = tx
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'sessions'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| e.to_string())?;
    if sql.contains("AUTOINCREMENT") {
        Ok(())
    } else {
        Err("sessions.id is not AUTOINCREMENT".into())
    }
}

/// Each turn's number in its chat and its checkpoints (worktree snapshots before and after, the
/// agent's message id of its prompt, whether it was undone).
fn v7_checkpoints(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE checkpoints (
            task_id        INTEGER PRIMARY KEY REFERENCES tasks(id) ON DELETE CASCADE,
            chat_id        INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
            turn           INTEGER NOT NULL,
            seq            INTEGER,
            before_commit  TEXT,
            after_commit   TEXT,
            message_id     TEXT,
            state          TEXT NOT NULL DEFAULT 'done',
            UNIQUE (chat_id, turn)
        );",
    )
}

fn v2_check(tx: &Transaction) -> Result<(), String> {
    count_zero(
        tx,
        "SELECT count(*) FROM sessions WHERE last_active_at IS NULL",
        "sessions without last_active_at",
    )
}

/// A backfill check: `sql` counts rows left unconverted; anything but 0 fails the step.
pub fn count_zero(tx: &Transaction, sql: &str, what: &str) -> Result<(), String> {
    let n: i64 = tx
        .query_row(sql, [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    if n == 0 {
        Ok(())
    } else {
        Err(format!("{n} {what} left after backfill"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(conn: &Connection) -> Vec<String> {
        let mut st = conn
            .prepare("SELECT coalesce(sql, name) FROM sqlite_master ORDER BY name")
            .unwrap();
        let rows = st.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    #[test]
    fn migrate_twice_is_a_noop() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut conn, MIGRATIONS).unwrap(), latest_version());
        let before = schema(&conn);
        assert!(before.iter().any(|s| s.contains("CREATE TABLE transcript")));
        assert_eq!(migrate(&mut conn, MIGRATIONS).unwrap(), latest_version());
        assert_eq!(schema(&conn), before);
    }

    #[test]
    fn newer_database_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        let err = migrate(&mut conn, MIGRATIONS).unwrap_err();
        assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
    }

    #[test]
    fn failing_step_names_itself_and_rolls_back() {
        fn up(tx: &Transaction) -> rusqlite::Result<()> {
            tx.execute_batch("CREATE TABLE half_done (x INTEGER)")
        }
        fn bad_sql(tx: &Transaction) -> rusqlite::Result<()> {
            tx.execute_batch("CREATE TABLE other (y); SELEKT nonsense")
        }
        let list = [
            MIGRATIONS[0],
            Migration {
                version: 2,
                name: "broken",
                up,
                check: Some(|_| Err("always".into())),
            },
        ];
        let mut conn = Connection::open_in_memory().unwrap();
        let err = migrate(&mut conn, &list).unwrap_err();
        assert!(err.to_string().contains("migration 2 (broken)"), "{err}");
        assert_eq!(user_version(&conn).unwrap(), 1);
        assert!(!schema(&conn).iter().any(|s| s.contains("half_done")));

        let list = [
            MIGRATIONS[0],
            Migration {
                version: 2,
                name: "bad_sql",
                up: bad_sql,
                check: None,
            },
        ];
        let err = migrate(&mut conn, &list).unwrap_err();
        assert!(err.to_string().contains("migration 2 (bad_sql)"), "{err}");
        assert_eq!(user_version(&conn).unwrap(), 1);
        assert!(!schema(&conn).iter().any(|s| s.contains("other")));
    }
}
