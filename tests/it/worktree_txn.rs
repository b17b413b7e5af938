//! Accept and reject are all-or-nothing: for each way a request can fail, the user's checkout
//! (or the worktree) is byte-for-byte and mode-for-mode what it was, the review base has not
//! moved, and the one-line message names the cause. Real git repositories throughout; the
//! failures that need another user or a full disk run in a child process of this test binary.

use std::path::Path;
use std::process::Command;

use crate::support::worktree::*;
use boocoder::worktree::review::{act, ActKind, ActReport, ActRequest, Level};
use boocoder::worktree::{self, SessionWorktree};

fn accept_everything(wt: &SessionWorktree) -> ActReport {
    act(
        wt,
        &ActRequest {
            kind: ActKind::Accept,
            path: None,
            hunks: None,
            modified: Vec::new(),
        },
    )
}

fn reject_everything(wt: &SessionWorktree) -> ActReport {
    act(
        wt,
        &ActRequest {
            kind: ActKind::Reject,
            path: None,
            hunks: None,
            modified: Vec::new(),
        },
    )
}

/// Runs `f`, then checks the request failed with `cause` in its message while `root` and the
/// review base stayed exactly as they were.
fn assert_nothing_changed(
    fx: &Fixture,
    wt: &SessionWorktree,
    root: &Path,
    cause: &str,
    f: impl FnOnce() -> ActReport,
) {
    let before = digest(root);
    let rb = review_base_of(&fx.repo, &wt.slug);
    let report = f();
    assert_ne!(report.message.1, Level::Info, "{report:?}");
    assert!(report.message.0.contains(cause), "{report:?}");
    assert!(
        report.message.0.contains("nothing was"),
        "says nothing landed: {report:?}"
    );
    assert!(report.review_base.is_none() && report.reload.is_empty());
    assert_eq!(digest(root), before, "tree changed");
    assert_eq!(review_base_of(&fx.repo, &wt.slug), rb, "review base moved");
    assert!(!worktree::pending(wt).unwrap().is_empty(), "still pending");
}

#[test]
fn a_file_in_the_way_of_a_directory_refuses_the_whole_accept() {
    let fx = Fixture::new(&[("a.txt", "a\n")]);
    let wt = fx.create("df");
    write(&wt.path.join("a.txt"), "agent a\n");
    write(&wt.path.join("dir/x.txt"), "agent x\n");
    // The user has a file where the agent's change needs a directory.
    write(&fx.repo.join("dir"), "mine\n");
    assert_nothing_changed(&fx, &wt, &fx.repo, "dir is a file in the way", || {
        accept_everything(&wt)
    });
}

#[test]
fn a_conflict_in_the_second_of_two_files_leaves_neither_applied() {
    let fx = Fixture::new(&[("a.txt", "a\n"), ("b.txt", "b\n")]);
    let wt = fx.create("conflict2");
    write(&wt.path.join("a.txt"), "agent a\n");
    write(&wt.path.join("b.txt"), "agent b\n");
    write(&fx.repo.join("b.txt"), "my b\n");
    assert_nothing_changed(&fx, &wt, &fx.repo, "conflict in b.txt", || {
        accept_everything(&wt)
    });
    assert_eq!(read_s(&fx.repo.join("a.txt")), "a\n");
}

