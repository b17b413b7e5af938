//! Turn checkpoints: the worktree's whole state (tracked and untracked-not-ignored files) as a
//! commit under `refs/boo/<slug>/turns/<chat>/<n>/{before,after}`, and restoring a state.
//!
//! A snapshot goes through a temporary copy of the worktree's index (its stat cache makes it
//! cheap: only changed files are hashed); the index file, HEAD and the branch are never written.
//! Restoring writes only the files that differ between the current state and the target, as
//! one transaction, and first checks that the worktree still holds the state the caller expects:
//! an edit made since (by the user, say) is never overwritten.

use git2::{Delta, ObjectType, Oid, Repository, Signature, Tree};
use serde::{Deserialize, Serialize};
use tracing::info;

use super::create::open_wt_repo;
use super::paths::{check_inside, Content};
use super::risk::snapshot_tree;
use super::txn::{self, Op, Txn};
use super::{Result, SessionWorktree, WorktreeError};

/// Which side of a turn a snapshot is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Before,
    After,
}

impl Side {
    fn as_str(self) -> &'static str {
        match self {
            Side::Before => "before",
            Side::After => "after",
        }
    }
}

/// `refs/boo/<slug>/turns/<chat>/<turn>/<side>`.
pub fn turn_ref(slug: &str, chat: i64, turn: u32, side: Side) -> String {
    format!("refs/boo/{slug}/turns/{chat}/{turn}/{}", side.as_str())
}

/// Writes the worktree's state as a commit (parent: the worktree's HEAD) kept by the turn's
/// ref. Returns the commit (hex).
pub fn snapshot(wt: &SessionWorktree, chat: i64, turn: u32, side: Side) -> Result<String> {
    snapshot_in(&open_wt_repo(wt)?, &wt.slug, chat, turn, side)
}

/// [`snapshot`] of the session worktree at `dir` (its slug is its libgit2 worktree name): what
/// a turn knows is its directory.
pub fn snapshot_dir(dir: &std::path::Path, chat: i64, turn: u32, side: Side) -> Result<String> {
    let repo =
        Repository::open(dir).map_err(|_| WorktreeError::NotARepo(dir.display().to_string()))?;
    let slug = repo
        .is_worktree()
        .then(|| repo.path().file_name())
        .flatten()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| WorktreeError::NotFound(dir.display().to_string()))?;
    snapshot_in(&repo, &slug, chat, turn, side)
}

fn snapshot_in(repo: &Repository, slug: &str, chat: i64, turn: u32, side: Side) -> Result<String> {
    let tree = repo.find_tree(snapshot_tree(repo)?)?;
    let sig = repo
        .signature()
        .or_else(|_| Signature::now("boo", "boo@localhost"))?;
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    let msg = format!("boo: chat {chat} turn {turn} {}", side.as_str());
    let commit = repo.commit(None, &sig, &sig, &msg, &tree, &parents)?;
    repo.reference(&turn_ref(slug, chat, turn, side), commit, true, &msg)?;
    Ok(commit.to_string())
}

/// Why [`restore`] refused, or what it wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restored {
    /// Worktree paths written or deleted.
    pub written: Vec<String>,
}

/// The paths whose content differs between two trees (both sides of renames alike).
fn changed_paths(repo: &Repository, a: &Tree<'_>, b: &Tree<'_>) -> Result<Vec<(String, Delta)>> {
    let diff = repo.diff_tree_to_tree(Some(a), Some(b), None)?;
    let mut out = Vec::new();
    for d in diff.deltas() {
        let path = d
            .new_file()
            .path()
            .or_else(|| d.old_file().path())
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .unwrap_or_default();
        out.push((path, d.status()));
    }
    Ok(out)
}

fn tree_of<'r>(repo: &'r Repository, commit: &str) -> Result<Tree<'r>> {
    let id =
        Oid::from_str(commit).map_err(|_| WorktreeError::Git(format!("bad commit {commit}")))?;
    Ok(repo.find_commit(id)?.tree()?)
}

