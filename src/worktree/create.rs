//! Creating and finding session worktrees; the review-base ref.

use std::fs;
use std::path::{Path, PathBuf};

use git2::{BranchType, ErrorCode, Oid, Repository, WorktreeAddOptions};
use parking_lot::{Mutex, MutexGuard};
use tracing::{debug, info, warn};

use super::paths::{check_inside, check_slug, Content};
use super::txn::{self, Op, Txn};
use super::{CreateOptions, Result, SessionWorktree, WorktreeError};

/// git's worktree entries (`.git/worktrees/*`) are changed by one writer at a time:
/// `git worktree add` reads every entry and dies on one that another `add` (or a prune) has half
/// written, which an arena's contestants, made at once, hit. A lock file in the repository's git
/// dir keeps two editors' boo apart too; the mutex covers a git dir where it cannot be made.
static ADMIN: Mutex<()> = Mutex::new(());

pub(crate) struct AdminLock {
    _file: Option<fs::File>,
    _local: MutexGuard<'static, ()>,
}

/// Held while a worktree entry is made, renamed or removed (not while files are checked out).
pub(crate) fn admin_lock(repo: &Repository) -> AdminLock {
    let local = ADMIN.lock();
    // Not `*.lock`: git reads that as the lock of a file named without it.
    let path = repo.commondir().join("boo-worktrees.flock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .and_then(|f| f.lock().map(|()| f));
    if let Err(e) = &file {
        debug!(path = %path.display(), error = %e, "no lock file; locked in this process only");
    }
    AdminLock {
        _file: file.ok(),
        _local: local,
    }
}

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
    create_with_progress(repo_path, dest, slug, opts, &mut |_| {})
}

/// [`create`], reporting the checkout's progress as git prints it ("Updating files: 60%
/// (12000/20000)"); called on this thread, often (the caller throttles).
pub fn create_with_progress(
    repo_path: &Path,
    dest: &Path,
    slug: &str,
    opts: &CreateOptions,
    progress: &mut dyn FnMut(Progress),
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
    make_room(&repo, slug, dest)?;

    let same_name = dest
        .file_name()
        .is_some_and(|n| n == std::ffi::OsStr::new(slug));
    let made = if same_name {
        git_worktree_add(&repo, &repo_root, dest, &branch, base.id(), progress)
    } else {
        Err(WorktreeError::Git(
            "git names a worktree after its directory".into(),
        ))
    };
    if let Err(e) = made {
        if same_name {
            warn!(error = %e, "git worktree add failed; creating the worktree with libgit2");
        }
        let _admin = admin_lock(&repo);
        cleanup_failed(&repo, dest, slug, &branch);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| WorktreeError::io(parent, e))?;
        }
        let added = repo.branch(&branch, &base, false).and_then(|b| {
            let mut add = WorktreeAddOptions::new();
            add.reference(Some(b.get()));
            repo.worktree(slug, dest, Some(&add))
        });
        if let Err(e) = added {
            // Leave nothing half-made behind: the branch would block a retry.
            cleanup_failed(&repo, dest, slug, &branch);
            return Err(e.into());
        }
    }
    let base_hex = base.id().to_string();
    repo.reference(&base_ref(slug), base.id(), true, "boo: session base")?;
    repo.reference(&review_base_ref(slug), base.id(), true, "boo: review base")?;
    info!(slug, dest = %dest.display(), base = %base_hex, "session worktree created");

    copy_files(&repo_root, dest, opts);

    Ok(SessionWorktree {
        repo_root,
        path: dest.to_path_buf(),
        slug: slug.to_string(),
        branch,
        base_commit: base_hex.clone(),
        review_base: base_hex,
    })
}

/// Checks that session `slug` has neither a branch nor a worktree entry yet and that `dest` is
/// missing or empty; leaves `dest` missing (git and libgit2 make it) and its parent made.
pub(crate) fn make_room(repo: &Repository, slug: &str, dest: &Path) -> Result<()> {
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
        fs::remove_dir(dest).map_err(|e| WorktreeError::io(dest, e))?;
    }
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).map_err(|e| WorktreeError::io(parent, e))?;
    }
    Ok(())
}

