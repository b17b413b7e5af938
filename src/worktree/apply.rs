//! Accept (3-way into the user's checkout, then advance the review base) and reject (revert in the
//! worktree).

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard};

use git2::{
    build::TreeUpdateBuilder, ErrorCode, FileMode, IndexEntry, IndexTime, MergeFileOptions, Oid,
    Repository, Signature, Tree,
};
use tracing::{info, warn};

use super::convert::Filters;
use super::create::{open_user_repo, open_wt_repo, review_base, review_base_ref};
use super::diff::{file_patch, find_change, is_large, load_sides, RawChange, Sides};
use super::paths::{self, check_inside, Content, MODE_EXEC, MODE_LINK};
use super::txn::{self, Op, Txn};
use super::{
    AcceptOutcome, AcceptResult, ChangeStatus, Hunk, RejectOutcome, Result, SessionWorktree,
    WorktreeError,
};

/// Accepts and rejects run one at a time in this process: each reads the review base, writes
/// files and moves the ref, and interleaving two would make the second fail half-way.
static APPLY_LOCK: Mutex<()> = Mutex::new(());

fn lock() -> MutexGuard<'static, ()> {
    // A panic while holding the lock leaves no state behind that the lock protects.
    APPLY_LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// What part of a file's change an accept/reject covers.
enum Selection {
    Whole,
    Partial {
        hunks: Vec<Hunk>,
        chosen: BTreeSet<usize>,
    },
}

fn resolve(c: &RawChange, sides: &Sides, hunks: Option<&[usize]>) -> Result<Selection> {
    let Some(sel) = hunks else {
        return Ok(Selection::Whole);
    };
    if sel.is_empty() {
        return Err(WorktreeError::NoHunks(c.new_path.clone()));
    }
    let is_link = |s: &Option<Content>| s.as_ref().is_some_and(Content::is_link);
    if c.status == ChangeStatus::Typechange || is_link(&sides.base) || is_link(&sides.work) {
        return Err(WorktreeError::WholeFileOnly(c.new_path.clone()));
    }
    if is_large(sides) {
        return Err(WorktreeError::WholeFileOnly(c.new_path.clone()));
    }
    let patch = file_patch(sides, &c.old_path, &c.new_path)?;
    if patch.binary {
        return Err(WorktreeError::WholeFileOnly(c.new_path.clone()));
    }
    let count = patch.hunks.len();
    let chosen: BTreeSet<usize> = sel.iter().copied().collect();
    if let Some(&index) = chosen.iter().find(|i| **i >= count) {
        return Err(WorktreeError::HunkOutOfRange {
            path: c.new_path.clone(),
            index,
            count,
        });
    }
    // An added or deleted file is one hunk; all hunks chosen is the whole change (mode included).
    if chosen.len() == count || sides.base.is_none() || sides.work.is_none() {
        return Ok(Selection::Whole);
    }
    Ok(Selection::Partial {
        hunks: patch.hunks,
        chosen,
    })
}

/// Lines including their terminator, as xdiff counts them.
fn lines(b: &[u8]) -> Vec<&[u8]> {
    b.split_inclusive(|c| *c == b'\n').collect()
}

/// Rebuilds `from` with the chosen hunks replaced by their counterpart in `to`. `forward` means
/// `from` is the old side (accept); otherwise `from` is the new side (reject).
fn splice(
    from: &[u8],
    to: &[u8],
    hunks: &[Hunk],
    chosen: &BTreeSet<usize>,
    forward: bool,
) -> Result<Vec<u8>> {
    let (fl, tl) = (lines(from), lines(to));
    let mismatch =
        || WorktreeError::Git("patch does not match the file; refresh the review".into());
    // A zero-length range starts *after* line `start` (unified diff convention).
    let begin = |start: u32, len: u32| -> Result<usize> {
        if len == 0 {
            Ok(start as usize)
        } else {
            (start as usize).checked_sub(1).ok_or_else(mismatch)
        }
    };
    let mut out = Vec::with_capacity(from.len().max(to.len()));
    let mut pos = 0usize;
    for h in hunks {
        let (fs, fnum, ts, tnum) = if forward {
            (h.old_start, h.old_lines, h.new_start, h.new_lines)
        } else {
            (h.new_start, h.new_lines, h.old_start, h.old_lines)
        };
        let (fb, tb) = (begin(fs, fnum)?, begin(ts, tnum)?);
        let (fe, te) = (fb + fnum as usize, tb + tnum as usize);
        let keep = fl.get(pos..fb).ok_or_else(mismatch)?;
        keep.iter().for_each(|l| out.extend_from_slice(l));
        let middle = if chosen.contains(&h.index) {
            tl.get(tb..te).ok_or_else(mismatch)?
        } else {
            fl.get(fb..fe).ok_or_else(mismatch)?
        };
        middle.iter().for_each(|l| out.extend_from_slice(l));
        pos = fe;
    }
    fl.get(pos..)
        .ok_or_else(mismatch)?
        .iter()
        .for_each(|l| out.extend_from_slice(l));
    Ok(out)
}

