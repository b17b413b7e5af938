//! `prompts` and `drafts`: what the user sent from a chat's input (its history, newest kept,
//! capped) and what is typed there but not sent yet (one draft per chat).

use rusqlite::{params, OptionalExtension};

use super::{now_ms, Store, StoreError};
use crate::model::ChatId;

/// Prompts kept per chat; older ones are dropped as new ones come.
pub const HISTORY_CAP: i64 = 200;

/// A chat's history (oldest first) and its draft ("" when none).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChatPrompts {
    pub history: Vec<String>,
    pub draft: String,
}

impl Store {
    /// Adds a sent prompt to the chat's history (a repeat of the last one is not added twice)
    /// and drops its draft.
    pub async fn add_prompt(&self, chat_id: ChatId, text: String) -> Result<(), StoreError> {
        self.call(move |db| {
            db.write(|tx| {
                let last: Option<String> = tx
                    .query_row(
                        "SELECT text FROM prompts WHERE chat_id = ?1 ORDER BY id DESC LIMIT 1",
                        [chat_id],
                        |r| r.get(0),
                    )
                    .optional()?;
                if last.as_deref() != Some(text.as_str()) {
                    tx.execute(
                        "INSERT INTO prompts (chat_id, text, created_at) VALUES (?1, ?2, ?3)",
                        params![chat_id, text, now_ms()],
                    )?;
                    tx.execute(
                        "DELETE FROM prompts WHERE chat_id = ?1 AND id NOT IN
                           (SELECT id FROM prompts WHERE chat_id = ?1 ORDER BY id DESC LIMIT ?2)",
                        params![chat_id, HISTORY_CAP],
                    )?;
                }
                tx.execute("DELETE FROM drafts WHERE chat_id = ?1", [chat_id])?;
                Ok(())
            })
        })
        .await
    }

    /// Saves the chat's unsent draft; an empty one is removed.
    pub async fn set_draft(&self, chat_id: ChatId, text: String) -> Result<(), StoreError> {
        self.call(move |db| {
            db.write(|tx| {
                if text.is_empty() {
                    tx.execute("DELETE FROM drafts WHERE chat_id = ?1", [chat_id])?;
                } else {
                    tx.execute(
                        "INSERT INTO drafts (chat_id, text, updated_at) VALUES (?1, ?2, ?3)
                         ON CONFLICT(chat_id) DO UPDATE SET text = ?2, updated_at = ?3",
                        params![chat_id, text, now_ms()],
                    )?;
                }
                Ok(())
            })
        })
        .await
    }

    /// The chat's history, oldest first, and its draft.
    pub async fn load_prompts(&self, chat_id: ChatId) -> Result<ChatPrompts, StoreError> {
        self.call(move |db| {
            db.read(|tx| {
                let mut st = tx.prepare_cached(
                    "SELECT text FROM prompts WHERE chat_id = ?1 ORDER BY id DESC LIMIT ?2",
                )?;
                let rows = st.query_map(params![chat_id, HISTORY_CAP], |r| r.get(0))?;
                let mut history = rows.collect::<Result<Vec<String>, _>>()?;
                history.reverse();
                let draft = tx
                    .query_row(
                        "SELECT text FROM drafts WHERE chat_id = ?1",
                        [chat_id],
                        |r| r.get(0),
                    )
                    .optional()?
                    .unwrap_or_default();
                Ok(ChatPrompts { history, draft })
            })
        })
        .await
    }
}
