//! Cross-session conflicts on real repositories: which hunks of which session overlap another
//! session's changed lines or the user's uncommitted edits, from the pending patches.

use crate::support::worktree::*;
use boocoder::worktree::conflicts::{find, SessionPatches};
use boocoder::worktree::{self, SessionWorktree};

fn patches(id: i64, title: &str, wt: &SessionWorktree) -> SessionPatches {
    SessionPatches {
        session: id,
        title: title.into(),
        review_base: wt.review_base.clone(),
        files: worktree::pending(wt)
            .unwrap()
            .into_iter()
            .map(|f| (f.path, f.patch))
            .collect(),
    }
}

#[test]
fn overlapping_lines_are_marked_on_both_sides_and_distant_ones_are_not() {
    let fx = Fixture::new(&[("f.txt", &numbered(30)), ("g.txt", "g\n")]);
    let (a, b, c) = (fx.create("a"), fx.create("b"), fx.create("c"));
    write(&a.path.join("f.txt"), replace_line(&numbered(30), 5, "A"));
    // Two lines below A's: the hunks' context overlaps, the changed lines do not.
    write(&b.path.join("f.txt"), replace_line(&numbered(30), 7, "B"));
    write(&c.path.join("f.txt"), replace_line(&numbered(30), 5, "C"));
    write(&c.path.join("g.txt"), "c\n");
    let marks = find(
        &fx.repo,
        &[
            patches(1, "a", &a),
            patches(2, "b", &b),
            patches(3, "c", &c),
        ],
    )
    .unwrap();
    let by = |s: i64| -> Vec<(String, Vec<String>)> {
        marks
            .get(&s)
            .map(|m| m.iter().map(|m| (m.path.clone(), m.by.clone())).collect())
            .unwrap_or_default()
    };
    assert_eq!(
        by(1),
        [("f.txt".to_string(), vec!["session c".to_string()])]
    );
    assert_eq!(
        by(3),
        [("f.txt".to_string(), vec!["session a".to_string()])]
    );
    assert!(by(2).is_empty(), "{:?}", by(2));
}

#[test]
fn the_users_own_edits_since_the_base_count_too() {
    let fx = Fixture::new(&[("f.txt", &numbered(30))]);
    let a = fx.create("a");
    write(&a.path.join("f.txt"), replace_line(&numbered(30), 20, "A"));
    let none = find(&fx.repo, &[patches(1, "a", &a)]).unwrap();
    assert!(none.is_empty(), "{none:?}");
    // The user changes line 20 in the checkout (uncommitted).
    write(
        &fx.repo.join("f.txt"),
        replace_line(&numbered(30), 20, "mine"),
    );
    let marks = find(&fx.repo, &[patches(1, "a", &a)]).unwrap();
    assert_eq!(marks[&1][0].by, ["your checkout"]);
    assert!(
        marks[&1][0].header.starts_with("@@ -17,7 +17,7 @@"),
        "{:?}",
        marks[&1]
    );
}

#[test]
fn sessions_from_different_bases_are_marked_where_the_file_differs() {
    let fx = Fixture::new(&[("f.txt", &numbered(30))]);
    let a = fx.create("a");
    write(
        &fx.repo.join("f.txt"),
        replace_line(&numbered(30), 1, "new head"),
    );
    git(&fx.repo, &["commit", "-qam", "head moves"]);
    let b = fx.create("b");
    write(&a.path.join("f.txt"), replace_line(&numbered(30), 25, "A"));
    write(
        &b.path.join("f.txt"),
        replace_line(&replace_line(&numbered(30), 1, "new head"), 10, "B"),
    );
    let marks = find(&fx.repo, &[patches(1, "a", &a), patches(2, "b", &b)]).unwrap();
    assert_eq!(marks[&1][0].by, ["session b"]);
    assert_eq!(marks[&2][0].by, ["session a"]);
}
