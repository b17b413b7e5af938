//! Benchmark of `worktree::pending` against the git CLI on the same worktree and base.
//!
//! A repository of 20,000 files is generated with `git fast-import`, a session worktree is
//! created with the engine, 500 files are changed in it, then `pending()` is timed against
//! `git diff --stat <base>` + `git diff <base>` run in the worktree. Run: `cargo bench --bench diff`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use boocoder::worktree::{self, CreateOptions};

const FILES: usize = 20_000;
const CHANGED: usize = 500;
const RUNS: usize = 7;

fn git(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=Bench",
            "-c",
            "user.email=bench@example.com",
        ])
        .args(["-c", "init.defaultBranch=main", "-c", "core.autocrlf=false"])
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

fn path_of(i: usize) -> String {
    format!("src/m{:02}/d{:03}/file{i:05}.txt", i % 20, i % 400)
}

fn content_of(i: usize) -> String {
    (0..30)
        .map(|l| format!("file {i} line {l}: some text to diff\n"))
        .collect()
}

/// One commit of FILES files on `main` (HEAD), written with fast-import (inline data). The user's
/// checkout is left unpopulated: only the session worktree's files matter here, and checking out
/// 20,000 files twice would double the run time.
fn generate(repo: &Path) {
    git(repo, &["init", "-q"]);
    let mut child = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(repo)
        .stdin(Stdio::piped())
        .spawn()
        .expect("git fast-import runs");
    {
        let mut stdin = std::io::BufWriter::new(child.stdin.take().expect("stdin"));
        let msg = "generated";
        write!(
            stdin,
            "commit refs/heads/main\ncommitter Bench <bench@example.com> 1700000000 +0000\ndata {}\n{msg}\n",
            msg.len()
        )
        .unwrap();
        for i in 0..FILES {
            let c = content_of(i);
            write!(
                stdin,
                "M 100644 inline {}\ndata {}\n{c}\n",
                path_of(i),
                c.len()
            )
            .unwrap();
        }
        stdin.flush().unwrap();
    }
    assert!(child.wait().unwrap().success());
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let total = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let t = Instant::now();
    generate(&repo);
    println!(
        "generate {FILES} files:           {:8.1} ms",
        ms(t.elapsed())
    );

    // Side by side, in the same run, alternating so cache warm-up and load favour neither.
    let (mut git_add, mut ours) = (Vec::new(), Vec::new());
    let mut wt = None;
    for round in 0..3 {
        let t = Instant::now();
        let plain = tmp.path().join(format!("plain{round}"));
        let name = format!("plain{round}");
        git(
            &repo,
            &[
                "worktree",
                "add",
                "-q",
                "-b",
                &name,
                plain.to_str().unwrap(),
                "HEAD",
            ],
        );
        git_add.push(t.elapsed());
        let t = Instant::now();
        let slug = format!("bench{round}");
        let dest = tmp.path().join("worktrees").join(&slug);
        wt = Some(worktree::create(&repo, &dest, &slug, &CreateOptions::default()).unwrap());
        ours.push(t.elapsed());
    }
    let wt = wt.unwrap();
    let (g, o) = (median(git_add), median(ours));
    println!("git worktree add (median of 3):  {:8.1} ms", ms(g));
    println!("worktree::create (median of 3):  {:8.1} ms", ms(o));
    println!(
        "ratio create / git worktree add: {:8.2}",
        o.as_secs_f64() / g.as_secs_f64()
    );

    // The agent edits later than the checkout, as in real use (keeps index entries non-racy).
    std::thread::sleep(Duration::from_millis(1100));
    for k in 0..CHANGED {
        let i = k * (FILES / CHANGED);
        let p = wt.path.join(path_of(i));
        let edited = content_of(i)
            .replace(": some text to diff\n", ": edited by the agent\n")
            .replacen("line 0:", "line zero:", 1);
        std::fs::write(&p, edited).unwrap();
    }

    let mut ours = Vec::new();
    let mut count = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        let changes = worktree::pending(&wt).unwrap();
        ours.push(t.elapsed());
        count = changes.len();
    }
    assert_eq!(count, CHANGED);

    let base = wt.base_commit.clone();
    let mut theirs = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let stat = git(&wt.path, &["diff", "--stat", &base]);
        let patch = git(&wt.path, &["diff", &base]);
        theirs.push(t.elapsed());
        assert!(!stat.is_empty() && !patch.is_empty());
    }

    let (o, g) = (median(ours), median(theirs));
    println!(
        "pending() ({count} files, median of {RUNS}): {:8.1} ms",
        ms(o)
    );
    println!("git diff --stat + git diff (median):  {:8.1} ms", ms(g));
    println!(
        "ratio pending / git:                  {:8.2}",
        o.as_secs_f64() / g.as_secs_f64()
    );
    println!(
        "whole run:                            {:8.1} ms",
        ms(total.elapsed())
    );
}
