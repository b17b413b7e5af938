//! `transcript`: what a chat shows, keyed by `(chat_id, seq)`. Writers send full item states
//! with [`Store::put_item`]; the store thread keeps the last state per key and writes a batch in
//! one transaction (see `thread.rs`), so a stream of deltas is not a transaction per delta.

use rusqlite::{params, OptionalExtension, Row, Transaction};

use super::error::bad_column;
use super::thread::Msg;
use super::{now_ms, Store, StoreError};
use crate::model::{ChatId, ItemKind, TranscriptItem};

const COLS: &str = "chat_id, seq, kind, part_id, content, meta";

fn row(r: &Row) -> rusqlite::Result<TranscriptItem> {
    let kind: String = r.get(2)?;
    let meta: String = r.get(5)?;
    Ok(TranscriptItem {
        chat_id: r.get(0)?,
        seq: r.get(1)?,
        kind: ItemKind::parse(&kind).ok_or_else(|| bad_column(2, "item kind", &kind))?,
        part_id: r.get(3)?,
        content: r.get(4)?,
        meta: serde_json::from_str(&meta).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, Box::new(e))
        })?,
    })
}

/// Upserts every item. An item whose chat is gone (deleted while it sat in the buffer) is
/// dropped alone; it must not sink the rest of the batch.
pub(super) fn write_batch<'a>(
    tx: &Transaction,
    items: impl Iterator<Item = &'a TranscriptItem>,
) -> Result<(), StoreError> {
    let mut st = tx.prepare_cached(
        "INSERT INTO transcript (chat_id, seq, kind, part_id, content, meta, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (chat_id, seq) DO UPDATE SET
            kind = excluded.kind, part_id = excluded.part_id, content = excluded.content,
            meta = excluded.meta, updated_at = excluded.updated_at",
    )?;
    let now = now_ms();
    for item in items {
        let meta =
            serde_json::to_string(&item.meta).map_err(|e| StoreError::Data(e.to_string()))?;
        let res = st.execute(params![
            item.chat_id,
            item.seq,
            item.kind.as_str(),
            item.part_id,
            item.content,
            meta,
            now
        ]);
        match res {
            Ok(_) => {}
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) => {
                tracing::warn!(
                    chat = item.chat_id,
                    seq = item.seq,
                    "store: transcript item dropped: {e}"
                );
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A row that cannot be read (a kind this version does not know, broken meta JSON) is shown
/// as a placeholder rather than failing the whole chat. The placeholder has no part id and is
/// never written back, so the row stays as it is on disk.
fn row_or_placeholder(r: &Row) -> rusqlite::Result<(TranscriptItem, bool)> {
    match row(r) {
        Ok(item) => Ok((item, false)),
        Err(e) => Ok((
            TranscriptItem {
                chat_id: r.get(0)?,
                seq: r.get(1)?,
                kind: ItemKind::Info,
                part_id: None,
                content: format!("(unreadable item: {e})"),
                meta: serde_json::json!({"status": "unreadable"}),
            },
            true,
        )),
    }
}

impl Store {
    /// The chat's transcript in order, unreadable rows as placeholders; with how many there were.
    pub async fn load_transcript_lenient(
        &self,
        chat_id: ChatId,
    ) -> Result<(Vec<TranscriptItem>, usize), StoreError> {
        self.call(move |db| {
            db.read(|tx| {
                let sql = format!("SELECT {COLS} FROM transcript WHERE chat_id = ?1 ORDER BY seq");
                let mut st = tx.prepare_cached(&sql)?;
                let rows = st.query_map([chat_id], row_or_placeholder)?;
                let mut items = Vec::new();
                let mut bad = 0;
                for r in rows {
                    let (item, unreadable) = r?;
                    bad += usize::from(unreadable);
                    items.push(item);
                }
                Ok((items, bad))
            })
        })
        .await
    }

    /// Queues the full state of a transcript item; the last put for a `(chat_id, seq)` wins.
    /// Never blocks: it is written within the flush interval, by [`Store::flush`], or before
    /// any later call on this store. Fails only when the store is closed.
    pub fn put_item(&self, item: TranscriptItem) -> Result<(), StoreError> {
        self.tx.send(Msg::Put(item)).map_err(|_| StoreError::Closed)
    }

    /// The chat's transcript in order (buffered items included: calls run after a flush).
    pub async fn load_transcript(
        &self,
        chat_id: ChatId,
    ) -> Result<Vec<TranscriptItem>, StoreError> {
        self.call(move |db| {
            db.read(|tx| {
                let sql = format!("SELECT {COLS} FROM transcript WHERE chat_id = ?1 ORDER BY seq");
                let mut st = tx.prepare_cached(&sql)?;
                let rows = st.query_map([chat_id], row)?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
        })
        .await
    }

    /// The item carrying the agent's part id, to update it in place.
    pub async fn find_part(
        &self,
        chat_id: ChatId,
        part_id: &str,
    ) -> Result<Option<TranscriptItem>, StoreError> {
        let part_id = part_id.to_owned();
        self.call(move |db| {
            db.read(|tx| {
                let sql = format!(
                    "SELECT {COLS} FROM transcript WHERE chat_id = ?1 AND part_id = ?2
                     ORDER BY seq DESC LIMIT 1"
                );
                Ok(tx
                    .query_row(&sql, params![chat_id, part_id], row)
                    .optional()?)
            })
        })
        .await
    }

    /// The seq the chat's next item gets (0 for an empty chat).
    pub async fn next_seq(&self, chat_id: ChatId) -> Result<i64, StoreError> {
        self.call(move |db| {
            db.read(|tx| {
                Ok(tx.query_row(
                    "SELECT coalesce(max(seq) + 1, 0) FROM transcript WHERE chat_id = ?1",
                    [chat_id],
                    |r| r.get(0),
                )?)
            })
        })
        .await
    }

    /// Drops the items from `from_seq` on (e.g. to rebuild the tail after a reconnect).
    /// Returns how many were removed.
    pub async fn truncate_transcript(
        &self,
        chat_id: ChatId,
        from_seq: i64,
    ) -> Result<usize, StoreError> {
        self.call(move |db| {
            db.write(|tx| {
                Ok(tx.execute(
                    "DELETE FROM transcript WHERE chat_id = ?1 AND seq >= ?2",
                    params![chat_id, from_seq],
                )?)
            })
        })
        .await
    }
}
