//! Pending scans in time proportional to what changed: the first scan of a session reads every
//! file (through the index's stat cache); later ones look only at what was pending last time,
//! what the worktree watch saw change since, and what a moved review base changed. The result
//! is the same as [`super::pending`]'s (a test compares them after each of many edits).

use std::collections::BTreeSet;
use std::sync::Mutex;

use git2::{Oid, Repository};

use super::create::{open_wt_repo, review_base};
use super::diff::{pending_at, pending_of};
use super::watch::{Since, Watch};
use super::{FileChange, Result, SessionWorktree};

impl std::fmt::Debug for PendingScanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingScanner")
            .field("full_scans", &self.full_scans())
            .finish_non_exhaustive()
    }
}

/// What the last trusted scan found.
struct Last {
    base: Oid,
    /// Old and new paths of every pending change.
    changed: BTreeSet<String>,
}

/// One session worktree's scanner: keep it while the session is live (it owns a watch).
pub struct PendingScanner {
    watch: Watch,
    last: Mutex<Option<Last>>,
    full_scans: std::sync::atomic::AtomicUsize,
}

impl PendingScanner {
    /// For the worktree at `dir`; nothing is read until the first scan.
    pub fn new(dir: &std::path::Path) -> PendingScanner {
        PendingScanner {
            watch: Watch::new(dir.to_path_buf()),
            last: Mutex::new(None),
            full_scans: Default::default(),
        }
    }

    /// Whether the watch covers the whole worktree (until then every scan reads every file).
    pub fn watching(&self) -> bool {
        self.watch.watching()
    }

    /// How many scans read every file (the first one, and those the watch could not narrow).
    pub fn full_scans(&self) -> usize {
        self.full_scans.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The session's pending changes, sorted by path, as [`super::pending`] gives them.
    pub fn pending(&self, wt: &SessionWorktree) -> Result<Vec<FileChange>> {
        Ok(self.pending_with_candidates(wt)?.0)
    }

    /// [`PendingScanner::pending`] with the paths that may differ from the review base.
    pub fn pending_with_candidates(
        &self,
        wt: &SessionWorktree,
    ) -> Result<(Vec<FileChange>, BTreeSet<String>)> {
        let repo = open_wt_repo(wt)?;
        let base = review_base(&repo, wt)?;
        // Taken before the scan reads anything: a change made meanwhile is seen again next time.
        let since = self.watch.take();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let narrow = match (&since, last.as_ref()) {
            (Since::Paths(dirty), Some(l)) => Some(candidates(&repo, l, base, dirty)?),
            _ => None,
        };
        let (out, found) = match narrow {
            Some(c) => {
                let tree = repo.find_commit(base)?.tree()?;
                let out = pending_of(&repo, &tree, wt, &c)?;
                let found = changed_paths(&out);
                (out, found)
            }
            None => {
                self.full_scans
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                pending_at(&repo, wt, base)?
            }
        };
        *last = match since {
            // Without a watch, changes since this scan go unseen: the next one is full too.
            Since::NotWatching => None,
            _ => Some(Last {
                base,
                changed: changed_paths(&out),
            }),
        };
        Ok((out, found))
    }
}

fn changed_paths(out: &[FileChange]) -> BTreeSet<String> {
    let mut s = BTreeSet::new();
    for c in out {
        s.insert(c.path.clone());
        if let Some(o) = &c.old_path {
            s.insert(o.clone());
        }
    }
    s
}

/// What was pending, what changed on disk (files under a changed directory included, untracked
/// ignored files left out), and what a moved review base changed.
fn candidates(
    repo: &Repository,
    last: &Last,
    base: Oid,
    dirty: &BTreeSet<String>,
) -> Result<BTreeSet<String>> {
    let tree = repo.find_commit(base)?.tree()?;
    let mut out = last.changed.clone();
    for p in dirty {
        let os = super::paths::os_path(p);
        let tracked = tree.get_path(&os).is_ok();
        if tracked || !repo.is_path_ignored(&os).unwrap_or(false) {
            out.insert(p.clone());
        }
    }
    if last.base != base {
        let old = repo.find_commit(last.base)?.tree()?;
        let diff = repo.diff_tree_to_tree(Some(&old), Some(&tree), None)?;
        for d in diff.deltas() {
            for f in [d.old_file(), d.new_file()] {
                if let Some(p) = f.path() {
                    out.insert(super::paths::git_path(p));
                }
            }
        }
    }
    Ok(out)
}
