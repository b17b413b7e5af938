//! Shared fixtures for the worktree tests: real git repositories in temp dirs, set up with the
//! git CLI (the engine itself only uses libgit2).
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use boocoder::worktree::{self, CreateOptions, SessionWorktree};
use tempfile::TempDir;

pub use boo_testkit::repo::git;

pub fn write(path: &Path, content: impl AsRef<[u8]>) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).unwrap();
    }
    fs::write(path, content).unwrap();
}

pub fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap()
}

pub fn read_s(path: &Path) -> String {
    fs::read_to_string(path).unwrap()
}

#[cfg(unix)]
pub fn set_exec(path: &Path, on: bool) {
    use std::os::unix::fs::PermissionsExt;
    let mode = if on { 0o755 } else { 0o644 };
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(unix)]
pub fn is_exec(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o111 != 0
}

/// `n` numbered lines, `line 1\n` .. `line n\n`.
pub fn numbered(n: usize) -> String {
    (1..=n).map(|i| format!("line {i}\n")).collect()
}

/// Replaces line `no` (1-based) of `text`.
pub fn replace_line(text: &str, no: usize, with: &str) -> String {
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            if i + 1 == no {
                format!("{with}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect()
}

/// A temp dir holding a repository (`repo/`, or under `repo_name`) and room for worktrees.
pub struct Fixture {
    pub tmp: TempDir,
    pub repo: PathBuf,
}

impl Fixture {
    /// A repository with one commit of `files`.
    pub fn new(files: &[(&str, &str)]) -> Fixture {
        Fixture::named("repo", files)
    }

    /// [`Fixture::new`] of generated (owned) paths and contents.
    pub fn owned(files: &[(String, String)]) -> Fixture {
        let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (&p[..], &c[..])).collect();
        Fixture::new(&refs)
    }

    pub fn named(repo_name: &str, files: &[(&str, &str)]) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join(repo_name);
        fs::create_dir_all(&repo).unwrap();
        git(&repo, &["init", "-q"]);
        for (p, c) in files {
            write(&repo.join(p), c);
        }
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", "initial"]);
        Fixture { tmp, repo }
    }

    pub fn dest(&self, slug: &str) -> PathBuf {
        self.tmp.path().join("data").join("worktrees").join(slug)
    }

    pub fn create(&self, slug: &str) -> SessionWorktree {
        worktree::create(
            &self.repo,
            &self.dest(slug),
            slug,
            &CreateOptions::default(),
        )
        .expect("create worktree")
    }

    pub fn head(&self) -> String {
        git(&self.repo, &["rev-parse", "HEAD"]).trim().to_string()
    }

    /// `git status --porcelain` of the user's checkout.
    pub fn status(&self) -> String {
        git(&self.repo, &["status", "--porcelain"])
    }
}

/// Every entry under `root` (not `.git`) with its type, permission bits and content or link
/// target, sorted: equal digests mean byte-for-byte and mode-for-mode the same tree.
#[cfg(unix)]
pub fn digest(root: &Path) -> Vec<String> {
    digest_where(root, &|p| p.file_name().is_some_and(|n| n == ".git"))
}

/// [`digest`] skipping the paths `skip` says.
#[cfg(unix)]
pub fn digest_where(root: &Path, skip: &dyn Fn(&Path) -> bool) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if skip(&p) {
                continue;
            }
            let m = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let mode = m.permissions().mode() & 0o7777;
            if m.file_type().is_symlink() {
                out.push(format!("{rel} link {:?}", fs::read_link(&p).unwrap()));
            } else if m.is_dir() {
                out.push(format!("{rel} dir {mode:o}"));
                stack.push(p);
            } else {
                out.push(format!("{rel} file {mode:o} {:?}", fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// The review base of session `slug`, as the ref says.
pub fn review_base_of(repo: &Path, slug: &str) -> String {
    git(
        repo,
        &["rev-parse", &format!("refs/boo/{slug}/review-base")],
    )
    .trim()
    .to_string()
}
