//! Worktree engine: creating a session worktree, the pending diff, accept and reject.

use crate::support::worktree::*;
use boocoder::worktree::{
    self, AcceptResult, ChangeStatus, CreateOptions, FileChange, WorktreeError,
};

fn find<'a>(changes: &'a [FileChange], path: &str) -> &'a FileChange {
    changes
        .iter()
        .find(|c| c.path == path)
        .unwrap_or_else(|| panic!("{path} not pending in {changes:#?}"))
}

fn applied(r: &AcceptResult) -> &Vec<String> {
    match r {
        AcceptResult::Applied { written } => written,
        other => panic!("expected applied, got {other:?}"),
    }
}

#[test]
fn create_makes_branch_records_base_and_leaves_checkout_untouched() {
    let fx = Fixture::new(&[("a.txt", "a\n"), (".gitignore", ".env\n")]);
    write(&fx.repo.join(".env"), "SECRET=1\n");
    let head = fx.head();
    let before = fx.status();
    let opts = CreateOptions {
        copy_files: vec![".env".into(), "missing.env".into()],
    };
    let wt = worktree::create(&fx.repo, &fx.dest("s1"), "s1", &opts).unwrap();

    assert_eq!(wt.branch, "boo/s1");
    assert_eq!(wt.base_commit, head);
    assert_eq!(wt.review_base, head);
    assert_eq!(git(&fx.repo, &["rev-parse", "boo/s1"]).trim(), head);
    assert_eq!(
        git(&fx.repo, &["rev-parse", "refs/boo/s1/review-base"]).trim(),
        head
    );
    assert_eq!(read_s(&wt.path.join("a.txt")), "a\n");
    assert_eq!(read_s(&wt.path.join(".env")), "SECRET=1\n");
    assert!(!wt.path.join("missing.env").exists());
    assert_eq!(
        git(&wt.path, &["symbolic-ref", "HEAD"]).trim(),
        "refs/heads/boo/s1"
    );
    // The user's checkout: same HEAD, same branch, same status.
    assert_eq!(fx.head(), head);
    assert_eq!(
        git(&fx.repo, &["symbolic-ref", "HEAD"]).trim(),
        "refs/heads/main"
    );
    assert_eq!(fx.status(), before);
    // Copied ignored files are not pending changes.
    assert!(worktree::pending(&wt).unwrap().is_empty());

    // open/list find it again with the same data.
    assert_eq!(worktree::open(&fx.repo, "s1").unwrap(), wt);
    assert_eq!(worktree::list(&fx.repo).unwrap(), vec![wt.clone()]);
    // Same slug twice: a clear error.
    let again = worktree::create(&fx.repo, &fx.dest("s1b"), "s1", &CreateOptions::default());
    assert!(
        matches!(again, Err(WorktreeError::BranchExists(_))),
        "{again:?}"
    );
}

