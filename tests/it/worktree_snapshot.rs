//! Turn checkpoints on real repositories: snapshots of the whole worktree state under hidden
//! refs (the worktree's index, branch and the user's checkout untouched), restoring one, and the
//! refusal that keeps an edit made since.

use crate::support::worktree::*;
use boocoder::worktree::{self, Side, WorktreeError};

#[test]
fn snapshot_keeps_tracked_and_untracked_files_and_touches_no_index_or_branch() {
    let fx = Fixture::new(&[("a.txt", "a\n"), (".gitignore", "*.log\n")]);
    let wt = fx.create("s1");
    let index = std::fs::read(wt.path.join(".git")).unwrap();
    let git_dir = git(&wt.path, &["rev-parse", "--git-dir"]);
    let index_file = std::path::Path::new(git_dir.trim()).join("index");
    let index_before = read(&index_file);
    let head_before = git(&wt.path, &["rev-parse", "HEAD"]);
    let user_status = fx.status();

    write(&wt.path.join("a.txt"), "changed\n");
    write(&wt.path.join("new/b.txt"), "untracked\n");
    write(&wt.path.join("noise.log"), "ignored\n");
    let c = worktree::snapshot(&wt, 7, 1, Side::After).unwrap();

    let r = "refs/boo/s1/turns/7/1/after";
    assert_eq!(worktree::turn_ref("s1", 7, 1, Side::After), r);
    assert_eq!(git(&fx.repo, &["rev-parse", r]).trim(), c);
    let files = git(&fx.repo, &["ls-tree", "-r", "--name-only", &c]);
    let files: Vec<&str> = files.lines().collect();
    assert_eq!(files, vec![".gitignore", "a.txt", "new/b.txt"]);
    assert_eq!(git(&fx.repo, &["show", &format!("{c}:a.txt")]), "changed\n");
    // Nothing of the worktree's own state moved.
    assert_eq!(
        read(&index_file),
        index_before,
        "the worktree's index was written"
    );
    assert_eq!(git(&wt.path, &["rev-parse", "HEAD"]), head_before);
    assert_eq!(std::fs::read(wt.path.join(".git")).unwrap(), index);
    assert!(git(&wt.path, &["status", "--porcelain"]).contains("?? new/"));
    assert_eq!(fx.status(), user_status, "the user's checkout changed");
}

#[test]
fn restore_goes_back_and_forth_between_turns() {
    let fx = Fixture::new(&[("a.txt", "a\n"), ("gone.txt", "g\n")]);
    let wt = fx.create("s1");
    let b1 = worktree::snapshot(&wt, 1, 1, Side::Before).unwrap();
    write(&wt.path.join("a.txt"), "turn 1\n");
    let a1 = worktree::snapshot(&wt, 1, 1, Side::After).unwrap();
    let after_1 = digest(&wt.path);
    let b2 = worktree::snapshot(&wt, 1, 2, Side::Before).unwrap();
    assert_eq!(
        git(&fx.repo, &["rev-parse", &format!("{a1}^{{tree}}")]),
        git(&fx.repo, &["rev-parse", &format!("{b2}^{{tree}}")])
    );
    write(&wt.path.join("b/new.txt"), "turn 2\n");
    std::fs::remove_file(wt.path.join("gone.txt")).unwrap();
    write(&wt.path.join("a.txt"), "turn 2\n");
    let a2 = worktree::snapshot(&wt, 1, 2, Side::After).unwrap();
    let after_2 = digest(&wt.path);

    // Undo turn 2, then turn 1.
    let r = worktree::restore(&wt, &b2, Some(a2.as_str())).unwrap();
    assert_eq!(r.written.len(), 3, "{r:?}");
    assert_eq!(digest(&wt.path), after_1);
    worktree::restore(&wt, &b1, Some(b2.as_str())).unwrap();
    assert_eq!(read_s(&wt.path.join("a.txt")), "a\n");
    assert_eq!(read_s(&wt.path.join("gone.txt")), "g\n");
    // Redo both.
    worktree::restore(&wt, &a1, Some(b1.as_str())).unwrap();
    assert_eq!(digest(&wt.path), after_1);
    worktree::restore(&wt, &a2, Some(b2.as_str())).unwrap();
    assert_eq!(digest(&wt.path), after_2);
    assert!(worktree::changed_since(&wt, &a2).unwrap().is_empty());

    let (files, patch) = worktree::turn_diff(&wt, &b2, &a2).unwrap();
    let names: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(names, vec!["a.txt", "b/new.txt", "gone.txt"]);
    assert!(patch.contains("+turn 2"), "{patch}");
}

#[test]
fn restore_refuses_when_the_worktree_changed_since_and_writes_nothing() {
    let fx = Fixture::new(&[("a.txt", "a\n")]);
    let wt = fx.create("s1");
    let before = worktree::snapshot(&wt, 1, 1, Side::Before).unwrap();
    write(&wt.path.join("a.txt"), "agent\n");
    let after = worktree::snapshot(&wt, 1, 1, Side::After).unwrap();
    // The user edits after the turn.
    write(&wt.path.join("mine.txt"), "my work\n");
    let state = digest(&wt.path);

    let e = worktree::restore(&wt, &before, Some(after.as_str())).unwrap_err();
    assert!(
        matches!(e, WorktreeError::EditedSince(ref p) if p.contains("mine.txt")),
        "{e}"
    );
    assert!(e.to_string().contains("edits are kept"), "{e}");
    assert_eq!(digest(&wt.path), state, "a refused restore wrote something");
    assert_eq!(
        worktree::changed_since(&wt, &after).unwrap(),
        vec!["mine.txt"]
    );
}

#[test]
fn removing_the_session_removes_its_turn_refs() {
    let fx = Fixture::new(&[("a.txt", "a\n")]);
    let wt = fx.create("s1");
    worktree::snapshot(&wt, 3, 1, Side::Before).unwrap();
    worktree::snapshot(&wt, 3, 1, Side::After).unwrap();
    assert_eq!(
        git(&fx.repo, &["for-each-ref", "refs/boo/s1/turns"])
            .lines()
            .count(),
        2
    );
    worktree::remove(&wt, worktree::RemoveMode::Force).unwrap();
    assert_eq!(git(&fx.repo, &["for-each-ref", "refs/boo/s1/"]), "");
}
