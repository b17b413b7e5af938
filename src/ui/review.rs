//! The review view Lua draws (`lua/boo/ui/review.lua`): a session's pending files with their
//! hunks, or one file's hunks loaded on demand. `app/review.rs` hands over the worktree's
//! `FileChange`s; what Lua gets of them is decided here.

use std::collections::HashSet;

use serde::Serialize;

use crate::model::SessionId;
use crate::worktree::review::hunk_ids;
use crate::worktree::{ChangeStatus, FileChange};

/// With more changed files than this, the view lists them and loads hunks per file on demand
/// (`<Tab>` on a file): Lua never holds the hunks of thousands of files at once.
pub const LAZY_FILES: usize = 1000;

/// What one `review` op carries.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ReviewOp {
    /// The whole view (opened, or refreshed after a turn or an accept).
    View(ReviewView),
    /// One file's hunks, for a lazy view.
    File {
        session: SessionId,
        file: ReviewFile,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReviewView {
    pub session: SessionId,
    pub title: String,
    /// Open the view (else only redraw it where it is open).
    pub open: bool,
    /// Over [`LAZY_FILES`] files: hunks come per file.
    pub lazy: bool,
    pub repo_root: String,
    pub worktree: String,
    pub files: Vec<ReviewFile>,
}

/// One file of the view. `None`s arrive as `vim.NIL`, which the view reads as absent.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReviewFile {
    pub path: String,
    pub old_path: Option<String>,
    pub status: ChangeStatus,
    pub additions: usize,
    pub deletions: usize,
    pub binary: bool,
    pub large: bool,
    /// A submodule's change: its `Subproject commit` line.
    pub submodule: Option<String>,
    /// Its hunks are left out until asked for.
    pub lazy: bool,
    pub hunks: Vec<ReviewHunk>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReviewHunk {
    /// A content fingerprint: an accept names the hunk it saw, never a stale index.
    pub id: String,
    pub header: String,
    pub new_start: u32,
    /// Each line prefixed with its origin (`+`, `-`, ` `).
    pub lines: Vec<String>,
}

/// The current session's worktree and pending paths (`review_info`, answered from memory).
/// Without a session only `files` (empty) is sent.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ReviewInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo_root: Option<String>,
    /// `None` while the worktree is being made.
    pub worktree: Option<String>,
    pub files: Vec<String>,
}

/// The whole view; over [`LAZY_FILES`] files only those in `expanded` carry hunks.
pub struct ViewArgs<'a> {
    pub session: SessionId,
    pub title: &'a str,
    pub repo_root: String,
    pub worktree: String,
    pub open: bool,
    pub expanded: Option<&'a HashSet<String>>,
}

pub fn view(args: ViewArgs<'_>, files: &[FileChange]) -> ReviewOp {
    let lazy = files.len() > LAZY_FILES;
    let files = files
        .iter()
        .map(|f| {
            file(
                f,
                !lazy || args.expanded.is_some_and(|e| e.contains(&f.path)),
            )
        })
        .collect();
    ReviewOp::View(ReviewView {
        session: args.session,
        title: args.title.to_string(),
        open: args.open,
        lazy,
        repo_root: args.repo_root,
        worktree: args.worktree,
        files,
    })
}

/// One file with its hunks, for a lazy view's `<Tab>`.
pub fn one_file(session: SessionId, f: &FileChange) -> ReviewOp {
    ReviewOp::File {
        session,
        file: file(f, true),
    }
}

fn file(f: &FileChange, with_hunks: bool) -> ReviewFile {
    let hunks = if with_hunks {
        f.hunks
            .iter()
            .zip(hunk_ids(&f.path, &f.hunks))
            .map(|(h, id)| ReviewHunk {
                id,
                header: h.header.clone(),
                new_start: h.new_start,
                lines: h
                    .lines
                    .iter()
                    .map(|l| {
                        let text = l.content.trim_end_matches(['\n', '\r']);
                        match l.origin {
                            '+' | '-' | ' ' => format!("{}{}", l.origin, text),
                            _ => "\\ No newline at end of file".to_string(),
                        }
                    })
                    .collect(),
            })
            .collect()
    } else {
        Vec::new()
    };
    ReviewFile {
        path: f.path.clone(),
        old_path: f.old_path.clone(),
        status: f.status,
        additions: f.additions,
        deletions: f.deletions,
        binary: f.binary,
        large: f.large,
        submodule: f
            .submodule
            .then(|| f.patch.lines().nth(1).unwrap_or_default().to_string()),
        lazy: !with_hunks && !f.hunks.is_empty(),
        hunks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worktree::{Hunk, HunkLine};

    fn change(path: &str) -> FileChange {
        let line = |origin, content: &str| HunkLine {
            origin,
            old_lineno: None,
            new_lineno: None,
            content: content.into(),
        };
        FileChange {
            path: path.into(),
            old_path: None,
            status: ChangeStatus::Modified,
            additions: 1,
            deletions: 1,
            binary: false,
            large: false,
            old_mode: 0o100644,
            new_mode: 0o100644,
            exec_changed: false,
            patch: String::new(),
            hunks: vec![Hunk {
                index: 0,
                header: "@@ -1 +1 @@".into(),
                old_start: 1,
                old_lines: 1,
                new_start: 1,
                new_lines: 1,
                lines: vec![line('-', "one\n"), line('+', "two\r\n"), line('>', "\n")],
            }],
            submodule: false,
        }
    }

    fn args(expanded: Option<&HashSet<String>>) -> ViewArgs<'_> {
        ViewArgs {
            session: 3,
            title: "s",
            repo_root: "/r".into(),
            worktree: "/w".into(),
            open: true,
            expanded,
        }
    }

    #[test]
    fn a_view_carries_hunk_lines_with_their_origin_and_names_hunks_by_content() {
        let v = serde_json::to_value(view(args(None), &[change("a.txt")])).unwrap();
        let f = &v["files"][0];
        assert_eq!(
            (f["path"].as_str(), f["status"].as_str()),
            (Some("a.txt"), Some("modified"))
        );
        assert_eq!(f["old_path"], serde_json::Value::Null);
        assert_eq!(
            f["hunks"][0]["lines"],
            serde_json::json!(["-one", "+two", "\\ No newline at end of file"])
        );
        let id = f["hunks"][0]["id"].as_str().unwrap().to_string();
        assert_eq!(id, hunk_ids("a.txt", &change("a.txt").hunks)[0]);
        assert_eq!(
            (v["lazy"].as_bool(), f["lazy"].as_bool()),
            (Some(false), Some(false))
        );
    }

    #[test]
    fn over_the_lazy_limit_only_expanded_files_carry_hunks() {
        let files: Vec<FileChange> = (0..=LAZY_FILES).map(|i| change(&format!("f{i}"))).collect();
        let expanded: HashSet<String> = ["f7".to_string()].into();
        let ReviewOp::View(v) = view(args(Some(&expanded)), &files) else {
            panic!("a view")
        };
        assert!(v.lazy);
        let with: Vec<&str> = v
            .files
            .iter()
            .filter(|f| !f.hunks.is_empty())
            .map(|f| f.path.as_str())
            .collect();
        assert_eq!(with, ["f7"]);
        assert!(v.files[0].lazy && !v.files[7].lazy);
        let one = serde_json::to_value(one_file(3, &files[0])).unwrap();
        assert_eq!(one["session"], 3);
        assert_eq!(one["file"]["hunks"][0]["lines"][0], "-one");
    }
}
