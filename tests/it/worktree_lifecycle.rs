//! Worktree engine: risk, stash, removal, and bad inputs.

use std::fs;

use crate::support::worktree::*;
use boocoder::worktree::{self, AcceptResult, CreateOptions, RemoveMode, WorktreeError};

#[test]
fn risk_reports_work_and_stash_keeps_it_reachable_after_removal() {
    let fx = Fixture::new(&[("a.txt", "a\n"), ("b.txt", "b\n")]);
    let wt = fx.create("risky");
    let clean = worktree::risk(&wt).unwrap();
    assert!(!clean.at_risk(), "{clean:?}");

    write(&wt.path.join("a.txt"), "agent a\n");
    write(&wt.path.join("new.txt"), "agent new\n");
    fs::remove_file(wt.path.join("b.txt")).unwrap();
    let r = worktree::risk(&wt).unwrap();
    assert!(r.at_risk());
    let expect: Vec<String> = ["a.txt", "b.txt", "new.txt"].map(String::from).to_vec();
    assert_eq!(r.unaccepted, expect);
    assert_eq!(r.uncommitted, expect);
    assert!(!r.stashed);

    let e = worktree::remove(&wt, RemoveMode::Safe).unwrap_err();
    assert!(matches!(e, WorktreeError::AtRisk(_)), "{e}");
    assert!(e.to_string().contains("3 unaccepted"), "{e}");
    assert!(wt.path.join("a.txt").exists());

    let s = worktree::stash(&wt).unwrap();
    assert_eq!(s.branch, "boo-stash/risky");
    assert!(worktree::risk(&wt).unwrap().stashed);
    // Stashing the same state again changes nothing.
    assert_eq!(worktree::stash(&wt).unwrap(), s);

    let out = worktree::remove(&wt, RemoveMode::Safe).unwrap();
    assert!(out.branch_kept);
    assert!(!wt.path.exists());
    assert!(!git(&fx.repo, &["worktree", "list"]).contains("risky"));
    assert!(git(&fx.repo, &["branch", "--list"]).contains("boo-stash/risky"));
    assert_eq!(
        git(&fx.repo, &["show", "boo-stash/risky:a.txt"]),
        "agent a\n"
    );
    assert_eq!(
        git(&fx.repo, &["show", "boo-stash/risky:new.txt"]),
        "agent new\n"
    );
    assert_eq!(
        git(&fx.repo, &["ls-tree", "--name-only", "boo-stash/risky"]),
        "a.txt\nnew.txt\n"
    );
    assert_eq!(
        git(&fx.repo, &["rev-parse", "boo-stash/risky"]).trim(),
        s.commit
    );
    // The user's checkout is as it was.
    assert_eq!(fx.status(), "");
    assert_eq!(read_s(&fx.repo.join("a.txt")), "a\n");
    assert!(matches!(
        worktree::open(&fx.repo, "risky"),
        Err(WorktreeError::NotFound(_))
    ));
}

#[test]
fn remove_with_stash_mode_and_force_mode() {
    let fx = Fixture::new(&[("a.txt", "a\n")]);
    let wt = fx.create("st");
    write(&wt.path.join("a.txt"), "work\n");
    let out = worktree::remove(&wt, RemoveMode::Stash).unwrap();
    let s = out.stash.expect("stashed");
    assert!(!wt.path.exists());
    assert_eq!(
        git(&fx.repo, &["show", &format!("{}:a.txt", s.commit)]),
        "work\n"
    );

    let wt = fx.create("forced");
    write(&wt.path.join("a.txt"), "lost\n");
    let out = worktree::remove(&wt, RemoveMode::Force).unwrap();
    assert!(out.stash.is_none());
    assert!(!wt.path.exists());
}

