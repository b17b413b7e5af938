//! The render ops Lua applies, as one typed enum: `ui/` builds them, `rpc/` encodes them
//! straight to msgpack (no JSON tree per frame), `lua/boo/ui/render.lua` dispatches on `op`.

use serde::Serialize;
use serde_json::Value as Json;

use super::layout::Decor;
use super::views::{Choice, PermissionView, StatusView};
use super::{PaneView, Tab};
use crate::model::{ChatId, PaneId, SessionId};

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Ensure the buffers of a chat exist.
    Chat {
        chat: ChatId,
        name: String,
        title: String,
    },
    /// Replace transcript lines `[first, last)` (0-based; `last = -1`: to the end); with
    /// `keep`, line `first` keeps that many bytes and `lines[0]` is what follows them.
    Lines {
        chat: ChatId,
        first: i64,
        last: i64,
        lines: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        keep: Option<usize>,
    },
    /// Markdown of one item from its row `from` on (see `HlOp`).
    Hl {
        chat: ChatId,
        seq: usize,
        from: usize,
        spans: Vec<(usize, usize, usize, &'static str)>,
        code: Vec<(usize, usize, String)>,
    },
    /// Items whose range or state changed.
    Decor {
        chat: ChatId,
        items: Vec<Decor>,
    },
    Pane(PaneView),
    Tabs {
        pane: PaneId,
        tabs: Vec<Tab>,
    },
    PaneClose {
        pane: PaneId,
    },
    /// One line for the user (`vim.log.levels`).
    Notify {
        msg: String,
        level: u8,
    },
    Autocmd {
        pattern: String,
        data: Json,
    },
    Status {
        status: StatusView,
    },
    InputClear {
        chat: ChatId,
    },
    /// A permission request.
    Permission(PermissionView),
    /// The review view of a session, or one file of it (`ui::review`).
    Review(super::review::ReviewOp),
    ReviewClose {
        session: SessionId,
    },
    Reload {
        paths: Vec<String>,
    },
    Select {
        prompt: String,
        items: Vec<Choice>,
        method: String,
        args: Json,
        field: String,
    },
    /// A read-only report buffer (`:Boo usage`, a turn's diff).
    Report {
        name: String,
        lines: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        filetype: Option<String>,
    },
    /// `:Boo arena`: its contestants, one line each (`ui::arena`).
    Arena(super::arena::ArenaView),
    /// `:Boo timeline`: a chat's turns (Lua lays them out, with local times).
    Timeline {
        chat: ChatId,
        title: String,
        turns: Vec<TimelineTurn>,
    },
}

/// One turn of the timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimelineTurn {
    pub turn: u32,
    pub prompt: String,
    /// When it was sent (unix ms).
    pub at_ms: i64,
    pub files: usize,
    pub additions: usize,
    pub deletions: usize,
    /// `done`, `undone` or `dropped`.
    pub state: String,
    /// Both snapshots exist (it can be undone, forked, diffed).
    pub checkpointed: bool,
}

/// One frame: the ops in the order Lua applies them.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Batch {
    pub ops: Vec<Op>,
}

impl Batch {
    /// The batch as JSON, for tests that look into it.
    pub fn to_json(&self) -> Json {
        serde_json::to_value(self).unwrap_or(Json::Null)
    }
}
