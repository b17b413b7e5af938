//! A new session end to end, on generated repositories of 20,000 and 100,000 files (or the
//! sizes given: `cargo bench --bench session_new -- 20000`): the real Neovim with the plugin,
//! boocoder, `opencode serve` and git, the scripted model. Prints the time from `:Boo` (which
//! opens the repository's first session) to its worktree being ready, and from the first
//! prompt, sent right after `:Boo`, to the first answer chunk on screen, against the same for a
//! second prompt in the ready session. `BOO_BENCH_LOG=1` also prints boocoder's INFO log lines
//! (server start, worktree created, turns), to see where the first answer's time goes
//! (`BOO_BENCH_LOG=debug`: its DEBUG lines too).

use std::time::{Duration, Instant};

use boo_testkit::fake_model::FakeModel;
use boo_testkit::nvim::{Nvim, NvimOptions};
use boo_testkit::opencode::{OpencodeEnv, SandboxOptions};
use boo_testkit::repo::generate_cached;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(600);

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn has_text(nvim: &Nvim, needle: &str) -> bool {
    nvim.transcript().await.contains(needle)
}

async fn worktree_ready(nvim: &Nvim) -> bool {
    nvim.lua("return require('boo.rpc').request('review_info', { cwd = vim.fn.getcwd() })")
        .await["worktree"]
        .is_string()
}

async fn run(files: usize) {
    println!("--- {files} files");
    let tmp = tempfile::tempdir().expect("tmp");
    let cache = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-repos");
    let project = generate_cached(&cache, &tmp.path().join("project"), files);
    let model = FakeModel::start();
    let env = OpencodeEnv::new(&model, &SandboxOptions::default());
    let nvim = Nvim::start_with(NvimOptions {
        cwd: Some(project),
        env: env.vars().to_vec(),
        config: json!({
            "store": { "path": tmp.path().join("boo.db").display().to_string() },
            "worktree": { "dir": tmp.path().join("worktrees").display().to_string() },
        }),
    })
    .await;
    let t0 = Instant::now();
    nvim.cmd("Boo").await.expect(":Boo");
    nvim.cmd("Boo send first").await.expect("send");
    let (mut ready, mut answer) = (None, None);
    while answer.is_none() {
        if ready.is_none() && worktree_ready(&nvim).await {
            ready = Some(t0.elapsed());
        }
        if has_text(&nvim, "Echo: first").await {
            answer = Some(t0.elapsed());
        }
        assert!(t0.elapsed() < WAIT, "no first answer:\n{}", nvim.log());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ready = ready.unwrap_or(answer.unwrap_or_default());
    let first = answer.unwrap_or_default();
    nvim.wait_for("idle", "not require('boo').status().busy", WAIT)
        .await;
    let t1 = Instant::now();
    nvim.cmd("Boo send second").await.expect("send");
    while !has_text(&nvim, "Echo: second").await {
        assert!(t1.elapsed() < WAIT, "no second answer");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let second = t1.elapsed();
    println!(":Boo -> worktree ready:              {:8.1} ms", ms(ready));
    println!("first prompt -> first answer chunk:  {:8.1} ms", ms(first));
    println!("second prompt -> first answer chunk: {:8.1} ms", ms(second));
    println!(
        "first - second:                      {:8.1} ms (goal <= 1000)",
        ms(first) - ms(second)
    );
    if let Some(level) = std::env::var_os("BOO_BENCH_LOG") {
        // `BOO_BENCH_LOG=debug` prints the DEBUG lines too (not the HTTP client's).
        let debug = level == "debug";
        let shown = |l: &&str| l.contains(" INFO ") || (debug && l.contains("DEBUG boocoder"));
        for l in nvim.log().lines().filter(shown) {
            println!("{l}");
        }
    }
    nvim.quit().await;
}

#[tokio::main]
async fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![20_000, 100_000]
    } else {
        sizes
    };
    for n in sizes {
        run(n).await;
    }
}
