//! The pending diff: worktree (committed + uncommitted + untracked) vs the review base.
//!
//! libgit2 finds *which* files changed (tree vs index vs working directory, using the index's stat
//! cache, with rename detection); the patch of each file is then computed from the two contents
//! with [`file_patch`], which accept/reject reuse so hunk indices always resolve the same way.

use std::path::Path;

use std::collections::BTreeSet;

use git2::{Delta, DiffFindOptions, DiffOptions, FileMode, ObjectType, Patch, Repository, Tree};
use tracing::debug;

use super::convert::Filters;
use super::create::{open_wt_repo, review_base};
use super::paths::{self, check_inside, Content, MODE_EXEC, MODE_FILE, MODE_LINK};

/// A gitlink's mode.
const MODE_SUBMODULE: u32 = 0o160000;
use super::{
    ChangeStatus, FileChange, Hunk, HunkLine, Result, SessionWorktree, WorktreeError, CONTEXT_LINES,
};

/// A changed file as found by libgit2, before contents are loaded.
#[derive(Clone, Debug)]
pub(crate) struct RawChange {
    pub status: ChangeStatus,
    pub old_path: String,
    pub new_path: String,
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

/// Lists the files that differ between `tree` and the worktree of `repo` (rooted at `wt_root`).
/// With `only`, the diff is limited to that exact path and renames are not paired.
///
/// Why not one `diff_tree_to_workdir`: it ignores the index's stat cache and hashes every file
/// (seconds on a large repository), and the index-blended variant loses untracked files that exist
/// in the review base (e.g. an accepted new file). Instead the candidates come from two cheap
/// diffs (tree -> index, index -> working directory with the stat cache): a file differs between
/// tree and disk only if it differs in one of them. Each candidate is then classified by looking
/// at both sides, and only added/deleted candidates go through rename detection.
pub(crate) fn list_changes(
    repo: &Repository,
    tree: &Tree<'_>,
    wt_root: &Path,
    only: Option<&str>,
) -> Result<Vec<RawChange>> {
    let candidates = candidate_paths(repo, tree, only)?;
    classify(repo, tree, wt_root, only, &candidates)
}

/// [`list_changes`] from the candidate paths already found.
fn classify(
    repo: &Repository,
    tree: &Tree<'_>,
    wt_root: &Path,
    only: Option<&str>,
    candidates: &BTreeSet<String>,
) -> Result<Vec<RawChange>> {
    let mut out = Vec::new();
    let (mut added, mut deleted) = (Vec::new(), Vec::new());
    for path in candidates.iter().cloned() {
        let base = tree
            .get_path(&paths::os_path(&path))
            .ok()
            .filter(|e| e.kind() == Some(ObjectType::Blob));
        let work_is_link = match std::fs::symlink_metadata(wt_root.join(paths::os_path(&path))) {
            Ok(m) if m.file_type().is_symlink() => Some(true),
            Ok(m) if m.is_file() => Some(false),
            _ => None,
        };
        let status = match (&base, work_is_link) {
            (None, None) => continue,
            (None, Some(_)) => ChangeStatus::Added,
            (Some(_), None) => ChangeStatus::Deleted,
            (Some(e), Some(link)) if (e.filemode() as u32 == MODE_LINK) != link => {
                ChangeStatus::Typechange
            }
            (Some(_), Some(_)) => ChangeStatus::Modified,
        };
        let change = RawChange {
            status,
            old_path: path.clone(),
            new_path: path,
        };
        match status {
            ChangeStatus::Added => added.push(change),
            ChangeStatus::Deleted => deleted.push(change),
            _ => out.push(change),
        }
    }
    if only.is_none() && !added.is_empty() && !deleted.is_empty() {
        pair_renames(repo, tree, &mut added, &mut deleted, &mut out)?;
    }
    out.extend(added);
    out.extend(deleted);
    Ok(out)
}

/// Paths that may differ between `tree` and the working directory.
fn candidate_paths(
    repo: &Repository,
    tree: &Tree<'_>,
    only: Option<&str>,
) -> Result<BTreeSet<String>> {
    let options = |untracked: bool| {
        let mut o = DiffOptions::new();
        o.include_typechange(true)
            .ignore_submodules(true)
            .include_untracked(untracked)
            .recurse_untracked_dirs(untracked);
        if let Some(p) = only {
            o.pathspec(paths::os_path(p)).disable_pathspec_match(true);
        }
        o
    };
    let staged = repo.diff_tree_to_index(Some(tree), None, Some(&mut options(false)))?;
    let unstaged = repo.diff_index_to_workdir(None, Some(&mut options(true)))?;
    let mut paths = BTreeSet::new();
    for delta in staged.deltas().chain(unstaged.deltas()) {
        if delta.old_file().mode() == FileMode::Commit
            || delta.new_file().mode() == FileMode::Commit
        {
            continue; // submodules are not reviewed
        }
        for f in [delta.old_file(), delta.new_file()] {
            if let Some(p) = f.path() {
                paths.insert(paths::git_path(p));
            }
        }
    }
    Ok(paths)
}

/// Pairs added and deleted files into renames with libgit2's similarity detection, on a diff
/// limited to just those paths (so only they are read).
fn pair_renames(
    repo: &Repository,
    tree: &Tree<'_>,
    added: &mut Vec<RawChange>,
    deleted: &mut Vec<RawChange>,
    out: &mut Vec<RawChange>,
) -> Result<()> {
    let mut opts = DiffOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(true)
        .ignore_submodules(true)
        .disable_pathspec_match(true);
    for c in added.iter().chain(deleted.iter()) {
        opts.pathspec(paths::os_path(&c.new_path));
    }
    let mut diff = repo.diff_tree_to_workdir(Some(tree), Some(&mut opts))?;
    let mut find = DiffFindOptions::new();
    find.renames(true).for_untracked(true);
    diff.find_similar(Some(&mut find))?;
    for delta in diff.deltas().filter(|d| d.status() == Delta::Renamed) {
        let (Some(old), Some(new)) = (delta.old_file().path(), delta.new_file().path()) else {
            continue;
        };
        let (old, new) = (paths::git_path(old), paths::git_path(new));
        let (Some(di), Some(ai)) = (
            deleted.iter().position(|c| c.old_path == old),
            added.iter().position(|c| c.new_path == new),
        ) else {
            continue;
        };
        deleted.swap_remove(di);
        added.swap_remove(ai);
        out.push(RawChange {
            status: ChangeStatus::Renamed,
            old_path: old,
            new_path: new,
        });
    }
    Ok(())
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
        match tree.get_path(&paths::os_path(&c.old_path)) {
            Ok(entry) => {
                let blob = repo.find_blob(entry.id())?;
                Some(Content {
                    bytes: blob.content().to_vec(),
                    mode: normalize_mode(entry.filemode() as u32),
                })
            }
            Err(_) => None,
        }
    };
    let work = if c.status == ChangeStatus::Deleted {
        None
    } else {
        paths::read(&wt_root.join(paths::os_path(&c.new_path)))?
    };
    // Compared in repository form: a CRLF checkout's line ends are not the agent's change.
    let work = match work {
        Some(w) => Some(Filters::new(repo).clean(
            repo,
            &c.new_path,
            w,
            base.as_ref().map(|b| &b.bytes[..]),
        )?),
        None => None,
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
        large: false,
        old_mode,
        new_mode,
        exec_changed,
        patch: patch_text(c.status, &c.old_path, &c.new_path, sides, &p),
        hunks: p.hunks,
        submodule: false,
    }))
}

