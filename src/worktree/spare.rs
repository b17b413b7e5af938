//! Spare worktrees: a checkout of the repository's HEAD made ahead of time (after a session's
//! worktree is ready), so the next session starts without waiting for thousands of files to be
//! written. Adopting one renames it into the new session's worktree (git's worktree entry,
//! branch, refs) and copies the configured ignored files: the result is what `create` would have
//! made, except that the directory keeps its spare name. It stays where it is because opencode
//! keys its per-directory instance by path: a spare warmed ahead (a scratch prompt, see
//! `agent/opencode/warm.rs`) stays warm for the session that adopts it. A spare whose base is no
//! longer HEAD is removed, never adopted.

use std::fs;
use std::path::Path;
use std::sync::Mutex;

use git2::Repository;
use tracing::{debug, info, warn};

use super::create::{
    base_ref, branch_name, copy_files, create, open_user_repo, review_base_ref, session_from_repo,
};
use super::paths::check_slug;
use super::{CreateOptions, RemoveMode, Result, SessionWorktree, WorktreeError};

const PREFIX: &str = "spare-";

/// Spares are made one at a time in this process (two sessions made at once want one spare).
static MAKING: Mutex<()> = Mutex::new(());

/// Whether `slug` names a spare (never a session: session slugs end in their id).
pub fn is_spare(slug: &str) -> bool {
    slug.starts_with(PREFIX)
}

