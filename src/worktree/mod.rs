//! git worktrees, diffs, apply/revert (the only place with git).