#[test]
fn discard_mode_removes_unaccepted_work_and_its_branch() {
    let fx = Fixture::new(&[("a.txt", "a\n")]);
    let kept = fx.create("forced-keeps");
    write(&kept.path.join("a.txt"), "lost\n");
    assert!(
        worktree::remove(&kept, RemoveMode::Force)
            .unwrap()
            .branch_kept
    );
    let wt = fx.create("loser");
    write(&wt.path.join("a.txt"), "lost too\n");
    git(&wt.path, &["commit", "-qam", "agent"]);
    let out = worktree::remove(&wt, RemoveMode::Discard).unwrap();
    assert!(!out.branch_kept && out.stash.is_none());
    assert!(!wt.path.exists());
    assert_eq!(
        git(
            &fx.repo,
            &["branch", "--list", "boo/*", "--format=%(refname:short)"]
        )
        .trim(),
        "boo/forced-keeps"
    );
}

#[test]
fn removing_a_fully_accepted_worktree_deletes_branch_and_refs() {
    let fx = Fixture::new(&[("a.txt", "a\n")]);
    let wt = fx.create("done");
    write(&wt.path.join("a.txt"), "agent\n");
    git(&wt.path, &["commit", "-qam", "agent"]);
    let acc = worktree::accept(&wt, "a.txt", None).unwrap();
    assert!(matches!(acc.result, AcceptResult::Applied { .. }));
    let r = worktree::risk(&wt).unwrap();
    assert!(!r.at_risk(), "{r:?}");
    let out = worktree::remove(&wt, RemoveMode::Safe).unwrap();
    assert!(!out.branch_kept);
    assert_eq!(git(&fx.repo, &["branch", "--list", "boo/*"]), "");
    assert_eq!(git(&fx.repo, &["for-each-ref", "refs/boo/"]), "");
    assert_eq!(read_s(&fx.repo.join("a.txt")), "agent\n");
    // Removing again is harmless (already gone).
    worktree::remove(&wt, RemoveMode::Safe).unwrap();
}

#[test]
fn not_a_repository_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain");
    fs::create_dir_all(&plain).unwrap();
    let e = worktree::create(
        &plain,
        &tmp.path().join("wt"),
        "s",
        &CreateOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, WorktreeError::NotARepo(_)), "{e}");
    assert!(e.to_string().starts_with("not a git repository"), "{e}");
    assert!(!e.to_string().contains('\n'));
}

#[test]
fn repository_without_commits_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("empty");
    fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    let e = worktree::create(
        &repo,
        &tmp.path().join("wt"),
        "s",
        &CreateOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, WorktreeError::NoCommits(_)), "{e}");
    assert!(!tmp.path().join("wt").exists());
}

