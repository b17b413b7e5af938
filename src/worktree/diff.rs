//! The pending diff: worktree (committed + uncommitted + untracked) vs the review base.
//!
//! libgit2 finds *which* files changed (tree vs index vs working directory, using the index's stat
//! cache, with rename detection); the patch of each file is then computed from the two contents
//! with [`file_patch`], which accept/reject reuse so hunk indices always resolve the same way.

use std::path::Path;

use git2::{Delta, DiffFindOptions, DiffOptions, FileMode, Oid, Patch, Repository, Tree};
use tracing::debug;

use super::create::{open_wt_repo, review_base};
use super::paths::{self, Content, MODE_EXEC, MODE_FILE, MODE_LINK};
use super::{
    ChangeStatus, FileChange, Hunk, HunkLine, Result, SessionWorktree, WorktreeError, CONTEXT_LINES,
};

/// A changed file as found by libgit2, before contents are loaded.
#[derive(Clone, Debug)]
pub(crate) struct RawChange {
    pub status: ChangeStatus,
    pub old_path: String,
    pub new_path: String,
    pub old_id: Oid,
}

/// Both sides of a change.
pub(crate) struct Sides {
    pub base: Option<Content>,
    pub work: Option<Content>,
}

/// The text patch of one file.
pub(crate) struct FilePatch {
    pub binary: bool,
    pub hunks: Vec<Hunk>,
    pub additions: usize,
    pub deletions: usize,
}

/// Lists the files that differ between `tree` and the worktree of `repo`. With `only`, the diff is
/// limited to that exact path (no rename detection possible then).
pub(crate) fn list_changes(
    repo: &Repository,
    tree: &Tree<'_>,
    only: Option<&str>,
) -> Result<Vec<RawChange>> {
    let mut opts = DiffOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_typechange(true)
        .ignore_submodules(true)
        .context_lines(CONTEXT_LINES);
    if let Some(p) = only {
        opts.pathspec(p).disable_pathspec_match(true);
    }
    let mut diff = repo.diff_tree_to_workdir(Some(tree), Some(&mut opts))?;
    if only.is_none() {
        let mut find = DiffFindOptions::new();
        find.renames(true).for_untracked(true);
        diff.find_similar(Some(&mut find))?;
    }
    let mut out = Vec::new();
    for delta in diff.deltas() {
        let status = match delta.status() {
            Delta::Added | Delta::Untracked => ChangeStatus::Added,
            Delta::Deleted => ChangeStatus::Deleted,
            Delta::Modified | Delta::Conflicted => ChangeStatus::Modified,
            Delta::Renamed => ChangeStatus::Renamed,
            Delta::Typechange => ChangeStatus::Typechange,
            _ => continue,
        };
        if delta.old_file().mode() == FileMode::Commit
            || delta.new_file().mode() == FileMode::Commit
        {
            debug!("submodule change skipped");
            continue;
        }
        let path_of = |f: git2::DiffFile<'_>| f.path().map(paths::git_path);
        let (Some(old_path), Some(new_path)) =
            (path_of(delta.old_file()), path_of(delta.new_file()))
        else {
            continue;
        };
        out.push(RawChange {
            status,
            old_path,
            new_path,
            old_id: delta.old_file().id(),
        });
    }
    Ok(out)
}

/// Loads the review-base side (from the object database) and the worktree side (from disk).
pub(crate) fn load_sides(
    repo: &Repository,
    tree: &Tree<'_>,
    wt_root: &Path,
    c: &RawChange,
) -> Result<Sides> {
    let base = if c.status == ChangeStatus::Added {
        None
    } else {
        match tree.get_path(Path::new(&c.old_path)) {
            Ok(entry) => {
                let blob = repo.find_blob(entry.id())?;
                Some(Content {
                    bytes: blob.content().to_vec(),
                    mode: normalize_mode(entry.filemode() as u32),
                })
            }
            Err(_) if !c.old_id.is_zero() => {
                let blob = repo.find_blob(c.old_id)?;
                Some(Content {
                    bytes: blob.content().to_vec(),
                    mode: MODE_FILE,
                })
            }
            Err(_) => None,
        }
    };
    let work = if c.status == ChangeStatus::Deleted {
        None
    } else {
        paths::read(&wt_root.join(&c.new_path))?
    };
    Ok(Sides { base, work })
}

fn normalize_mode(mode: u32) -> u32 {
    match mode {
        MODE_EXEC | MODE_LINK => mode,
        _ => MODE_FILE,
    }
}

fn looks_binary(c: Option<&Content>) -> bool {
    c.is_some_and(|c| !c.is_link() && c.bytes.iter().take(8000).any(|b| *b == 0))
}