/// The attack of issue 12: a symlink `foo -> .git` accepted earlier must not make
/// `foo/hooks/pre-commit` writable.
#[cfg(unix)]
#[test]
fn no_write_beyond_a_symlink_into_git_dir() {
    let fx = Fixture::new(&[("a.txt", "a\n")]);
    let wt = fx.create("hook");
    std::os::unix::fs::symlink(".git", wt.path.join("foo")).unwrap();
    let first = worktree::accept(&wt, "foo", None).unwrap();
    assert!(fx.repo.join("foo").is_symlink(), "{first:?}");
    // Later the agent makes foo a directory with a hook in it.
    std::fs::remove_file(wt.path.join("foo")).unwrap();
    write(
        &wt.path.join("foo/hooks/pre-commit"),
        "#!/bin/sh\necho owned\n",
    );
    let git_dir = digest_where(&fx.repo.join(".git"), &|_| false);
    let rb = review_base_of(&fx.repo, &wt.slug);
    for path in ["foo/hooks/pre-commit", "./foo/hooks/pre-commit"] {
        let report = act(
            &wt,
            &ActRequest {
                kind: ActKind::Accept,
                path: Some(path.into()),
                hunks: None,
                modified: Vec::new(),
            },
        );
        assert!(report.message.0.contains("symbolic link"), "{report:?}");
        assert_eq!(report.message.1, Level::Warn, "{report:?}");
    }
    let e = worktree::accept(&wt, "foo/hooks/pre-commit", None).unwrap_err();
    assert!(e.to_string().contains("foo is a symbolic link"), "{e}");
    assert!(!fx.repo.join(".git/hooks/pre-commit").exists());
    assert_eq!(digest_where(&fx.repo.join(".git"), &|_| false), git_dir);
    assert_eq!(review_base_of(&fx.repo, &wt.slug), rb);
    // The same check guards the worktree side (reject) and is one callable function.
    assert!(worktree::check_inside(&fx.repo, "foo/hooks/pre-commit").is_err());
    assert!(
        worktree::check_inside(&fx.repo, "foo").is_ok(),
        "the link itself"
    );
}

/// The role of a re-executed copy of this binary, and what it works on.
const ROLE: &str = "BOO_TXN_CHILD";
const REPO: &str = "BOO_TXN_REPO";

/// Runs test `name` again in a child process with `role` set; returns its stdout.
fn run_child(name: &str, role: &str, repo: &Path) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            &format!("worktree_txn::{name}"),
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, role)
        .env(REPO, repo)
        // The child may run as another user, who cannot read root's git configuration.
        .env("HOME", repo.parent().unwrap())
        .env("XDG_CONFIG_HOME", repo.parent().unwrap())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// In the child: the report of accepting (or rejecting) everything, printed for the parent.
fn child_act(kind: ActKind) {
    let repo = std::env::var(REPO).unwrap();
    let wt = worktree::list(Path::new(&repo)).unwrap().remove(0);
    let report = act(
        &wt,
        &ActRequest {
            kind,
            path: None,
            hunks: None,
            modified: Vec::new(),
        },
    );
    println!("REPORT {}", report.message.0);
}

fn report_of(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.split_once("REPORT ").map(|(_, r)| r))
        .unwrap_or_else(|| panic!("no report in {stdout}"))
        .to_string()
}

/// A write that fails half-way (the second file hits the file size limit, as on a full disk):
/// the first file, already renamed into place, is restored.
#[cfg(unix)]
#[test]
fn a_write_error_on_the_second_file_rolls_back_the_first() {
    if std::env::var(ROLE).as_deref() == Ok("fsize") {
        // SAFETY: plain syscalls on this (child) process before it writes anything.
        unsafe {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit {
                rlim_cur: 8192,
                rlim_max: 8192,
            };
            assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
        }
        return child_act(ActKind::Accept);
    }
    let fx = Fixture::new(&[("a.txt", "a\n"), ("b.txt", "b\n")]);
    let wt = fx.create("full");
    write(&wt.path.join("a.txt"), "agent a\n");
    // Compresses to a small git object, but is larger than the child may write to a file.
    write(&wt.path.join("b.txt"), "agent b\n".repeat(4096));
    let before = digest(&fx.repo);
    let rb = review_base_of(&fx.repo, &wt.slug);
    let out = run_child(
        "a_write_error_on_the_second_file_rolls_back_the_first",
        "fsize",
        &fx.repo,
    );
    let report = report_of(&out);
    assert!(report.contains("b.txt: File too large"), "{report}");
    assert!(report.contains("nothing was changed"), "{report}");
    assert_eq!(digest(&fx.repo), before, "a.txt restored");
    assert_eq!(review_base_of(&fx.repo, &wt.slug), rb);
    let scratch = fx.repo.join(".git/boo-tmp");
    let left: Vec<_> = std::fs::read_dir(&scratch).unwrap().collect();
    assert!(left.is_empty(), "scratch files left: {left:?}");
    // Without the limit the same accept lands whole.
    let ok = accept_everything(&wt);
    assert_eq!(ok.message.0, "boo: accepted 2 files", "{ok:?}");
    assert_eq!(read(&fx.repo.join("b.txt")), read(&wt.path.join("b.txt")));
}