fn spares(repo: &Repository) -> Vec<String> {
    repo.worktrees()
        .map(|names| {
            names
                .iter()
                .flatten()
                .filter(|n| is_spare(n) && repo.refname_to_id(&review_base_ref(n)).is_ok())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Makes a spare under `parent` unless the repository has one at HEAD already; stale spares
/// (made from an older HEAD) are removed. Returns the spare made, if one was.
pub fn ensure_spare(repo_path: &Path, parent: &Path) -> Result<Option<SessionWorktree>> {
    let _one = MAKING.lock().unwrap_or_else(|p| p.into_inner());
    if take_fresh(repo_path)?.is_some() {
        return Ok(None);
    }
    let mut b = [0u8; 4];
    let _ = getrandom::getrandom(&mut b);
    let slug = format!("{PREFIX}{:02x}{:02x}{:02x}{:02x}", b[0], b[1], b[2], b[3]);
    let spare = create(
        repo_path,
        &parent.join(&slug),
        &slug,
        &CreateOptions::default(),
    )?;
    info!(slug, "spare worktree made for the next session");
    Ok(Some(spare))
}

/// The repository's spare at HEAD, if any (stale ones are removed on the way).
pub fn fresh_spare(repo_path: &Path) -> Result<Option<SessionWorktree>> {
    let _one = MAKING.lock().unwrap_or_else(|p| p.into_inner());
    take_fresh(repo_path)
}

/// The repository's spare at HEAD, if any; stale ones are removed on the way.
fn take_fresh(repo_path: &Path) -> Result<Option<SessionWorktree>> {
    let repo = open_user_repo(repo_path)?;
    let head = repo.head()?.peel_to_commit()?.id().to_string();
    let mut fresh = None;
    for slug in spares(&repo) {
        let s = session_from_repo(&repo, &slug)?;
        if fresh.is_none() && s.base_commit == head && s.path.is_dir() {
            fresh = Some(s);
        } else if s.base_commit != head {
            debug!(slug, "stale spare worktree removed");
            remove_spare(&s);
        }
    }
    Ok(fresh)
}

/// Removes a spare (it never holds work).
pub fn remove_spare(spare: &SessionWorktree) {
    if let Err(e) = super::remove(spare, RemoveMode::Force) {
        warn!(slug = %spare.slug, "spare worktree not removed: {e}");
    }
}

/// Turns the repository's spare into the session worktree `slug`, as `create` would make it, in
/// the spare's own directory. `Ok(None)` when there is no spare at HEAD; on an error the spare is
/// removed (the caller then creates the worktree the usual way).
pub fn adopt_spare(
    repo_path: &Path,
    slug: &str,
    opts: &CreateOptions,
) -> Result<Option<SessionWorktree>> {
    check_slug(slug)?;
    let spare = {
        let _one = MAKING.lock().unwrap_or_else(|p| p.into_inner());
        match take_fresh(repo_path)? {
            Some(s) => s,
            None => return Ok(None),
        }
    };
    match rename(repo_path, &spare, slug, opts) {
        Ok(wt) => {
            info!(from = %spare.slug, slug, dir = %wt.path.display(), "spare worktree adopted");
            Ok(Some(wt))
        }
        Err(e) => {
            warn!(slug = %spare.slug, "spare worktree not adopted: {e}");
            if let Ok(repo) = open_user_repo(repo_path) {
                // Half-renamed: whichever name it has now, it goes.
                for name in [spare.slug.as_str(), slug] {
                    if let Ok(s) = session_from_repo(&repo, name) {
                        remove_spare(&s);
                    }
                }
                for r in [base_ref(slug), review_base_ref(slug)] {
                    if let Ok(mut r) = repo.find_reference(&r) {
                        let _ = r.delete();
                    }
                }
            }
            Err(e)
        }
    }
}

fn rename(
    repo_path: &Path,
    spare: &SessionWorktree,
    slug: &str,
    opts: &CreateOptions,
) -> Result<SessionWorktree> {
    let repo = open_user_repo(repo_path)?;
    let branch = branch_name(slug);
    if repo.find_branch(&branch, git2::BranchType::Local).is_ok() {
        return Err(WorktreeError::BranchExists(branch));
    }
    if repo.find_worktree(slug).is_ok() {
        return Err(WorktreeError::WorktreeExists(slug.to_string()));
    }
    // Nothing may have moved the spare's branch (nobody works in a spare).
    let tip = repo.refname_to_id(&format!("refs/heads/{}", spare.branch))?;
    if tip.to_string() != spare.base_commit {
        return Err(WorktreeError::Git("the spare's branch moved".into()));
    }
    let root = &spare.repo_root;
    let entries = super::create::admin_lock(&repo);
    // git's entry for the worktree gets the session's name; the directory keeps its own (git
    // allows the two to differ, as after `git worktree add` picked a free entry name).
    let admin = repo.commondir().join("worktrees");
    let (old, new) = (admin.join(&spare.slug), admin.join(slug));
    fs::rename(&old, &new).map_err(|e| WorktreeError::io(&old, e))?;
    let dot_git = spare.path.join(".git");
    fs::write(&dot_git, format!("gitdir: {}\n", new.display()))
        .map_err(|e| WorktreeError::io(&dot_git, e))?;
    git(root, &["worktree", "repair"], &[&spare.path])?;
    // `git branch -m` also rewrites the HEAD of the worktree that has the branch out.
    git(root, &["branch", "-m", &spare.branch, &branch], &[])?;
    drop(entries);
    let base = git2::Oid::from_str(&spare.base_commit)?;
    let repo = open_user_repo(repo_path)?;
    repo.reference(&base_ref(slug), base, true, "boo: session base")?;
    repo.reference(&review_base_ref(slug), base, true, "boo: review base")?;
    for r in [base_ref(&spare.slug), review_base_ref(&spare.slug)] {
        if let Ok(mut r) = repo.find_reference(&r) {
            let _ = r.delete();
        }
    }
    copy_files(&spare.repo_root, &spare.path, opts);
    session_from_repo(&repo, slug)
}

/// git with hooks off and arguments as a list (never a shell string).
fn git(root: &Path, args: &[&str], paths: &[&Path]) -> Result<()> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["-c", "core.hooksPath=/dev/null"])
        .args(args)
        .args(paths)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| WorktreeError::Git(format!("cannot run git: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or("failed");
    Err(WorktreeError::Git(format!(
        "git {}: {line}",
        args.join(" ")
    )))
}
