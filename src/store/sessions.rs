//! `sessions`: one per piece of work in a repository; the last active one reopens on restart.

use rusqlite::{params, OptionalExtension, Row, Transaction};

use super::{now_ms, Session, Store, StoreError};
use crate::model::SessionId;

const COLS: &str = "id, repo_root, title, created_at, updated_at, last_active_at";

fn row(r: &Row) -> rusqlite::Result<Session> {
    Ok(Session {
        id: r.get(0)?,
        repo_root: r.get(1)?,
        title: r.get(2)?,
        created_at: r.get(3)?,
        updated_at: r.get(4)?,
        last_active_at: r.get(5)?,
    })
}

fn get(tx: &Transaction, id: SessionId) -> Result<Option<Session>, StoreError> {
    let sql = format!("SELECT {COLS} FROM sessions WHERE id = ?1");
    Ok(tx.query_row(&sql, [id], row).optional()?)
}

/// Strictly after every other session of the repo, so "last active" never ties.
fn next_active(tx: &Transaction, repo_root: &str) -> rusqlite::Result<i64> {
    let max: Option<i64> = tx.query_row(
        "SELECT max(last_active_at) FROM sessions WHERE repo_root = ?1",
        [repo_root],
        |r| r.get(0),
    )?;
    Ok(max.map_or(now_ms(), |m| now_ms().max(m + 1)))
}

impl Store {
    /// A new session, which becomes the repo's last active one.
    pub async fn create_session(
        &self,
        repo_root: &str,
        title: &str,
    ) -> Result<Session, StoreError> {
        let (repo_root, title) = (repo_root.to_owned(), title.to_owned());
        self.call(move |db| {
            db.write(|tx| {
                let now = now_ms();
                let active = next_active(tx, &repo_root)?;
                // Owned by this process from the start: no other editor can take it first.
                tx.execute(
                    "INSERT INTO sessions (repo_root, title, created_at, updated_at, last_active_at,
                                           owner_pid)
                     VALUES (?1, ?2, ?3, ?3, ?4, ?5)",
                    params![repo_root, title, now, active, std::process::id()],
                )?;
                let id = tx.last_insert_rowid();
                get(tx, id)?.ok_or(StoreError::NotFound {
                    what: "session",
                    id,
                })
            })
        })
        .await
    }

    pub async fn session(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        self.call(move |db| db.read(|tx| get(tx, id))).await
    }

    /// The sessions of a repository, most recently active first.
    pub async fn list_sessions(&self, repo_root: &str) -> Result<Vec<Session>, StoreError> {
        let repo_root = repo_root.to_owned();
        self.call(move |db| {
            db.read(|tx| {
                let sql = format!(
                    "SELECT {COLS} FROM sessions WHERE repo_root = ?1
                     ORDER BY last_active_at DESC, id DESC"
                );
                let mut st = tx.prepare_cached(&sql)?;
                let rows = st.query_map([&repo_root], row)?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
        })
        .await
    }

    /// Takes the session's lease for this process: `Ok(None)` when it is ours now, or the pid
    /// of the live process that drives it. A lease of a process that is gone is free.
    pub async fn claim_session(&self, id: SessionId) -> Result<Option<i64>, StoreError> {
        let me = i64::from(std::process::id());
        self.call(move |db| {
            db.write(|tx| {
                let owner: Option<Option<i64>> = tx
                    .query_row("SELECT owner_pid FROM sessions WHERE id = ?1", [id], |r| {
                        r.get(0)
                    })
                    .optional()?;
                let owner = owner.ok_or(StoreError::NotFound {
                    what: "session",
                    id,
                })?;
                if let Some(pid) = owner.filter(|p| *p != me && super::tasks::owner_alive(*p)) {
                    return Ok(Some(pid));
                }
                tx.execute(
                    "UPDATE sessions SET owner_pid = ?2 WHERE id = ?1",
                    params![id, me],
                )?;
                Ok(None)
            })
        })
        .await
    }

    /// Gives up this process's leases (at exit).
    pub async fn release_sessions(&self) -> Result<(), StoreError> {
        let me = i64::from(std::process::id());
        self.call(move |db| {
            db.write(|tx| {
                tx.execute(
                    "UPDATE sessions SET owner_pid = NULL WHERE owner_pid = ?1",
                    [me],
                )?;
                Ok(())
            })
        })
        .await
    }

    pub async fn rename_session(&self, id: SessionId, title: &str) -> Result<(), StoreError> {
        let title = title.to_owned();
        self.call(move |db| {
            db.write(|tx| {
                let n = tx.execute(
                    "UPDATE sessions SET title = ?2, updated_at = ?3 WHERE id = ?1",
                    params![id, title, now_ms()],
                )?;
                found(n, "session", id)
            })
        })
        .await
    }

    /// Marks the session as the repo's last active one.
    pub async fn touch_session(&self, id: SessionId) -> Result<(), StoreError> {
        self.call(move |db| {
            db.write(|tx| {
                let repo: Option<String> = tx
                    .query_row("SELECT repo_root FROM sessions WHERE id = ?1", [id], |r| {
                        r.get(0)
                    })
                    .optional()?;
                let repo = repo.ok_or(StoreError::NotFound {
                    what: "session",
                    id,
                })?;
                let active = next_active(tx, &repo)?;
                tx.execute(
                    "UPDATE sessions SET last_active_at = ?2 WHERE id = ?1",
                    params![id, active],
                )?;
                Ok(())
            })
        })
        .await
    }

    /// The session to reopen for `repo_root` after a restart.
    pub async fn last_active_session(
        &self,
        repo_root: &str,
    ) -> Result<Option<Session>, StoreError> {
        let repo_root = repo_root.to_owned();
        self.call(move |db| {
            db.read(|tx| {
                let sql = format!(
                    "SELECT {COLS} FROM sessions WHERE repo_root = ?1
                     ORDER BY last_active_at DESC, id DESC LIMIT 1"
                );
                Ok(tx.query_row(&sql, [&repo_root], row).optional()?)
            })
        })
        .await
    }

    /// Deletes the session with its chats, transcripts, tasks, panes and pending changes;
    /// its worktree record stays (session_id NULL). Returns whether it existed.
    pub async fn delete_session(&self, id: SessionId) -> Result<bool, StoreError> {
        self.call(move |db| {
            db.write(|tx| Ok(tx.execute("DELETE FROM sessions WHERE id = ?1", [id])? > 0))
        })
        .await
    }
}

/// `n` rows changed, or the row was not there.
pub(super) fn found(n: usize, what: &'static str, id: i64) -> Result<(), StoreError> {
    if n == 0 {
        Err(StoreError::NotFound { what, id })
    } else {
        Ok(())
    }
}