enum Merge {
    Clean(Content),
    Conflict {
        reason: String,
        markers: Option<String>,
    },
}

/// 3-way merge of one file: `base` is the review-base version, `ours` the user's, `theirs` the
/// agent's selection. The executable bit merges the same way (the user's own change wins).
fn merge3(
    repo: &Repository,
    path: &str,
    base: &Content,
    ours: &Content,
    theirs: &Content,
) -> Result<Merge> {
    if ours == base {
        return Ok(Merge::Clean(theirs.clone()));
    }
    if theirs == base || ours == theirs {
        return Ok(Merge::Clean(ours.clone()));
    }
    // Both sides changed. Symlinks, type changes and binary content cannot be merged by lines.
    let unmergeable = [base, ours, theirs]
        .iter()
        .any(|c| c.is_link() || has_nul(&c.bytes));
    if unmergeable
        && ours.bytes != base.bytes
        && theirs.bytes != base.bytes
        && ours.bytes != theirs.bytes
        || ours.is_link() != theirs.is_link()
    {
        return Ok(Merge::Conflict {
            reason: format!("{path} was changed in your checkout and by the agent"),
            markers: None,
        });
    }
    let mode = if ours.mode == base.mode {
        theirs.mode
    } else {
        ours.mode
    };
    let bytes = if ours.bytes == base.bytes {
        theirs.bytes.clone()
    } else if theirs.bytes == base.bytes || ours.bytes == theirs.bytes {
        ours.bytes.clone()
    } else {
        let entry = |bytes: &[u8]| -> Result<IndexEntry> {
            Ok(IndexEntry {
                ctime: IndexTime::new(0, 0),
                mtime: IndexTime::new(0, 0),
                dev: 0,
                ino: 0,
                mode: 0o100644,
                uid: 0,
                gid: 0,
                file_size: 0,
                id: repo.blob(bytes)?,
                flags: 0,
                flags_extended: 0,
                path: path.as_bytes().to_vec(),
            })
        };
        let mut opts = MergeFileOptions::new();
        opts.our_label("yours")
            .their_label("agent")
            .ancestor_label("review base");
        let merged = repo.merge_file_from_index(
            &entry(&base.bytes)?,
            &entry(&ours.bytes)?,
            &entry(&theirs.bytes)?,
            Some(&mut opts),
        )?;
        if !merged.is_automergeable() {
            return Ok(Merge::Conflict {
                reason: format!("{path}: you changed the same lines since the review base"),
                markers: Some(String::from_utf8_lossy(merged.content()).into_owned()),
            });
        }
        merged.content().to_vec()
    };
    Ok(Merge::Clean(Content { bytes, mode }))
}

fn has_nul(b: &[u8]) -> bool {
    b.iter().take(8000).any(|c| *c == 0)
}

fn conflict(path: &str, reason: String, markers: Option<String>, rb: Oid) -> AcceptOutcome {
    info!(path, %reason, "accept: conflict, nothing written");
    AcceptOutcome {
        result: AcceptResult::Conflict {
            path: path.to_string(),
            reason,
            merged_with_markers: markers,
        },
        review_base: rb.to_string(),
    }
}

fn file_mode(mode: u32) -> FileMode {
    match mode {
        MODE_EXEC => FileMode::BlobExecutable,
        MODE_LINK => FileMode::Link,
        _ => FileMode::Blob,
    }
}

