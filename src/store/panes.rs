//! `panes`: a session's open panes (saved on change, restored on reopen) and the stack of
//! recently closed ones (rows with `closed_at`), capped so it cannot grow without bound.
//! Panes are per session so two editors on different sessions never overwrite each other.

use std::collections::HashSet;

use rusqlite::{params, OptionalExtension, Row, Transaction};

use super::error::bad_column;
use super::{now_ms, ClosedPane, Pane, PaneKind, Store, StoreError};
use crate::model::{ChatId, SessionId};

/// How many closed panes are remembered; the oldest is dropped beyond this.
pub const CLOSED_PANES_CAP: usize = 10;

fn row(r: &Row) -> rusqlite::Result<(i64, Pane, Option<i64>)> {
    let kind: String = r.get(1)?;
    let chats: String = r.get(2)?;
    let pane = Pane {
        kind: PaneKind::parse(&kind).ok_or_else(|| bad_column(1, "pane kind", &kind))?,
        chat_ids: serde_json::from_str(&chats).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
        })?,
        active_chat: r.get(3)?,
    };
    Ok((r.get(0)?, pane, r.get(4)?))
}

const SELECT: &str = "SELECT id, kind, chat_ids, active_chat, closed_at FROM panes";

/// Chats may have been closed since the pane was saved: keep only the ones that still exist.
/// `None` when nothing is left to show.
fn live(pane: Pane, chats: &HashSet<ChatId>) -> Option<Pane> {
    let chat_ids: Vec<ChatId> = pane
        .chat_ids
        .into_iter()
        .filter(|c| chats.contains(c))
        .collect();
    let active_chat = pane
        .active_chat
        .filter(|c| chat_ids.contains(c))
        .or_else(|| chat_ids.first().copied());
    (!chat_ids.is_empty()).then_some(Pane {
        kind: pane.kind,
        chat_ids,
        active_chat,
    })
}

fn session_chats(tx: &Transaction, session_id: SessionId) -> Result<HashSet<ChatId>, StoreError> {
    let mut st = tx.prepare_cached("SELECT id FROM chats WHERE session_id = ?1")?;
    let rows = st.query_map([session_id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn insert(
    tx: &Transaction,
    session_id: SessionId,
    pane: &Pane,
    position: i64,
    closed_at: Option<i64>,
) -> Result<i64, StoreError> {
    let chats =
        serde_json::to_string(&pane.chat_ids).map_err(|e| StoreError::Data(e.to_string()))?;
    tx.execute(
        "INSERT INTO panes (session_id, kind, chat_ids, active_chat, position, closed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            session_id,
            pane.kind.as_str(),
            chats,
            pane.active_chat,
            position,
            closed_at
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

impl Store {
    /// Replaces the session's saved open panes with `panes` (in window order).
    pub async fn save_panes(
        &self,
        session_id: SessionId,
        panes: Vec<Pane>,
    ) -> Result<(), StoreError> {
        self.call(move |db| {
            db.write(|tx| {
                tx.execute(
                    "DELETE FROM panes WHERE session_id = ?1 AND closed_at IS NULL",
                    [session_id],
                )?;
                for (i, pane) in panes.iter().enumerate() {
                    insert(tx, session_id, pane, i as i64, None)?;
                }
                Ok(())
            })
        })
        .await
    }

    /// The session's saved open panes, in window order, without chats deleted since.
    pub async fn load_panes(&self, session_id: SessionId) -> Result<Vec<Pane>, StoreError> {
        self.call(move |db| {
            db.read(|tx| {
                let chats = session_chats(tx, session_id)?;
                let sql = format!(
                    "{SELECT} WHERE session_id = ?1 AND closed_at IS NULL ORDER BY position, id"
                );
                let mut st = tx.prepare_cached(&sql)?;
                let rows = st.query_map([session_id], row)?;
                let mut out = Vec::new();
                for r in rows {
                    out.extend(live(r?.1, &chats));
                }
                Ok(out)
            })
        })
        .await
    }

    /// Pushes a closed pane on the session's stack, dropping the oldest beyond the cap.
    pub async fn push_closed_pane(
        &self,
        session_id: SessionId,
        pane: Pane,
    ) -> Result<(), StoreError> {
        self.call(move |db| {
            db.write(|tx| {
                insert(tx, session_id, &pane, 0, Some(now_ms()))?;
                tx.execute(
                    "DELETE FROM panes WHERE session_id = ?1 AND closed_at IS NOT NULL
                     AND id NOT IN (SELECT id FROM panes
                                    WHERE session_id = ?1 AND closed_at IS NOT NULL
                                    ORDER BY id DESC LIMIT ?2)",
                    params![session_id, CLOSED_PANES_CAP as i64],
                )?;
                Ok(())
            })
        })
        .await
    }

    /// Takes the most recently closed pane off the stack (skipping ones whose chats are all
    /// gone).
    pub async fn pop_closed_pane(&self, session_id: SessionId) -> Result<Option<Pane>, StoreError> {
        self.call(move |db| {
            db.write(|tx| {
                let chats = session_chats(tx, session_id)?;
                let sql = format!(
                    "{SELECT} WHERE session_id = ?1 AND closed_at IS NOT NULL
                     ORDER BY id DESC LIMIT 1"
                );
                loop {
                    let Some((id, pane, _)) = tx.query_row(&sql, [session_id], row).optional()?
                    else {
                        return Ok(None);
                    };
                    tx.execute("DELETE FROM panes WHERE id = ?1", [id])?;
                    if let Some(pane) = live(pane, &chats) {
                        return Ok(Some(pane));
                    }
                }
            })
        })
        .await
    }

    /// The closed-pane stack, newest first.
    pub async fn list_closed_panes(
        &self,
        session_id: SessionId,
    ) -> Result<Vec<ClosedPane>, StoreError> {
        self.call(move |db| {
            db.read(|tx| {
                let chats = session_chats(tx, session_id)?;
                let sql = format!(
                    "{SELECT} WHERE session_id = ?1 AND closed_at IS NOT NULL ORDER BY id DESC"
                );
                let mut st = tx.prepare_cached(&sql)?;
                let rows = st.query_map([session_id], row)?;
                let mut out = Vec::new();
                for r in rows {
                    let (id, pane, closed_at) = r?;
                    if let Some(pane) = live(pane, &chats) {
                        out.push(ClosedPane {
                            id,
                            pane,
                            closed_at: closed_at.unwrap_or(0),
                        });
                    }
                }
                Ok(out)
            })
        })
        .await
    }
}
