//! Creating and finding session worktrees; the review-base ref.

use std::fs;
use std::path::{Path, PathBuf};

use git2::{BranchType, ErrorCode, Oid, Repository, WorktreeAddOptions};
use tracing::{debug, info, warn};

use super::paths::{check_inside, check_slug, Content};
use super::txn::{self, Op, Txn};
use super::{CreateOptions, Result, SessionWorktree, WorktreeError};

pub(crate) fn branch_name(slug: &str) -> String {
    format!("boo/{slug}")
}

/// The session's `base_commit`, kept so `open` can report it.
pub(crate) fn base_ref(slug: &str) -> String {
    format!("refs/boo/{slug}/base")
}

pub(crate) fn review_base_ref(slug: &str) -> String {
    format!("refs/boo/{slug}/review-base")
}

/// Opens the user's repository at or above `path`, refusing bare repositories.
pub(crate) fn open_user_repo(path: &Path) -> Result<Repository> {
    let shown = path.display().to_string();
    let repo = match Repository::discover(path) {
        Ok(r) => r,
        Err(e) if e.code() == ErrorCode::NotFound => return Err(WorktreeError::NotARepo(shown)),
        Err(e) => {
            debug!(path = %shown, error = %e, "discover failed");
            return Err(WorktreeError::NotARepo(shown));
        }
    };
    if repo.is_bare() || repo.workdir().is_none() {
        return Err(WorktreeError::Bare(shown));
    }
    Ok(repo)
}

/// Opens a session worktree's repository.
pub(crate) fn open_wt_repo(wt: &SessionWorktree) -> Result<Repository> {
    Repository::open(&wt.path).map_err(|_| WorktreeError::NotFound(wt.slug.clone()))
}

/// The current review base commit: the ref, re-created from the snapshot when missing.
pub(crate) fn review_base(repo: &Repository, wt: &SessionWorktree) -> Result<Oid> {
    let name = review_base_ref(&wt.slug);
    match repo.refname_to_id(&name) {
        Ok(id) => Ok(id),
        Err(e) if e.code() == ErrorCode::NotFound => {
            let snapshot = if wt.review_base.is_empty() {
                &wt.base_commit
            } else {
                &wt.review_base
            };
            let id = Oid::from_str(snapshot)?;
            repo.find_commit(id)?;
            warn!(slug = %wt.slug, "review-base ref missing; re-created from the snapshot");
            repo.reference(&name, id, true, "boo: restore review base")?;
            Ok(id)
        }
        Err(e) => Err(e.into()),
    }
}

/// Creates the worktree of a new session at `dest` on branch `boo/<slug>`, from the user's current
/// HEAD (a detached HEAD works too). `dest` must not exist or be an empty directory.
pub fn create(
    repo_path: &Path,
    dest: &Path,
    slug: &str,
    opts: &CreateOptions,
) -> Result<SessionWorktree> {
    check_slug(slug)?;
    let repo = open_user_repo(repo_path)?;
    let repo_root = repo
        .workdir()
        .ok_or_else(|| WorktreeError::Bare(repo_path.display().to_string()))?
        .to_path_buf();
    let head = match repo.head() {
        Ok(h) => h,
        Err(e) if matches!(e.code(), ErrorCode::UnbornBranch | ErrorCode::NotFound) => {
            return Err(WorktreeError::NoCommits(repo_root.display().to_string()))
        }
        Err(e) => return Err(e.into()),
    };
    let base = head.peel_to_commit()?;
    let branch = branch_name(slug);
    if repo.find_branch(&branch, BranchType::Local).is_ok() {
        return Err(WorktreeError::BranchExists(branch));
    }
    if repo.find_worktree(slug).is_ok() {
        return Err(WorktreeError::WorktreeExists(slug.to_string()));
    }
    if let Ok(mut entries) = fs::read_dir(dest) {
        if entries.next().is_some() {
            return Err(WorktreeError::DestinationExists(dest.display().to_string()));
        }
        // libgit2 wants to create the directory itself.
        fs::remove_dir(dest).map_err(|e| WorktreeError::io(dest, e))?;
    }
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).map_err(|e| WorktreeError::io(parent, e))?;
    }

    let same_name = dest
        .file_name()
        .is_some_and(|n| n == std::ffi::OsStr::new(slug));
    let made = if same_name {
        git_worktree_add(&repo_root, dest, &branch, base.id())
    } else {
        Err(WorktreeError::Git(
            "git names a worktree after its directory".into(),
        ))
    };
    if let Err(e) = made {
        if same_name {
            warn!(error = %e, "git worktree add failed; creating the worktree with libgit2");
        }
        cleanup_failed(&repo, dest, slug, &branch);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| WorktreeError::io(parent, e))?;
        }
        let branch_ref = repo.branch(&branch, &base, false)?;
        let mut add = WorktreeAddOptions::new();
        add.reference(Some(branch_ref.get()));
        if let Err(e) = repo.worktree(slug, dest, Some(&add)) {
            // Leave nothing half-made behind: the branch would block a retry.
            cleanup_failed(&repo, dest, slug, &branch);
            return Err(e.into());
        }
    }
    let base_hex = base.id().to_string();
    repo.reference(&base_ref(slug), base.id(), true, "boo: session base")?;
    repo.reference(&review_base_ref(slug), base.id(), true, "boo: review base")?;
    info!(slug, dest = %dest.display(), base = %base_hex, "session worktree created");

    // Scratch files of the copies go to the worktree's own git dir (see `txn`).
    let wt_git_dir = Repository::open(dest).map(|r| r.path().to_path_buf());
    for rel in &opts.copy_files {
        match &wt_git_dir {
            Ok(g) => copy_one(&repo_root, dest, g, rel),
            Err(e) => warn!(rel, error = %e, "worktree not openable; not copied"),
        }
    }

    Ok(SessionWorktree {
        repo_root,
        path: dest.to_path_buf(),
        slug: slug.to_string(),
        branch,
        base_commit: base_hex.clone(),
        review_base: base_hex,
    })
}

