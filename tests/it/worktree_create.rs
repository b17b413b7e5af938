//! Creating a session worktree through git's own `worktree add` (fast) gives the same result as
//! the libgit2 path, and a failed creation leaves nothing behind.

use std::process::Command;

use crate::support::worktree::*;
use boo_testkit::repo::tree_digest;
use boocoder::worktree::{self, CreateOptions};

#[test]
fn git_and_libgit2_creation_give_the_same_worktree() {
    let fx = Fixture::new(&[
        ("a.txt", "a\n"),
        ("src/x.sh", "#!/bin/sh\n"),
        (".gitignore", ".env\n"),
    ]);
    set_exec(&fx.repo.join("src/x.sh"), true);
    git(&fx.repo, &["add", "-A"]);
    git(&fx.repo, &["commit", "-q", "-m", "exec"]);
    write(&fx.repo.join(".env"), "SECRET=1\n");
    let opts = CreateOptions {
        copy_files: vec![".env".into()],
    };
    // Named after its directory: git's command. Another name: libgit2 (git cannot name it).
    let fast = worktree::create(&fx.repo, &fx.dest("s1"), "s1", &opts).unwrap();
    let other = fx.tmp.path().join("elsewhere");
    let slow = worktree::create(&fx.repo, &other, "s2", &opts).unwrap();
    assert_eq!(tree_digest(&fast.path), tree_digest(&slow.path));
    assert!(is_exec(&fast.path.join("src/x.sh")));
    assert_eq!(read_s(&fast.path.join(".env")), "SECRET=1\n");
    for (wt, slug) in [(&fast, "s1"), (&slow, "s2")] {
        assert_eq!(wt.branch, format!("boo/{slug}"));
        assert_eq!(
            git(&wt.path, &["symbolic-ref", "HEAD"]).trim(),
            format!("refs/heads/boo/{slug}")
        );
        for r in ["base", "review-base"] {
            assert_eq!(
                git(&fx.repo, &["rev-parse", &format!("refs/boo/{slug}/{r}")]).trim(),
                fx.head()
            );
        }
        assert_eq!(git(&wt.path, &["status", "--porcelain"]), "");
        assert!(worktree::pending(wt).unwrap().is_empty());
        assert_eq!(worktree::open(&fx.repo, slug).unwrap(), *wt);
    }
    // The user's hooks never run on creation.
    let hook = fx.repo.join(".git/hooks/post-checkout");
    write(&hook, "#!/bin/sh\ntouch \"$PWD/hook-ran\"\n");
    set_exec(&hook, true);
    let wt = worktree::create(&fx.repo, &fx.dest("s3"), "s3", &opts).unwrap();
    assert!(!wt.path.join("hook-ran").exists());
}

#[test]
fn a_failed_creation_leaves_no_branch_directory_or_metadata() {
    let fx = Fixture::new(&[("a.txt", "a\n")]);
    let parent = fx.tmp.path().join("locked");
    std::fs::create_dir_all(&parent).unwrap();
    let root = unsafe { libc::geteuid() } == 0;
    let lock = |on: bool| {
        if root {
            let flag = if on { "+i" } else { "-i" };
            assert!(Command::new("chattr")
                .arg(flag)
                .arg(&parent)
                .status()
                .is_ok_and(|s| s.success()));
        } else {
            use std::os::unix::fs::PermissionsExt;
            let mode = if on { 0o555 } else { 0o755 };
            std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    };
    lock(true);
    let err = worktree::create(
        &fx.repo,
        &parent.join("s1"),
        "s1",
        &CreateOptions::default(),
    );
    lock(false);
    assert!(err.is_err());
    assert_eq!(git(&fx.repo, &["branch", "--list", "boo/*"]), "");
    assert_eq!(
        git(&fx.repo, &["worktree", "list", "--porcelain"])
            .matches("worktree ")
            .count(),
        1
    );
    assert!(!parent.join("s1").exists());
    // And a retry works.
    worktree::create(
        &fx.repo,
        &parent.join("s1"),
        "s1",
        &CreateOptions::default(),
    )
    .unwrap();
}

/// A checkout that fails half-way (a tracked file whose name the file system refuses: git has
/// made the branch and the metadata by then) leaves no branch, directory or metadata either.
#[test]
fn a_checkout_failing_half_way_leaves_nothing_behind() {
    let fx = Fixture::new(&[("a.txt", "a\n")]);
    let blob = git(&fx.repo, &["hash-object", "-w", "a.txt"]);
    let long = "x".repeat(300);
    let info = format!("100644,{},{long}", blob.trim());
    git(&fx.repo, &["update-index", "--add", "--cacheinfo", &info]);
    git(
        &fx.repo,
        &["commit", "-q", "-m", "a name too long to check out"],
    );
    let dest = fx.dest("s1");
    let err = worktree::create(&fx.repo, &dest, "s1", &CreateOptions::default());
    assert!(err.is_err(), "{err:?}");
    assert_eq!(git(&fx.repo, &["branch", "--list", "boo/*"]), "");
    assert_eq!(git(&fx.repo, &["for-each-ref", "refs/boo/"]), "");
    assert_eq!(
        git(&fx.repo, &["worktree", "list", "--porcelain"])
            .matches("worktree ")
            .count(),
        1
    );
    assert!(!dest.exists());
}

/// Sessions made at once (an arena's contestants) each get git's worktree: `git worktree add`
/// reads every entry under `.git/worktrees` and dies on one another `add` has half written, so
/// without one writer at a time one of them failed, and its leftover branch then blocked the
/// libgit2 retry.
#[test]
fn sessions_created_at_once_all_get_their_worktree() {
    let files: Vec<(String, String)> = (0..200)
        .map(|i| (format!("d{}/f{i}.txt", i % 10), format!("{i}\n")))
        .collect();
    let fx = Fixture::owned(&files);
    for round in 0..3 {
        let made: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..6)
                .map(|i| {
                    let slug = format!("r{round}-s{i}");
                    let dest = fx.dest(&slug);
                    let repo = fx.repo.clone();
                    s.spawn(move || {
                        worktree::create(&repo, &dest, &slug, &CreateOptions::default())
                            .map_err(|e| format!("{slug}: {e}"))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for wt in made {
            let wt = wt.unwrap();
            assert_eq!(git(&wt.path, &["status", "--porcelain"]), "");
            assert_eq!(tree_digest(&wt.path), tree_digest(&fx.repo));
        }
    }
}
