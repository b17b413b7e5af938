//! The small views Lua shows besides transcripts: the statusline state, a permission prompt,
//! the choices of a picker. Their shape is decided here; `app/` fills them from its state.

use serde::Serialize;

use crate::model::{ChatId, SessionId};

/// The statusline state of the current chat (`require('boo').status()`). Absent fields are
/// left out, so Lua sees `nil` (a msgpack nil would arrive as the truthy `vim.NIL`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StatusView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat: Option<ChatId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub busy: bool,
    pub pending_changes: usize,
    pub permissions: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// The chat's agent session's modes (`qwen:plan`) and models, once it told them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<crate::agent::AgentOptions>,
}

/// A permission an agent asks for, as the prompt and `:Boo permissions` show it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PermissionView {
    pub id: String,
    pub chat: ChatId,
    pub title: String,
    /// The agent's kind of permission (`bash`, `edit`...).
    pub permission: String,
    pub patterns: Vec<String>,
}

/// One entry of a picker (`vim.ui.select`); `value` goes back to the backend.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Choice {
    pub label: String,
    pub value: ChoiceValue,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ChoiceValue {
    Id(i64),
    Name(&'static str),
}

impl Choice {
    pub fn new(label: impl Into<String>, value: ChoiceValue) -> Choice {
        Choice {
            label: label.into(),
            value,
        }
    }
}

/// A chat as `require('boo').chats()` lists it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChatEntry {
    pub id: ChatId,
    pub title: String,
    pub busy: bool,
    pub agent: String,
    pub model: Option<String>,
}
