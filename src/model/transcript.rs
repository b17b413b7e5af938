//! A chat's transcript as the app owns it: the items, their seq and what is not yet saved.
//! Updated from agent events whether the chat is on screen or not; `ui::layout` only renders
//! from it, and the store saves what `take_unsaved` hands out.

use std::collections::HashMap;

use serde_json::Value as Json;

use super::{ChatId, ItemChange, ItemKind, TranscriptItem};

/// What a change did, so a view can update only that (an append costs O(delta) to render).
#[derive(Clone, Debug, PartialEq)]
pub enum Edit {
    /// A new item at this index.
    Pushed(usize),
    /// The item's content or meta was replaced.
    Replaced(usize),
    /// Text was appended to the item's content.
    Appended(usize, String),
    /// Nothing changed.
    None,
}

#[derive(Clone, Debug)]
struct Entry {
    item: TranscriptItem,
    /// Changed since it was last handed to the store.
    unsaved: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Transcript {
    chat_id: ChatId,
    items: Vec<Entry>,
    by_part: HashMap<String, usize>,
    /// New items get at least this seq (the store's next seq when the rows could not be read).
    floor_seq: i64,
}

impl Transcript {
    pub fn new(chat_id: ChatId) -> Self {
        Transcript {
            chat_id,
            ..Default::default()
        }
    }

    /// Restores items loaded from the store (ordered by seq); their seq is kept as stored.
    pub fn from_items(chat_id: ChatId, items: Vec<TranscriptItem>) -> Self {
        let mut t = Transcript::new(chat_id);
        for item in items {
            if let Some(p) = &item.part_id {
                t.by_part.insert(p.clone(), t.items.len());
            }
            t.items.push(Entry {
                item,
                unsaved: false,
            });
        }
        t
    }

    pub fn chat_id(&self) -> ChatId {
        self.chat_id
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn get(&self, idx: usize) -> Option<&TranscriptItem> {
        self.items.get(idx).map(|e| &e.item)
    }

    pub fn items(&self) -> impl Iterator<Item = &TranscriptItem> {
        self.items.iter().map(|e| &e.item)
    }

    /// Index of the item with this part id.
    pub fn find(&self, part_id: &str) -> Option<usize> {
        self.by_part.get(part_id).copied()
    }

    /// New items go at or after `seq` (stored rows this process could not load stay untouched).
    pub fn with_floor_seq(mut self, seq: i64) -> Self {
        self.floor_seq = seq;
        self
    }

    /// The seq a new item gets: after the highest one, so stored rows are never overwritten.
    fn next_seq(&self) -> i64 {
        self.items
            .last()
            .map_or(0, |e| e.item.seq + 1)
            .max(self.floor_seq)
    }

    /// Appends a new item; returns its index.
    pub fn push(
        &mut self,
        kind: ItemKind,
        part_id: Option<String>,
        content: String,
        meta: Json,
    ) -> usize {
        let idx = self.items.len();
        if let Some(p) = &part_id {
            self.by_part.insert(p.clone(), idx);
        }
        let seq = self.next_seq();
        self.items.push(Entry {
            item: TranscriptItem {
                chat_id: self.chat_id,
                seq,
                kind,
                part_id,
                content,
                meta,
            },
            unsaved: true,
        });
        idx
    }

    /// Replaces an item's content and meta (e.g. a tool's status).
    pub fn set(&mut self, idx: usize, content: String, meta: Json) -> Edit {
        let Some(e) = self.items.get_mut(idx) else {
            return Edit::None;
        };
        if e.item.content == content && e.item.meta == meta {
            return Edit::None;
        }
        e.item.content = content;
        e.item.meta = meta;
        e.unsaved = true;
        Edit::Replaced(idx)
    }

    /// Appends streamed text to an item.
    pub fn append(&mut self, idx: usize, delta: &str) -> Edit {
        let Some(e) = self.items.get_mut(idx) else {
            return Edit::None;
        };
        if delta.is_empty() {
            return Edit::None;
        }
        e.item.content.push_str(delta);
        e.unsaved = true;
        Edit::Appended(idx, delta.to_string())
    }

    /// Applies a backend change keyed by part id.
    pub fn apply(&mut self, change: ItemChange) -> Edit {
        match change {
            ItemChange::Upsert {
                part_id,
                kind,
                content,
                meta,
            } => match self.find(&part_id) {
                Some(idx) => self.set(idx, content, meta),
                None => Edit::Pushed(self.push(kind, Some(part_id), content, meta)),
            },
            ItemChange::Append { part_id, delta } => match self.find(&part_id) {
                Some(idx) => self.append(idx, &delta),
                // A delta for a part never announced: keep it as text rather than lose it.
                None => Edit::Pushed(self.push(ItemKind::Text, Some(part_id), delta, Json::Null)),
            },
        }
    }

    pub fn has_unsaved(&self) -> bool {
        self.items.iter().any(|e| e.unsaved)
    }

    /// Items changed since last taken, as store rows; marks them saved. A caller whose write
    /// fails hands them back with `unsaved_again`, so nothing is dropped until written.
    pub fn take_unsaved(&mut self) -> Vec<TranscriptItem> {
        let mut out = Vec::new();
        for e in &mut self.items {
            if std::mem::take(&mut e.unsaved) {
                out.push(e.item.clone());
            }
        }
        out
    }

    /// Marks these rows unsaved again (their write failed); newer edits stay as they are.
    pub fn unsaved_again(&mut self, seqs: impl IntoIterator<Item = i64>) {
        for seq in seqs {
            if let Ok(i) = self.items.binary_search_by_key(&seq, |e| e.item.seq) {
                self.items[i].unsaved = true;
            }
        }
    }
}

/// Every chat's transcript, owned by the app.
#[derive(Debug, Default)]
pub struct Transcripts {
    chats: HashMap<ChatId, Transcript>,
}

impl Transcripts {
    pub fn insert(&mut self, t: Transcript) {
        self.chats.entry(t.chat_id).or_insert(t);
    }

