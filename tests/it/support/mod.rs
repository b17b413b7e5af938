//! Helpers shared by several test modules (the rest is in `crates/testkit`).

pub mod agents;
pub mod opencode;
pub mod worktree;
