//! Turns state changes into render batches for Lua; the only module that draws.
//!
//! Changes accumulate between frames; `frame()` builds one batch of typed ops for everything
//! visible that changed. Chats not on screen are not rendered until shown. The batch is sent by
//! the app with one `exec_lua` (see `Frontend`), and the next one waits until it was applied, so
//! RPC calls are bounded by frames Neovim can take, never by streamed chunks.

pub mod arena;
pub mod layout;
pub mod markdown;
pub mod ops;
pub mod review;
pub mod usage;
pub mod views;

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value as Json;

use crate::model::transcript::{Edit, Transcript};
use crate::model::{ChatId, PaneId};
use layout::ChatLayout;
pub use ops::{Batch, Op, TimelineTurn};
pub use views::{ChatEntry, Choice, ChoiceValue, PermissionView, StatusView};

/// Where batches go: Neovim in the product (`rpc::NvimFrontend`).
#[async_trait]
pub trait Frontend: Send + Sync + 'static {
    async fn apply(&self, batch: Batch) -> Result<(), String>;

    /// The text of the editor's loaded buffer for `path` (unsaved edits included), if any.
    async fn buffer_text(&self, _path: &std::path::Path) -> Option<String> {
        None
    }
}

/// A tab as the winbar shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Tab {
    pub chat: ChatId,
    pub title: String,
    pub active: bool,
    pub busy: bool,
    /// The active tab's agent, model and usage totals (for the winbar's right side).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<String>,
}

/// What a pane shows; sent when it opens or switches chat.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PaneView {
    pub pane: PaneId,
    /// float | chat | term | code
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat: Option<ChatId>,
    pub tabs: Vec<Tab>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mods: Option<String>,
    pub focus: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
}

#[derive(Default)]
struct ChatRender {
    name: String,
    title: String,
    layout: ChatLayout,
    /// The Lua buffers exist (a `chat` op was sent in this process).
    created: bool,
}

#[derive(Default)]
pub struct Ui {
    chats: HashMap<ChatId, ChatRender>,
    visible: HashSet<ChatId>,
    /// Ops that are not chat content (panes, notifications, events), in order.
    ops: Vec<Op>,
    /// Ops that must run after the content of this frame (showing a pane moves its cursor).
    late_ops: Vec<Op>,
    last_status: Option<StatusView>,
}

impl Ui {
    pub fn new() -> Self {
        Ui::default()
    }

    /// Registers a chat (its buffer name and title) with its transcript as it is.
    pub fn add_chat(&mut self, chat: ChatId, name: String, title: String, t: &Transcript) {
        self.chats.entry(chat).or_insert_with(|| ChatRender {
            name,
            title,
            layout: ChatLayout::from_transcript(t),
            created: false,
        });
    }

    pub fn has_chat(&self, chat: ChatId) -> bool {
        self.chats.contains_key(&chat)
    }

    pub fn set_title(&mut self, chat: ChatId, title: String) {
        if let Some(c) = self.chats.get_mut(&chat) {
            c.title = title;
        }
    }

    pub fn remove_chat(&mut self, chat: ChatId) {
        self.chats.remove(&chat);
        self.visible.remove(&chat);
    }

    pub fn layout(&self, chat: ChatId) -> Option<&ChatLayout> {
        self.chats.get(&chat).map(|c| &c.layout)
    }

    /// An edit the app made to a chat's transcript (`t`, after the edit).
    pub fn edited(&mut self, chat: ChatId, t: &Transcript, edit: &Edit) {
        if let Some(c) = self.chats.get_mut(&chat) {
            c.layout.update(t, edit);
        }
    }

    /// The chats on screen; only they are rendered.
    pub fn set_visible(&mut self, chats: HashSet<ChatId>) {
        self.visible = chats;
    }

    pub fn show_pane(&mut self, view: PaneView) {
        self.late_ops.push(Op::Pane(view));
    }