/// One file of an accept/reject: its path and, for part of it, hunk indices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pick {
    pub path: String,
    pub hunks: Option<Vec<usize>>,
}

/// One file's share of an accept: the writes to the checkout and the review-base update.
struct Planned {
    path: String,
    old_path: String,
    new_path: String,
    renamed: bool,
    target: Option<Content>,
    ops: Vec<Op>,
    written: Vec<String>,
}

enum Plan {
    Ok(Planned),
    Conflict(AcceptOutcome),
}

/// Works out what accepting `pick` would write, reading only; `Plan::Conflict` when the user's
/// checkout disagrees.
fn plan_accept(
    repo: &Repository,
    tree: &Tree<'_>,
    wt: &SessionWorktree,
    pick: &Pick,
    rb: Oid,
) -> Result<Plan> {
    let path = pick.path.as_str();
    check_inside(&wt.path, path)?;
    let c = find_change(repo, tree, &wt.path, path)?;
    let user_new = check_inside(&wt.repo_root, &c.new_path)?;
    let user_old = check_inside(&wt.repo_root, &c.old_path)?;
    let sides = load_sides(repo, tree, &wt.path, &c)?;
    if sides.base == sides.work && c.old_path == c.new_path {
        return Err(WorktreeError::NoSuchChange(path.to_string()));
    }
    let target = match resolve(&c, &sides, pick.hunks.as_deref())? {
        Selection::Whole => sides.work.clone(),
        Selection::Partial { hunks, chosen } => match (&sides.base, &sides.work) {
            (Some(b), Some(w)) => Some(Content {
                bytes: splice(&b.bytes, &w.bytes, &hunks, &chosen, true)?,
                mode: w.mode,
            }),
            _ => sides.work.clone(),
        },
    };
    let renamed = c.old_path != c.new_path;
    let mut ops = Vec::new();
    let mut written = Vec::new();
    // The checkout is compared in repository form and written in its own (CRLF, filters).
    let filters = Filters::new(repo);
    let base_bytes = sides.base.as_ref().map(|b| &b.bytes[..]);
    let read_user = |p: &std::path::Path, rel: &str| -> Result<Option<Content>> {
        match paths::read(p)? {
            Some(c) => Ok(Some(filters.clean(repo, rel, c, base_bytes)?)),
            None => Ok(None),
        }
    };
    let for_user = |rel: &str, c: &Content| filters.smudge(repo, rel, c.clone());
    let conflict_of =
        |reason: String, markers| Ok(Plan::Conflict(conflict(path, reason, markers, rb)));
    match (&sides.base, &target) {
        (Some(base), Some(theirs)) => {
            let Some(ours) = read_user(&user_old, &c.old_path)? else {
                return conflict_of(format!("{} was deleted in your checkout", c.old_path), None);
            };
            if renamed && paths::read(&user_new)?.is_some() {
                return conflict_of(
                    format!("{} already exists in your checkout", c.new_path),
                    None,
                );
            }
            match merge3(repo, &c.new_path, base, &ours, theirs)? {
                Merge::Conflict { reason, markers } => return conflict_of(reason, markers),
                Merge::Clean(merged) => {
                    if renamed || merged != ours {
                        ops.push(Op::Write(user_new.clone(), for_user(&c.new_path, &merged)?));
                        written.push(c.new_path.clone());
                    }
                    if renamed {
                        ops.push(Op::Delete(user_old.clone()));
                        written.push(c.old_path.clone());
                    }
                }
            }
        }
        (None, Some(theirs)) => match read_user(&user_new, &c.new_path)? {
            None => {
                ops.push(Op::Write(user_new.clone(), for_user(&c.new_path, theirs)?));
                written.push(c.new_path.clone());
            }
            Some(ours) if &ours == theirs => {}
            Some(_) => {
                return conflict_of(
                    format!(
                        "{} already exists in your checkout with other content",
                        c.new_path
                    ),
                    None,
                )
            }
        },
        (Some(base), None) => match read_user(&user_old, &c.old_path)? {
            None => {}
            Some(ours) if &ours == base => {
                ops.push(Op::Delete(user_old.clone()));
                written.push(c.old_path.clone());
            }
            Some(_) => {
                return conflict_of(
                    format!(
                        "{} was changed in your checkout; the agent deleted it",
                        c.old_path
                    ),
                    None,
                )
            }
        },
        (None, None) => return Err(WorktreeError::NoSuchChange(path.to_string())),
    }
    Ok(Plan::Ok(Planned {
        path: path.to_string(),
        old_path: c.old_path,
        new_path: c.new_path,
        renamed,
        target,
        ops,
        written,
    }))
}