/// `git worktree add`: git checks files out with parallel workers and its stat-cache tricks, an
/// order of magnitude faster than libgit2's checkout on a large repository. The entry is made
/// with `--no-checkout` under [`admin_lock`], then the files are checked out as `add` itself
/// would (`reset --hard`), outside it: sessions made at once check out side by side. Hooks are
/// switched off (libgit2 never ran them either); the arguments are passed as a list, never
/// through a shell. Not `--quiet`: the checkout's progress lines on stderr are read as they
/// come (shown from the start rather than after git's usual 2 s delay).
fn git_worktree_add(
    repo: &Repository,
    repo_root: &Path,
    dest: &Path,
    branch: &str,
    base: Oid,
    progress: &mut dyn FnMut(Progress),
) -> Result<()> {
    {
        let _admin = admin_lock(repo);
        let mut add = git_command(repo_root);
        add.args(["worktree", "add", "--no-checkout", "-b", branch])
            .arg(dest)
            .arg(base.to_string());
        run_git(add, &mut |_| {})?;
    }
    let mut checkout = git_command(dest);
    checkout.args(["reset", "--hard", "--no-recurse-submodules"]);
    run_git(checkout, progress)
}

fn git_command(dir: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new("git");
    cmd.arg("-C").arg(dir).args([
        "-c",
        "core.hooksPath=/dev/null",
        "-c",
        "advice.detachedHead=false",
    ]);
    cmd
}

/// Runs git, reporting its progress lines; the error is git's last other line.
fn run_git(mut cmd: std::process::Command, progress: &mut dyn FnMut(Progress)) -> Result<()> {
    use std::io::Read;
    let mut child = cmd
        .env("GIT_PROGRESS_DELAY", "0")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| WorktreeError::Git(format!("cannot run git: {e}")))?;
    let mut lines = ProgressLines::default();
    if let Some(mut err) = child.stderr.take() {
        let mut buf = [0u8; 4096];
        loop {
            match err.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => lines.feed(&buf[..n], progress),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| WorktreeError::Git(format!("git: {e}")))?;
    if status.success() {
        return Ok(());
    }
    Err(WorktreeError::Git(
        lines.last_error.unwrap_or_else(|| "git failed".to_string()),
    ))
}

/// Checkout progress of a new worktree: files written so far, of `total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
}

/// Splits git's stderr into lines (progress redraws end in `\r`), reports the `(a/b)` counts of
/// progress lines and keeps the last other line as the error message.
#[derive(Default)]
struct ProgressLines {
    partial: Vec<u8>,
    last_error: Option<String>,
}

impl ProgressLines {
    fn feed(&mut self, bytes: &[u8], progress: &mut dyn FnMut(Progress)) {
        for &b in bytes {
            if b != b'\r' && b != b'\n' {
                self.partial.push(b);
                continue;
            }
            let line = String::from_utf8_lossy(&self.partial).trim().to_string();
            self.partial.clear();
            if line.is_empty() {
                continue;
            }
            match parse_progress(&line) {
                Some(p) => progress(p),
                None => self.last_error = Some(line),
            }
        }
    }
}

/// `Updating files:  60% (12000/20000)` (any language: only the counts are read).
fn parse_progress(line: &str) -> Option<Progress> {
    let inner = line.strip_suffix(", done.").unwrap_or(line);
    let inner = inner.strip_suffix(')')?;
    let (_, counts) = inner.rsplit_once('(')?;
    let (done, total) = counts.split_once('/')?;
    Some(Progress {
        done: done.trim().parse().ok()?,
        total: total.trim().parse().ok()?,
    })
}

