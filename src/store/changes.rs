//! `pending_changes`: a session's current reviewable diff, per agent, replaced as a whole.

use rusqlite::{params, Row};

use super::{now_ms, PendingChange, PendingChangeRow, Store, StoreError};
use crate::model::SessionId;

fn row(r: &Row) -> rusqlite::Result<PendingChangeRow> {
    Ok(PendingChangeRow {
        agent: r.get(0)?,
        change: PendingChange {
            path: r.get(1)?,
            status: r.get(2)?,
            additions: r.get(3)?,
            deletions: r.get(4)?,
            patch: r.get(5)?,
        },
        updated_at: r.get(6)?,
    })
}

impl Store {
    /// Replaces the session's pending changes from `agent` with `changes`, atomically: a reader
    /// sees the old set or the new one, never a mix.
    pub async fn replace_pending_changes(
        &self,
        session_id: SessionId,
        agent: &str,
        changes: Vec<PendingChange>,
    ) -> Result<(), StoreError> {
        let agent = agent.to_owned();
        self.call(move |db| {
            db.write(|tx| {
                tx.execute(
                    "DELETE FROM pending_changes WHERE session_id = ?1 AND agent = ?2",
                    params![session_id, agent],
                )?;
                let mut st = tx.prepare_cached(
                    "INSERT INTO pending_changes
                        (session_id, agent, path, status, additions, deletions, patch, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?;
                let now = now_ms();
                for c in &changes {
                    st.execute(params![
                        session_id,
                        agent,
                        c.path,
                        c.status,
                        c.additions,
                        c.deletions,
                        c.patch,
                        now
                    ])?;
                }
                Ok(())
            })
        })
        .await
    }

    /// All pending changes of a session, by agent then path.
    pub async fn list_pending_changes(
        &self,
        session_id: SessionId,
    ) -> Result<Vec<PendingChangeRow>, StoreError> {
        self.call(move |db| {
            db.read(|tx| {
                let mut st = tx.prepare_cached(
                    "SELECT agent, path, status, additions, deletions, patch, updated_at
                     FROM pending_changes WHERE session_id = ?1 ORDER BY agent, path",
                )?;
                let rows = st.query_map([session_id], row)?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
        })
        .await
    }
}
