//! Usage for reports: the step items of every stored transcript with their chat's session
//! and agent. Steps live in `transcript` (see `model::usage`), so this needs no table.

use super::{Store, StoreError};
use crate::model::SessionId;

/// One stored step.
#[derive(Clone, Debug, PartialEq)]
pub struct StepRow {
    pub session_id: SessionId,
    pub session_title: String,
    /// The chat's agent (the step's own, when it recorded one, is in `meta.agent`).
    pub agent: String,
    /// The item's meta, as stored (JSON).
    pub meta: String,
}

impl Store {
    /// Every stored `step-finish` item, oldest session first.
    pub async fn usage_steps(&self) -> Result<Vec<StepRow>, StoreError> {
        self.call(|db| {
            db.read(|tx| {
                let mut stmt = tx.prepare(
                    "SELECT c.session_id, s.title, c.agent, t.meta
                       FROM transcript t
                       JOIN chats c ON c.id = t.chat_id
                       JOIN sessions s ON s.id = c.session_id
                      WHERE t.kind = 'info' AND t.meta LIKE '%\"step-finish\"%'
                      ORDER BY c.session_id, t.chat_id, t.seq",
                )?;
                let rows = stmt.query_map([], |r| {
                    Ok(StepRow {
                        session_id: r.get(0)?,
                        session_title: r.get(1)?,
                        agent: r.get(2)?,
                        meta: r.get(3)?,
                    })
                })?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
        })
        .await
    }
}