/// Removes what a failed creation may have left: the branch, the worktree metadata, the
/// directory (only when it is empty or was made by the failed attempt). Called under
/// [`admin_lock`].
fn cleanup_failed(repo: &Repository, dest: &Path, slug: &str, branch: &str) {
    if let Ok(w) = repo.find_worktree(slug) {
        let mut opts = git2::WorktreePruneOptions::new();
        opts.valid(true).working_tree(true);
        let _ = w.prune(Some(&mut opts));
    }
    // The ref itself, not `Branch::delete`: that one first asks every worktree whether it has
    // the branch out, and fails on an entry left half made.
    if let Ok(mut r) = repo.find_reference(&format!("refs/heads/{branch}")) {
        if let Err(e) = r.delete() {
            warn!(branch, error = %e, "branch of a failed creation not deleted");
        }
    }
    if dest.join(".git").is_file() {
        let _ = fs::remove_dir_all(dest);
    } else {
        let _ = fs::remove_dir(dest);
    }
}

/// Copies the configured files (e.g. `.env`) from the user's checkout into the worktree.
pub(crate) fn copy_files(repo_root: &Path, dest: &Path, opts: &CreateOptions) {
    // Scratch files of the copies go to the worktree's own git dir (see `txn`).
    let wt_git_dir = Repository::open(dest).map(|r| r.path().to_path_buf());
    for rel in &opts.copy_files {
        match &wt_git_dir {
            Ok(g) => copy_one(repo_root, dest, g, rel),
            Err(e) => warn!(rel, error = %e, "worktree not openable; not copied"),
        }
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
    session_from_repo(&repo, slug)
}

/// The session worktree checked out at `dir`. Its git entry is usually named after the
/// directory, but an adopted spare keeps its spare directory under the session's name.
pub fn open_at(repo_path: &Path, dir: &Path) -> Result<SessionWorktree> {
    let repo = open_user_repo(repo_path)?;
    let canon = dir.canonicalize().ok();
    let same = |p: &Path| p == dir || (canon.is_some() && p.canonicalize().ok() == canon);
    if let Some(name) = dir.file_name().and_then(|n| n.to_str()) {
        if check_slug(name).is_ok() {
            if let Ok(wt) = session_from_repo(&repo, name) {
                if same(&wt.path) {
                    return Ok(wt);
                }
            }
        }
    }
    let names = repo.worktrees()?;
    for name in names.iter().flatten() {
        if check_slug(name).is_err() || super::spare::is_spare(name) {
            continue;
        }
        if let Ok(wt) = session_from_repo(&repo, name) {
            if same(&wt.path) {
                return Ok(wt);
            }
        }
    }
    Err(WorktreeError::NotFound(dir.display().to_string()))
}

pub(crate) fn session_from_repo(repo: &Repository, slug: &str) -> Result<SessionWorktree> {
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

/// All session worktrees (those with a review-base ref, spares left out) of the repository at
/// `repo_path`.
pub fn list(repo_path: &Path) -> Result<Vec<SessionWorktree>> {
    let repo = open_user_repo(repo_path)?;
    let names = repo.worktrees()?;
    let mut out = Vec::new();
    for name in names.iter().flatten() {
        if check_slug(name).is_ok()
            && !super::spare::is_spare(name)
            && repo.refname_to_id(&review_base_ref(name)).is_ok()
        {
            out.push(session_from_repo(&repo, name)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_give_counts_and_the_last_error() {
        let mut seen = Vec::new();
        let mut l = ProgressLines::default();
        l.feed(
            b"Preparing worktree (new branch 'boo/x')\nUpdating files:  40% (4",
            &mut |p| seen.push(p),
        );
        l.feed(
            b"/10)\rUpdating files: 100% (10/10), done.\nfatal: oops\n",
            &mut |p| seen.push(p),
        );
        assert_eq!(
            seen,
            [
                Progress { done: 4, total: 10 },
                Progress {
                    done: 10,
                    total: 10
                }
            ]
        );
        assert_eq!(l.last_error.as_deref(), Some("fatal: oops"));
        assert_eq!(parse_progress("HEAD is now at 1234 x (y)"), None);
    }
}
