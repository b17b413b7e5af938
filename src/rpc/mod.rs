//! The only module that knows msgpack: method names, decoding into typed `Request`/`Notify`
//! enums, and errors turned into `{code, message}` at the boundary.

pub mod convert;
mod server;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

pub use server::{serve_stdio, Inbound, Nvim, NvimFrontend};

use crate::config::Config;
use crate::model::{ChatId, PaneId, SessionId};

/// The Lua entry point of render batches (`lua/boo/ui/render.lua`).
pub const RENDER_ENTRY: &str = "return require('boo.ui.render').apply(...)";
/// The text of a loaded buffer by path, or nil (for ACP agents' file reads).
pub const BUFFER_TEXT_ENTRY: &str = "return require('boo.buffers').text(...)";

/// Error codes Lua can switch on; the message is one line for the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    UnknownMethod,
    BadArguments,
    Internal,
    NotFound,
    Busy,
    Backend,
}

/// An error at the RPC boundary: `{code, message}` for Lua.
#[derive(Clone, Debug, PartialEq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct RpcError {
    pub code: ErrorCode,
    pub message: String,
}

impl RpcError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
        }
    }
}

/// Arguments of `hello`: what the Lua side expects.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct HelloArgs {
    #[serde(default)]
    pub protocol: Option<u32>,
}

/// Reply of `hello`.
#[derive(Clone, Debug, Serialize)]
pub struct HelloReply {
    pub protocol: u32,
    pub version: &'static str,
    pub revision: &'static str,
    pub commit_time: i64,
    pub pid: u32,
    /// What keeps started processes from outliving the backend (for `:checkhealth`).
    pub guard: String,
}

impl HelloReply {
    pub fn current() -> Self {
        HelloReply {
            protocol: crate::PROTOCOL_VERSION,
            version: crate::VERSION,
            revision: crate::GIT_REVISION,
            commit_time: crate::GIT_COMMIT_TIME.parse().unwrap_or(0),
            pid: std::process::id(),
            guard: crate::agent::process::guard_status(),
        }
    }
}

/// Requests: fast queries the editor waits on (`vim.rpcrequest`). Answered from memory.
#[derive(Clone, Debug)]
pub enum Request {
    Hello(HelloArgs),
    Ping,
    /// The chats of the session shown in a pane (for the picker).
    Chats(PaneArgs),
    /// Pending permission requests of all sessions.
    Permissions,
    /// The current session's worktree and pending paths (completion of `:Boo accept`).
    ReviewInfo(CwdArgs),
    /// The last probe of agents and models (`refresh`: start a new one).
    Probe(ProbeArgs),
    /// The worktree files of a chat's session, as last listed (`@` completion).
    Files(ChatArgs),
    /// The agent's own commands in a chat's session: name -> description.
    Commands(ChatArgs),
    /// A chat's input history (oldest first) and its saved draft.
    History(ChatArgs),
}