#[cfg(unix)]
#[test]
fn pending_reports_every_kind_of_change_and_checkout_stays_untouched() {
    let long: String = (1..=40).map(|i| format!("rename me {i}\n")).collect();
    let fx = Fixture::new(&[
        ("mod.txt", "one\ntwo\nthree\n"),
        ("del.txt", "bye\n"),
        ("old/name.txt", &long),
        ("run.sh", "echo hi\n"),
        ("img.bin", "placeholder\n"),
    ]);
    write(&fx.repo.join("img.bin"), [0u8, 1, 2, 3, 0, 5]);
    git(&fx.repo, &["commit", "-qam", "binary"]);
    let wt = fx.create("kinds");
    let p = &wt.path;
    write(&p.join("mod.txt"), "one\nTWO\nthree\n");
    write(&p.join("dir/sub/new.txt"), "fresh\n");
    std::fs::remove_file(p.join("del.txt")).unwrap();
    std::fs::create_dir_all(p.join("new")).unwrap();
    std::fs::rename(p.join("old/name.txt"), p.join("new/name.txt")).unwrap();
    set_exec(&p.join("run.sh"), true);
    write(&p.join("img.bin"), [0u8, 9, 9, 9]);

    let changes = worktree::pending(&wt).unwrap();
    let m = find(&changes, "mod.txt");
    assert_eq!(m.status, ChangeStatus::Modified);
    assert_eq!((m.additions, m.deletions), (1, 1));
    assert_eq!(m.hunks.len(), 1);
    assert_eq!(m.hunks[0].header, "@@ -1,3 +1,3 @@");
    assert_eq!((m.hunks[0].new_start, m.hunks[0].new_lines), (1, 3));
    assert!(m
        .patch
        .contains("diff --git a/mod.txt b/mod.txt\n--- a/mod.txt\n+++ b/mod.txt\n"));
    assert!(m.patch.contains("-two\n+TWO\n"), "{}", m.patch);
    let origins: String = m.hunks[0].lines.iter().map(|l| l.origin).collect();
    assert_eq!(origins, " -+ ");

    let n = find(&changes, "dir/sub/new.txt");
    assert_eq!(n.status, ChangeStatus::Added);
    assert_eq!(n.additions, 1);
    assert!(n.patch.contains("new file mode 100644"));

    let d = find(&changes, "del.txt");
    assert_eq!(d.status, ChangeStatus::Deleted);
    assert_eq!(d.deletions, 1);

    let r = find(&changes, "new/name.txt");
    assert_eq!(r.status, ChangeStatus::Renamed);
    assert_eq!(r.old_path.as_deref(), Some("old/name.txt"));
    assert!(r
        .patch
        .contains("rename from old/name.txt\nrename to new/name.txt\n"));
    assert!(r.hunks.is_empty());

    let x = find(&changes, "run.sh");
    assert!(x.exec_changed);
    assert_eq!((x.old_mode, x.new_mode), (0o100644, 0o100755));
    assert!(x.hunks.is_empty());
    assert!(x.patch.contains("old mode 100644\nnew mode 100755\n"));

    let b = find(&changes, "img.bin");
    assert!(b.binary);
    assert!(b.hunks.is_empty());
    assert!(b
        .patch
        .contains("Binary files a/img.bin and b/img.bin differ"));
    assert_eq!(changes.len(), 6, "{changes:#?}");

    // Nothing reached the user's checkout.
    assert_eq!(fx.status(), "");
    assert_eq!(read_s(&fx.repo.join("mod.txt")), "one\ntwo\nthree\n");
    assert!(!fx.repo.join("dir").exists());
}

#[test]
fn accepting_one_hunk_lands_only_that_hunk_and_it_never_reappears() {
    let text = numbered(30);
    let fx = Fixture::new(&[("f.txt", &text)]);
    let wt = fx.create("hunks");
    let agent = replace_line(&replace_line(&text, 2, "agent 2"), 28, "agent 28");
    write(&wt.path.join("f.txt"), &agent);

    let changes = worktree::pending(&wt).unwrap();
    let f = find(&changes, "f.txt");
    assert_eq!(f.hunks.len(), 2);
    let out = worktree::accept(&wt, "f.txt", Some(&[1])).unwrap();
    assert_eq!(applied(&out.result), &vec!["f.txt".to_string()]);
    assert_ne!(out.review_base, wt.review_base);
    assert_eq!(
        git(&fx.repo, &["rev-parse", "refs/boo/hunks/review-base"]).trim(),
        out.review_base
    );
    assert_eq!(
        worktree::open(&fx.repo, "hunks").unwrap().review_base,
        out.review_base
    );
    let json = serde_json::to_value(&out).unwrap();
    assert_eq!(json["result"]["kind"], "applied");
    assert_eq!(json["result"]["written"][0], "f.txt");
    // Only hunk 1 landed.
    assert_eq!(
        read_s(&fx.repo.join("f.txt")),
        replace_line(&text, 28, "agent 28")
    );

    let after = worktree::pending(&wt).unwrap();
    let f = find(&after, "f.txt");
    assert_eq!(f.hunks.len(), 1);
    assert_eq!(
        worktree::pending_file(&wt, "f.txt").unwrap().as_ref(),
        Some(f)
    );
    assert!(f.patch.contains("+agent 2\n"));
    assert!(!f.patch.contains("agent 28"));

    // A further agent edit: the accepted hunk still does not come back.
    write(&wt.path.join("f.txt"), replace_line(&agent, 15, "agent 15"));
    let later = worktree::pending(&wt).unwrap();
    let f = find(&later, "f.txt");
    assert_eq!(f.hunks.len(), 2);
    assert!(!f.patch.contains("agent 28"), "{}", f.patch);
    assert!(f.patch.contains("+agent 15\n"));

    // Accepting the rest leaves nothing pending and the user's file equal to the agent's.
    let out = worktree::accept(&wt, "f.txt", None).unwrap();
    applied(&out.result);
    assert!(worktree::pending(&wt).unwrap().is_empty());
    assert_eq!(read(&fx.repo.join("f.txt")), read(&wt.path.join("f.txt")));
    assert_eq!(worktree::pending_file(&wt, "f.txt").unwrap(), None);
    // Never committed for the user: HEAD and index as before, the file is just modified.
    assert_eq!(fx.status(), " M f.txt\n");
}

