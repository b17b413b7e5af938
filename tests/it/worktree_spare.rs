//! Spare worktrees: made ahead for the next session, adopted as the worktree `create` would
//! have made, never adopted when stale, and nothing left behind when adopting fails.

use crate::support::worktree::*;
use boocoder::worktree::{self, CreateOptions};

fn opts() -> CreateOptions {
    CreateOptions {
        copy_files: vec![".env".into()],
    }
}

fn branches(repo: &std::path::Path) -> String {
    git(repo, &["branch", "--list", "--format=%(refname:short)"])
}

#[test]
fn an_adopted_spare_is_the_worktree_create_makes() {
    let fx = Fixture::new(&[
        ("a.txt", "a\n"),
        ("src/lib.rs", "fn x() {}\n"),
        (".gitignore", ".env\n"),
    ]);
    write(&fx.repo.join(".env"), "SECRET=1\n");
    let parent = fx.dest("x").parent().unwrap().to_path_buf();
    let spare = worktree::ensure_spare(&fx.repo, &parent)
        .unwrap()
        .expect("a spare is made");
    assert!(worktree::is_spare(&spare.slug));
    assert!(
        worktree::list(&fx.repo).unwrap().is_empty(),
        "a spare is no session"
    );
    assert!(
        worktree::ensure_spare(&fx.repo, &parent).unwrap().is_none(),
        "one spare at HEAD is enough"
    );
    // The user's .env changes after the spare was made: the copy is taken at adoption.
    write(&fx.repo.join(".env"), "SECRET=2\n");

    let wt = worktree::adopt_spare(&fx.repo, "s1", &opts())
        .unwrap()
        .expect("adopted");
    let made = worktree::create(&fx.repo, &fx.dest("s2"), "s2", &opts()).unwrap();
    let head = fx.head();
    assert_eq!(
        (wt.slug.as_str(), wt.branch.as_str(), wt.path.clone()),
        ("s1", "boo/s1", spare.path.clone()),
        "adopted in place: opencode's instance for the directory stays warm"
    );
    assert_eq!(
        (wt.base_commit.as_str(), wt.review_base.as_str()),
        (head.as_str(), head.as_str())
    );
    assert_eq!(digest(&wt.path), digest(&made.path), "same files");
    assert_eq!(read_s(&wt.path.join(".env")), "SECRET=2\n");
    assert_eq!(git(&fx.repo, &["rev-parse", "boo/s1"]).trim(), head);
    assert_eq!(review_base_of(&fx.repo, "s1"), head);
    assert_eq!(
        git(&wt.path, &["symbolic-ref", "HEAD"]).trim(),
        "refs/heads/boo/s1"
    );
    assert!(git(&wt.path, &["status", "--porcelain"]).is_empty());
    assert_eq!(worktree::open(&fx.repo, "s1").unwrap(), wt);
    assert_eq!(worktree::open_at(&fx.repo, &wt.path).unwrap(), wt);
    assert_eq!(worktree::open_at(&fx.repo, &made.path).unwrap(), made);
    assert!(worktree::open_at(&fx.repo, &fx.dest("nowhere")).is_err());
    assert!(worktree::pending(&wt).unwrap().is_empty());
    assert!(
        worktree::list(&fx.repo).unwrap().contains(&wt),
        "the adopted spare is a session"
    );
    assert!(
        !branches(&fx.repo).contains("spare"),
        "{}",
        branches(&fx.repo)
    );
    assert!(git(&fx.repo, &["for-each-ref", "refs/boo"])
        .lines()
        .all(|l| !l.contains("spare")));
    let listed = git(&fx.repo, &["worktree", "list", "--porcelain"]);
    assert!(
        listed.contains(&format!("worktree {}", wt.path.display())),
        "{listed}"
    );
    // Work in it like any session: a change is pending, and accepting it works.
    write(&wt.path.join("a.txt"), "agent\n");
    worktree::accept(&wt, "a.txt", None).unwrap();
    assert_eq!(read_s(&fx.repo.join("a.txt")), "agent\n");
    // No spare left: the next adoption finds none.
    assert!(worktree::adopt_spare(&fx.repo, "s3", &opts())
        .unwrap()
        .is_none());
}

#[test]
fn a_stale_spare_is_removed_not_adopted() {
    let fx = Fixture::new(&[("a.txt", "a\n")]);
    let parent = fx.dest("x").parent().unwrap().to_path_buf();
    let spare = worktree::ensure_spare(&fx.repo, &parent).unwrap().unwrap();
    write(&fx.repo.join("a.txt"), "newer\n");
    git(&fx.repo, &["commit", "-qam", "newer"]);
    assert!(worktree::adopt_spare(&fx.repo, "s1", &opts())
        .unwrap()
        .is_none());
    assert!(!spare.path.exists());
    assert!(!branches(&fx.repo).contains("spare"));
    // A new spare is made from the new HEAD.
    let fresh = worktree::ensure_spare(&fx.repo, &parent).unwrap().unwrap();
    assert_eq!(read_s(&fresh.path.join("a.txt")), "newer\n");
}

#[test]
fn a_failed_adoption_leaves_no_branch_or_spare_and_the_taken_name_untouched() {
    let fx = Fixture::new(&[("a.txt", "a\n")]);
    let parent = fx.dest("x").parent().unwrap().to_path_buf();
    let spare = worktree::ensure_spare(&fx.repo, &parent).unwrap().unwrap();
    // Something outside boo took the session's branch name.
    git(&fx.repo, &["branch", "boo/s1"]);
    let theirs = git(&fx.repo, &["rev-parse", "boo/s1"]);
    let err = worktree::adopt_spare(&fx.repo, "s1", &opts()).unwrap_err();
    assert!(err.to_string().contains("boo/s1"), "{err}");
    assert_eq!(git(&fx.repo, &["rev-parse", "boo/s1"]), theirs);
    assert!(!spare.path.exists());
    let b = branches(&fx.repo);
    assert!(!b.contains("spare"), "{b}");
    assert!(git(&fx.repo, &["worktree", "list", "--porcelain"])
        .lines()
        .all(|l| !l.contains("spare")));
    assert!(git(&fx.repo, &["for-each-ref", "refs/boo"])
        .trim()
        .is_empty());
}
