//! A submodule the agent moved to another commit is an entry of the pending diff, read-only:
//! accept and reject leave it alone (and say so), the other files still go through.

use crate::support::worktree::*;
use boocoder::worktree::review::{act, ActKind, ActRequest, Level};
use boocoder::worktree::{self, ChangeStatus};

fn req(kind: ActKind, path: Option<&str>) -> ActRequest {
    ActRequest {
        kind,
        path: path.map(str::to_string),
        hunks: None,
        modified: Vec::new(),
    }
}

#[test]
fn a_moved_submodule_is_shown_and_never_applied() {
    let fx = Fixture::new(&[("a.txt", "a\n")]);
    let lib = fx.tmp.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    git(&lib, &["init", "-q"]);
    write(&lib.join("l.txt"), "one\n");
    git(&lib, &["add", "-A"]);
    git(&lib, &["commit", "-q", "-m", "one"]);
    let first = git(&lib, &["rev-parse", "HEAD"]).trim().to_string();
    write(&lib.join("l.txt"), "two\n");
    git(&lib, &["commit", "-q", "-am", "two"]);
    let second = git(&lib, &["rev-parse", "HEAD"]).trim().to_string();
    git(&lib, &["checkout", "-q", &first]);
    let url = lib.display().to_string();
    git(
        &fx.repo,
        &[
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "add",
            "-q",
            &url,
            "lib",
        ],
    );
    git(&fx.repo, &["commit", "-q", "-m", "lib"]);
    let wt = fx.create("s1");
    assert!(
        worktree::pending(&wt).unwrap().is_empty(),
        "an unmoved submodule is no change"
    );

    // The agent moves the submodule (its gitlink) and edits a file.
    let cacheinfo = format!("160000,{second},lib");
    git(&wt.path, &["update-index", "--cacheinfo", &cacheinfo]);
    write(&wt.path.join("a.txt"), "b\n");
    let changes = worktree::pending(&wt).unwrap();
    let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(paths, ["a.txt", "lib"], "{changes:#?}");
    let sm = &changes[1];
    assert!(sm.submodule && sm.hunks.is_empty());
    assert_eq!(sm.status, ChangeStatus::Modified);
    assert!(
        sm.patch.contains(&format!("{first} -> {second}")),
        "{}",
        sm.patch
    );

    // Read-only: named, it is refused with a reason; in "everything", it is left out.
    let r = act(&wt, &req(ActKind::Accept, Some("lib")));
    assert_eq!(r.message.1, Level::Warn);
    assert!(
        r.message.0.contains("lib is a submodule"),
        "{:?}",
        r.message
    );
    let r = act(&wt, &req(ActKind::Accept, None));
    assert_ne!(r.message.1, Level::Warn, "{:?}", r.message);
    assert_eq!(read_s(&fx.repo.join("a.txt")), "b\n");
    let user_lib = git(&fx.repo, &["ls-files", "-s", "lib"]);
    assert!(
        user_lib.contains(&first),
        "the checkout's submodule is not moved: {user_lib}"
    );
    let left = worktree::pending(&wt).unwrap();
    assert_eq!(left.len(), 1);
    assert!(left[0].submodule);
    let r = act(&wt, &req(ActKind::Reject, None));
    assert!(
        r.message.0.contains("only submodule changes are pending"),
        "{:?}",
        r.message
    );
}