    pub fn remove(&mut self, chat: ChatId) -> Option<Transcript> {
        self.chats.remove(&chat)
    }

    pub fn get(&self, chat: ChatId) -> Option<&Transcript> {
        self.chats.get(&chat)
    }

    pub fn get_mut(&mut self, chat: ChatId) -> Option<&mut Transcript> {
        self.chats.get_mut(&chat)
    }

    pub fn has_unsaved(&self) -> bool {
        self.chats.values().any(Transcript::has_unsaved)
    }

    /// Unsaved rows of all chats, shown or not.
    pub fn take_unsaved(&mut self) -> Vec<TranscriptItem> {
        self.chats
            .values_mut()
            .flat_map(Transcript::take_unsaved)
            .collect()
    }

    /// Rows whose write failed become unsaved again.
    pub fn unsaved_again(&mut self, rows: &[TranscriptItem]) {
        for r in rows {
            if let Some(t) = self.chats.get_mut(&r.chat_id) {
                t.unsaved_again([r.seq]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(seq: i64, content: &str) -> TranscriptItem {
        TranscriptItem {
            chat_id: 3,
            seq,
            kind: ItemKind::Text,
            part_id: Some(format!("p{seq}")),
            content: content.into(),
            meta: json!({}),
        }
    }

    #[test]
    fn unsaved_items_are_reported_once_with_their_seq() {
        let mut t = Transcript::new(7);
        t.push(ItemKind::User, None, "q".into(), json!({}));
        t.apply(ItemChange::Upsert {
            part_id: "t".into(),
            kind: ItemKind::Text,
            content: "a".into(),
            meta: json!({}),
        });
        assert_eq!(t.take_unsaved().len(), 2);
        t.apply(ItemChange::Append {
            part_id: "t".into(),
            delta: "b".into(),
        });
        let rows = t.take_unsaved();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].seq, rows[0].content.as_str(), rows[0].chat_id),
            (1, "ab", 7)
        );
        assert!(t.take_unsaved().is_empty());
    }

    #[test]
    fn loaded_seqs_are_kept_and_new_items_go_after_the_highest() {
        // A gap (a row that could not be read, say) must not make new items overwrite rows.
        let mut t = Transcript::from_items(3, vec![row(0, "a"), row(5, "b")]);
        assert!(!t.has_unsaved());
        let idx = t.push(ItemKind::Info, None, "new".into(), json!({}));
        assert_eq!(t.get(idx).map(|i| i.seq), Some(6));
        t.apply(ItemChange::Append {
            part_id: "p5".into(),
            delta: "c".into(),
        });
        let mut seqs: Vec<i64> = t.take_unsaved().iter().map(|r| r.seq).collect();
        seqs.sort_unstable();
        assert_eq!(seqs, vec![5, 6]);
        let mut t = Transcript::new(3).with_floor_seq(9);
        let idx = t.push(ItemKind::Info, None, "x".into(), json!({}));
        assert_eq!(t.get(idx).map(|i| i.seq), Some(9));
    }

    #[test]
    fn a_failed_write_is_handed_out_again() {
        let mut all = Transcripts::default();
        all.insert(Transcript::from_items(3, vec![row(0, "a")]));
        all.get_mut(3).map(|t| t.append(0, "x"));
        let rows = all.take_unsaved();
        assert_eq!(rows.len(), 1);
        assert!(!all.has_unsaved());
        all.unsaved_again(&rows);
        assert_eq!(all.take_unsaved(), rows);
    }

    #[test]
    fn the_same_state_again_is_no_edit() {
        let mut t = Transcript::from_items(3, vec![row(0, "a")]);
        assert_eq!(t.set(0, "a".into(), json!({})), Edit::None);
        assert_eq!(
            t.set(0, "a".into(), json!({"status": "x"})),
            Edit::Replaced(0)
        );
        assert_eq!(t.take_unsaved().len(), 1);
    }
}
