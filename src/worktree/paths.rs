//! Path checks and file I/O on the user's checkout and the worktree.
//!
//! Files are handled as git sees them: a regular file is its bytes plus the executable bit, a
//! symlink is its target text. Symlinks are never followed when reading or writing.

use std::fs;
use std::path::{Component, Path, PathBuf};

use super::{Result, WorktreeError};

pub(crate) const MODE_FILE: u32 = 0o100644;
pub(crate) const MODE_EXEC: u32 = 0o100755;
pub(crate) const MODE_LINK: u32 = 0o120000;

/// A file's content as git sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Content {
    pub bytes: Vec<u8>,
    pub mode: u32,
}

impl Content {
    pub fn is_link(&self) -> bool {
        self.mode == MODE_LINK
    }
}

/// Directory name for a repository's worktrees: `<repo>-<hash>`, where `<repo>` is the sanitized
/// base name and `<hash>` a stable hash of the canonical path (distinguishes same-named repos).
pub fn repo_dir_name(repo_root: &Path) -> String {
    let canonical = fs::canonicalize(repo_root).unwrap_or_else(|_| repo_root.to_path_buf());
    let name: String = canonical
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "repo".to_string())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // FNV-1a: stable across Rust versions, unlike std's DefaultHasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in canonical.as_os_str().as_encoded_bytes() {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{}-{:012x}", name.trim_start_matches('.'), hash >> 16)
}

/// Checks that `rel` (a `/`-separated relative path from the agent or the user) stays inside
/// `root` and returns `root/rel`: the one check every write into a checkout or worktree goes
/// through (accept, reject, copied ignored files; ACP/CLI file writes later). Rejects empty and
/// absolute paths, `..`, `.git` components, and any existing parent directory that is a symlink,
/// wherever it points: like git, which refuses paths "beyond a symbolic link" (a symlink
/// `foo -> .git` accepted earlier must not make `foo/hooks/pre-commit` writable). The last
/// component is not followed (a tracked symlink is handled as a link, never written through).
pub fn check_inside(root: &Path, rel: &str) -> Result<PathBuf> {
    let outside = || WorktreeError::PathOutside(rel.to_string());
    if rel.is_empty() || rel.contains('\0') {
        return Err(outside());
    }
    // Backslashes (real or escaped) stay refused: a path separator on some systems.
    let Some(bytes) = raw(rel).filter(|b| !b.contains(&b'\\')) else {
        return Err(outside());
    };
    let rel_buf = bytes_path(bytes);
    let rel_path = rel_buf.as_path();
    let mut parts = Vec::new();
    for c in rel_path.components() {
        match c {
            Component::Normal(p) if !p.eq_ignore_ascii_case(".git") => parts.push(p),
            Component::CurDir => {}
            _ => return Err(outside()),
        }
    }
    if parts.is_empty() {
        return Err(outside());
    }
    let mut cur = root.to_path_buf();
    for part in &parts[..parts.len() - 1] {
        cur.push(part);
        match fs::symlink_metadata(&cur) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(WorktreeError::BeyondSymlink {
                    path: rel.to_string(),
                    link: git_path(cur.strip_prefix(root).unwrap_or(&cur)),
                });
            }
            Ok(_) => {}
            Err(_) => break, // does not exist yet: nothing below can be a symlink
        }
    }
    Ok(root.join(parts.iter().collect::<PathBuf>()))
}

/// Validates a session slug: it becomes a branch name, a ref path and a directory name.
pub(crate) fn check_slug(slug: &str) -> Result<()> {
    let ok = !slug.is_empty()
        && slug.len() <= 64
        && slug
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !slug.starts_with(['.', '-'])
        && !slug.ends_with('.')
        && !slug.ends_with(".lock")
        && !slug.contains("..");
    if ok {
        Ok(())
    } else {
        Err(WorktreeError::InvalidSlug(slug.to_string()))
    }
}

/// Reads a file as git sees it; `None` when it does not exist.
pub(crate) fn read(path: &Path) -> Result<Option<Content>> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        // A file where a parent directory should be is a file/directory clash the caller
        // reports; the path itself does not exist.
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || e.raw_os_error() == Some(libc::ENOTDIR) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(WorktreeError::io(path, e)),
    };
    if meta.file_type().is_symlink() {
        let target = fs::read_link(path).map_err(|e| WorktreeError::io(path, e))?;
        return Ok(Some(Content {
            bytes: target.as_os_str().as_encoded_bytes().to_vec(),
            mode: MODE_LINK,
        }));
    }
    if !meta.is_file() {
        // A directory where a file is expected: treat as absent; callers report conflicts.
        return Ok(None);
    }
    let bytes = fs::read(path).map_err(|e| WorktreeError::io(path, e))?;
    Ok(Some(Content {
        bytes,
        mode: mode_of(&meta),
    }))
}