/// Notifications: user intents (`vim.rpcnotify`); their results come back as render batches.
#[derive(Clone, Debug)]
pub enum Notify {
    /// A line for the backend log (the Lua side's own failures).
    Log {
        message: String,
    },
    /// The resolved configuration; sent right after `hello` and on every `setup()`.
    Configure(Box<Config>),
    /// Show the floating chat of the cwd's repository (creating its session on first use).
    Show(CwdArgs),
    Send(SendArgs),
    /// `require('boo').task(...)`: a turn in a new chat (see `app::tasks`).
    Task(TaskArgs),
    Abort(ChatArgs),
    NewChat(ChatArgs),
    TabClose(ChatArgs),
    TabNext(ChatArgs),
    TabPrev(ChatArgs),
    /// Make `chat` the active tab of `pane` (picker, winbar click).
    SelectChat(ChatArgs),
    Split(SplitArgs),
    /// The user closed a pane's window (`:q`, `<C-w>c`, `q`).
    PaneClosed(ChatArgs),
    /// `:Boo close` on the current pane.
    ClosePane(ChatArgs),
    Reopen(CwdArgs),
    /// After a backend crash: the panes Lua still shows, to be adopted under their ids.
    Restore(RestoreArgs),
    PermissionReply(PermissionReplyArgs),
    /// Compute the session's pending diff and open the review view.
    Diff(ReviewArgs),
    /// `:Boo usage`: the usage report buffer.
    Usage(UsageArgs),
    /// `:checkhealth boo`: the store's facts, answered as the `User BooHealth` event.
    Health,
    Accept(ReviewActionArgs),
    Reject(ReviewActionArgs),
    /// The review buffer of a session was closed.
    ReviewClosed(ReviewArgs),
    /// `:Boo session`: pick one of the repository's sessions.
    SessionPick(CwdArgs),
    SessionSwitch(SessionCmdArgs),
    SessionNew(SessionCmdArgs),
    SessionRename(SessionCmdArgs),
    SessionDelete(SessionCmdArgs),
    /// `:Boo agent {name}`: the agent of a chat.
    SetAgent(SetArgs),
    /// `:Boo model {provider/model}`: the model of a chat (empty: the default).
    SetModel(SetArgs),
    /// List the files of a chat's worktree again (the input gained focus).
    FilesRefresh(ChatArgs),
    /// The unsent text of a chat's input, saved so it survives a restart.
    Draft(DraftArgs),
    /// `:Boo undo` / `:Boo redo` on a chat's turns.
    Undo(ChatArgs),
    Redo(ChatArgs),
    /// `:Boo fork [session]`: a new chat starting from one turn.
    Fork(ForkArgs),
    /// `:Boo timeline`, its `<CR>` (one turn's diff) and `u` (undo back to that turn).
    Timeline(ChatArgs),
    TurnDiff(ForkArgs),
    UndoTo(ForkArgs),
    /// `:Boo arena [{prompt}]`: one new session per contestant (see `app::arena`).
    Arena(ArenaArgs),
    /// A key of the arena view on one contestant.
    ArenaAction(ArenaActionArgs),
}

/// `:Boo arena`: the prompt and the contestants (`agent` or `agent:provider/model`); without
/// contestants, the saved set `arena.contestants`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ArenaArgs {
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub prompt: String,
    #[serde(default)]
    pub contestants: Option<Vec<String>>,
}

/// `action`: open, diff, check, output, win, refresh; `index` is 1-based; `choice` answers the
/// winner's question (remove, keep, cancel).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ArenaActionArgs {
    #[serde(default)]
    pub cwd: Option<String>,
    pub arena: u32,
    #[serde(default)]
    pub index: usize,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub choice: Option<String>,
}

/// The chat (as [`ChatArgs`]) and the turn a fork starts from: the one holding transcript item
/// `seq` (the cursor), turn number `turn`, or the last.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ForkArgs {
    #[serde(default)]
    pub pane: Option<PaneId>,
    #[serde(default)]
    pub chat: Option<ChatId>,
    #[serde(default)]
    pub seq: Option<usize>,
    #[serde(default)]
    pub turn: Option<u32>,
    /// In a new session with its own worktree.
    #[serde(default)]
    pub session: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct DraftArgs {
    pub chat: ChatId,
    #[serde(default)]
    pub text: String,
}

/// Targets the given session, else the current one (of the cwd's repository).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ReviewArgs {
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub session: Option<SessionId>,
    /// Only this file's hunks (a view of many files loads them on demand).
    #[serde(default)]
    pub path: Option<String>,
}

/// Accept or reject: everything, one file (`path`), or some of its hunks (`hunks`: the ids the
/// review view was given).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ReviewActionArgs {
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub session: Option<SessionId>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub hunks: Option<Vec<String>>,
    /// Absolute paths of buffers with unsaved edits (never clobbered by an accept).
    #[serde(default)]
    pub modified: Vec<String>,
    /// Show what the accept would write and ask, instead of accepting (a hunk that another
    /// session or the user's checkout also changes).
    #[serde(default)]
    pub preview: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct SessionCmdArgs {
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub session: Option<SessionId>,
    #[serde(default)]
    pub title: Option<String>,
    /// The user's answer to a question (`session_delete`: stash, force or cancel).
    #[serde(default)]
    pub choice: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct ProbeArgs {
    #[serde(default)]
    pub refresh: bool,
}

/// Sets something of a chat (the given one, else the pane's active one, else the current).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct SetArgs {
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub pane: Option<PaneId>,
    #[serde(default)]
    pub chat: Option<ChatId>,
    #[serde(default)]
    pub name: Option<String>,
}