/// Files larger than this are whole-file entries: never read for the pending diff, no hunks.
pub const LARGE_FILE: u64 = 2 * 1024 * 1024;

/// Sizes and modes of both sides of `c` without reading contents; `None` when both are small.
/// For a large file, whether it changed is decided by hashing it (streamed by libgit2).
fn describe_large(
    repo: &Repository,
    tree: &Tree<'_>,
    wt_root: &Path,
    c: &RawChange,
) -> Result<Option<Option<FileChange>>> {
    let base = if c.status == ChangeStatus::Added {
        None
    } else {
        tree.get_path(&paths::os_path(&c.old_path)).ok()
    };
    let base_size = match &base {
        Some(e) if e.filemode() as u32 != MODE_LINK => repo.odb()?.read_header(e.id())?.0 as u64,
        _ => 0,
    };
    let work_path = wt_root.join(paths::os_path(&c.new_path));
    let work = match std::fs::symlink_metadata(&work_path) {
        Ok(m) if m.is_file() && c.status != ChangeStatus::Deleted => Some(m),
        _ => None,
    };
    let work_size = work.as_ref().map_or(0, |m| m.len());
    if base_size.max(work_size) <= LARGE_FILE {
        return Ok(None);
    }
    let old_mode = base
        .as_ref()
        .map_or(0, |e| normalize_mode(e.filemode() as u32));
    let new_mode = match &work {
        Some(m) => paths::mode_of(m),
        None if std::fs::symlink_metadata(&work_path).is_ok_and(|m| m.is_symlink()) => MODE_LINK,
        None => 0,
    };
    if let (Some(b), Some(_)) = (&base, &work) {
        let same = git2::Oid::hash_file(ObjectType::Blob, &work_path)? == b.id();
        if same && old_mode == new_mode && c.old_path == c.new_path {
            return Ok(Some(None));
        }
    }
    let size = base_size.max(work_size);
    Ok(Some(Some(FileChange {
        path: c.new_path.clone(),
        old_path: (c.old_path != c.new_path).then(|| c.old_path.clone()),
        status: c.status,
        additions: 0,
        deletions: 0,
        binary: false,
        large: true,
        old_mode,
        new_mode,
        exec_changed: old_mode != 0
            && new_mode != 0
            && (old_mode == MODE_EXEC) != (new_mode == MODE_EXEC),
        patch: format!(
            "diff --git a/{} b/{}\nLarge file ({size} bytes): not shown; accept or reject it whole\n",
            c.old_path, c.new_path
        ),
        hunks: Vec::new(),
        submodule: false,
    })))
}

