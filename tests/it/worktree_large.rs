//! Large work: files over `LARGE_FILE` are whole-file entries (no hunks, no text in the patch
//! that goes to the store and the view), still accepted and rejected whole.

use crate::support::worktree::*;
use boocoder::worktree::{self, ChangeStatus, WorktreeError, LARGE_FILE};

fn big(tag: &str) -> String {
    let line = format!("{tag}: a line of text that makes the file large\n");
    line.repeat(LARGE_FILE as usize / line.len() + 10)
}

#[test]
fn a_large_file_is_a_whole_file_entry_without_its_text() {
    let fx = Fixture::new(&[("big.txt", &big("base")), ("small.txt", "s\n")]);
    let wt = fx.create("large");
    let agent = big("agent");
    write(&wt.path.join("big.txt"), &agent);
    write(&wt.path.join("new-big.txt"), big("new"));
    write(&wt.path.join("small.txt"), "agent s\n");
    let pending = worktree::pending(&wt).unwrap();
    let names: Vec<(&str, bool)> = pending.iter().map(|c| (c.path.as_str(), c.large)).collect();
    assert_eq!(
        names,
        [
            ("big.txt", true),
            ("new-big.txt", true),
            ("small.txt", false)
        ]
    );
    for c in pending.iter().filter(|c| c.large) {
        assert!(c.hunks.is_empty(), "{}", c.path);
        assert!(
            c.patch.len() < 200,
            "no text in the patch: {}",
            c.patch.len()
        );
        assert!(c.patch.contains("Large file"), "{}", c.patch);
    }
    assert_eq!(pending[1].status, ChangeStatus::Added);
    // An unchanged large file (same bytes, touched) is not pending.
    std::fs::write(wt.path.join("big.txt"), big("base")).unwrap();
    assert!(worktree::pending_file(&wt, "big.txt").unwrap().is_none());
    write(&wt.path.join("big.txt"), &agent);

    let e = worktree::accept(&wt, "big.txt", Some(&[0])).unwrap_err();
    assert!(matches!(e, WorktreeError::WholeFileOnly(_)), "{e}");
    worktree::accept(&wt, "big.txt", None).unwrap();
    assert_eq!(read_s(&fx.repo.join("big.txt")), agent);
    worktree::reject(&wt, "new-big.txt", None).unwrap();
    assert!(!wt.path.join("new-big.txt").exists());
    let left: Vec<String> = worktree::pending(&wt)
        .unwrap()
        .into_iter()
        .map(|c| c.path)
        .collect();
    assert_eq!(left, ["small.txt"]);
}
