//! Error types of the layers that do not own a module of their own. Layer errors live next to
//! their module (`store::StoreError`, `worktree::WorktreeError`, `agent::AgentError`) and are
//! turned into `{code, message}` only at the RPC boundary (`rpc::RpcError`).

use thiserror::Error;

/// Errors of the process as a whole (start-up, logging).
#[derive(Debug, Error)]
pub enum AppError {
    #[error("cannot open log file {path}: {source}")]
    Log {
        path: String,
        source: std::io::Error,
    },
    #[error("rpc channel failed: {0}")]
    Channel(String),
    #[error("{0}")]
    Usage(String),
}
