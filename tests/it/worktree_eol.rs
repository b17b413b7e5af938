//! Line ends and filters as git applies them: a CRLF checkout (`core.autocrlf=true`, or an
//! `eol=crlf` attribute) shows only the lines the agent changed, and what accept and reject
//! write is CRLF again; a `filter` driver's clean/smudge commands are honoured.

use crate::support::worktree::*;
use boocoder::worktree::{self, AcceptResult};

fn crlf(s: &str) -> String {
    s.replace('\n', "\r\n")
}

fn applied(r: &AcceptResult) -> &Vec<String> {
    match r {
        AcceptResult::Applied { written } => written,
        other => panic!("expected applied, got {other:?}"),
    }
}

/// The user's repository with `a.txt` (20 lines) committed as LF and checked out as CRLF.
fn crlf_fixture(attributes: Option<&str>) -> Fixture {
    let mut files = vec![("a.txt", numbered(20))];
    if let Some(a) = attributes {
        files.push((".gitattributes", a.to_string()));
    }
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    let fx = Fixture::new(&files);
    if attributes.is_none() {
        git(&fx.repo, &["config", "core.autocrlf", "true"]);
    }
    // The checkout as git makes it with these settings (the test helper's git forces
    // autocrlf off: the repository's setting is passed again).
    std::fs::remove_file(fx.repo.join("a.txt")).unwrap();
    git(
        &fx.repo,
        &["-c", "core.autocrlf=true", "checkout", "--", "a.txt"],
    );
    assert_eq!(read_s(&fx.repo.join("a.txt")), crlf(&numbered(20)));
    assert_eq!(status(&fx), "", "a CRLF checkout is clean for git");
    fx
}

fn status(fx: &Fixture) -> String {
    git(
        &fx.repo,
        &["-c", "core.autocrlf=true", "status", "--porcelain"],
    )
}

fn crlf_round_trip(fx: &Fixture) {
    let wt = fx.create("s1");
    let file = wt.path.join("a.txt");
    assert_eq!(read_s(&file), crlf(&numbered(20)), "git checks out CRLF");
    assert!(
        worktree::pending(&wt).unwrap().is_empty(),
        "line ends alone are no change"
    );
    // The agent edits two lines far apart, keeping the file's CRLF.
    let edited = replace_line(&replace_line(&numbered(20), 3, "THREE"), 17, "SEVENTEEN");
    write(&file, crlf(&edited));
    let changes = worktree::pending(&wt).unwrap();
    assert_eq!(changes.len(), 1, "{changes:#?}");
    let c = &changes[0];
    assert_eq!(
        (c.additions, c.deletions, c.hunks.len()),
        (2, 2, 2),
        "{}",
        c.patch
    );
    assert!(!c.patch.contains('\r'), "{}", c.patch);
    let changed: Vec<&str> = c
        .hunks
        .iter()
        .flat_map(|h| &h.lines)
        .filter(|l| l.origin != ' ')
        .map(|l| l.content.as_str())
        .collect();
    assert_eq!(changed, ["line 3\n", "THREE\n", "line 17\n", "SEVENTEEN\n"]);

    // Accepting the first hunk writes CRLF into the checkout, nothing else changes.
    let out = worktree::accept(&wt, "a.txt", Some(&[0])).unwrap();
    assert_eq!(applied(&out.result), &vec!["a.txt".to_string()]);
    let want = crlf(&replace_line(&numbered(20), 3, "THREE"));
    assert_eq!(read_s(&fx.repo.join("a.txt")), want);
    assert_eq!(status(fx), " M a.txt\n");
    let diff = git(&fx.repo, &["-c", "core.autocrlf=true", "diff", "--numstat"]);
    assert_eq!(diff, "1\t1\ta.txt\n", "git sees one line changed");
    // Rejecting the other puts the worktree's line back, as CRLF.
    let left = worktree::pending(&wt).unwrap();
    assert_eq!(left[0].hunks.len(), 1, "{}", left[0].patch);
    worktree::reject(&wt, "a.txt", Some(&[0])).unwrap();
    assert_eq!(read_s(&file), want);
    assert!(worktree::pending(&wt).unwrap().is_empty());
}

#[test]
fn autocrlf_checkout_shows_only_the_agents_lines_and_accept_writes_crlf() {
    crlf_round_trip(&crlf_fixture(None));
}

#[test]
fn eol_crlf_attribute_shows_only_the_agents_lines_and_accept_writes_crlf() {
    crlf_round_trip(&crlf_fixture(Some("*.txt text eol=crlf\n")));
}

#[test]
fn a_filter_driver_cleans_for_the_diff_and_smudges_what_accept_writes() {
    // rot13 both ways: the repository holds the scrambled form, checkouts the plain one.
    let fx = Fixture::new(&[(".gitattributes", "*.sec filter=rot\n")]);
    let rot = "tr a-zA-Z n-za-mN-ZA-M";
    git(&fx.repo, &["config", "filter.rot.clean", rot]);
    git(&fx.repo, &["config", "filter.rot.smudge", rot]);
    write(&fx.repo.join("k.sec"), "alpha\nbeta\n");
    git(&fx.repo, &["add", "k.sec"]);
    git(&fx.repo, &["commit", "-q", "-m", "secret"]);
    assert_eq!(
        git(&fx.repo, &["cat-file", "-p", "HEAD:k.sec"]),
        "nycun\norgn\n"
    );
    let wt = fx.create("s1");
    assert_eq!(read_s(&wt.path.join("k.sec")), "alpha\nbeta\n");
    assert!(worktree::pending(&wt).unwrap().is_empty());
    write(&wt.path.join("k.sec"), "alpha\ngamma\n");
    let changes = worktree::pending(&wt).unwrap();
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert_eq!((changes[0].additions, changes[0].deletions), (1, 1));
    // As `git diff` shows it: the repository form.
    assert!(
        changes[0].patch.contains("-orgn\n+tnzzn\n"),
        "{}",
        changes[0].patch
    );
    worktree::accept(&wt, "k.sec", None).unwrap();
    assert_eq!(read_s(&fx.repo.join("k.sec")), "alpha\ngamma\n");
    assert!(worktree::pending(&wt).unwrap().is_empty());
}
