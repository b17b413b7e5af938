//! What `:checkhealth boo` asks the store: the worktrees still on disk and whether their
//! session exists.

use super::{Store, StoreError};
use crate::model::SessionId;

/// A worktree whose files were not removed.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveWorktree {
    pub path: String,
    /// None once its session was deleted (the files stay).
    pub session_id: Option<SessionId>,
}

impl Store {
    pub async fn live_worktrees(&self) -> Result<Vec<LiveWorktree>, StoreError> {
        self.call(|db| {
            db.read(|tx| {
                let mut st = tx.prepare(
                    "SELECT w.path, s.id FROM worktrees w
                       LEFT JOIN sessions s ON s.id = w.session_id
                      WHERE w.removed_at IS NULL ORDER BY w.id",
                )?;
                let rows = st.query_map([], |r| {
                    Ok(LiveWorktree {
                        path: r.get(0)?,
                        session_id: r.get(1)?,
                    })
                })?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
        })
        .await
    }
}
