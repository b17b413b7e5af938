//! The configuration Lua sends after `hello` (paths already resolved against stdpath()).

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct OpencodeConfig {
    pub cmd: Option<String>,
    pub url: Option<String>,
    pub password: Option<String>,
    /// "provider/model"; None = opencode's own default.
    pub model: Option<String>,
    pub watchdog_seconds: Option<u64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    /// SQLite database file.
    pub store_path: Option<PathBuf>,
    /// Root folder of session worktrees.
    pub worktree_dir: Option<PathBuf>,
    /// Ignored files copied into a new worktree.
    pub copy_ignored: Vec<String>,
    pub opencode: OpencodeConfig,
}