#[test]
fn conflicting_user_edit_reports_conflict_and_writes_nothing() {
    let text = numbered(10);
    let fx = Fixture::new(&[("f.txt", &text)]);
    let wt = fx.create("conflict");
    write(&wt.path.join("f.txt"), replace_line(&text, 5, "agent"));
    let user = replace_line(&text, 5, "user");
    write(&fx.repo.join("f.txt"), &user);
    let before = read(&fx.repo.join("f.txt"));

    let out = worktree::accept(&wt, "f.txt", None).unwrap();
    match &out.result {
        AcceptResult::Conflict {
            path,
            merged_with_markers,
            ..
        } => {
            assert_eq!(path, "f.txt");
            let m = merged_with_markers.as_deref().unwrap_or_default();
            assert!(
                m.contains("<<<<<<<") && m.contains("agent") && m.contains("user"),
                "{m}"
            );
        }
        other => panic!("expected conflict, got {other:?}"),
    }
    assert_eq!(read(&fx.repo.join("f.txt")), before);
    assert_eq!(out.review_base, wt.review_base);
    assert_eq!(worktree::pending(&wt).unwrap().len(), 1);
}

#[test]
fn non_conflicting_user_edit_in_same_file_is_kept() {
    let text = numbered(30);
    let fx = Fixture::new(&[("f.txt", &text), ("other.txt", "other\n")]);
    let wt = fx.create("merge");
    write(&wt.path.join("f.txt"), replace_line(&text, 3, "agent"));
    // Dirty user checkout: same file elsewhere, another file, and an untracked file.
    write(&fx.repo.join("f.txt"), replace_line(&text, 25, "user"));
    write(&fx.repo.join("other.txt"), "user edit\n");
    write(&fx.repo.join("scratch.txt"), "mine\n");

    let out = worktree::accept(&wt, "f.txt", None).unwrap();
    applied(&out.result);
    assert_eq!(
        read_s(&fx.repo.join("f.txt")),
        replace_line(&replace_line(&text, 25, "user"), 3, "agent")
    );
    assert_eq!(read_s(&fx.repo.join("other.txt")), "user edit\n");
    assert_eq!(read_s(&fx.repo.join("scratch.txt")), "mine\n");
    assert!(worktree::pending(&wt).unwrap().is_empty());
}

