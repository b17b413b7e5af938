//! What removing a worktree would lose; stashing it on a branch; removal.

use git2::{Oid, Repository, Signature, StatusOptions, WorktreePruneOptions};
use tracing::{info, warn};

use super::create::{base_ref, open_user_repo, open_wt_repo, review_base, review_base_ref};
use super::diff::pending_at;
use super::{RemoveMode, RemoveOutcome, Result, Risk, SessionWorktree, StashInfo, WorktreeError};

fn stash_branch(slug: &str) -> String {
    format!("boo-stash/{slug}")
}

/// The tree of everything in the worktree as `git add -A` would stage it (ignored files left
/// out), written to the object database without touching the worktree's index file.
///
/// One pass over the working directory (index vs files, with the index's stat cache, so only
/// changed files are hashed), then only what differs is staged in the in-memory copy: an
/// `add_all` + `update_all` pair walks the files twice.
pub(crate) fn snapshot_tree(repo: &Repository) -> Result<Oid> {
    let mut index = repo.index()?;
    let mut opts = git2::DiffOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_typechange(true)
        .ignore_submodules(true);
    let diff = repo.diff_index_to_workdir(Some(&index), Some(&mut opts))?;
    let mut gone = Vec::new();
    let mut add = Vec::new();
    for d in diff.deltas() {
        let (Some(path), status) = (d.new_file().path().or(d.old_file().path()), d.status()) else {
            continue;
        };
        match status {
            git2::Delta::Deleted => gone.push(path.to_path_buf()),
            _ => add.push(path.to_path_buf()),
        }
    }
    for p in &gone {
        index.remove_path(p)?;
    }
    for p in &add {
        index.add_path(p)?;
    }
    Ok(index.write_tree()?)
}

fn stash_tip(repo: &Repository, slug: &str) -> Option<Oid> {
    repo.refname_to_id(&format!("refs/heads/{}", stash_branch(slug)))
        .ok()
}

/// Reports unaccepted changes (vs the review base) and uncommitted work in the worktree, and
/// whether the current state is already stashed.
pub fn risk(wt: &SessionWorktree) -> Result<Risk> {
    risk_with(wt, None)
}

/// [`risk`], with the session's scanner when it has one (the scan is then proportional to
/// what changed).
pub fn risk_with(wt: &SessionWorktree, scanner: Option<&super::PendingScanner>) -> Result<Risk> {
    let repo = open_wt_repo(wt)?;
    let base = review_base(&repo, wt)?;
    let (changes, candidates) = match scanner {
        Some(s) => s.pending_with_candidates(wt)?,
        None => pending_at(&repo, wt, base)?,
    };
    let unaccepted = changes.into_iter().map(|c| c.path).collect();
    let head = repo.head()?.peel_to_commit()?;
    // Usually nothing was committed since the review base: then what is uncommitted is what
    // the pending diff's scan already found, and the worktree is scanned once, not twice.
    let uncommitted = if head.id() == base {
        candidates.into_iter().collect()
    } else {
        let mut opts = StatusOptions::new();
        opts.include_untracked(true)
            .recurse_untracked_dirs(true)
            .exclude_submodules(true);
        repo.statuses(Some(&mut opts))?
            .iter()
            .filter(|e| !e.status().is_ignored())
            .map(|e| super::paths::git_path(&super::paths::os_path_bytes(e.path_bytes())))
            .collect()
    };
    let stashed = match stash_tip(&repo, &wt.slug) {
        Some(tip) => repo.find_commit(tip)?.tree_id() == snapshot_tree(&repo)?,
        None => false,
    };
    Ok(Risk {
        unaccepted,
        uncommitted,
        stashed,
    })
}

/// Saves the whole worktree state (committed, uncommitted and untracked, not ignored files) as a
/// commit on branch `boo-stash/<slug>`, which `git branch` lists. Its first parent is the
/// worktree's HEAD; the review base (when not already an ancestor) and the previous stash are
/// further parents, so the unaccepted diff and older stashes stay reachable. The worktree itself
/// is left as it is. Stashing an unchanged state again is a no-op.
pub fn stash(wt: &SessionWorktree) -> Result<StashInfo> {
    let repo = open_wt_repo(wt)?;
    let tree_id = snapshot_tree(&repo)?;
    let branch = stash_branch(&wt.slug);
    let prev = stash_tip(&repo, &wt.slug);
    if let Some(p) = prev {
        if repo.find_commit(p)?.tree_id() == tree_id {
            return Ok(StashInfo {
                branch,
                commit: p.to_string(),
            });
        }
    }
    let head = repo.head()?.peel_to_commit()?;
    let rb = review_base(&repo, wt)?;
    let mut parent_ids = vec![head.id()];
    if rb != head.id() && !repo.graph_descendant_of(head.id(), rb)? {
        parent_ids.push(rb);
    }
    parent_ids.extend(prev);
    let commit = if parent_ids.len() == 1 && head.tree_id() == tree_id {
        head.id()
    } else {
        let parents = parent_ids
            .iter()
            .map(|id| repo.find_commit(*id))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let parent_refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
        let sig = repo
            .signature()
            .or_else(|_| Signature::now("boo", "boo@localhost"))?;
        let msg = format!(
            "boo: stash of session {}\n\nWorktree state; first parent: the worktree HEAD; review base: {rb}.\n",
            wt.slug
        );
        repo.commit(
            None,
            &sig,
            &sig,
            &msg,
            &repo.find_tree(tree_id)?,
            &parent_refs,
        )?
    };
    repo.reference(&format!("refs/heads/{branch}"), commit, true, "boo: stash")?;
    info!(slug = %wt.slug, %branch, %commit, "worktree stashed");
    Ok(StashInfo {
        branch,
        commit: commit.to_string(),
    })
}

