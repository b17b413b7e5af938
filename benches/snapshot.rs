//! Turn checkpoints on a generated repository of 20,000 files (or the sizes given:
//! `cargo bench --bench snapshot -- 100000`): a snapshot of a clean worktree, a snapshot after
//! an agent edited 10 files, the "edited since?" check and a restore of 10 files, with
//! `git status` on the same worktree for scale.
//!
//! The repository comes from the same cached generator as `benches/diff.rs`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use boo_testkit::repo::{generate_cached, generated_content, generated_path};
use boocoder::worktree::{self, CreateOptions, Side};

const RUNS: usize = 7;

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

fn run(files: usize) {
    println!("--- {files} files");
    let tmp = tempfile::tempdir().expect("tmp");
    let repo = generate_cached(&cache_dir(), &tmp.path().join("repo"), files);
    let dest = tmp.path().join("worktrees").join("bench");
    let wt = worktree::create(&repo, &dest, "bench", &CreateOptions::default()).expect("create");
    // Edits later than the checkout, as in real use (keeps index entries non-racy).
    std::thread::sleep(Duration::from_millis(1100));

    let mut clean = Vec::new();
    for n in 0..RUNS {
        let t = Instant::now();
        worktree::snapshot(&wt, 1, n as u32, Side::Before).expect("snapshot");
        clean.push(t.elapsed());
    }
    println!(
        "snapshot, clean worktree (median of {RUNS}): {:8.1} ms",
        ms(median(clean))
    );
    // For scale: git itself looking at the same worktree.
    let mut status = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let out = std::process::Command::new("git")
            .args(["status", "--porcelain", "--untracked-files=all"])
            .current_dir(&wt.path)
            .output()
            .expect("git status");
        assert!(out.status.success());
        status.push(t.elapsed());
    }
    println!(
        "git status -uall, same worktree (median): {:8.1} ms",
        ms(median(status))
    );

    let before = worktree::snapshot(&wt, 1, 100, Side::Before).expect("before");
    let mut edited = Vec::new();
    let mut after = String::new();
    for n in 0..RUNS {
        for k in 0..10 {
            let i = k * (files / 10);
            let text = generated_content(i) + &format!("edited in run {n}\n");
            std::fs::write(wt.path.join(generated_path(i)), text).expect("edit");
        }
        let t = Instant::now();
        after = worktree::snapshot(&wt, 1, 200 + n as u32, Side::After).expect("snapshot");
        edited.push(t.elapsed());
    }
    println!(
        "snapshot, 10 files edited (median of {RUNS}): {:8.1} ms",
        ms(median(edited))
    );

    let t = Instant::now();
    assert!(worktree::changed_since(&wt, &after)
        .expect("check")
        .is_empty());
    println!(
        "edited-since check:                    {:8.1} ms",
        ms(t.elapsed())
    );
    let t = Instant::now();
    let r = worktree::restore(&wt, &before, Some(after.as_str())).expect("restore");
    println!(
        "restore of {} files (undo):             {:8.1} ms",
        r.written.len(),
        ms(t.elapsed())
    );
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    for files in if sizes.is_empty() {
        vec![20_000]
    } else {
        sizes
    } {
        run(files);
    }
}