    pub fn tabs(&mut self, pane: PaneId, tabs: Vec<Tab>) {
        self.late_ops.push(Op::Tabs { pane, tabs });
    }

    pub fn close_pane(&mut self, pane: PaneId) {
        self.ops.push(Op::PaneClose { pane });
    }

    /// One line for the user (`vim.log.levels`: 2 info, 3 warn, 4 error).
    pub fn notify(&mut self, msg: impl Into<String>, level: u8) {
        self.late_ops.push(Op::Notify {
            msg: msg.into(),
            level,
        });
    }

    pub fn autocmd(&mut self, pattern: &str, data: Json) {
        self.late_ops.push(Op::Autocmd {
            pattern: pattern.to_string(),
            data,
        });
    }

    /// The statusline state; sent only when it changed.
    pub fn status(&mut self, status: StatusView) {
        if self.last_status.as_ref() == Some(&status) {
            return;
        }
        self.last_status = Some(status.clone());
        self.late_ops.push(Op::Status { status });
    }

    pub fn input_clear(&mut self, chat: ChatId) {
        self.late_ops.push(Op::InputClear { chat });
    }

    pub fn permission(&mut self, request: PermissionView) {
        self.late_ops.push(Op::Permission(request));
    }

    /// The review view of a session (see `app::review`); `view` carries `open` and the files.
    pub fn review(&mut self, view: review::ReviewOp) {
        self.late_ops.push(Op::Review(view));
    }

    /// Closes a session's review view, if open.
    pub fn review_close(&mut self, session: crate::model::SessionId) {
        self.late_ops.push(Op::ReviewClose { session });
    }

    /// Reloads the open, unmodified buffers of these files (absolute paths).
    pub fn reload(&mut self, paths: Vec<String>) {
        if !paths.is_empty() {
            self.late_ops.push(Op::Reload { paths });
        }
    }

    /// Asks the user to choose (`vim.ui.select` of `[{label, value}]`); the chosen `value` comes
    /// back as notification `method` with `args` plus `field = value`.
    pub fn select(
        &mut self,
        prompt: &str,
        items: Vec<Choice>,
        method: &str,
        args: Json,
        field: &str,
    ) {
        self.late_ops.push(Op::Select {
            prompt: prompt.to_string(),
            items,
            method: method.to_string(),
            args,
            field: field.to_string(),
        });
    }

    /// The arena view (`ui::arena`).
    pub fn arena(&mut self, view: arena::ArenaView) {
        self.late_ops.push(Op::Arena(view));
    }

    /// Shows a read-only report buffer named `name`.
    pub fn report(&mut self, name: &str, lines: Vec<String>) {
        self.report_as(name, lines, None)
    }

    /// [`Ui::report`] with a filetype (e.g. `diff`).
    pub fn report_as(&mut self, name: &str, lines: Vec<String>, filetype: Option<&str>) {
        self.late_ops.push(Op::Report {
            name: name.to_string(),
            lines,
            filetype: filetype.map(str::to_string),
        });
    }

    /// Shows (or refreshes) the timeline buffer of a chat.
    pub fn timeline(&mut self, chat: ChatId, title: String, turns: Vec<TimelineTurn>) {
        self.late_ops.push(Op::Timeline { chat, title, turns });
    }

    /// Ensures Lua has a chat's buffers (needed before a pane can show it).
    pub fn ensure_created(&mut self, chat: ChatId) {
        if let Some(c) = self.chats.get_mut(&chat) {
            if !c.created {
                self.ops.push(Op::Chat {
                    chat,
                    name: c.name.clone(),
                    title: c.title.clone(),
                });
                c.created = true;
                c.layout.invalidate();
            }
        }
    }

    /// Whether anything waits to be drawn.
    pub fn is_dirty(&self) -> bool {
        !self.ops.is_empty()
            || !self.late_ops.is_empty()
            || self
                .visible
                .iter()
                .any(|c| self.chats.get(c).is_some_and(|r| r.layout.is_dirty()))
    }