#[cfg(unix)]
#[test]
fn accept_handles_new_deleted_renamed_exec_and_binary_files() {
    let long: String = (1..=40).map(|i| format!("rename me {i}\n")).collect();
    let fx = Fixture::new(&[
        ("del.txt", "bye\n"),
        ("old.txt", &long),
        ("run.sh", "echo hi\n"),
        ("img.bin", "x\n"),
    ]);
    write(&fx.repo.join("img.bin"), [0u8, 1, 2]);
    git(&fx.repo, &["commit", "-qam", "binary"]);
    let head = fx.head();
    let wt = fx.create("kinds");
    let p = &wt.path;
    write(&p.join("dir/new.txt"), "fresh\n");
    std::fs::remove_file(p.join("del.txt")).unwrap();
    let renamed = long.replace("rename me 40", "renamed 40");
    std::fs::remove_file(p.join("old.txt")).unwrap();
    write(&p.join("new.txt"), &renamed);
    set_exec(&p.join("run.sh"), true);
    write(&p.join("img.bin"), [0u8, 7, 7]);

    let err = worktree::accept(&wt, "img.bin", Some(&[0])).unwrap_err();
    assert!(matches!(err, WorktreeError::WholeFileOnly(_)), "{err}");
    assert!(err.to_string().contains("binary"), "{err}");

    for path in ["dir/new.txt", "del.txt", "new.txt", "run.sh", "img.bin"] {
        let out = worktree::accept(&wt, path, None).unwrap();
        applied(&out.result);
    }
    assert_eq!(read_s(&fx.repo.join("dir/new.txt")), "fresh\n");
    assert!(!fx.repo.join("del.txt").exists());
    assert!(!fx.repo.join("old.txt").exists());
    assert_eq!(read_s(&fx.repo.join("new.txt")), renamed);
    assert!(is_exec(&fx.repo.join("run.sh")));
    assert_eq!(read(&fx.repo.join("img.bin")), vec![0u8, 7, 7]);
    let left = worktree::pending(&wt).unwrap();
    assert!(left.is_empty(), "{left:#?}");
    // A later edit of an accepted new (still untracked) file shows only that edit.
    write(&p.join("dir/new.txt"), "fresh\nmore\n");
    let later = worktree::pending(&wt).unwrap();
    assert_eq!(later.len(), 1, "{later:#?}");
    assert_eq!(later[0].status, ChangeStatus::Modified);
    assert_eq!((later[0].additions, later[0].deletions), (1, 0));
    // The user's HEAD and index were not touched: nothing staged.
    assert_eq!(fx.head(), head);
    assert_eq!(git(&fx.repo, &["diff", "--cached", "--name-only"]), "");
}

#[test]
fn accept_sees_committed_agent_work_and_errors_are_clear() {
    let fx = Fixture::new(&[("a.txt", "a\n")]);
    let wt = fx.create("commits");
    write(&wt.path.join("a.txt"), "agent\n");
    git(&wt.path, &["commit", "-qam", "agent work"]);
    let changes = worktree::pending(&wt).unwrap();
    assert_eq!(find(&changes, "a.txt").status, ChangeStatus::Modified);

    let e = worktree::accept(&wt, "nothing.txt", None).unwrap_err();
    assert!(matches!(e, WorktreeError::NoSuchChange(_)), "{e}");
    let e = worktree::accept(&wt, "a.txt", Some(&[3])).unwrap_err();
    assert!(matches!(e, WorktreeError::HunkOutOfRange { .. }), "{e}");
    let e = worktree::accept(&wt, "a.txt", Some(&[])).unwrap_err();
    assert!(matches!(e, WorktreeError::NoHunks(_)), "{e}");

    applied(&worktree::accept(&wt, "a.txt", None).unwrap().result);
    assert_eq!(read_s(&fx.repo.join("a.txt")), "agent\n");
    assert!(worktree::pending(&wt).unwrap().is_empty());
}

#[test]
fn reject_reverts_a_hunk_or_a_file_in_the_worktree() {
    let text = numbered(30);
    let fx = Fixture::new(&[("f.txt", &text), ("g.txt", "g\n")]);
    let wt = fx.create("reject");
    let agent = replace_line(&replace_line(&text, 2, "agent 2"), 28, "agent 28");
    write(&wt.path.join("f.txt"), &agent);
    write(&wt.path.join("g.txt"), "agent g\n");
    write(&wt.path.join("n.txt"), "new\n");
    git(&wt.path, &["add", "n.txt"]); // staged by the agent: must still be rejectable

    let out = worktree::reject(&wt, "f.txt", Some(&[0])).unwrap();
    assert_eq!(out.reverted, vec!["f.txt".to_string()]);
    assert_eq!(
        read_s(&wt.path.join("f.txt")),
        replace_line(&text, 28, "agent 28")
    );
    worktree::reject(&wt, "g.txt", None).unwrap();
    assert_eq!(read_s(&wt.path.join("g.txt")), "g\n");
    worktree::reject(&wt, "n.txt", None).unwrap();
    assert!(!wt.path.join("n.txt").exists());

    let left = worktree::pending(&wt).unwrap();
    assert_eq!(left.len(), 1, "{left:#?}");
    assert_eq!(find(&left, "f.txt").hunks.len(), 1);
    // The user's checkout never saw any of it.
    assert_eq!(read_s(&fx.repo.join("f.txt")), text);
    assert_eq!(fx.status(), "");
}

