//! All-or-nothing writes of several files under one root (the user's checkout or a worktree).
//!
//! [`preflight`] checks a target before anything is written (symlinked parents, file/directory
//! clashes, permissions, disk space). [`Txn`] then writes: each new content goes to a scratch
//! file renamed into place; a file about to be replaced or deleted is first hard-linked into the
//! scratch directory, so rollback renames the very same inode back (content, mode, owner
//! byte-for-byte). Dropping a `Txn` without [`Txn::commit`] rolls back.
//!
//! The scratch directory is `<git dir>/boo-tmp` (for a linked worktree its own git dir), not the
//! checkout: a process killed mid-write leaves nothing in the user's files, and the next
//! transaction sweeps what dead processes left there. Only when the git dir is on another
//! filesystem than the target (rename cannot cross it) does the scratch file sit next to the
//! target, hidden by its name.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::warn;

use super::paths::Content;
use super::{Result, WorktreeError};

/// Bytes kept free beyond what a transaction writes, so it never fills the disk to the brim.
const SPACE_MARGIN: u64 = 1 << 20;

/// One write of a transaction.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    Write(PathBuf, Content),
    Delete(PathBuf),
}

impl Op {
    pub fn path(&self) -> &Path {
        match self {
            Op::Write(p, _) | Op::Delete(p) => p,
        }
    }
}

enum Undo {
    /// `path` was replaced or deleted; its old inode is hard-linked at `backup`.
    Restore { path: PathBuf, backup: PathBuf },
    /// `path` did not exist before.
    Remove(PathBuf),
    /// The directory was created by the transaction.
    Dir(PathBuf),
}

pub(crate) struct Txn {
    root: PathBuf,
    scratch: PathBuf,
    undo: Vec<Undo>,
    /// Parents of deleted files, removed at commit when empty (as git does).
    prune: Vec<PathBuf>,
    done: bool,
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

fn refused(root: &Path, p: &Path, reason: impl Into<String>) -> WorktreeError {
    WorktreeError::Refused {
        path: rel(root, p),
        reason: reason.into(),
    }
}

/// Checks every op of a transaction before the first write. `root` is the checkout or worktree.
pub(crate) fn preflight(root: &Path, ops: &[Op]) -> Result<()> {
    let deleted: Vec<&Path> = ops
        .iter()
        .filter_map(|o| match o {
            Op::Delete(p) => Some(p.as_path()),
            Op::Write(..) => None,
        })
        .collect();
    let mut need: u64 = 0;
    for op in ops {
        let path = op.path();
        if let Ok(m) = fs::symlink_metadata(path) {
            if m.is_dir() {
                return Err(refused(root, path, "a directory is in the way of the file"));
            }
        }
        // File/directory clash: an ancestor that is a file (or symlink) the change does not
        // also delete.
        let mut dir = path.parent();
        let mut existing = None;
        while let Some(d) = dir {
            if d == root || !d.starts_with(root) {
                break;
            }
            match fs::symlink_metadata(d) {
                Ok(m) if m.is_dir() => {
                    existing.get_or_insert(d);
                }
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(refused(
                        root,
                        path,
                        format!("{} is a symbolic link", rel(root, d)),
                    ))
                }
                Ok(_) if !deleted.contains(&d) => {
                    return Err(refused(
                        root,
                        path,
                        format!(
                            "{} is a file in the way of a directory (file/directory conflict)",
                            rel(root, d)
                        ),
                    ))
                }
                _ => {}
            }
            dir = d.parent();
        }
        let dir = existing.unwrap_or(root);
        if !writable(dir) {
            return Err(refused(
                root,
                path,
                format!("directory {} is not writable", rel(root, dir)),
            ));
        }
        if let Op::Write(_, c) = op {
            need += c.bytes.len() as u64;
        }
    }
    if let Some(free) = free_space(root) {
        if free < need + SPACE_MARGIN {
            return Err(WorktreeError::Refused {
                path: root.display().to_string(),
                reason: format!("not enough disk space ({need} bytes to write, {free} free)"),
            });
        }
    }
    Ok(())
}

#[cfg(unix)]
fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

#[cfg(not(unix))]
fn writable(_dir: &Path) -> bool {
    true
}

#[cfg(unix)]
fn free_space(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills the struct it is given; `c` is a valid path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

#[cfg(not(unix))]
fn free_space(_dir: &Path) -> Option<u64> {
    None
}

static SEQ: AtomicU64 = AtomicU64::new(0);

fn scratch_name(suffix: &str) -> String {
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{}-{seq}.{suffix}", std::process::id())
}

/// Removes scratch files of processes that no longer run (killed mid-transaction).
fn sweep(scratch: &Path) {
    let Ok(entries) = fs::read_dir(scratch) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid: Option<i32> = name.split('-').next().and_then(|p| p.parse().ok());
        if pid.is_some_and(|p| p != std::process::id() as i32 && !alive(p)) {
            let _ = fs::remove_file(e.path());
        }
    }
}

#[cfg(unix)]
fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let ok = unsafe { libc::kill(pid, 0) } == 0;
    ok || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(not(unix))]
fn alive(_pid: i32) -> bool {
    true
}