/// Submodules whose commit in the worktree (its checkout's HEAD, else the index's gitlink)
/// differs from the review base's: entries of the review, read-only (boo does not move a
/// submodule in the user's checkout). Found from `.gitmodules`, so a repository without
/// submodules pays one file read.
fn submodule_changes(repo: &Repository, tree: &Tree<'_>) -> Result<Vec<FileChange>> {
    let mut out = Vec::new();
    for sm in repo.submodules()? {
        let path = paths::git_path(sm.path());
        let old = tree
            .get_path(sm.path())
            .ok()
            .filter(|e| e.filemode() as u32 == MODE_SUBMODULE)
            .map(|e| e.id());
        let new = sm.workdir_id().or_else(|| sm.index_id());
        if old == new {
            continue;
        }
        let status = match (old, new) {
            (None, _) => ChangeStatus::Added,
            (_, None) => ChangeStatus::Deleted,
            _ => ChangeStatus::Modified,
        };
        let short = |o: Option<git2::Oid>| o.map_or("(none)".to_string(), |o| o.to_string());
        out.push(FileChange {
            path: path.clone(),
            old_path: None,
            status,
            additions: 0,
            deletions: 0,
            binary: false,
            large: false,
            old_mode: old.map_or(0, |_| MODE_SUBMODULE),
            new_mode: new.map_or(0, |_| MODE_SUBMODULE),
            exec_changed: false,
            patch: format!(
                "diff --git a/{path} b/{path}\nSubmodule {path} {} -> {}: shown only; commit or check it out in the submodule yourself\n",
                short(old),
                short(new)
            ),
            hunks: Vec::new(),
            submodule: true,
        });
    }
    Ok(out)
}

