//! Which paths of a session worktree changed, from inotify, so a pending scan reads only them
//! and not every file of a large repository (an `lstat` of 100,000 files costs ~0.6 s).
//!
//! Every directory is watched (not `.git`, not ignored directories without tracked files). No
//! thread: the kernel queues an event before the syscall that caused it returns, so draining
//! the queue when a scan starts sees every change made before. What inotify cannot tell
//! exactly (a queue overflow, a directory moved or deleted, a `.gitignore` changed) asks for a
//! full scan instead. Linux only: elsewhere every scan is a full one.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Mutex;

/// What changed since the last [`Watch::take`].
#[derive(Debug, PartialEq, Eq)]
pub enum Since {
    /// Not watching (the watch failed, or the worktree is gone): scan everything, and do not
    /// trust a later `Paths` against that scan.
    NotWatching,
    /// Watched from now on (or the events do not say exactly what changed): scan everything.
    Unknown,
    /// Watched throughout: these relative paths may have changed.
    Paths(BTreeSet<String>),
}

enum State {
    Idle,
    On(imp::Watcher),
    Off,
}

/// The watch of one worktree, started by its first [`Watch::take`] (it walks every directory,
/// so that is done where the scan runs, off the app loop).
pub struct Watch {
    root: PathBuf,
    state: Mutex<State>,
}

impl Watch {
    pub fn new(root: PathBuf) -> Watch {
        Watch {
            root,
            state: Mutex::new(State::Idle),
        }
    }

    /// The changes since the last call (and forgets them).
    pub fn take(&self) -> Since {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *st {
            State::Idle => match imp::Watcher::start(&self.root) {
                Ok(w) => {
                    *st = State::On(w);
                    Since::Unknown
                }
                Err(e) => {
                    tracing::info!(
                        root = %self.root.display(),
                        "worktree watch off ({e}): pending scans read every file"
                    );
                    *st = State::Off;
                    Since::NotWatching
                }
            },
            State::On(w) => match w.drain() {
                Some(since) => since,
                None => {
                    // The worktree was removed (maybe made again at the same path): start
                    // over at the next scan.
                    *st = State::Idle;
                    Since::NotWatching
                }
            },
            State::Off => Since::NotWatching,
        }
    }

    /// Whether the watch is on (after the first scan, unless it failed).
    pub fn watching(&self) -> bool {
        matches!(
            *self.state.lock().unwrap_or_else(|p| p.into_inner()),
            State::On(_)
        )
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use std::collections::{BTreeSet, HashMap, HashSet};
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Path, PathBuf};

    use super::super::paths::{git_path, os_path, os_path_bytes};
    use super::Since;

    /// A file name as the scan names paths (see `paths::git_path`: non-UTF-8 bytes escaped).
    fn name_of(bytes: &[u8]) -> String {
        git_path(Path::new(std::ffi::OsStr::from_bytes(bytes)))
    }

    const MASK: u32 = libc::IN_CREATE
        | libc::IN_DELETE
        | libc::IN_MODIFY
        | libc::IN_CLOSE_WRITE
        | libc::IN_MOVED_FROM
        | libc::IN_MOVED_TO
        | libc::IN_ATTRIB
        | libc::IN_DELETE_SELF
        | libc::IN_MOVE_SELF
        | libc::IN_ONLYDIR
        | libc::IN_DONT_FOLLOW;

    pub(super) struct Watcher {
        fd: i32,
        root: PathBuf,
        /// Watch descriptor -> relative directory ("" for the root).
        dirs: HashMap<i32, String>,
        repo: Option<git2::Repository>,
        /// Directories holding tracked files: watched even when ignored.
        tracked_dirs: HashSet<String>,
    }

    impl Drop for Watcher {
        fn drop(&mut self) {
            // SAFETY: our descriptor, closed once.
            unsafe { libc::close(self.fd) };
        }
    }

    fn tracked_dirs(repo: &git2::Repository) -> HashSet<String> {
        let mut out = HashSet::new();
        if let Ok(index) = repo.index() {
            for e in index.iter() {
                let p = git_path(&os_path_bytes(&e.path));
                let mut dir = p.as_str();
                while let Some((parent, _)) = dir.rsplit_once('/') {
                    if !out.insert(parent.to_string()) {
                        break;
                    }
                    dir = parent;
                }
            }
        }
        out
    }

    fn join(dir: &str, name: &str) -> String {
        if dir.is_empty() {
            name.to_string()
        } else {
            format!("{dir}/{name}")
        }
    }

    impl Watcher {
        pub(super) fn start(root: &Path) -> std::io::Result<Watcher> {
            // SAFETY: plain syscall; the descriptor is owned by the Watcher (closed on drop).
            let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let repo = git2::Repository::open(root).ok();
            let tracked_dirs = repo.as_ref().map(tracked_dirs).unwrap_or_default();
            let mut w = Watcher {
                fd,
                root: root.to_path_buf(),
                dirs: HashMap::new(),
                repo,
                tracked_dirs,
            };
            w.add_tree("", None)?;
            tracing::debug!(root = %root.display(), dirs = w.dirs.len(), "worktree watched");
            Ok(w)
        }

