//! Worktree engine on generated repositories of 20,000 and 100,000 files (or the sizes given:
//! `cargo bench --bench diff -- 20000`): creation against `git worktree add` on the same
//! repository in the same run, `pending()` and `risk()` (the check before a delete) with 10
//! changed files, and `pending()` with 500 changed files against `git diff`.
//!
//! The repositories are generated once with `git fast-import` and cached under
//! `target/bench-repos/`; each run clones their refs (objects shared) into a temp dir.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use boo_testkit::repo::{generate_cached, generated_content, generated_path};
use boocoder::worktree::{self, CreateOptions, SessionWorktree};

const RUNS: usize = 7;

fn git(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=Bench",
            "-c",
            "user.email=bench@example.com",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-repos")
}

/// Rewrites `count` files spread over the repository, as an agent would.
fn edit(wt: &SessionWorktree, files: usize, count: usize, tag: &str) {
    for k in 0..count {
        let i = k * (files / count);
        let edited = generated_content(i)
            .replace(": some text to diff\n", &format!(": edited by {tag}\n"))
            .replacen("line 0:", "line zero:", 1);
        std::fs::write(wt.path.join(generated_path(i)), edited).expect("edit");
    }
}

fn timed<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        last = Some(f());
        times.push(t.elapsed());
    }
    (median(times), last.expect("runs > 0"))
}

fn run(files: usize) {
    println!("--- {files} files");
    let tmp = tempfile::tempdir().expect("tmp");
    let t = Instant::now();
    let repo = generate_cached(&cache_dir(), &tmp.path().join("repo"), files);
    println!(
        "repository (cached generation):  {:8.1} ms",
        ms(t.elapsed())
    );

    // Side by side, alternating so cache warm-up and load favour neither.
    let rounds = if files > 50_000 { 2 } else { 3 };
    let (mut git_add, mut ours) = (Vec::new(), Vec::new());
    let mut wt = None;
    for round in 0..rounds {
        let name = format!("plain{round}");
        let plain = tmp.path().join(&name);
        let t = Instant::now();
        let dest = plain.to_str().expect("utf-8 path");
        git(&repo, &["worktree", "add", "-q", "-b", &name, dest, "HEAD"]);
        git_add.push(t.elapsed());
        let slug = format!("bench{round}");
        let dest = tmp.path().join("worktrees").join(&slug);
        let t = Instant::now();
        wt =
            Some(worktree::create(&repo, &dest, &slug, &CreateOptions::default()).expect("create"));
        ours.push(t.elapsed());
    }
    let wt = wt.expect("made");
    let (g, o) = (median(git_add), median(ours));
    println!("git worktree add (median of {rounds}):  {:8.1} ms", ms(g));
    println!("worktree::create (median of {rounds}):  {:8.1} ms", ms(o));
    println!(
        "ratio create / git worktree add:  {:8.2}",
        o.as_secs_f64() / g.as_secs_f64()
    );

    // The session's scanner, as the app keeps one: its first scan starts the watch.
    let scanner = worktree::PendingScanner::new(&wt.path);
    let t = Instant::now();
    assert!(scanner.pending(&wt).expect("first scan").is_empty());
    println!(
        "scanner: first scan (watch start): {:8.1} ms",
        ms(t.elapsed())
    );

    // The agent edits later than the checkout, as in real use (keeps index entries non-racy).
    std::thread::sleep(Duration::from_millis(1100));
    edit(&wt, files, 10, "the agent");
    let t = Instant::now();
    assert_eq!(scanner.pending(&wt).expect("scan").len(), 10);
    println!(
        "scanner: pending() 10 edited:     {:8.1} ms",
        ms(t.elapsed())
    );
    // Each run edits the same 10 files again first (not timed), as a new turn would.
    let mut own = Vec::new();
    for _ in 0..RUNS {
        edit(&wt, files, 10, "the agent");
        let t = Instant::now();
        assert_eq!(scanner.pending(&wt).expect("scan").len(), 10);
        own.push(t.elapsed());
    }
    let p = median(own);
    println!("scanner: same, median of {RUNS}:     {:8.1} ms", ms(p));
    let (r, risk) = timed(RUNS, || {
        worktree::risk_with(&wt, Some(&scanner)).expect("risk")
    });
    assert_eq!((risk.unaccepted.len(), risk.uncommitted.len()), (10, 10));
    println!("scanner: risk() (median of {RUNS}):  {:8.1} ms", ms(r));
    assert_eq!(scanner.full_scans(), 1, "one full scan: the first");
    let (p, changes) = timed(RUNS, || worktree::pending(&wt).expect("pending"));
    assert_eq!(changes.len(), 10);
    println!("pending() 10 changed (median of {RUNS}): {:8.1} ms", ms(p));
    let (r, risk) = timed(RUNS, || worktree::risk(&wt).expect("risk"));
    assert_eq!((risk.unaccepted.len(), risk.uncommitted.len()), (10, 10));
    println!("risk() 10 changed (median of {RUNS}):    {:8.1} ms", ms(r));
    let (s, _) = timed(RUNS, || git(&wt.path, &["status", "--porcelain"]));
    println!("git status (median of {RUNS}):           {:8.1} ms", ms(s));

    edit(&wt, files, 500, "the agent again");
    let (o, changes) = timed(RUNS, || worktree::pending(&wt).expect("pending"));
    assert_eq!(changes.len(), 500);
    let base = wt.base_commit.clone();
    let (g, _) = timed(RUNS, || {
        let stat = git(&wt.path, &["diff", "--stat", &base]);
        let patch = git(&wt.path, &["diff", &base]);
        assert!(!stat.is_empty() && !patch.is_empty());
    });
    println!("pending() 500 changed (median):  {:8.1} ms", ms(o));
    println!("git diff --stat + git diff:      {:8.1} ms", ms(g));
    println!(
        "ratio pending / git:              {:8.2}",
        o.as_secs_f64() / g.as_secs_f64()
    );
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![20_000, 100_000]
    } else {
        sizes
    };
    let total = Instant::now();
    for n in sizes {
        run(n);
    }
    println!("whole run: {:.1} s", total.elapsed().as_secs_f64());
}