/// Read-only directories: checked before the first write. Root may write anywhere, so when the
/// tests run as root the request runs in a child that drops to an unprivileged user.
#[cfg(unix)]
#[test]
fn a_read_only_directory_refuses_the_whole_accept_and_reject() {
    use std::os::unix::fs::PermissionsExt;
    let role = std::env::var(ROLE).unwrap_or_default();
    if let Some(kind) = role.strip_prefix("ro-") {
        drop_root();
        return child_act(if kind == "accept" {
            ActKind::Accept
        } else {
            ActKind::Reject
        });
    }
    let fx = Fixture::new(&[("a.txt", "a\n"), ("sub/b.txt", "b\n")]);
    let wt = fx.create("ro");
    write(&wt.path.join("a.txt"), "agent a\n");
    write(&wt.path.join("sub/b.txt"), "agent b\n");
    let as_root = unsafe { libc::geteuid() } == 0;
    if as_root {
        chown_tree(fx.tmp.path(), 65534);
    }
    let name = "a_read_only_directory_refuses_the_whole_accept_and_reject";
    let run = |kind: &str, root: &Path| {
        let sub = root.join("sub");
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o555)).unwrap();
        let before = digest(root);
        let rb = review_base_of(&fx.repo, &wt.slug);
        let report = if as_root {
            report_of(&run_child(name, &format!("ro-{kind}"), &fx.repo))
        } else if kind == "accept" {
            accept_everything(&wt).message.0
        } else {
            reject_everything(&wt).message.0
        };
        assert!(report.contains("directory sub is not writable"), "{report}");
        assert!(report.contains("nothing was written"), "{report}");
        assert_eq!(digest(root), before);
        assert_eq!(review_base_of(&fx.repo, &wt.slug), rb);
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    run("accept", &fx.repo);
    run("reject", &wt.path);
}

#[cfg(unix)]
fn drop_root() {
    // SAFETY: plain syscalls in the child process; group first, then user.
    unsafe {
        if libc::geteuid() == 0 {
            assert_eq!(libc::setgid(65534), 0);
            assert_eq!(libc::setuid(65534), 0);
        }
    }
}

#[cfg(unix)]
fn chown_tree(root: &Path, uid: u32) {
    std::os::unix::fs::lchown(root, Some(uid), Some(uid)).unwrap();
    if root.is_dir() && !root.is_symlink() {
        for e in std::fs::read_dir(root).unwrap() {
            chown_tree(&e.unwrap().path(), uid);
        }
    }
}

/// Scratch files live in the git dir, never in the checkout; what a killed process left there
/// is swept by the next transaction.
#[test]
fn scratch_files_stay_in_the_git_dir_and_stale_ones_are_swept() {
    let fx = Fixture::new(&[("a.txt", "a\n")]);
    let wt = fx.create("sweep");
    let scratch = fx.repo.join(".git/boo-tmp");
    // pid 0x7fffffff never runs: left by a killed boocoder.
    write(&scratch.join("2147483647-3.tmp"), "half a write");
    write(&wt.path.join("a.txt"), "agent a\n");
    write(&wt.path.join("new/b.txt"), "agent b\n");
    let report = accept_everything(&wt);
    assert_eq!(report.message.0, "boo: accepted 2 files", "{report:?}");
    assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 0);
    let names: Vec<String> = digest(&fx.repo)
        .into_iter()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(names, ["a.txt", "new", "new/b.txt"]);
}