/// What accepting `pick` would do to the user's checkout, written nowhere: the 3-way result as
/// a unified diff of the user's current file against it (`-` what the user has, `+` what the
/// accept writes), or the conflict that would stop it. Shown before accepting a hunk that
/// another session or the user's own edits also change.
pub fn preview_accept(wt: &SessionWorktree, pick: &Pick) -> Result<Preview> {
    let repo = open_wt_repo(wt)?;
    let rb = review_base(&repo, wt)?;
    let tree = repo.find_commit(rb)?.tree()?;
    let planned = match plan_accept(&repo, &tree, wt, pick, rb)? {
        Plan::Conflict(o) => {
            return Ok(match o.result {
                AcceptResult::Conflict {
                    reason,
                    merged_with_markers,
                    ..
                } => Preview::Conflict(match merged_with_markers {
                    Some(m) => format!("conflict: {reason}\n\n{m}"),
                    None => format!("conflict: {reason}"),
                }),
                AcceptResult::Applied { .. } => Preview::Writes(String::new()),
            })
        }
        Plan::Ok(p) => p,
    };
    let mut out = String::new();
    for op in &planned.ops {
        let (path, new) = match op {
            Op::Write(p, c) => (p, Some(&c.bytes[..])),
            Op::Delete(p) => (p, None),
        };
        let old = paths::read(path)?.map(|c| c.bytes);
        let rel = path.strip_prefix(&wt.repo_root).unwrap_or(path);
        let mut opts = git2::DiffOptions::new();
        opts.context_lines(3);
        let mut patch = git2::Patch::from_buffers(
            old.as_deref().unwrap_or_default(),
            Some(rel),
            new.unwrap_or_default(),
            Some(rel),
            Some(&mut opts),
        )?;
        out.push_str(&String::from_utf8_lossy(&patch.to_buf()?));
    }
    if out.is_empty() {
        out.push_str("your checkout already has this change\n");
    }
    Ok(Preview::Writes(out))
}

/// What [`preview_accept`] found: the diff the accept would write, or the conflict (with the
/// merge's markers) that would stop it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Preview {
    Writes(String),
    Conflict(String),
}

impl Preview {
    pub fn text(&self) -> &str {
        match self {
            Preview::Writes(t) | Preview::Conflict(t) => t,
        }
    }
}

/// Accepts the pending change of `path` (all of it, or the hunks at `hunks`); see [`accept_all`].
pub fn accept(wt: &SessionWorktree, path: &str, hunks: Option<&[usize]>) -> Result<AcceptOutcome> {
    accept_all(
        wt,
        &[Pick {
            path: path.to_string(),
            hunks: hunks.map(<[usize]>::to_vec),
        }],
    )
}