/// One change as the API shows it: large files by size alone, others from both contents.
fn describe_at(
    repo: &Repository,
    tree: &Tree<'_>,
    wt_root: &Path,
    c: &RawChange,
) -> Result<Option<FileChange>> {
    if let Some(large) = describe_large(repo, tree, wt_root, c)? {
        return Ok(large);
    }
    describe(c, &load_sides(repo, tree, wt_root, c)?)
}

/// True when either side of `c` is over [`LARGE_FILE`] (hunks of it cannot be chosen).
pub(crate) fn is_large(sides: &Sides) -> bool {
    [&sides.base, &sides.work].iter().any(|s| {
        s.as_ref()
            .is_some_and(|c| c.bytes.len() as u64 > LARGE_FILE)
    })
}

/// The session's pending changes, sorted by path.
pub fn pending(wt: &SessionWorktree) -> Result<Vec<FileChange>> {
    let repo = open_wt_repo(wt)?;
    let base = review_base(&repo, wt)?;
    Ok(pending_at(&repo, wt, base)?.0)
}

/// [`pending`] against the review base `base` (already resolved), with the paths the scan
/// found that may differ from it (committed, staged, modified or untracked).
pub(crate) fn pending_at(
    repo: &Repository,
    wt: &SessionWorktree,
    base: git2::Oid,
) -> Result<(Vec<FileChange>, BTreeSet<String>)> {
    let tree = repo.find_commit(base)?.tree()?;
    let candidates = candidate_paths(repo, &tree, None)?;
    let out = pending_of(repo, &tree, wt, &candidates)?;
    Ok((out, candidates))
}

/// The pending changes among `candidates` (a superset of the paths that differ between
/// `tree` and the worktree), sorted by path.
pub(crate) fn pending_of(
    repo: &Repository,
    tree: &Tree<'_>,
    wt: &SessionWorktree,
    candidates: &BTreeSet<String>,
) -> Result<Vec<FileChange>> {
    let mut out = Vec::new();
    for c in classify(repo, tree, &wt.path, None, candidates)? {
        if let Some(fc) = describe_at(repo, tree, &wt.path, &c)? {
            out.push(fc);
        }
    }
    out.extend(submodule_changes(repo, tree)?);
    out.sort_by(|a, b| a.path.cmp(&b.path));
    debug!(slug = %wt.slug, files = out.len(), candidates = candidates.len(), "pending computed");
    Ok(out)
}

/// The pending change of one file (its new path, or the old path of a rename), `None` when it has
/// none. Cheaper than [`pending`] for refreshing one entry of the review view after an accept.
pub fn pending_file(wt: &SessionWorktree, path: &str) -> Result<Option<FileChange>> {
    check_inside(&wt.path, path)?;
    let repo = open_wt_repo(wt)?;
    let base = review_base(&repo, wt)?;
    let tree = repo.find_commit(base)?.tree()?;
    match find_change(&repo, &tree, &wt.path, path) {
        Ok(c) => describe_at(&repo, &tree, &wt.path, &c),
        Err(WorktreeError::NoSuchChange(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Finds the pending change of `path` (new or old path of a rename).
pub(crate) fn find_change(
    repo: &Repository,
    tree: &Tree<'_>,
    wt_root: &Path,
    path: &str,
) -> Result<RawChange> {
    // Fast path: a modification needs no rename pairing.
    let narrow = list_changes(repo, tree, wt_root, Some(path))?;
    if let [c] = narrow.as_slice() {
        if c.new_path == path
            && matches!(c.status, ChangeStatus::Modified | ChangeStatus::Typechange)
        {
            return Ok(c.clone());
        }
    }
    list_changes(repo, tree, wt_root, None)?
        .into_iter()
        .find(|c| c.new_path == path || c.old_path == path)
        .ok_or_else(|| WorktreeError::NoSuchChange(path.to_string()))
}