/// Copied ignored files (`worktree.copy_ignored`) never go through a symlinked directory, even
/// one pointing inside the repository.
#[cfg(unix)]
#[test]
fn copied_files_are_not_read_or_written_beyond_a_symlink() {
    let fx = Fixture::new(&[
        ("a.txt", "a\n"),
        ("sub/keep.txt", "k\n"),
        (".gitignore", ".env\n"),
    ]);
    std::os::unix::fs::symlink("sub", fx.repo.join("conf")).unwrap();
    git(&fx.repo, &["add", "conf"]);
    git(&fx.repo, &["commit", "-qm", "link"]);
    write(&fx.repo.join("sub/.env"), "SECRET=1\n");
    write(&fx.repo.join(".env"), "OK=1\n");
    let opts = worktree::CreateOptions {
        copy_files: vec!["conf/.env".into(), ".env".into()],
    };
    let wt = worktree::create(&fx.repo, &fx.dest("copy"), "copy", &opts).unwrap();
    assert!(wt.path.join("conf").is_symlink());
    assert!(
        !wt.path.join("sub/.env").exists(),
        "written through conf -> sub"
    );
    assert_eq!(read_s(&wt.path.join(".env")), "OK=1\n");
}

/// Deleting a session is all or nothing too: when a step fails (the worktree's directory
/// cannot be moved, or its refs cannot be deleted), the worktree, its files, its refs and its
/// git metadata are all still there and the message names the cause. Runs unprivileged.
#[cfg(unix)]
#[test]
fn a_failed_delete_leaves_a_working_session() {
    use std::os::unix::fs::PermissionsExt;
    let name = "a_failed_delete_leaves_a_working_session";
    if std::env::var(ROLE).as_deref() == Ok("rm") {
        drop_root();
        let repo = std::env::var(REPO).unwrap();
        let wt = worktree::list(Path::new(&repo)).unwrap().remove(0);
        let e = worktree::remove(&wt, worktree::RemoveMode::Force).unwrap_err();
        println!("REPORT {e}");
        return;
    }
    let fx = Fixture::new(&[("a.txt", "a\n")]);
    let wt = fx.create("rm");
    write(&wt.path.join("a.txt"), "agent a\n");
    write(&wt.path.join("new.txt"), "agent new\n");
    let as_root = unsafe { libc::geteuid() } == 0;
    if as_root {
        chown_tree(fx.tmp.path(), 65534);
    }
    let ro = |p: &Path, on: bool| {
        let mode = if on { 0o555 } else { 0o755 };
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    let check = |blocked: &Path, cause: &str| {
        let before = digest(&wt.path);
        let refs = git(&fx.repo, &["for-each-ref", "refs/boo", "refs/heads"]);
        ro(blocked, true);
        let report = report_of(&run_child(name, "rm", &fx.repo));
        ro(blocked, false);
        assert!(report.contains(cause), "{report}");
        assert_eq!(digest(&wt.path), before);
        assert_eq!(
            git(&fx.repo, &["for-each-ref", "refs/boo", "refs/heads"]),
            refs
        );
        assert!(git(&fx.repo, &["worktree", "list"]).contains("[boo/rm]"));
        assert!(git(&wt.path, &["status", "--porcelain"]).contains("new.txt"));
    };
    // The worktree cannot be moved aside: nothing happens.
    check(
        wt.path.parent().unwrap(),
        "cannot remove the worktree (Permission denied",
    );
    // Moved aside, but a ref cannot be deleted: moved back, refs restored.
    check(&fx.repo.join(".git/refs/boo/rm"), "nothing was changed");
    // Unblocked, the same removal goes through.
    if as_root {
        chown_tree(fx.tmp.path(), 0);
    }
    worktree::remove(&wt, worktree::RemoveMode::Force).unwrap();
    assert!(!wt.path.exists());
    assert!(worktree::list(&fx.repo).unwrap().is_empty());
}