#[test]
fn reject_after_partial_accept_restores_the_review_base_version() {
    let text = numbered(30);
    let fx = Fixture::new(&[("f.txt", &text)]);
    let wt = fx.create("mixed");
    let agent = replace_line(&replace_line(&text, 2, "agent 2"), 28, "agent 28");
    write(&wt.path.join("f.txt"), &agent);
    applied(&worktree::accept(&wt, "f.txt", Some(&[0])).unwrap().result);
    worktree::reject(&wt, "f.txt", None).unwrap();
    // Back to review base = original + accepted hunk, not to the original.
    assert_eq!(
        read_s(&wt.path.join("f.txt")),
        replace_line(&text, 2, "agent 2")
    );
    assert!(worktree::pending(&wt).unwrap().is_empty());
}

#[cfg(unix)]
#[test]
fn paths_escaping_the_worktree_or_repo_are_refused() {
    let fx = Fixture::new(&[("a.txt", "a\n")]);
    let wt = fx.create("escape");
    let outside = fx.tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, wt.path.join("link")).unwrap();
    for bad in [
        "../a.txt",
        "/etc/passwd",
        "x/../../a.txt",
        "",
        ".git/config",
        "link/evil.txt",
    ] {
        let refused = |e: &WorktreeError| {
            matches!(
                e,
                WorktreeError::PathOutside(_) | WorktreeError::BeyondSymlink { .. }
            )
        };
        let e = worktree::accept(&wt, bad, None).unwrap_err();
        assert!(refused(&e), "{bad}: {e}");
        let e = worktree::reject(&wt, bad, None).unwrap_err();
        assert!(refused(&e), "{bad}: {e}");
    }
    // A symlinked directory in the user's checkout must not lead an accept outside either.
    std::os::unix::fs::symlink(&outside, fx.repo.join("out")).unwrap();
    write(&wt.path.join("out/x.txt"), "agent\n");
    let e = worktree::accept(&wt, "out/x.txt", None).unwrap_err();
    assert!(matches!(e, WorktreeError::BeyondSymlink { .. }), "{e}");
    assert!(!outside.join("x.txt").exists());
    assert!(worktree::check_inside(&wt.path, "ok/inside.txt").is_ok());
    assert!(worktree::check_inside(&wt.path, "./a.txt").is_ok());
}

#[test]
fn partial_accept_without_final_newline_and_with_user_edit_elsewhere() {
    let text: String = numbered(20).trim_end().to_string(); // no newline at end of file
    let fx = Fixture::new(&[("f.txt", &text)]);
    let wt = fx.create("eof");
    let agent = format!(
        "{}\nline 20 by agent",
        replace_line(&text, 1, "agent 1")
            .trim_end()
            .rsplit_once('\n')
            .unwrap()
            .0
    );
    write(&wt.path.join("f.txt"), &agent);
    let user = replace_line(&text, 10, "user 10").trim_end().to_string();
    write(&fx.repo.join("f.txt"), &user);

    let changes = worktree::pending(&wt).unwrap();
    let f = find(&changes, "f.txt");
    assert_eq!(f.hunks.len(), 2, "{}", f.patch);
    assert!(
        f.patch.contains("\\ No newline at end of file"),
        "{}",
        f.patch
    );
    // Accept only the last hunk (the one touching the final line without newline).
    applied(&worktree::accept(&wt, "f.txt", Some(&[1])).unwrap().result);
    let expect = format!("{}\nline 20 by agent", user.rsplit_once('\n').unwrap().0);
    assert_eq!(read_s(&fx.repo.join("f.txt")), expect);
    let left = worktree::pending(&wt).unwrap();
    assert_eq!(find(&left, "f.txt").hunks.len(), 1);
    assert!(find(&left, "f.txt").patch.contains("+agent 1"));
}

