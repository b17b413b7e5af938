//! The one integration-test crate: every layer's tests as modules of one binary (one link, one
//! process to run). Layers: `store_*` (SQLite), `worktree_*` (git), `agents_*`, `opencode_*`
//! (real opencode and CLIs with the scripted model), `e2e_*` (real Neovim with the plugin).
//! Run one layer or test with a filter: `cargo test --test it -- e2e_review::`.

mod support;

mod agents_acp;
mod agents_dispatch;
mod agents_external;
mod agents_probe;
mod ci_script;
mod cli_task;
mod e2e_acp;
mod e2e_agents;
mod e2e_arena;
mod e2e_chat_ui;
mod e2e_checkpoints;
mod e2e_compose;
mod e2e_conflicts;
mod e2e_foundation;
mod e2e_newcomer;
mod e2e_prepare;
mod e2e_recovery;
mod e2e_render;
mod e2e_renderers;
mod e2e_review;
mod e2e_secrets;
mod e2e_sessions;
mod e2e_tasks;
mod e2e_turns;
mod e2e_two_editors;
mod e2e_usage;
mod opencode_backend;
mod opencode_contract;
mod opencode_harness;
mod opencode_recovery;
mod opencode_replay;
mod opencode_v2;
mod store_api;
mod store_migrate;
mod store_multiprocess;
mod worktree_conflicts;
mod worktree_create;
mod worktree_eol;
mod worktree_large;
mod worktree_lifecycle;
mod worktree_names;
mod worktree_review;
mod worktree_scan;
mod worktree_snapshot;
mod worktree_spare;
mod worktree_submodule;
mod worktree_txn;