/// `today`: the user's local midnight in unix seconds (the backend knows no time zone).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct UsageArgs {
    #[serde(default)]
    pub today: Option<u64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct CwdArgs {
    #[serde(default)]
    pub cwd: Option<String>,
}

/// One pane of the view a crashed backend left: its id in Lua, its kind (`float` or `chat`),
/// its tabs (chat ids) and active chat, and the `<mods>` a split was opened with.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RestorePane {
    pub pane: PaneId,
    pub kind: String,
    #[serde(default)]
    pub tabs: Vec<ChatId>,
    #[serde(default)]
    pub active: Option<ChatId>,
    #[serde(default)]
    pub mods: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct RestoreArgs {
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub panes: Vec<RestorePane>,
    /// The pane the user was in.
    #[serde(default)]
    pub current: Option<PaneId>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct PaneArgs {
    #[serde(default)]
    pub pane: Option<PaneId>,
}

/// Targets the given chat, else the active chat of the given pane, else the current one.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ChatArgs {
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub pane: Option<PaneId>,
    #[serde(default)]
    pub chat: Option<ChatId>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct SendArgs {
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub pane: Option<PaneId>,
    #[serde(default)]
    pub chat: Option<ChatId>,
    pub text: String,
    /// Sent from the input buffer: clear it once the prompt is accepted.
    #[serde(default)]
    pub from_input: bool,
    /// Who asked: "user" (default), "selection", "api".
    #[serde(default)]
    pub creator: Option<String>,
    /// Editor context gathered by Lua (`#buffer`, `#diagnostics`...), sent after the text.
    #[serde(default)]
    pub context: Vec<ContextArg>,
    /// One of the agent's own commands (opencode's `/name`), run with `text` as its arguments.
    #[serde(default)]
    pub command: Option<String>,
}

/// A turn without a chat: the session is `session`, else the current one.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TaskArgs {
    #[serde(default)]
    pub cwd: Option<String>,
    pub prompt: String,
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub session: Option<SessionId>,
    /// A chat to run in instead of a new one.
    #[serde(default)]
    pub chat: Option<ChatId>,
}

