//! The review engine: what the user's accept/reject request means (hunk ids, user paths,
//! files chosen) and the one line that reports it. Plain data in and out; the app runs it off
//! the loop and shows the result.
//!
//! The view names hunks by a content fingerprint ([`hunk_ids`]); [`act`] maps them to the
//! engine's indices against a freshly computed diff, so a stale view never accepts the wrong
//! hunk. Everything a request covers goes through one [`accept_all`]/[`reject_all`]
//! transaction: either all of it lands or none of it.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use super::apply::{accept_all, reject_all, Pick};
use super::diff::pending;
use super::paths::check_inside;
use super::{AcceptResult, FileChange, Hunk, SessionWorktree, WorktreeError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActKind {
    Accept,
    Reject,
    /// What an accept would write (the 3-way result), written nowhere.
    Preview,
}

/// An accept/reject as the user asked for it.
#[derive(Clone, Debug)]
pub struct ActRequest {
    pub kind: ActKind,
    /// A file (relative to the repository, or absolute inside it or the worktree); `None`: all.
    pub path: Option<String>,
    /// Hunk ids from the view; `None`: the whole file(s).
    pub hunks: Option<Vec<String>>,
    /// Absolute paths of the user's buffers with unsaved edits.
    pub modified: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

/// What [`act`] did, for the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActReport {
    /// One line saying what happened and why.
    pub message: (String, Level),
    /// Absolute paths of files written (checkout for accept, worktree for reject).
    pub reload: Vec<String>,
    /// The review base after an accept that landed.
    pub review_base: Option<String>,
    /// For a preview: the accept's result as a diff of the user's files.
    pub preview: Option<super::Preview>,
}

/// A hunk's id in the view: a fingerprint of its changed lines (plus the occurrence number when
/// a file has identical hunks), stable while the hunk itself does not change.
pub fn hunk_ids(path: &str, hunks: &[Hunk]) -> Vec<String> {
    let mut seen: HashMap<u64, usize> = HashMap::new();
    hunks
        .iter()
        .map(|h| {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            path.hash(&mut hasher);
            for l in h.lines.iter().filter(|l| l.origin != ' ') {
                l.origin.hash(&mut hasher);
                l.content.hash(&mut hasher);
            }
            let fp = hasher.finish();
            let n = seen.entry(fp).or_insert(0);
            *n += 1;
            format!("{fp:016x}-{n}")
        })
        .collect()
}

/// A path given by the user: relative to the repository (absolute ones inside it or the
/// worktree are made relative), then checked to stay inside it.
pub fn user_path(repo_root: &Path, dir: &Path, p: &str) -> Result<String, WorktreeError> {
    let mut rel = p.trim().to_string();
    let abs = Path::new(&rel);
    if abs.is_absolute() {
        let strip = |root: &Path| {
            abs.strip_prefix(root)
                .ok()
                .map(|r| r.to_path_buf())
                .or_else(|| {
                    let c = std::fs::canonicalize(root).ok()?;
                    abs.strip_prefix(c).ok().map(|r| r.to_path_buf())
                })
        };
        match strip(repo_root).or_else(|| strip(dir)) {
            Some(r) => rel = r.to_string_lossy().replace('\\', "/"),
            None => return Err(WorktreeError::PathOutside(rel)),
        }
    }
    let rel = rel.trim_start_matches("./").to_string();
    check_inside(repo_root, &rel)?;
    Ok(rel)
}

/// Both the literal and the resolved form of each path, for comparing buffer names with files.
fn path_set(paths: &[String]) -> HashSet<PathBuf> {
    let mut out = HashSet::new();
    for p in paths {
        let p = PathBuf::from(p);
        if let Ok(c) = std::fs::canonicalize(&p) {
            out.insert(c);
        }
        out.insert(p);
    }
    out
}

fn in_set(set: &HashSet<PathBuf>, p: &Path) -> bool {
    set.contains(p) || std::fs::canonicalize(p).is_ok_and(|c| set.contains(&c))
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

fn warn(m: String) -> ActReport {
    ActReport {
        message: (format!("boo: {m}"), Level::Warn),
        reload: Vec::new(),
        review_base: None,
        preview: None,
    }
}

/// Resolves `req` against the current pending diff and runs it as one transaction.
pub fn act(wt: &SessionWorktree, req: &ActRequest) -> ActReport {
    let verb = match req.kind {
        ActKind::Accept => "accept",
        ActKind::Reject => "reject",
        ActKind::Preview => "preview",
    };
    let files = match pending(wt) {
        Ok(f) => f,
        Err(e) => return warn(format!("cannot {verb}: {}", first_line(&e.to_string()))),
    };
    let chosen: Vec<&FileChange> = match &req.path {
        Some(p) => {
            let rel = match user_path(&wt.repo_root, &wt.path, p) {
                Ok(r) => r,
                Err(e) => return warn(first_line(&e.to_string()).to_string()),
            };
            match files
                .iter()
                .find(|f| f.path == rel || f.old_path.as_deref() == Some(rel.as_str()))
            {
                Some(f) if f.submodule => {
                    return warn(format!(
                        "{rel} is a submodule: boo shows its new commit but does not {verb} it"
                    ))
                }
                Some(f) => vec![f],
                None => return warn(format!("no pending change for {rel}")),
            }
        }
        None if files.iter().all(|f| f.submodule) => {
            let message = if files.is_empty() {
                "boo: no pending changes"
            } else {
                "boo: only submodule changes are pending; boo does not apply them"
            };
            return ActReport {
                message: (message.into(), Level::Info),
                reload: Vec::new(),
                review_base: None,
                preview: None,
            };
        }
        None => files.iter().filter(|f| !f.submodule).collect(),
    };
    let mut picks = Vec::new();
    for f in &chosen {
        let hunks = match &req.hunks {
            None => None,
            Some(refs) => {
                let ids = hunk_ids(&f.path, &f.hunks);
                let idx: Option<Vec<usize>> = refs
                    .iter()
                    .map(|r| ids.iter().position(|i| i == r))
                    .collect();
                match idx {
                    Some(i) if !i.is_empty() => Some(i),
                    _ => {
                        return warn(format!(
                        "that hunk of {} is no longer pending as shown; the review was refreshed",
                        f.path
                    ))
                    }
                }
            }
        };
        picks.push(Pick {
            path: f.path.clone(),
            hunks,
        });
    }
    if req.kind == ActKind::Accept {
        // Unsaved edits to any file of the request stop all of it: the write would be lost
        // under the buffer or overwrite it.
        let modified = path_set(&req.modified);
        for f in &chosen {
            let user = std::iter::once(&f.path)
                .chain(f.old_path.as_ref())
                .map(|p| wt.repo_root.join(p));
            if let Some(edited) = user.into_iter().find(|p| in_set(&modified, p)) {
                let rel = edited.strip_prefix(&wt.repo_root).unwrap_or(&edited);
                return warn(format!(
                    "save or discard your edits to {} first; nothing was accepted",
                    rel.display()
                ));
            }
        }
    }
    let what = match (&req.hunks, picks.as_slice()) {
        (Some(h), [one]) => format!("{} hunk(s) of {}", h.len(), one.path),
        (None, [one]) => one.path.clone(),
        (_, many) => format!("{} files", many.len()),
    };
    match req.kind {
        ActKind::Preview => {
            let (mut text, mut conflict) = (String::new(), false);
            for pick in &picks {
                match super::preview_accept(wt, pick) {
                    Ok(p) => {
                        conflict |= matches!(p, super::Preview::Conflict(_));
                        text.push_str(p.text());
                    }
                    Err(e) => {
                        return warn(format!(
                            "cannot preview {what}: {}",
                            first_line(&e.to_string())
                        ))
                    }
                }
            }
            ActReport {
                message: (String::new(), Level::Info),
                reload: Vec::new(),
                review_base: None,
                preview: Some(if conflict {
                    super::Preview::Conflict(text)
                } else {
                    super::Preview::Writes(text)
                }),
            }
        }
        ActKind::Accept => match accept_all(wt, &picks) {
            Ok(out) => match out.result {
                AcceptResult::Applied { written } => ActReport {
                    message: (format!("boo: accepted {what}"), Level::Info),
                    reload: written
                        .iter()
                        .map(|w| wt.repo_root.join(w).display().to_string())
                        .collect(),
                    review_base: Some(out.review_base),
                    preview: None,
                },
                AcceptResult::Conflict { path, reason, .. } => warn(format!(
                    "conflict in {path}: {}; nothing was accepted, your files were left as they were",
                    first_line(&reason)
                )),
            },
            Err(e) => ActReport {
                message: (
                    format!("boo: cannot accept {what}: {}", first_line(&e.to_string())),
                    Level::Error,
                ),
                reload: Vec::new(),
                review_base: None,
                preview: None,
            },
        },
        ActKind::Reject => match reject_all(wt, &picks) {
            Ok(out) => ActReport {
                message: (format!("boo: rejected {what}"), Level::Info),
                reload: out
                    .reverted
                    .iter()
                    .map(|w| wt.path.join(w).display().to_string())
                    .collect(),
                review_base: None,
                preview: None,
            },
            Err(e) => ActReport {
                message: (
                    format!("boo: cannot reject {what}: {}", first_line(&e.to_string())),
                    Level::Error,
                ),
                reload: Vec::new(),
                review_base: None,
                preview: None,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worktree::HunkLine;

    fn hunk(lines: &[(char, &str)]) -> Hunk {
        Hunk {
            index: 0,
            header: "@@".into(),
            old_start: 1,
            old_lines: 1,
            new_start: 1,
            new_lines: 1,
            lines: lines
                .iter()
                .map(|(o, c)| HunkLine {
                    origin: *o,
                    old_lineno: None,
                    new_lineno: None,
                    content: c.to_string(),
                })
                .collect(),
        }
    }

    #[test]
    fn hunk_ids_ignore_context_and_tell_identical_hunks_apart() {
        let a = hunk(&[(' ', "ctx\n"), ('+', "new\n")]);
        let b = hunk(&[(' ', "other ctx\n"), ('+', "new\n")]);
        let c = hunk(&[('-', "old\n")]);
        let ids = hunk_ids("f", &[a.clone(), c.clone(), b]);
        assert_ne!(ids[0], ids[1]);
        assert_ne!(
            ids[0], ids[2],
            "same change twice: told apart by occurrence"
        );
        // After the first hunk is gone, the second keeps its id.
        assert_eq!(hunk_ids("f", &[c])[0], ids[1]);
        assert_ne!(hunk_ids("g", &[a])[0], ids[0], "ids differ between files");
    }

    #[test]
    fn user_paths_are_made_relative_and_checked() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path().join("repo");
        std::fs::create_dir_all(root.join("src")).expect("mkdir");
        let wt = tmp.path().join("wt");
        let ok = |p: &str| user_path(&root, &wt, p).ok();
        assert_eq!(ok("./src/a.rs").as_deref(), Some("src/a.rs"));
        let abs = root.join("src/a.rs").display().to_string();
        assert_eq!(ok(&abs).as_deref(), Some("src/a.rs"));
        assert!(ok("../x").is_none());
        assert!(ok("/etc/passwd").is_none());
    }
}
