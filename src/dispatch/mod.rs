//! Turn queue per chat, model coalescing, diff-supersede after a turn.