        /// Reads every queued event; None when the watch cannot go on (the worktree is gone).
        pub(super) fn drain(&mut self) -> Option<Since> {
            let mut buf = vec![0u8; 64 * 1024];
            let mut dirty = BTreeSet::new();
            let mut unknown = false;
            loop {
                // SAFETY: reads into our buffer, at most its length.
                let len = unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len()) };
                if len < 0 {
                    let e = std::io::Error::last_os_error();
                    if e.kind() == std::io::ErrorKind::Interrupted {
                        continue;
                    }
                    if e.kind() == std::io::ErrorKind::WouldBlock {
                        break;
                    }
                    tracing::info!("worktree watch read failed: {e}");
                    return None;
                }
                if len == 0 {
                    break;
                }
                if !self.events(&buf[..len as usize], &mut dirty, &mut unknown) {
                    return None;
                }
            }
            Some(if unknown {
                Since::Unknown
            } else {
                Since::Paths(dirty)
            })
        }

        /// Watches `rel` and every directory under it; with `found`, also records every file
        /// under it (they may have been made before the watch was in place).
        fn add_tree(
            &mut self,
            rel: &str,
            mut found: Option<&mut BTreeSet<String>>,
        ) -> std::io::Result<()> {
            let mut stack = vec![rel.to_string()];
            while let Some(dir) = stack.pop() {
                let path = self.root.join(os_path(&dir));
                let c = CString::new(path.as_os_str().as_bytes())
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
                // SAFETY: a valid C string and our descriptor.
                let wd = unsafe { libc::inotify_add_watch(self.fd, c.as_ptr(), MASK) };
                if wd < 0 {
                    let e = std::io::Error::last_os_error();
                    // Gone meanwhile (or not a directory any more): its events say so.
                    if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) {
                        continue;
                    }
                    return Err(e);
                }
                self.dirs.insert(wd, dir.clone());
                let Ok(entries) = std::fs::read_dir(&path) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let name = name_of(entry.file_name().as_bytes());
                    if dir.is_empty() && name == ".git" {
                        continue;
                    }
                    let child = join(&dir, &name);
                    if entry.file_type().is_ok_and(|t| t.is_dir()) {
                        if !self.skipped(&child) {
                            stack.push(child);
                        }
                    } else if let Some(f) = found.as_deref_mut() {
                        f.insert(child);
                    }
                }
            }
            Ok(())
        }

        /// An ignored directory with no tracked file in it: nothing there is ever pending.
        fn skipped(&self, rel: &str) -> bool {
            !self.tracked_dirs.contains(rel)
                && self
                    .repo
                    .as_ref()
                    .is_some_and(|r| r.is_path_ignored(os_path(rel)).unwrap_or(false))
        }

        /// Handles a buffer of events; false when the watch cannot go on.
        fn events(
            &mut self,
            mut buf: &[u8],
            dirty: &mut BTreeSet<String>,
            unknown: &mut bool,
        ) -> bool {
            let header = std::mem::size_of::<libc::inotify_event>();
            let mut rescan = false;
            while buf.len() >= header {
                // SAFETY: the kernel writes whole events; read_unaligned copes with alignment.
                let ev: libc::inotify_event =
                    unsafe { std::ptr::read_unaligned(buf.as_ptr().cast()) };
                let end = header + ev.len as usize;
                if buf.len() < end {
                    break;
                }
                let raw = &buf[header..end];
                let n = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
                let name = name_of(&raw[..n]);
                buf = &buf[end..];
                if ev.mask & libc::IN_Q_OVERFLOW != 0 {
                    *unknown = true;
                    continue;
                }
                let Some(dir) = self.dirs.get(&ev.wd).cloned() else {
                    continue;
                };
                let own = ev.mask & (libc::IN_IGNORED | libc::IN_DELETE_SELF | libc::IN_MOVE_SELF);
                if own != 0 {
                    if dir.is_empty() {
                        return false; // the worktree itself is gone
                    }
                    if ev.mask & libc::IN_IGNORED != 0 {
                        self.dirs.remove(&ev.wd);
                    }
                    continue;
                }
                if name.is_empty() || (dir.is_empty() && name == ".git") {
                    continue;
                }
                let rel = join(&dir, &name);
                if ev.mask & libc::IN_ISDIR != 0 {
                    let made = libc::IN_CREATE | libc::IN_MOVED_TO;
                    if ev.mask & made != 0 && !self.skipped(&rel) {
                        let mut found = BTreeSet::new();
                        if self.add_tree(&rel, Some(&mut found)).is_err() {
                            *unknown = true;
                        }
                        dirty.extend(found);
                    }
                    // A directory moved or deleted takes tracked files with it.
                    if ev.mask & (libc::IN_MOVED_FROM | libc::IN_DELETE) != 0 {
                        *unknown = true;
                    }
                    continue;
                }
                if name == ".gitignore" {
                    // What is ignored changed: scan everything, watch what is no longer ignored.
                    *unknown = true;
                    rescan = true;
                }
                dirty.insert(rel);
            }
            if rescan {
                if let Some(r) = &self.repo {
                    self.tracked_dirs = tracked_dirs(r);
                }
                if self.add_tree("", None).is_err() {
                    *unknown = true;
                }
            }
            true
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::Since;

    pub(super) struct Watcher;

    impl Watcher {
        pub(super) fn start(_root: &std::path::Path) -> std::io::Result<Watcher> {
            Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "no inotify on this system",
            ))
        }

        pub(super) fn drain(&mut self) -> Option<Since> {
            None
        }
    }
}