#[test]
fn bare_repository_is_a_clear_error() {
    let fx = Fixture::new(&[("a.txt", "a\n")]);
    let bare = fx.tmp.path().join("bare.git");
    git(
        fx.tmp.path(),
        &[
            "clone",
            "-q",
            "--bare",
            fx.repo.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    let e = worktree::create(&bare, &fx.dest("s"), "s", &CreateOptions::default()).unwrap_err();
    assert!(matches!(e, WorktreeError::Bare(_)), "{e}");
}

#[test]
fn invalid_slug_and_occupied_destination_are_clear_errors() {
    let fx = Fixture::new(&[("a.txt", "a\n")]);
    for bad in ["", "a/b", "../x", "with space", "-x"] {
        let e =
            worktree::create(&fx.repo, &fx.dest("x"), bad, &CreateOptions::default()).unwrap_err();
        assert!(matches!(e, WorktreeError::InvalidSlug(_)), "{bad}: {e}");
    }
    write(&fx.dest("busy").join("file"), "x");
    let e = worktree::create(
        &fx.repo,
        &fx.dest("busy"),
        "busy",
        &CreateOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, WorktreeError::DestinationExists(_)), "{e}");
    // Nothing half-made stays behind: the same slug works elsewhere.
    worktree::create(
        &fx.repo,
        &fx.dest("elsewhere"),
        "busy",
        &CreateOptions::default(),
    )
    .unwrap();
}

#[test]
fn paths_with_spaces_and_non_ascii_work_end_to_end() {
    let fx = Fixture::named("my répo ✓", &[("dïr/fïle ü.txt", "one\ntwo\n")]);
    let dest = fx.tmp.path().join("data dir/wörktrees/s1");
    let wt = worktree::create(&fx.repo, &dest, "s1", &CreateOptions::default()).unwrap();
    write(&wt.path.join("dïr/fïle ü.txt"), "one\nTWO\n");
    write(&wt.path.join("nëw file.txt"), "new\n");
    let changes = worktree::pending(&wt).unwrap();
    let paths: Vec<_> = changes.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(paths, vec!["dïr/fïle ü.txt", "nëw file.txt"]);
    for p in paths {
        let out = worktree::accept(&wt, p, None).unwrap();
        assert!(
            matches!(out.result, AcceptResult::Applied { .. }),
            "{out:?}"
        );
    }
    assert_eq!(read_s(&fx.repo.join("dïr/fïle ü.txt")), "one\nTWO\n");
    assert_eq!(read_s(&fx.repo.join("nëw file.txt")), "new\n");
    let name = worktree::repo_dir_name(&fx.repo);
    assert!(name.starts_with("my_r"), "{name}");
    assert!(name.is_ascii());
}

#[test]
fn detached_head_and_subdirectory_work() {
    let fx = Fixture::new(&[("a.txt", "a\n"), ("sub/b.txt", "b\n")]);
    let head = fx.head();
    git(&fx.repo, &["checkout", "-q", "--detach"]);
    // Started from a subdirectory of the checkout: the repository is discovered.
    let wt = worktree::create(
        &fx.repo.join("sub"),
        &fx.dest("det"),
        "det",
        &CreateOptions::default(),
    )
    .unwrap();
    assert_eq!(wt.base_commit, head);
    assert_eq!(
        fs::canonicalize(&wt.repo_root).unwrap(),
        fs::canonicalize(&fx.repo).unwrap()
    );
    write(&wt.path.join("a.txt"), "agent\n");
    let out = worktree::accept(&wt, "a.txt", None).unwrap();
    assert!(matches!(out.result, AcceptResult::Applied { .. }));
    assert_eq!(read_s(&fx.repo.join("a.txt")), "agent\n");
    // Still detached at the same commit.
    assert_eq!(fx.head(), head);
    assert!(git(&fx.repo, &["status"]).contains("HEAD detached"));
}

#[test]
fn dirty_user_checkout_does_not_block_creation_or_accept() {
    let fx = Fixture::new(&[("a.txt", "a\n"), ("b.txt", "b\n")]);
    write(&fx.repo.join("b.txt"), "user dirty\n");
    write(&fx.repo.join("untracked.txt"), "mine\n");
    git(&fx.repo, &["add", "untracked.txt"]);
    let wt = fx.create("dirty");
    // The worktree starts from HEAD, not from the user's uncommitted state.
    assert_eq!(read_s(&wt.path.join("b.txt")), "b\n");
    assert!(worktree::pending(&wt).unwrap().is_empty());
    write(&wt.path.join("a.txt"), "agent\n");
    let out = worktree::accept(&wt, "a.txt", None).unwrap();
    assert!(matches!(out.result, AcceptResult::Applied { .. }));
    assert_eq!(read_s(&fx.repo.join("b.txt")), "user dirty\n");
    // The user's staged file is still staged; nothing else was.
    assert_eq!(
        git(&fx.repo, &["diff", "--cached", "--name-only"]),
        "untracked.txt\n"
    );
}

#[test]
fn removing_a_worktree_whose_directory_is_already_gone() {
    let fx = Fixture::new(&[("a.txt", "a\n")]);
    let wt = fx.create("gone");
    fs::remove_dir_all(&wt.path).unwrap();
    let out = worktree::remove(&wt, RemoveMode::Safe).unwrap();
    assert!(!out.branch_kept);
    assert!(!git(&fx.repo, &["worktree", "list"]).contains("gone"));
    // The slug can be used again.
    fx.create("gone");
}

#[test]
fn remove_refuses_a_path_that_is_not_the_sessions_worktree() {
    let fx = Fixture::new(&[("a.txt", "a\n")]);
    let mut wt = fx.create("guard");
    let decoy = fx.tmp.path().join("decoy");
    write(&decoy.join("keep.txt"), "keep");
    git(&decoy, &["init", "-q"]); // even a repository of its own is not removed
    wt.path = decoy.clone();
    assert!(worktree::remove(&wt, RemoveMode::Force).is_err());
    assert!(decoy.join("keep.txt").exists());
}
