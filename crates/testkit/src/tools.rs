//! Finds the tools the tests run for real. Order: an explicit env var (`BOO_NVIM`,
//! `BOO_OPENCODE`), the project's `.deps/bin` (made by `scripts/bootstrap`), then `PATH`.

use std::path::{Path, PathBuf};

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn find(env: &str, name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let local = repo_root().join(".deps/bin").join(name);
    if local.exists() {
        return local;
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("{name} not found: run scripts/bootstrap (or set {env})");
}

/// The Neovim binary the tests use.
pub fn nvim() -> PathBuf {
    find("BOO_NVIM", "nvim")
}

/// The pinned `opencode` binary the tests use.
pub fn opencode() -> PathBuf {
    find("BOO_OPENCODE", "opencode")
}

/// The `boocoder` binary cargo built for this test run (debug profile unless told otherwise).
pub fn boocoder() -> PathBuf {
    if let Some(p) = std::env::var_os("BOO_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    target.join("debug").join("boocoder")
}
