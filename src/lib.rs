//! boocoder: the backend process of boo.nvim.
//!
//! Rust owns the state (sessions, chats, panes, transcripts, worktrees, agent processes); the Lua
//! side owns the view. See DESIGN.md for who owns what; each module below owns one thing.

pub mod agent;
pub mod app;
pub mod config;
pub mod dispatch;
pub mod error;
pub mod logging;
pub mod mcp;
pub mod model;
pub mod rpc;
pub mod store;
pub mod ui;
pub mod worktree;

/// Version of the Lua <-> Rust protocol. Bumped on any incompatible change of method names or
/// payloads; the Lua side refuses a binary with another one.
pub const PROTOCOL_VERSION: u32 = 1;

/// The crate version, reported by `hello`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git revision the binary was built from (set by build.rs), so Lua can tell a stale binary.
pub const GIT_REVISION: &str = env!("BOO_GIT_REVISION");

/// Commit time (unix seconds) of that revision; 0 when unknown.
pub const GIT_COMMIT_TIME: &str = env!("BOO_GIT_COMMIT_TIME");