#[cfg(unix)]
fn same_fs(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_fs(_a: &Path, _b: &Path) -> bool {
    false
}

impl Txn {
    /// A transaction writing under `root`, with scratch files in `git_dir/boo-tmp`.
    pub fn new(root: &Path, git_dir: &Path) -> Result<Txn> {
        let scratch = git_dir.join("boo-tmp");
        fs::create_dir_all(&scratch).map_err(|e| WorktreeError::io(&scratch, e))?;
        sweep(&scratch);
        Ok(Txn {
            root: root.to_path_buf(),
            scratch,
            undo: Vec::new(),
            prune: Vec::new(),
            done: false,
        })
    }

    /// Applies `ops`, deletions first (a file may give way to a directory); on the first
    /// failure everything done so far is rolled back and the error names the cause.
    pub fn apply(&mut self, ops: &[Op]) -> Result<()> {
        let deletes = ops.iter().filter(|o| matches!(o, Op::Delete(_)));
        let writes = ops.iter().filter(|o| matches!(o, Op::Write(..)));
        for op in deletes.chain(writes) {
            let r = match op {
                Op::Write(p, c) => self.write(p, c),
                Op::Delete(p) => self.delete(p),
            };
            if let Err(e) = r {
                self.rollback();
                return Err(WorktreeError::RolledBack {
                    cause: e.to_string(),
                });
            }
        }
        Ok(())
    }

    /// Where a scratch file for a target in `dir` goes: the scratch directory when a rename
    /// can get from there to `dir`, else `dir` itself under a hidden name.
    fn scratch_for(&self, dir: &Path, suffix: &str) -> PathBuf {
        if same_fs(&self.scratch, dir) {
            self.scratch.join(scratch_name(suffix))
        } else {
            dir.join(format!(".boo-{}", scratch_name(suffix)))
        }
    }

    fn backup(&mut self, path: &Path) -> Result<bool> {
        if fs::symlink_metadata(path).is_err() {
            return Ok(false);
        }
        let backup = self.scratch_for(path.parent().unwrap_or(&self.root), "bak");
        fs::hard_link(path, &backup).map_err(|e| WorktreeError::io(path, e))?;
        self.undo.push(Undo::Restore {
            path: path.to_path_buf(),
            backup,
        });
        Ok(true)
    }

    fn write(&mut self, path: &Path, content: &Content) -> Result<()> {
        let dir = path
            .parent()
            .ok_or_else(|| WorktreeError::PathOutside(path.display().to_string()))?;
        let mut missing = Vec::new();
        let mut d = Some(dir);
        while let Some(x) = d.filter(|x| fs::symlink_metadata(x).is_err()) {
            missing.push(x.to_path_buf());
            d = x.parent();
        }
        for m in missing.into_iter().rev() {
            fs::create_dir(&m).map_err(|e| WorktreeError::io(&m, e))?;
            self.undo.push(Undo::Dir(m));
        }
        let tmp = self.scratch_for(dir, "tmp");
        let r = stage(&tmp, path, content);
        if let Err(e) = r {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        let existed = match self.backup(path) {
            Ok(b) => b,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        if let Err(e) = fs::rename(&tmp, path) {
            let _ = fs::remove_file(&tmp);
            return Err(WorktreeError::io(path, e));
        }
        if !existed {
            self.undo.push(Undo::Remove(path.to_path_buf()));
        }
        Ok(())
    }

    fn delete(&mut self, path: &Path) -> Result<()> {
        if !self.backup(path)? {
            return Ok(());
        }
        fs::remove_file(path).map_err(|e| WorktreeError::io(path, e))?;
        if let Some(p) = path.parent() {
            self.prune.push(p.to_path_buf());
        }
        Ok(())
    }

    fn rollback(&mut self) {
        for u in self.undo.drain(..).rev() {
            let r = match &u {
                Undo::Restore { path, backup } => fs::rename(backup, path),
                Undo::Remove(p) => fs::remove_file(p),
                Undo::Dir(p) => fs::remove_dir(p),
            };
            if let Err(e) = r {
                let p = match &u {
                    Undo::Restore { path, .. } | Undo::Remove(path) | Undo::Dir(path) => path,
                };
                warn!(path = %p.display(), error = %e, "rollback step failed");
            }
        }
        self.done = true;
    }

    /// Everything landed: drop the backups and prune directories emptied by deletions.
    pub fn commit(mut self) {
        for u in &self.undo {
            if let Undo::Restore { backup, .. } = u {
                let _ = fs::remove_file(backup);
            }
        }
        for dir in std::mem::take(&mut self.prune) {
            let mut d = Some(dir.as_path());
            while let Some(x) = d {
                if x == self.root || !x.starts_with(&self.root) || fs::remove_dir(x).is_err() {
                    break; // not empty (or not ours): stop, like git does
                }
                d = x.parent();
            }
        }
        self.undo.clear();
        self.done = true;
    }

    /// Undoes everything written so far (also done on drop).
    pub fn abort(mut self) {
        self.rollback();
    }
}

impl Drop for Txn {
    fn drop(&mut self) {
        if !self.done {
            self.rollback();
        }
    }
}

/// Writes the new content to `tmp` with the mode it will have at `path`.
fn stage(tmp: &Path, path: &Path, content: &Content) -> Result<()> {
    if content.is_link() {
        return super::paths::make_symlink(&content.bytes, tmp);
    }
    // Errors name the target: the scratch file is an implementation detail.
    let mut f = fs::File::create(tmp).map_err(|e| WorktreeError::io(path, e))?;
    f.write_all(&content.bytes)
        .map_err(|e| WorktreeError::io(path, e))?;
    f.sync_all().map_err(|e| WorktreeError::io(path, e))?;
    super::paths::set_mode(tmp, path, content.mode)
}