/// Paths that differ between the worktree now and the snapshot `commit` (empty: it holds
/// exactly that state).
pub fn changed_since(wt: &SessionWorktree, commit: &str) -> Result<Vec<String>> {
    let repo = open_wt_repo(wt)?;
    let now = repo.find_tree(snapshot_tree(&repo)?)?;
    let then = tree_of(&repo, commit)?;
    if now.id() == then.id() {
        return Ok(Vec::new());
    }
    Ok(changed_paths(&repo, &then, &now)?
        .into_iter()
        .map(|(p, _)| p)
        .collect())
}

/// Puts the worktree in the state of snapshot `target`, provided it holds the state of snapshot
/// `expect` now (when given); otherwise refuses with [`WorktreeError::EditedSince`] and writes
/// nothing. Only files that differ are written, as one transaction; ignored files are left
/// alone (they are not in snapshots).
pub fn restore(wt: &SessionWorktree, target: &str, expect: Option<&str>) -> Result<Restored> {
    let repo = open_wt_repo(wt)?;
    let now = repo.find_tree(snapshot_tree(&repo)?)?;
    if let Some(expect) = expect {
        let expected = tree_of(&repo, expect)?;
        if now.id() != expected.id() {
            let paths: Vec<String> = changed_paths(&repo, &expected, &now)?
                .into_iter()
                .map(|(p, _)| p)
                .collect();
            return Err(WorktreeError::EditedSince(paths.join(", ")));
        }
    }
    let goal = tree_of(&repo, target)?;
    let mut ops = Vec::new();
    let mut written = Vec::new();
    for (path, _) in changed_paths(&repo, &now, &goal)? {
        let abs = check_inside(&wt.path, &path)?;
        match goal.get_path(std::path::Path::new(&path)) {
            Ok(e) if e.kind() == Some(ObjectType::Blob) => {
                let blob = repo.find_blob(e.id())?;
                ops.push(Op::Write(
                    abs,
                    Content {
                        bytes: blob.content().to_vec(),
                        mode: e.filemode() as u32,
                    },
                ));
            }
            // A submodule entry is left alone.
            Ok(_) => continue,
            // Gone in the target.
            Err(_) => ops.push(Op::Delete(abs)),
        }
        written.push(path);
    }
    if ops.is_empty() {
        return Ok(Restored { written });
    }
    txn::preflight(&wt.path, &ops)?;
    let mut tx = Txn::new(&wt.path, repo.path())?;
    tx.apply(&ops)?;
    tx.commit();
    info!(slug = %wt.slug, target, files = written.len(), "restored a snapshot");
    Ok(Restored { written })
}

/// One file of a turn's own diff (after-snapshot vs before-snapshot).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnFile {
    pub path: String,
    pub additions: usize,
    pub deletions: usize,
}

/// The files a turn changed with their line counts, and its unified patch.
pub fn turn_diff(
    wt: &SessionWorktree,
    before: &str,
    after: &str,
) -> Result<(Vec<TurnFile>, String)> {
    let repo = open_wt_repo(wt)?;
    let (a, b) = (tree_of(&repo, before)?, tree_of(&repo, after)?);
    let diff = repo.diff_tree_to_tree(Some(&a), Some(&b), None)?;
    let mut files = Vec::new();
    for i in 0..diff.deltas().len() {
        let Some(p) = git2::Patch::from_diff(&diff, i)? else {
            continue;
        };
        let (_, adds, dels) = p.line_stats()?;
        let d = p.delta();
        let path = d
            .new_file()
            .path()
            .or_else(|| d.old_file().path())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        files.push(TurnFile {
            path,
            additions: adds,
            deletions: dels,
        });
    }
    let mut patch = String::new();
    diff.print(git2::DiffFormat::Patch, |_, _, line| {
        if matches!(line.origin(), '+' | '-' | ' ') {
            patch.push(line.origin());
        }
        patch.push_str(&String::from_utf8_lossy(line.content()));
        true
    })?;
    Ok((files, patch))
}