/// `git worktree add`: git checks files out with parallel workers and its stat-cache tricks, an
/// order of magnitude faster than libgit2's checkout on a large repository. Hooks are switched
/// off (libgit2 never ran them either); the arguments are passed as a list, never through a shell.
fn git_worktree_add(repo_root: &Path, dest: &Path, branch: &str, base: Oid) -> Result<()> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(repo_root)
        .args([
            "-c",
            "core.hooksPath=/dev/null",
            "-c",
            "advice.detachedHead=false",
        ])
        .args(["worktree", "add", "--quiet", "-b", branch])
        .arg(dest)
        .arg(base.to_string())
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| WorktreeError::Git(format!("cannot run git: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(WorktreeError::Git(
        stderr
            .lines()
            .last()
            .unwrap_or("git worktree add failed")
            .to_string(),
    ))
}

/// Removes what a failed creation may have left: the branch, the worktree metadata, the
/// directory (only when it is empty or was made by the failed attempt).
fn cleanup_failed(repo: &Repository, dest: &Path, slug: &str, branch: &str) {
    if let Ok(w) = repo.find_worktree(slug) {
        let mut opts = git2::WorktreePruneOptions::new();
        opts.valid(true).working_tree(true);
        let _ = w.prune(Some(&mut opts));
    }
    if let Ok(mut b) = repo.find_branch(branch, BranchType::Local) {
        let _ = b.delete();
    }
    if dest.join(".git").is_file() {
        let _ = fs::remove_dir_all(dest);
    } else {
        let _ = fs::remove_dir(dest);
    }
}

/// Copies one configured file (e.g. `.env`); missing files and directories are skipped, failures
/// only logged: a session without a copied `.env` is still a session.
fn copy_one(repo_root: &Path, dest: &Path, git_dir: &Path, rel: &str) {
    let (from, to) = match (check_inside(repo_root, rel), check_inside(dest, rel)) {
        (Ok(f), Ok(t)) => (f, t),
        _ => {
            warn!(rel, "copy_files entry outside the repository; skipped");
            return;
        }
    };
    match super::paths::read(&from) {
        Ok(Some(content)) => {
            if to.exists() {
                debug!(rel, "already in the worktree (tracked?); not copied");
            } else if let Err(e) = write_one(dest, git_dir, to, content) {
                warn!(rel, error = %e, "copy into worktree failed");
            } else {
                debug!(rel, "copied into worktree");
            }
        }
        Ok(None) => debug!(rel, "not present; not copied"),
        Err(e) => warn!(rel, error = %e, "cannot read file to copy"),
    }
}

fn write_one(dest: &Path, git_dir: &Path, to: PathBuf, content: Content) -> Result<()> {
    let ops = [Op::Write(to, content)];
    txn::preflight(dest, &ops)?;
    let mut tx = Txn::new(dest, git_dir)?;
    tx.apply(&ops)?;
    tx.commit();
    Ok(())
}

/// Finds the session worktree `slug` of the repository at `repo_path`.
pub fn open(repo_path: &Path, slug: &str) -> Result<SessionWorktree> {
    check_slug(slug)?;
    let repo = open_user_repo(repo_path)?;
    from_repo(&repo, slug)
}

fn from_repo(repo: &Repository, slug: &str) -> Result<SessionWorktree> {
    let not_found = || WorktreeError::NotFound(slug.to_string());
    let wt = repo.find_worktree(slug).map_err(|_| not_found())?;
    let review_base = repo
        .refname_to_id(&review_base_ref(slug))
        .map_err(|_| not_found())?;
    let branch = branch_name(slug);
    let base_commit = repo.refname_to_id(&base_ref(slug)).unwrap_or(review_base);
    let repo_root = repo
        .workdir()
        .ok_or_else(|| WorktreeError::Bare(slug.to_string()))?
        .to_path_buf();
    Ok(SessionWorktree {
        repo_root,
        path: wt.path().to_path_buf(),
        slug: slug.to_string(),
        branch,
        base_commit: base_commit.to_string(),
        review_base: review_base.to_string(),
    })
}

/// All session worktrees (those with a review-base ref) of the repository at `repo_path`.
pub fn list(repo_path: &Path) -> Result<Vec<SessionWorktree>> {
    let repo = open_user_repo(repo_path)?;
    let names = repo.worktrees()?;
    let mut out = Vec::new();
    for name in names.iter().flatten() {
        if check_slug(name).is_ok() && repo.refname_to_id(&review_base_ref(name)).is_ok() {
            out.push(from_repo(&repo, name)?);
        }
    }
    Ok(out)
}