/// Accepts the pending changes of `picks` into the user's checkout as one transaction: each file
/// is 3-way merged against its review-base version and every write is checked (paths, conflicts,
/// file/directory clashes, permissions, disk space) before the first one; a write that still
/// fails rolls back the others. The review base advances (one commit for all of them) only when
/// everything landed. On conflict or error nothing is written and the review base stays. The
/// user's index and HEAD are never touched. Binary files, symlinks and type changes can only be
/// accepted whole.
pub fn accept_all(wt: &SessionWorktree, picks: &[Pick]) -> Result<AcceptOutcome> {
    let _guard = lock();
    let repo = open_wt_repo(wt)?;
    let rb = review_base(&repo, wt)?;
    let rb_commit = repo.find_commit(rb)?;
    let tree = rb_commit.tree()?;
    let mut plans = Vec::new();
    for pick in picks {
        match plan_accept(&repo, &tree, wt, pick, rb)? {
            Plan::Ok(p) => plans.push(p),
            Plan::Conflict(c) => return Ok(c),
        }
    }
    let ops: Vec<Op> = plans.iter().flat_map(|p| p.ops.iter().cloned()).collect();
    txn::preflight(&wt.repo_root, &ops)?;

    // Review base = old tree + exactly what was accepted; written (unreferenced) before the files.
    let mut update = TreeUpdateBuilder::new();
    for p in &plans {
        if p.renamed || p.target.is_none() {
            update.remove(paths::os_path(&p.old_path));
        }
        if let Some(t) = &p.target {
            update.upsert(
                paths::os_path(&p.new_path),
                repo.blob(&t.bytes)?,
                file_mode(t.mode),
            );
        }
    }
    let new_tree = repo.find_tree(update.create_updated(&repo, &tree)?)?;
    let sig = repo
        .signature()
        .or_else(|_| Signature::now("boo", "boo@localhost"))?;
    let what = match picks {
        [Pick {
            path,
            hunks: Some(h),
        }] => format!("hunks {h:?} of {path}"),
        [one] => one.path.clone(),
        many => format!("{} files", many.len()),
    };
    let commit = repo.commit(
        None,
        &sig,
        &sig,
        &format!("boo: accept {what}"),
        &new_tree,
        &[&rb_commit],
    )?;

    let user_repo = open_user_repo(&wt.repo_root)?;
    let mut tx = Txn::new(&wt.repo_root, user_repo.path())?;
    tx.apply(&ops)?;
    if let Err(e) =
        repo.reference_matching(&review_base_ref(&wt.slug), commit, true, rb, "boo: accept")
    {
        warn!(error = %e, "review base moved concurrently; files restored");
        tx.abort();
        return Err(if e.code() == ErrorCode::Modified {
            WorktreeError::ReviewBaseMoved
        } else {
            e.into()
        });
    }
    tx.commit();
    let paths: Vec<&str> = plans.iter().map(|p| p.path.as_str()).collect();
    info!(slug = %wt.slug, ?paths, review_base = %commit, "accepted");
    Ok(AcceptOutcome {
        result: AcceptResult::Applied {
            written: plans.into_iter().flat_map(|p| p.written).collect(),
        },
        review_base: commit.to_string(),
    })
}

/// Rejects the pending change of `path` (all of it, or the hunks at `hunks`); see [`reject_all`].
pub fn reject(wt: &SessionWorktree, path: &str, hunks: Option<&[usize]>) -> Result<RejectOutcome> {
    reject_all(
        wt,
        &[Pick {
            path: path.to_string(),
            hunks: hunks.map(<[usize]>::to_vec),
        }],
    )
}

/// Rejects the pending changes of `picks` as one transaction in the worktree: the files return
/// to their review-base content for those parts, so the agent sees them gone next turn. All
/// checks run before the first write; a failed write rolls back the others.
pub fn reject_all(wt: &SessionWorktree, picks: &[Pick]) -> Result<RejectOutcome> {
    let _guard = lock();
    let repo = open_wt_repo(wt)?;
    let rb = review_base(&repo, wt)?;
    let tree = repo.find_commit(rb)?.tree()?;
    let mut ops = Vec::new();
    let mut reverted = Vec::new();
    let filters = Filters::new(&repo);
    for pick in picks {
        let path = pick.path.as_str();
        check_inside(&wt.path, path)?;
        let c = find_change(&repo, &tree, &wt.path, path)?;
        let wt_new = check_inside(&wt.path, &c.new_path)?;
        let wt_old = check_inside(&wt.path, &c.old_path)?;
        let sides = load_sides(&repo, &tree, &wt.path, &c)?;
        if sides.base == sides.work && c.old_path == c.new_path {
            return Err(WorktreeError::NoSuchChange(path.to_string()));
        }
        match resolve(&c, &sides, pick.hunks.as_deref())? {
            Selection::Partial { hunks, chosen } => {
                if let (Some(b), Some(w)) = (&sides.base, &sides.work) {
                    let bytes = splice(&w.bytes, &b.bytes, &hunks, &chosen, false)?;
                    let content = Content {
                        bytes,
                        mode: w.mode,
                    };
                    let content = filters.smudge(&repo, &c.new_path, content)?;
                    ops.push(Op::Write(wt_new, content));
                    reverted.push(c.new_path.clone());
                }
            }
            Selection::Whole => {
                if sides.work.is_some() && (sides.base.is_none() || c.old_path != c.new_path) {
                    ops.push(Op::Delete(wt_new));
                    reverted.push(c.new_path.clone());
                }
                if let Some(b) = &sides.base {
                    let content = filters.smudge(&repo, &c.old_path, b.clone())?;
                    ops.push(Op::Write(wt_old, content));
                    reverted.push(c.old_path.clone());
                }
            }
        }
    }
    txn::preflight(&wt.path, &ops)?;
    let mut tx = Txn::new(&wt.path, repo.path())?;
    tx.apply(&ops)?;
    tx.commit();
    info!(slug = %wt.slug, ?reverted, "rejected");
    Ok(RejectOutcome { reverted })
}

