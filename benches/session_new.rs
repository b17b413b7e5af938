//! A new session end to end, on generated repositories of 20,000 and 100,000 files (or the
//! sizes given: `cargo bench --bench session_new -- 20000`): the real Neovim with the plugin,
//! boocoder, `opencode serve` and git, the scripted model. Prints the time from `:Boo` (which
//! opens the repository's first session) to its worktree being ready, and from the first
//! prompt, sent right after `:Boo`, to the first answer chunk on screen, against the same for a
//! second prompt in the ready session. Then the same for `:Boo session new` once the spare
//! worktree made after the first session is there and warmed in opencode, and again the moment
//! the next spare's checkout ends (its warm-up still running), both with the prompt sent at
//! once. `BOO_BENCH_LOG=1` also prints boocoder's INFO log lines
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

/// The current session, once it has its worktree (and is not `not`).
async fn ready_session(nvim: &Nvim, not: Option<i64>) -> Option<i64> {
    let info = nvim
        .lua("return require('boo.rpc').request('review_info', { cwd = vim.fn.getcwd() })")
        .await;
    let session = info["session"].as_i64();
    (info["worktree"].is_string() && session != not)
        .then_some(session)
        .flatten()
}

/// Runs `open` (`Boo`, `Boo session new ...`), sends `prompt` right away, and returns the time
/// to the session's worktree being ready, to the answer on screen, and the session.
async fn first_turn(
    nvim: &Nvim,
    open: &str,
    prompt: &str,
    not: Option<i64>,
) -> (Duration, Duration, i64) {
    let t0 = Instant::now();
    nvim.cmd(open).await.expect("open");
    nvim.cmd(&format!("Boo send {prompt}")).await.expect("send");
    let (mut ready, mut answer) = (None, None);
    while answer.is_none() || ready.is_none() {
        if ready.is_none() {
            if let Some(s) = ready_session(nvim, not).await {
                ready = Some((t0.elapsed(), s));
            }
        }
        if answer.is_none() && has_text(nvim, &format!("Echo: {prompt}")).await {
            answer = Some(t0.elapsed());
        }
        assert!(
            t0.elapsed() < WAIT,
            "no answer to {prompt}:\n{}",
            nvim.log()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (ready, session) = ready.expect("ready");
    nvim.wait_for("idle", "not require('boo').status().busy", WAIT)
        .await;
    (ready, answer.expect("answer"), session)
}

/// A prompt in the ready session: the time to its answer on screen.
async fn next_turn(nvim: &Nvim, prompt: &str) -> Duration {
    let t1 = Instant::now();
    nvim.cmd(&format!("Boo send {prompt}")).await.expect("send");
    while !has_text(nvim, &format!("Echo: {prompt}")).await {
        assert!(t1.elapsed() < WAIT, "no answer to {prompt}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = t1.elapsed();
    nvim.wait_for("idle", "not require('boo').status().busy", WAIT)
        .await;
    took
}

fn report(what: &str, ready: Duration, first: Duration, second: Duration) {
    println!("{what}:");
    println!(
        "  -> worktree ready:                   {:8.1} ms",
        ms(ready)
    );
    println!(
        "  first prompt -> first answer chunk:  {:8.1} ms",
        ms(first)
    );
    println!(
        "  second prompt -> first answer chunk: {:8.1} ms",
        ms(second)
    );
    println!(
        "  first - second:                      {:8.1} ms (goal <= 1000)",
        ms(first) - ms(second)
    );
}

/// The slug of the `n`th spare worktree made (1-based), once its checkout has ended.
async fn wait_spare(nvim: &Nvim, n: usize) -> String {
    let t = Instant::now();
    loop {
        let log = nvim.log();
        let made: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("spare worktree made for the next session"))
            .collect();
        if let Some(line) = made.get(n - 1) {
            let slug = line.split("slug=").nth(1).unwrap_or("");
            let slug = slug.split_whitespace().next().unwrap_or("");
            return slug.trim_matches('"').to_string();
        }
        assert!(t.elapsed() < WAIT, "no spare worktree {n}:\n{log}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Whether boocoder has warmed opencode's instance for the spare's directory.
fn warmed(nvim: &Nvim, slug: &str) -> bool {
    nvim.log()
        .lines()
        .any(|l| l.contains("opencode ready for the directory") && l.contains(slug))
}

async fn run(files: usize) {
    println!("--- {files} files");
    let tmp = tempfile::tempdir().expect("tmp");
    let cache = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-repos");
    let project = generate_cached(&cache, &tmp.path().join("project"), files);
    let model = FakeModel::start();
    let env = OpencodeEnv::new(&model, &SandboxOptions::default());
    let nvim = Nvim::start_with(NvimOptions {
        cwd: Some(project.clone()),
        env: env.vars().to_vec(),
        config: json!({
            "store": { "path": tmp.path().join("boo.db").display().to_string() },
            "worktree": { "dir": tmp.path().join("worktrees").display().to_string() },
        }),
    })
    .await;
    // The repository's first session: nothing was prepared before `:Boo`.
    let (ready, first, session) = first_turn(&nvim, "Boo", "first", None).await;
    let second = next_turn(&nvim, "second").await;
    report(":Boo, the repository's first session", ready, first, second);
    // A new session once the spare worktree (made after the first was ready) is there and
    // warmed in opencode, as when a user asks for a session a while later.
    let t = Instant::now();
    let spare = wait_spare(&nvim, 1).await;
    println!("spare worktree ready after {:8.1} ms", ms(t.elapsed()));
    while !warmed(&nvim, &spare) {
        assert!(t.elapsed() < WAIT, "spare not warmed:\n{}", nvim.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("spare worktree warmed after {:7.1} ms", ms(t.elapsed()));
    let (ready, first, session) =
        first_turn(&nvim, "Boo session new next", "third", Some(session)).await;
    let second = next_turn(&nvim, "fourth").await;
    report(
        ":Boo session new, from the warmed spare",
        ready,
        first,
        second,
    );
    // The worst case: a session asked for the moment the next spare's checkout ends, before
    // opencode has warmed it; the prompt is sent at once.
    let spare = wait_spare(&nvim, 2).await;
    let was_warm = warmed(&nvim, &spare);
    let (ready, first, _) =
        first_turn(&nvim, "Boo session new hasty", "fifth", Some(session)).await;
    let second = next_turn(&nvim, "sixth").await;
    report(
        if was_warm {
            ":Boo session new, from the spare just made (already warmed)"
        } else {
            ":Boo session new, from the spare just made, while it is warmed"
        },
        ready,
        first,
        second,
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