    /// The batch for this frame, or None when nothing changed.
    pub fn frame(&mut self) -> Option<Batch> {
        let mut visible: Vec<ChatId> = self.visible.iter().copied().collect();
        visible.sort_unstable();
        for chat in &visible {
            self.ensure_created(*chat);
        }
        let mut ops = std::mem::take(&mut self.ops);
        for chat in visible {
            let Some(c) = self.chats.get_mut(&chat) else {
                continue;
            };
            // Lines first: marks and folds are placed on lines that exist.
            let f = c.layout.flush();
            for l in f.lines {
                ops.push(Op::Lines {
                    chat,
                    first: l.first,
                    last: l.last,
                    lines: l.lines,
                    keep: l.keep,
                });
            }
            for h in f.hl {
                ops.push(Op::Hl {
                    chat,
                    seq: h.seq,
                    from: h.from,
                    spans: h.spans,
                    code: h.code,
                });
            }
            if !f.decor.is_empty() {
                ops.push(Op::Decor {
                    chat,
                    items: f.decor,
                });
            }
        }
        ops.append(&mut self.late_ops);
        if ops.is_empty() {
            None
        } else {
            Some(Batch { ops })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ItemChange, ItemKind};
    use serde_json::json;

    fn change(ui: &mut Ui, t: &mut Transcript, c: ItemChange) {
        let e = t.apply(c);
        ui.edited(t.chat_id(), t, &e);
    }

    #[test]
    fn hidden_chats_are_not_rendered_until_shown() {
        let mut ui = Ui::new();
        let mut t = Transcript::new(1);
        ui.add_chat(1, "boo://s/1".into(), "one".into(), &t);
        change(
            &mut ui,
            &mut t,
            ItemChange::Upsert {
                part_id: "p".into(),
                kind: ItemKind::Text,
                content: "hi".into(),
                meta: Json::Null,
            },
        );
        assert!(ui.frame().is_none(), "not visible: nothing to draw");
        ui.set_visible([1].into_iter().collect());
        let batch = ui.frame().expect("visible now").to_json();
        let ops = batch["ops"].as_array().expect("ops");
        assert_eq!(ops[0]["op"], "chat");
        assert!(ops
            .iter()
            .any(|o| o["op"] == "lines" && o["lines"][0] == "hi"));
        assert!(ui.frame().is_none(), "nothing changed since");
    }

    #[test]
    fn status_drops_nulls_and_is_sent_only_when_it_changes() {
        let mut ui = Ui::new();
        ui.status(StatusView::default());
        let b = ui.frame().expect("first status").to_json();
        assert_eq!(
            b["ops"][0]["status"],
            json!({"busy": false, "pending_changes": 0, "permissions": 0})
        );
        ui.status(StatusView::default());
        assert!(ui.frame().is_none(), "unchanged");
        ui.status(StatusView {
            busy: true,
            ..Default::default()
        });
        assert!(ui.frame().is_some());
    }

    #[test]
    fn many_deltas_in_one_frame_become_one_lines_op() {
        let mut ui = Ui::new();
        let mut t = Transcript::new(1);
        ui.add_chat(1, "b".into(), "t".into(), &t);
        ui.set_visible([1].into_iter().collect());
        change(
            &mut ui,
            &mut t,
            ItemChange::Upsert {
                part_id: "p".into(),
                kind: ItemKind::Text,
                content: String::new(),
                meta: Json::Null,
            },
        );
        ui.frame();
        for _ in 0..1000 {
            change(
                &mut ui,
                &mut t,
                ItemChange::Append {
                    part_id: "p".into(),
                    delta: "x".into(),
                },
            );
        }
        let batch = ui.frame().expect("dirty").to_json();
        let lines: Vec<_> = batch["ops"]
            .as_array()
            .expect("ops")
            .iter()
            .filter(|o| o["op"] == "lines")
            .collect();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["lines"][0].as_str().map(str::len), Some(1000));
    }
}