/// One piece of editor context: a label (`#buffer src/app.py`) and its text.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ContextArg {
    pub label: String,
    pub text: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct SplitArgs {
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub pane: Option<PaneId>,
    /// chat | term | code
    #[serde(default)]
    pub kind: Option<String>,
    /// `:vertical`, `:horizontal`, `:tab`... as Lua's `<mods>`.
    #[serde(default)]
    pub mods: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct PermissionReplyArgs {
    pub id: String,
    pub reply: String,
}

impl Request {
    pub fn decode(name: &str, args: &[Json]) -> Result<Request, RpcError> {
        match name {
            "hello" => Ok(Request::Hello(first_arg(name, args)?)),
            "ping" => Ok(Request::Ping),
            "chats" => Ok(Request::Chats(first_arg(name, args)?)),
            "permissions" => Ok(Request::Permissions),
            "review_info" => Ok(Request::ReviewInfo(first_arg(name, args)?)),
            "probe" => Ok(Request::Probe(first_arg(name, args)?)),
            "files" => Ok(Request::Files(first_arg(name, args)?)),
            "commands" => Ok(Request::Commands(first_arg(name, args)?)),
            "history" => Ok(Request::History(first_arg(name, args)?)),
            _ => Err(unknown(name)),
        }
    }
}

impl Notify {
    pub fn decode(name: &str, args: &[Json]) -> Result<Notify, RpcError> {
        #[derive(Default, Deserialize)]
        struct LogArgs {
            message: String,
        }
        Ok(match name {
            "log" => {
                let a: LogArgs = first_arg(name, args)?;
                Notify::Log { message: a.message }
            }
            "configure" => Notify::Configure(Box::new(Config::decode(args.first()))),
            "show" => Notify::Show(first_arg(name, args)?),
            "send" => Notify::Send(first_arg(name, args)?),
            "task" => Notify::Task(first_arg(name, args)?),
            "abort" => Notify::Abort(first_arg(name, args)?),
            "new_chat" => Notify::NewChat(first_arg(name, args)?),
            "tab_close" => Notify::TabClose(first_arg(name, args)?),
            "tab_next" => Notify::TabNext(first_arg(name, args)?),
            "tab_prev" => Notify::TabPrev(first_arg(name, args)?),
            "select_chat" => Notify::SelectChat(first_arg(name, args)?),
            "split" => Notify::Split(first_arg(name, args)?),
            "pane_closed" => Notify::PaneClosed(first_arg(name, args)?),
            "close_pane" => Notify::ClosePane(first_arg(name, args)?),
            "reopen" => Notify::Reopen(first_arg(name, args)?),
            "restore" => Notify::Restore(first_arg(name, args)?),
            "permission_reply" => Notify::PermissionReply(first_arg(name, args)?),
            "diff" => Notify::Diff(first_arg(name, args)?),
            "usage" => Notify::Usage(first_arg(name, args)?),
            "health" => Notify::Health,
            "accept" => Notify::Accept(first_arg(name, args)?),
            "reject" => Notify::Reject(first_arg(name, args)?),
            "review_closed" => Notify::ReviewClosed(first_arg(name, args)?),
            "session_pick" => Notify::SessionPick(first_arg(name, args)?),
            "session_switch" => Notify::SessionSwitch(first_arg(name, args)?),
            "session_new" => Notify::SessionNew(first_arg(name, args)?),
            "session_rename" => Notify::SessionRename(first_arg(name, args)?),
            "session_delete" => Notify::SessionDelete(first_arg(name, args)?),
            "set_agent" => Notify::SetAgent(first_arg(name, args)?),
            "set_model" => Notify::SetModel(first_arg(name, args)?),
            "files_refresh" => Notify::FilesRefresh(first_arg(name, args)?),
            "draft" => Notify::Draft(first_arg(name, args)?),
            "undo" => Notify::Undo(first_arg(name, args)?),
            "redo" => Notify::Redo(first_arg(name, args)?),
            "fork" => Notify::Fork(first_arg(name, args)?),
            "timeline" => Notify::Timeline(first_arg(name, args)?),
            "turn_diff" => Notify::TurnDiff(first_arg(name, args)?),
            "undo_to" => Notify::UndoTo(first_arg(name, args)?),
            "arena" => Notify::Arena(first_arg(name, args)?),
            "arena_action" => Notify::ArenaAction(first_arg(name, args)?),
            _ => return Err(unknown(name)),
        })
    }
}

fn unknown(name: &str) -> RpcError {
    RpcError::new(
        ErrorCode::UnknownMethod,
        format!("unknown method '{name}' (is the boocoder binary older than the plugin?)"),
    )
}

/// Decodes the first argument (a Lua table, or nothing) into `T`.
fn first_arg<T: DeserializeOwned + Default>(name: &str, args: &[Json]) -> Result<T, RpcError> {
    match args.first() {
        None | Some(Json::Null) => Ok(T::default()),
        // An empty Lua table arrives as an empty array.
        Some(Json::Array(a)) if a.is_empty() => Ok(T::default()),
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
            RpcError::new(
                ErrorCode::BadArguments,
                format!("bad arguments to '{name}': {e}"),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_hello_with_and_without_args() {
        match Request::decode("hello", &[json!({"protocol": 1})]).unwrap() {
            Request::Hello(a) => assert_eq!(a.protocol, Some(1)),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            Request::decode("hello", &[]).unwrap(),
            Request::Hello(_)
        ));
        assert!(matches!(
            Request::decode("hello", &[json!([])]).unwrap(),
            Request::Hello(_)
        ));
    }

    #[test]
    fn unknown_method_and_bad_args_are_typed_errors() {
        let e = Request::decode("nope", &[]).unwrap_err();
        assert_eq!(e.code, ErrorCode::UnknownMethod);
        let e = Request::decode("hello", &[json!({"protocol": "x"})]).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadArguments);
        assert!(e.message.contains("hello"), "{}", e.message);
    }
}
