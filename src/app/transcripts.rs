//! The app's edits to chat transcripts: the model (`model::Transcript`) changes first, then
//! the view is told what changed. Saving does not depend on the chat being shown.

use serde_json::Value as Json;

use super::App;
use crate::model::transcript::Edit;
use crate::model::{ChatId, ItemChange, ItemKind};

impl App {
    /// A backend change to a chat's transcript.
    pub(super) fn tx_apply(&mut self, chat: ChatId, change: ItemChange) {
        let Some(t) = self.transcripts.get_mut(chat) else {
            return;
        };
        let edit = t.apply(change);
        self.ui.edited(chat, t, &edit);
    }

    /// An item the app adds itself (user prompt, error, info); returns its index.
    pub(super) fn tx_push(
        &mut self,
        chat: ChatId,
        kind: ItemKind,
        part_id: Option<String>,
        content: String,
        meta: Json,
    ) -> Option<usize> {
        let t = self.transcripts.get_mut(chat)?;
        let idx = t.push(kind, part_id, content, meta);
        self.ui.edited(chat, t, &Edit::Pushed(idx));
        Some(idx)
    }

    /// Replaces an item's content and meta.
    pub(super) fn tx_set(&mut self, chat: ChatId, idx: usize, content: String, meta: Json) {
        let Some(t) = self.transcripts.get_mut(chat) else {
            return;
        };
        let edit = t.set(idx, content, meta);
        self.ui.edited(chat, t, &edit);
    }

    /// Sets an item's meta, keeping its text.
    pub(super) fn tx_set_meta(&mut self, chat: ChatId, idx: usize, meta: Json) {
        let content = self
            .transcripts
            .get(chat)
            .and_then(|t| t.get(idx))
            .map(|i| i.content.clone());
        if let Some(content) = content {
            self.tx_set(chat, idx, content, meta);
        }
    }

    /// Hands the unsaved items of every chat to the store's writer (which batches them). Rows
    /// it does not take stay unsaved and are offered again on the next save.
    pub(super) fn save_transcripts(&mut self) {
        self.save_due = None;
        let Some(store) = &self.store else { return };
        let rows = self.transcripts.take_unsaved();
        let mut failed = Vec::new();
        let mut reason = None;
        for item in rows {
            if let Err(e) = store.put_item(item.clone()) {
                reason.get_or_insert_with(|| e.to_string());
                failed.push(item);
            }
        }
        if !failed.is_empty() {
            self.transcripts.unsaved_again(&failed);
        }
        // The store thread keeps what it could not write and retries; the user hears of it
        // once per outage, not once per frame.
        let now = reason.or_else(|| store.write_error());
        match (&self.save_warned, &now) {
            (false, Some(r)) => {
                tracing::warn!("history is not being saved: {r}");
                self.ui
                    .notify(format!("boo: history is not being saved: {r}"), 3);
                self.save_warned = true;
            }
            (true, None) => {
                tracing::info!("history is being saved again");
                self.save_warned = false;
            }
            _ => {}
        }
        if self.save_warned {
            // Look again soon, so the warning clears (or stays) without other activity.
            self.save_due
                .get_or_insert(tokio::time::Instant::now() + super::SAVE * 20);
        }
    }
}