#[cfg(unix)]
#[test]
fn symlinks_are_whole_file_changes_and_never_followed() {
    let fx = Fixture::new(&[("a.txt", "a\n"), ("target.txt", "t\n")]);
    let wt = fx.create("links");
    std::os::unix::fs::symlink("target.txt", wt.path.join("link")).unwrap();
    std::fs::remove_file(wt.path.join("a.txt")).unwrap();
    std::os::unix::fs::symlink("target.txt", wt.path.join("a.txt")).unwrap();
    let changes = worktree::pending(&wt).unwrap();
    assert_eq!(find(&changes, "a.txt").status, ChangeStatus::Typechange);
    assert_eq!(find(&changes, "link").new_mode, 0o120000);
    let e = worktree::accept(&wt, "a.txt", Some(&[0])).unwrap_err();
    assert!(matches!(e, WorktreeError::WholeFileOnly(_)), "{e}");
    for p in ["a.txt", "link"] {
        applied(&worktree::accept(&wt, p, None).unwrap().result);
        let meta = std::fs::symlink_metadata(fx.repo.join(p)).unwrap();
        assert!(meta.file_type().is_symlink(), "{p}");
        assert_eq!(
            std::fs::read_link(fx.repo.join(p)).unwrap(),
            std::path::Path::new("target.txt")
        );
    }
    assert_eq!(read_s(&fx.repo.join("target.txt")), "t\n");
    assert!(worktree::pending(&wt).unwrap().is_empty());
}

#[test]
fn concurrent_accepts_of_different_files_all_land() {
    let files: Vec<(String, String)> = (0..8)
        .map(|i| (format!("f{i}.txt"), format!("{i}\n")))
        .collect();
    let fx = Fixture::owned(&files);
    let wt = fx.create("par");
    for (p, _) in &files {
        write(&wt.path.join(p), "agent\n");
    }
    std::thread::scope(|s| {
        for (p, _) in &files {
            let wt = &wt;
            s.spawn(move || applied(&worktree::accept(wt, p, None).unwrap().result).len());
        }
    });
    assert!(worktree::pending(&wt).unwrap().is_empty());
    for (p, _) in &files {
        assert_eq!(read_s(&fx.repo.join(p)), "agent\n");
    }
}

#[test]
fn a_lost_review_base_ref_is_restored_from_the_snapshot() {
    let fx = Fixture::new(&[("a.txt", "a\n"), ("b.txt", "b\n")]);
    let mut wt = fx.create("lost");
    write(&wt.path.join("a.txt"), "agent a\n");
    write(&wt.path.join("b.txt"), "agent b\n");
    let out = worktree::accept(&wt, "a.txt", None).unwrap();
    wt.review_base = out.review_base.clone();
    git(&fx.repo, &["update-ref", "-d", "refs/boo/lost/review-base"]);
    let changes = worktree::pending(&wt).unwrap();
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert_eq!(changes[0].path, "b.txt");
    assert_eq!(
        git(&fx.repo, &["rev-parse", "refs/boo/lost/review-base"]).trim(),
        out.review_base
    );
    let json = serde_json::to_value(&changes).unwrap();
    assert_eq!(json[0]["status"], "modified");
    assert_eq!(json[0]["hunks"][0]["lines"][0]["origin"], "-");
}

#[test]
fn two_sessions_accept_into_the_same_file_and_user_commits_in_between() {
    let text = numbered(30);
    let fx = Fixture::new(&[("f.txt", &text)]);
    let one = fx.create("one");
    let two = fx.create("two");
    write(
        &one.path.join("f.txt"),
        replace_line(&text, 3, "session one"),
    );
    write(
        &two.path.join("f.txt"),
        replace_line(&text, 27, "session two"),
    );

    applied(&worktree::accept(&one, "f.txt", None).unwrap().result);
    // The user commits what was accepted and moves on; HEAD moves, nothing else changes.
    git(&fx.repo, &["commit", "-qam", "take session one"]);
    applied(&worktree::accept(&two, "f.txt", None).unwrap().result);
    assert_eq!(
        read_s(&fx.repo.join("f.txt")),
        replace_line(&replace_line(&text, 3, "session one"), 27, "session two")
    );
    assert!(worktree::pending(&one).unwrap().is_empty());
    assert!(worktree::pending(&two).unwrap().is_empty());
    let mut slugs: Vec<_> = worktree::list(&fx.repo)
        .unwrap()
        .into_iter()
        .map(|w| w.slug)
        .collect();
    slugs.sort();
    assert_eq!(slugs, vec!["one", "two"]);
}
