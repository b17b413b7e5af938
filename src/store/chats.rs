//! `chats`: the tabs of a session, each an independent agent context.

use rusqlite::{params, OptionalExtension, Row, Transaction};

use super::sessions::found;
use super::{now_ms, Chat, ChatUpdate, NewChat, Store, StoreError};
use crate::model::{ChatId, SessionId};

const COLS: &str = "id, session_id, title, agent, model, position, created_at, updated_at";

fn row(r: &Row) -> rusqlite::Result<Chat> {
    Ok(Chat {
        id: r.get(0)?,
        session_id: r.get(1)?,
        title: r.get(2)?,
        agent: r.get(3)?,
        model: r.get(4)?,
        position: r.get(5)?,
        created_at: r.get(6)?,
        updated_at: r.get(7)?,
    })
}

fn get(tx: &Transaction, id: ChatId) -> Result<Option<Chat>, StoreError> {
    let sql = format!("SELECT {COLS} FROM chats WHERE id = ?1");
    Ok(tx.query_row(&sql, [id], row).optional()?)
}

impl Store {
    pub async fn create_chat(&self, new: NewChat) -> Result<Chat, StoreError> {
        self.call(move |db| {
            db.write(|tx| {
                let now = now_ms();
                tx.execute(
                    "INSERT INTO chats (session_id, title, agent, model, position, created_at,
                                        updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                    params![
                        new.session_id,
                        new.title,
                        new.agent,
                        new.model,
                        new.position,
                        now
                    ],
                )?;
                let id = tx.last_insert_rowid();
                get(tx, id)?.ok_or(StoreError::NotFound { what: "chat", id })
            })
        })
        .await
    }

    pub async fn chat(&self, id: ChatId) -> Result<Option<Chat>, StoreError> {
        self.call(move |db| db.read(|tx| get(tx, id))).await
    }

    /// A session's chats in tab order.
    pub async fn list_chats(&self, session_id: SessionId) -> Result<Vec<Chat>, StoreError> {
        self.call(move |db| {
            db.read(|tx| {
                let sql =
                    format!("SELECT {COLS} FROM chats WHERE session_id = ?1 ORDER BY position, id");
                let mut st = tx.prepare_cached(&sql)?;
                let rows = st.query_map([session_id], row)?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
        })
        .await
    }

    /// Applies the fields set in `update`; returns the chat as stored afterwards.
    pub async fn update_chat(&self, id: ChatId, update: ChatUpdate) -> Result<Chat, StoreError> {
        self.call(move |db| {
            db.write(|tx| {
                let n = tx.execute(
                    "UPDATE chats SET
                        title = coalesce(?2, title),
                        agent = coalesce(?3, agent),
                        model = CASE WHEN ?4 THEN ?5 ELSE model END,
                        position = coalesce(?6, position),
                        updated_at = ?7
                     WHERE id = ?1",
                    params![
                        id,
                        update.title,
                        update.agent,
                        update.model.is_some(),
                        update.model.clone().flatten(),
                        update.position,
                        now_ms()
                    ],
                )?;
                found(n, "chat", id)?;
                get(tx, id)?.ok_or(StoreError::NotFound { what: "chat", id })
            })
        })
        .await
    }

    /// Deletes the chat with its transcript, tasks and agent sessions. Returns whether it
    /// existed.
    pub async fn delete_chat(&self, id: ChatId) -> Result<bool, StoreError> {
        self.call(move |db| {
            db.write(|tx| Ok(tx.execute("DELETE FROM chats WHERE id = ?1", [id])? > 0))
        })
        .await
    }
}