/// The git mode of a regular file.
pub(crate) fn mode_of(meta: &fs::Metadata) -> u32 {
    if is_exec(meta) {
        MODE_EXEC
    } else {
        MODE_FILE
    }
}

#[cfg(unix)]
fn is_exec(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_exec(_meta: &fs::Metadata) -> bool {
    false
}

#[cfg(unix)]
pub(crate) fn make_symlink(target: &[u8], at: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), at)
        .map_err(|e| WorktreeError::io(at, e))
}

#[cfg(not(unix))]
pub(crate) fn make_symlink(_target: &[u8], at: &Path) -> Result<()> {
    Err(WorktreeError::Io {
        path: at.display().to_string(),
        message: "symlinks are not supported on this platform".into(),
    })
}

#[cfg(unix)]
pub(crate) fn set_mode(tmp: &Path, existing: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let base = match fs::symlink_metadata(existing) {
        Ok(m) if m.is_file() => m.permissions().mode() & 0o777,
        _ => fs::metadata(tmp)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0o644),
    };
    let bits = if mode == MODE_EXEC {
        // Executable for whoever may read it, as git does on checkout.
        base | ((base & 0o444) >> 2)
    } else {
        base & !0o111
    };
    fs::set_permissions(tmp, fs::Permissions::from_mode(bits))
        .map_err(|e| WorktreeError::io(tmp, e))
}

#[cfg(not(unix))]
pub(crate) fn set_mode(_tmp: &Path, _existing: &Path, _mode: u32) -> Result<()> {
    Ok(())
}

/// A git path (bytes, `/`-separated) as the String used in the API. Bytes that are not UTF-8
/// are written `\xNN` (a backslash never starts a real name here: [`check_inside`] refuses
/// it), so every file is reviewable, shown escaped, and [`raw`] gives the bytes back.
pub(crate) fn git_path(p: &Path) -> String {
    let mut out = String::new();
    for chunk in p.as_os_str().as_encoded_bytes().utf8_chunks() {
        // A real backslash is escaped too, so that `\xNN` in the result is never ambiguous.
        out.push_str(&chunk.valid().replace('\\', "\\x5c"));
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The bytes of an API path (see [`git_path`]); `None` for a backslash that is not one of its
/// escapes.
pub(crate) fn raw(rel: &str) -> Option<Vec<u8>> {
    let b = rel.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            let hex = b.get(i + 1..i + 4).filter(|h| h[0] == b'x')?;
            let v = std::str::from_utf8(&hex[1..]).ok()?;
            let byte = u8::from_str_radix(v, 16).ok()?;
            // Only escapes `git_path` makes: a byte that is not valid UTF-8, or a backslash.
            if byte < 0x80 && byte != b'\\' {
                return None;
            }
            out.push(byte);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// An API path as a filesystem path relative to a root (lossless for non-UTF-8 names).
pub(crate) fn os_path(rel: &str) -> PathBuf {
    let bytes = raw(rel).unwrap_or_else(|| rel.as_bytes().to_vec());
    bytes_path(bytes)
}

/// Raw git path bytes (as libgit2 gives them) as a path.
pub(crate) fn os_path_bytes(b: &[u8]) -> PathBuf {
    bytes_path(b.to_vec())
}

#[cfg(unix)]
fn bytes_path(bytes: Vec<u8>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(bytes))
}

#[cfg(not(unix))]
fn bytes_path(bytes: Vec<u8>) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for ok in ["a", "fix-login", "s_1.2"] {
            assert!(check_slug(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", ".a", "a..b", "a/b", "a b", "x.lock", "a.", "ü"] {
            assert!(check_slug(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn non_utf8_names_round_trip_and_backslashes_stay_refused() {
        let raw_name = bytes_path(b"dir/caf\xe9 \\xe9.txt".to_vec());
        let shown = git_path(&raw_name);
        assert_eq!(shown, "dir/caf\\xe9 \\x5cxe9.txt");
        assert_eq!(os_path(&shown), raw_name);
        assert!(check_inside(Path::new("/r"), "a\\b").is_err());
        assert!(
            check_inside(Path::new("/r"), "a\\x41").is_err(),
            "ASCII escapes are not ours"
        );
        assert_eq!(
            check_inside(Path::new("/r"), "caf\\xe9").unwrap(),
            Path::new("/r").join(bytes_path(b"caf\xe9".to_vec()))
        );
    }

    #[test]
    fn repo_dir_name_is_stable_and_sanitized() {
        let a = repo_dir_name(Path::new("/nonexistent/my repo"));
        assert_eq!(a, repo_dir_name(Path::new("/nonexistent/my repo")));
        assert!(a.starts_with("my_repo-"), "{a}");
        assert_ne!(a, repo_dir_name(Path::new("/other/my repo")));
    }
}