#[cfg(test)]
mod tests {
    use super::super::paths::MODE_FILE;
    use super::*;

    fn hunk(index: usize, os: u32, ol: u32, ns: u32, nl: u32) -> Hunk {
        Hunk {
            index,
            header: String::new(),
            old_start: os,
            old_lines: ol,
            new_start: ns,
            new_lines: nl,
            lines: Vec::new(),
        }
    }

    #[test]
    fn splice_picks_chosen_hunks_both_ways() {
        let old = b"a\nb\nc\nd\n";
        let new = b"a\nB\nc\nd\ne\n";
        // hunk 0 replaces line 2, hunk 1 appends after line 4 (zero-length old range).
        let hs = [hunk(0, 2, 1, 2, 1), hunk(1, 4, 0, 5, 1)];
        let only1: BTreeSet<usize> = [1].into();
        assert_eq!(
            splice(old, new, &hs, &only1, true).unwrap(),
            b"a\nb\nc\nd\ne\n"
        );
        let only0: BTreeSet<usize> = [0].into();
        assert_eq!(
            splice(old, new, &hs, &only0, true).unwrap(),
            b"a\nB\nc\nd\n"
        );
        // Reject hunk 0 of the new file: back to b, keep e.
        assert_eq!(
            splice(new, old, &hs, &only0, false).unwrap(),
            b"a\nb\nc\nd\ne\n"
        );
    }

    #[test]
    fn splice_detects_mismatch() {
        let hs = [hunk(0, 9, 1, 9, 1)];
        let all: BTreeSet<usize> = [0].into();
        assert!(splice(b"a\n", b"b\n", &hs, &all, true).is_err());
    }

    /// Deterministic pseudo-random edits: accepting hunks S of base->work must equal rejecting
    /// the other hunks of work, for texts with and without a final newline.
    #[test]
    fn accept_subset_equals_reject_of_complement() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for case in 0..200 {
            let base: Vec<String> = (0..40).map(|i| format!("l{i}")).collect();
            let mut work = base.clone();
            for e in 0..(1 + next(6)) {
                let at = next(work.len() as u64) as usize;
                match next(3) {
                    0 => work[at] = format!("edit {case} {e}"),
                    1 => work.insert(at, format!("new {case} {e}")),
                    _ => {
                        work.remove(at);
                    }
                }
            }
            let join = |v: &[String], eol: bool| {
                let mut t = v.join("\n");
                if eol {
                    t.push('\n');
                }
                t.into_bytes()
            };
            let eol = case % 2 == 0;
            let sides = Sides {
                base: Some(Content {
                    bytes: join(&base, eol),
                    mode: MODE_FILE,
                }),
                work: Some(Content {
                    bytes: join(&work, eol),
                    mode: MODE_FILE,
                }),
            };
            let (b, w) = (
                &sides.base.as_ref().unwrap().bytes,
                &sides.work.as_ref().unwrap().bytes,
            );
            let p = file_patch(&sides, "f", "f").unwrap();
            let n = p.hunks.len();
            let all: BTreeSet<usize> = (0..n).collect();
            assert_eq!(&splice(b, w, &p.hunks, &all, true).unwrap(), w);
            assert_eq!(&splice(b, w, &p.hunks, &BTreeSet::new(), true).unwrap(), b);
            let chosen: BTreeSet<usize> = (0..n).filter(|_| next(2) == 0).collect();
            let rest: BTreeSet<usize> = all.difference(&chosen).copied().collect();
            assert_eq!(
                splice(b, w, &p.hunks, &chosen, true).unwrap(),
                splice(w, b, &p.hunks, &rest, false).unwrap(),
                "case {case}"
            );
        }
    }
}
