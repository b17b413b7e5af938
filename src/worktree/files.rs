//! What a prompt can mention: the files of a worktree (tracked, and untracked but not ignored),
//! and the uncommitted changes of a checkout as patch text (`#gitdiff`).

use std::path::Path;

use git2::{DiffOptions, Repository, StatusOptions};

use super::Result;

/// The files of the working tree at `dir`, `/`-separated and sorted, at most `max` of them.
pub fn list_files(dir: &Path, max: usize) -> Result<Vec<String>> {
    let repo = Repository::open(dir)?;
    let mut out = Vec::new();
    let index = repo.index()?;
    for e in index.iter() {
        if out.len() >= max {
            break;
        }
        if let Ok(p) = std::str::from_utf8(&e.path) {
            out.push(p.to_string());
        }
    }
    let mut opts = StatusOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false)
        .exclude_submodules(true);
    let statuses = repo.statuses(Some(&mut opts))?;
    for s in statuses.iter() {
        if out.len() >= max {
            break;
        }
        if s.status().contains(git2::Status::WT_NEW) {
            if let Some(p) = s.path() {
                out.push(p.to_string());
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The uncommitted changes of the checkout at `dir` (staged and not, against HEAD) as a unified
/// patch; untracked files are listed by name. Cut at `max` bytes.
pub fn uncommitted_patch(dir: &Path, max: usize) -> Result<String> {
    let repo = Repository::open(dir)?;
    let head = repo.head().ok().and_then(|h| h.peel_to_tree().ok());
    let mut opts = DiffOptions::new();
    opts.include_untracked(true).show_untracked_content(false);
    let diff = repo.diff_tree_to_workdir_with_index(head.as_ref(), Some(&mut opts))?;
    let mut text = String::new();
    diff.print(git2::DiffFormat::Patch, |_, _, line| {
        if text.len() >= max {
            return false;
        }
        if matches!(line.origin(), '+' | '-' | ' ') {
            text.push(line.origin());
        }
        text.push_str(&String::from_utf8_lossy(line.content()));
        true
    })
    .or_else(|e| if text.len() >= max { Ok(()) } else { Err(e) })?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let ok = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t.invalid"])
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "git {args:?}");
    }

    #[test]
    fn lists_tracked_and_untracked_files_but_not_ignored_ones() {
        let t = tempfile::tempdir().expect("tempdir");
        let d = t.path();
        std::fs::write(d.join(".gitignore"), "*.log\n").expect("write");
        std::fs::create_dir(d.join("src")).expect("mkdir");
        std::fs::write(d.join("src/app.py"), "x = 1\n").expect("write");
        git(d, &["init", "-q"]);
        git(d, &["add", "-A"]);
        git(d, &["commit", "-qm", "i"]);
        std::fs::write(d.join("new.txt"), "n\n").expect("write");
        std::fs::write(d.join("debug.log"), "l\n").expect("write");
        std::fs::write(d.join("src/app.py"), "x = 2\n").expect("write");
        let files = list_files(d, 100).expect("list");
        assert_eq!(files, vec![".gitignore", "new.txt", "src/app.py"]);
        let patch = uncommitted_patch(d, 10_000).expect("patch");
        assert!(
            patch.contains("-x = 1") && patch.contains("+x = 2"),
            "{patch}"
        );
    }
}
