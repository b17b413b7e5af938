//! Odd file names: not UTF-8, or with a newline. They are reviewable (shown escaped), accepted
//! under their real bytes, counted by the delete-risk check and kept by a stash.

#[cfg(unix)]
mod unix {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    use std::process::Command;

    use boocoder::worktree::{self, RemoveMode, WorktreeError};

    use crate::support::worktree::*;

    const RAW: &[u8] = b"caf\xe9.txt";
    const SHOWN: &str = "caf\\xe9.txt";

    #[test]
    fn a_non_utf8_name_is_reviewable_accepted_and_counted_by_the_risk_check() {
        let fx = Fixture::new(&[("a.txt", "a\n")]);
        let wt = fx.create("latin1");
        write(&wt.path.join(OsStr::from_bytes(RAW)), "agent\n");

        let pending = worktree::pending(&wt).unwrap();
        let names: Vec<&str> = pending.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(names, [SHOWN], "listed, escaped");
        assert!(pending[0].patch.contains("+agent"), "{}", pending[0].patch);

        let risk = worktree::risk(&wt).unwrap();
        assert_eq!(risk.unaccepted, [SHOWN]);
        assert_eq!(risk.uncommitted, [SHOWN]);
        assert!(risk.at_risk());

        // The escaped name sent back by the view reaches the real file.
        worktree::accept(&wt, SHOWN, None).unwrap();
        assert_eq!(read_s(&fx.repo.join(OsStr::from_bytes(RAW))), "agent\n");
        assert!(worktree::pending(&wt).unwrap().is_empty());
    }

    #[test]
    fn a_safe_delete_refuses_and_a_stash_keeps_a_non_utf8_name() {
        let fx = Fixture::new(&[("a.txt", "a\n")]);
        let wt = fx.create("keep");
        write(&wt.path.join(OsStr::from_bytes(RAW)), "only here\n");
        let e = worktree::remove(&wt, RemoveMode::Safe).unwrap_err();
        assert!(matches!(e, WorktreeError::AtRisk(_)), "{e}");
        assert!(wt.path.join(OsStr::from_bytes(RAW)).exists());

        let out = worktree::remove(&wt, RemoveMode::Stash).unwrap();
        let stash = out.stash.expect("stashed");
        let ls = Command::new("git")
            .args(["ls-tree", "-r", "-z", "--name-only", &stash.branch])
            .current_dir(&fx.repo)
            .output()
            .unwrap();
        assert!(ls.status.success());
        let names: Vec<&[u8]> = ls.stdout.split(|b| *b == 0).collect();
        assert!(
            names.contains(&RAW),
            "{:?}",
            String::from_utf8_lossy(&ls.stdout)
        );
        let blob = Command::new("git")
            .arg("cat-file")
            .arg("blob")
            .arg(OsStr::from_bytes(
                &[stash.branch.as_bytes(), b":", RAW].concat(),
            ))
            .current_dir(&fx.repo)
            .output()
            .unwrap();
        assert_eq!(blob.stdout, b"only here\n");
    }

    #[test]
    fn a_name_with_a_newline_is_reviewable_and_accepted() {
        let fx = Fixture::new(&[("a.txt", "a\n")]);
        let wt = fx.create("newline");
        write(&wt.path.join("two\nlines.txt"), "agent\n");
        let pending = worktree::pending(&wt).unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].path, "two\nlines.txt");
        worktree::accept(&wt, "two\nlines.txt", None).unwrap();
        assert_eq!(read_s(&fx.repo.join("two\nlines.txt")), "agent\n");
    }
}