/// Deletes the worktree directory and its git metadata. With [`RemoveMode::Safe`] it refuses when
/// work would be lost (unless already stashed); [`RemoveMode::Stash`] stashes first and checks
/// the stash holds the current state. The branch `boo/<slug>` is deleted only when nothing was
/// pending or uncommitted; the review-base refs go.
///
/// All or nothing: the directory is first renamed aside (atomic, same parent), then refs and
/// metadata go; if any of that fails, the refs are re-created and the directory renamed back,
/// so a failed delete leaves a working session. Only the final removal of the renamed-aside
/// directory can fail without undo (it is then just a leftover, logged).
pub fn remove(wt: &SessionWorktree, mode: RemoveMode) -> Result<RemoveOutcome> {
    let user = open_user_repo(&wt.repo_root)?;
    let risk = if wt.path.exists() {
        risk(wt)?
    } else {
        Risk::default()
    };
    let mut stash_info = None;
    if risk.at_risk() {
        match mode {
            RemoveMode::Safe => {
                return Err(WorktreeError::AtRisk(format!(
                    "{} unaccepted, {} uncommitted file(s)",
                    risk.unaccepted.len(),
                    risk.uncommitted.len()
                )))
            }
            RemoveMode::Stash => {
                stash_info = Some(stash(wt)?);
                if !self::risk(wt)?.stashed {
                    return Err(WorktreeError::AtRisk(
                        "the stash does not hold the current state".into(),
                    ));
                }
            }
            RemoveMode::Force | RemoveMode::Discard => {
                warn!(slug = %wt.slug, ?risk, "forced removal loses work")
            }
        }
    }
    let meta = match user.find_worktree(&wt.slug) {
        Ok(w) => {
            // Never delete a directory git does not know as this session's worktree.
            let same = |a: &std::path::Path, b: &std::path::Path| {
                std::fs::canonicalize(a).ok() == std::fs::canonicalize(b).ok()
            };
            if wt.path.exists() && !same(w.path(), &wt.path) {
                return Err(WorktreeError::NotFound(wt.slug.clone()));
            }
            Some(w)
        }
        Err(_) if !wt.path.exists() => None,
        Err(_) => return Err(WorktreeError::NotFound(wt.slug.clone())),
    };
    let branch_kept =
        mode != RemoveMode::Discard && !(risk.unaccepted.is_empty() && risk.uncommitted.is_empty());

    // 1. The directory aside.
    let aside = wt
        .path
        .with_file_name(format!(".{}.boo-deleting-{}", wt.slug, std::process::id()));
    let moved = wt.path.exists();
    if moved {
        std::fs::rename(&wt.path, &aside).map_err(|e| WorktreeError::Refused {
            path: wt.path.display().to_string(),
            reason: format!("cannot remove the worktree ({e})"),
        })?;
    }
    // 2. Refs (remembered for the undo), then 3. the worktree metadata.
    let mut refs = vec![review_base_ref(&wt.slug), base_ref(&wt.slug)];
    if !branch_kept {
        refs.push(format!("refs/heads/{}", wt.branch));
    }
    // The turn checkpoints go with the session (they are its history, not kept work).
    if let Ok(turns) = user.references_glob(&format!("refs/boo/{}/turns/*", wt.slug)) {
        refs.extend(turns.flatten().filter_map(|r| r.name().map(str::to_string)));
    }
    let mut deleted: Vec<(String, Oid)> = Vec::new();
    let admin = super::create::admin_lock(&user);
    let result = (|| -> Result<()> {
        for name in &refs {
            if let Ok(mut r) = user.find_reference(name) {
                let id = r.target();
                r.delete()?;
                if let Some(id) = id {
                    deleted.push((name.clone(), id));
                }
            }
        }
        if let Some(w) = &meta {
            let mut opts = WorktreePruneOptions::new();
            opts.valid(true).locked(false).working_tree(false);
            w.prune(Some(&mut opts))?;
        }
        Ok(())
    })();
    drop(admin);
    if let Err(e) = result {
        for (name, id) in &deleted {
            if let Err(re) = user.reference(name, *id, true, "boo: undo failed removal") {
                warn!(%name, error = %re, "ref not restored");
            }
        }
        if moved {
            if let Err(re) = std::fs::rename(&aside, &wt.path) {
                warn!(aside = %aside.display(), error = %re, "worktree not moved back");
            }
        }
        return Err(WorktreeError::RolledBack {
            cause: format!("cannot remove the worktree: {e}"),
        });
    }
    if moved {
        if let Err(e) = std::fs::remove_dir_all(&aside) {
            warn!(aside = %aside.display(), error = %e, "removed worktree left on disk");
        }
    }
    info!(slug = %wt.slug, branch_kept, stashed = stash_info.is_some(), "worktree removed");
    Ok(RemoveOutcome {
        stash: stash_info,
        branch_kept,
    })
}