/// The patch of one file from its two sides; the single source of hunk numbering.
pub(crate) fn file_patch(sides: &Sides, old_path: &str, new_path: &str) -> Result<FilePatch> {
    let empty: &[u8] = &[];
    let old = sides.base.as_ref().map_or(empty, |c| &c.bytes[..]);
    let new = sides.work.as_ref().map_or(empty, |c| &c.bytes[..]);
    if looks_binary(sides.base.as_ref()) || looks_binary(sides.work.as_ref()) {
        return Ok(FilePatch {
            binary: true,
            hunks: Vec::new(),
            additions: 0,
            deletions: 0,
        });
    }
    let mut opts = DiffOptions::new();
    opts.context_lines(CONTEXT_LINES);
    let patch = Patch::from_buffers(
        old,
        Some(Path::new(old_path)),
        new,
        Some(Path::new(new_path)),
        Some(&mut opts),
    )?;
    if patch.delta().flags().is_binary() {
        return Ok(FilePatch {
            binary: true,
            hunks: Vec::new(),
            additions: 0,
            deletions: 0,
        });
    }
    let (_, additions, deletions) = patch.line_stats()?;
    let mut hunks = Vec::with_capacity(patch.num_hunks());
    for index in 0..patch.num_hunks() {
        let (h, nlines) = patch.hunk(index)?;
        let mut lines = Vec::with_capacity(nlines);
        for l in 0..nlines {
            let line = patch.line_in_hunk(index, l)?;
            lines.push(HunkLine {
                origin: line.origin(),
                old_lineno: line.old_lineno(),
                new_lineno: line.new_lineno(),
                content: String::from_utf8_lossy(line.content()).into_owned(),
            });
        }
        hunks.push(Hunk {
            index,
            header: String::from_utf8_lossy(h.header()).trim_end().to_string(),
            old_start: h.old_start(),
            old_lines: h.old_lines(),
            new_start: h.new_start(),
            new_lines: h.new_lines(),
            lines,
        });
    }
    Ok(FilePatch {
        binary: false,
        hunks,
        additions,
        deletions,
    })
}

/// The unified patch text, with git's extended header lines.
fn patch_text(
    status: ChangeStatus,
    old_path: &str,
    new_path: &str,
    sides: &Sides,
    p: &FilePatch,
) -> String {
    let old_mode = sides.base.as_ref().map_or(0, |c| c.mode);
    let new_mode = sides.work.as_ref().map_or(0, |c| c.mode);
    let mut s = format!("diff --git a/{old_path} b/{new_path}\n");
    match status {
        ChangeStatus::Added => s.push_str(&format!("new file mode {new_mode:o}\n")),
        ChangeStatus::Deleted => s.push_str(&format!("deleted file mode {old_mode:o}\n")),
        _ if old_mode != new_mode => {
            s.push_str(&format!("old mode {old_mode:o}\nnew mode {new_mode:o}\n"))
        }
        _ => {}
    }
    if status == ChangeStatus::Renamed {
        s.push_str(&format!("rename from {old_path}\nrename to {new_path}\n"));
    }
    let a = if sides.base.is_some() {
        format!("a/{old_path}")
    } else {
        "/dev/null".to_string()
    };
    let b = if sides.work.is_some() {
        format!("b/{new_path}")
    } else {
        "/dev/null".to_string()
    };
    if p.binary {
        s.push_str(&format!("Binary files {a} and {b} differ\n"));
        return s;
    }
    if p.hunks.is_empty() {
        return s;
    }
    s.push_str(&format!("--- {a}\n+++ {b}\n"));
    for h in &p.hunks {
        s.push_str(&h.header);
        s.push('\n');
        for l in &h.lines {
            if matches!(l.origin, '+' | '-' | ' ') {
                s.push(l.origin);
            }
            s.push_str(&l.content);
        }
    }
    s
}

/// Builds the API view of one change; `None` when both sides turn out identical (e.g. a file
/// staged in the worktree and then reverted on disk).
pub(crate) fn describe(c: &RawChange, sides: &Sides) -> Result<Option<FileChange>> {
    if sides.base == sides.work && c.old_path == c.new_path {
        return Ok(None);
    }
    let p = file_patch(sides, &c.old_path, &c.new_path)?;
    let old_mode = sides.base.as_ref().map_or(0, |c| c.mode);
    let new_mode = sides.work.as_ref().map_or(0, |c| c.mode);
    let exec_changed =
        old_mode != 0 && new_mode != 0 && (old_mode == MODE_EXEC) != (new_mode == MODE_EXEC);
    Ok(Some(FileChange {
        path: c.new_path.clone(),
        old_path: (c.old_path != c.new_path).then(|| c.old_path.clone()),
        status: c.status,
        additions: p.additions,
        deletions: p.deletions,
        binary: p.binary,
        old_mode,
        new_mode,
        exec_changed,
        patch: patch_text(c.status, &c.old_path, &c.new_path, sides, &p),
        hunks: p.hunks,
    }))
}

/// The session's pending changes, sorted by path.
pub fn pending(wt: &SessionWorktree) -> Result<Vec<FileChange>> {
    let repo = open_wt_repo(wt)?;
    let base = review_base(&repo, wt)?;
    let tree = repo.find_commit(base)?.tree()?;
    let mut out = Vec::new();
    for c in list_changes(&repo, &tree, None)? {
        let sides = load_sides(&repo, &tree, &wt.path, &c)?;
        if let Some(fc) = describe(&c, &sides)? {
            out.push(fc);
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    debug!(slug = %wt.slug, files = out.len(), "pending computed");
    Ok(out)
}

/// Finds the pending change of `path` (new or old path of a rename).
pub(crate) fn find_change(repo: &Repository, tree: &Tree<'_>, path: &str) -> Result<RawChange> {
    // Fast path: a modification needs no rename detection over the whole tree.
    let narrow = list_changes(repo, tree, Some(path))?;
    if let [c] = narrow.as_slice() {
        if matches!(c.status, ChangeStatus::Modified | ChangeStatus::Typechange) {
            return Ok(c.clone());
        }
    }
    list_changes(repo, tree, None)?
        .into_iter()
        .find(|c| c.new_path == path || c.old_path == path)
        .ok_or_else(|| WorktreeError::NoSuchChange(path.to_string()))
}
