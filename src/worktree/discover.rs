//! Which repository a working directory belongs to (the key of its sessions).

use std::path::{Path, PathBuf};

use super::create::open_user_repo;
use super::{Result, WorktreeError};

/// The working directory of the repository containing `cwd`. From inside a linked worktree
/// (a session's own, say) this is the main checkout, so sessions stay keyed by the user's repo.
pub fn discover(cwd: &Path) -> Result<PathBuf> {
    let repo = open_user_repo(cwd)?;
    if repo.is_worktree() {
        // commondir is the main repository's .git; its parent is the main checkout.
        if let Some(main) = repo.commondir().parent() {
            return Ok(main.to_path_buf());
        }
    }
    repo.workdir()
        .map(Path::to_path_buf)
        .ok_or_else(|| WorktreeError::Bare(cwd.display().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "git {args:?}");
    }

    #[test]
    fn finds_the_main_checkout_from_a_subdir_and_from_a_linked_worktree() {
        let tmp = tempfile::tempdir().expect("tmp");
        let repo = tmp.path().join("repo");
        std::fs::create_dir_all(repo.join("sub")).expect("mkdir");
        git(&repo, &["init", "-q"]);
        std::fs::write(repo.join("sub/f"), "x").expect("write");
        git(&repo, &["add", "."]);
        git(&repo, &["commit", "-qm", "init"]);
        let root = std::fs::canonicalize(&repo).expect("canon");
        let found = discover(&repo.join("sub")).expect("discover");
        assert_eq!(std::fs::canonicalize(found).expect("canon"), root);
        let linked = tmp.path().join("linked");
        git(
            &repo,
            &["worktree", "add", "-q", linked.to_str().expect("utf8")],
        );
        let found = discover(&linked).expect("discover linked");
        assert_eq!(std::fs::canonicalize(found).expect("canon"), root);
        let err = discover(tmp.path()).expect_err("not a repo");
        assert!(matches!(err, WorktreeError::NotARepo(_)), "{err}");
    }
}
