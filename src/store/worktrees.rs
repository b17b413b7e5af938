//! `worktrees`: one per session, kept after the session is deleted so the files on disk are
//! never forgotten while they may hold work.

use rusqlite::{params, OptionalExtension, Row, Transaction};

use super::sessions::found;
use super::{now_ms, NewWorktree, Store, StoreError, Worktree};
use crate::model::{SessionId, WorktreeId};

const COLS: &str = "id, session_id, repo_root, path, branch, base_commit, review_base, \
                    created_at, removed_at";

fn row(r: &Row) -> rusqlite::Result<Worktree> {
    Ok(Worktree {
        id: r.get(0)?,
        session_id: r.get(1)?,
        repo_root: r.get(2)?,
        path: r.get(3)?,
        branch: r.get(4)?,
        base_commit: r.get(5)?,
        review_base: r.get(6)?,
        created_at: r.get(7)?,
        removed_at: r.get(8)?,
    })
}

fn get(tx: &Transaction, id: WorktreeId) -> Result<Option<Worktree>, StoreError> {
    let sql = format!("SELECT {COLS} FROM worktrees WHERE id = ?1");
    Ok(tx.query_row(&sql, [id], row).optional()?)
}

impl Store {
    /// Records a new worktree; `review_base` starts at `base_commit`. Fails if the session
    /// already has a live (not removed) worktree.
    pub async fn insert_worktree(&self, new: NewWorktree) -> Result<Worktree, StoreError> {
        self.call(move |db| {
            db.write(|tx| {
                tx.execute(
                    "INSERT INTO worktrees (session_id, repo_root, path, branch, base_commit,
                                            review_base, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
                    params![
                        new.session_id,
                        new.repo_root,
                        new.path,
                        new.branch,
                        new.base_commit,
                        now_ms()
                    ],
                )?;
                let id = tx.last_insert_rowid();
                get(tx, id)?.ok_or(StoreError::NotFound {
                    what: "worktree",
                    id,
                })
            })
        })
        .await
    }

    pub async fn worktree(&self, id: WorktreeId) -> Result<Option<Worktree>, StoreError> {
        self.call(move |db| db.read(|tx| get(tx, id))).await
    }

    /// The session's live worktree, if it has one.
    pub async fn session_worktree(
        &self,
        session_id: SessionId,
    ) -> Result<Option<Worktree>, StoreError> {
        self.call(move |db| {
            db.read(|tx| {
                let sql = format!(
                    "SELECT {COLS} FROM worktrees
                     WHERE session_id = ?1 AND removed_at IS NULL ORDER BY id DESC LIMIT 1"
                );
                Ok(tx.query_row(&sql, [session_id], row).optional()?)
            })
        })
        .await
    }

    /// Worktrees of `repo_root` whose session is gone but whose files were not removed.
    pub async fn orphaned_worktrees(&self, repo_root: &str) -> Result<Vec<Worktree>, StoreError> {
        let repo_root = repo_root.to_owned();
        self.call(move |db| {
            db.read(|tx| {
                let sql = format!(
                    "SELECT {COLS} FROM worktrees
                     WHERE repo_root = ?1 AND session_id IS NULL AND removed_at IS NULL
                     ORDER BY id"
                );
                let mut st = tx.prepare_cached(&sql)?;
                let rows = st.query_map([&repo_root], row)?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
        })
        .await
    }

    /// Moves the review base after hunks were accepted.
    pub async fn set_review_base(&self, id: WorktreeId, commit: &str) -> Result<(), StoreError> {
        let commit = commit.to_owned();
        self.call(move |db| {
            db.write(|tx| {
                let n = tx.execute(
                    "UPDATE worktrees SET review_base = ?2 WHERE id = ?1",
                    params![id, commit],
                )?;
                found(n, "worktree", id)
            })
        })
        .await
    }

    /// Records that the worktree's files were removed; the row stays as history.
    pub async fn mark_worktree_removed(&self, id: WorktreeId) -> Result<(), StoreError> {
        self.call(move |db| {
            db.write(|tx| {
                let n = tx.execute(
                    "UPDATE worktrees SET removed_at = coalesce(removed_at, ?2) WHERE id = ?1",
                    params![id, now_ms()],
                )?;
                found(n, "worktree", id)
            })
        })
        .await
    }

    /// Deletes the record; agent sessions that pointed at it keep going with no worktree.
    pub async fn delete_worktree(&self, id: WorktreeId) -> Result<bool, StoreError> {
        self.call(move |db| {
            db.write(|tx| Ok(tx.execute("DELETE FROM worktrees WHERE id = ?1", [id])? > 0))
        })
        .await
    }
}
