//! Time to open the review view of a big change, through the whole product: a repository of
//! 20,000 files, a session made by `:Boo` (its worktree checked out by the engine), 500 files
//! changed in the worktree, then `:Boo diff` until the review buffer lists them. Also prints
//! Neovim's main-loop lag (a 5 ms timer) while the diff computes: it runs off Neovim's loop.
//!
//! Then the large work of issue 12 on top: a 50 MB file and 2,000 new small files (2,501 pending
//! in all): time to open, Neovim's lag, and boocoder's resident memory (now and peak).
//!
//! Run: `cargo bench --bench review_open`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use boo_testkit::nvim::{Nvim, NvimOptions};
use serde_json::json;

const FILES: usize = 20_000;
const CHANGED: usize = 500;
/// The large-work scenario (issue 12): one file this big and SMALL new files.
const BIG_BYTES: usize = 50 * 1024 * 1024;
const SMALL: usize = 2_000;

fn path_of(i: usize) -> String {
    format!("src/m{:02}/d{:03}/file{i:05}.txt", i % 20, i % 400)
}

fn content_of(i: usize) -> String {
    (0..30)
        .map(|l| format!("file {i} line {l}: some text to diff\n"))
        .collect()
}

fn git(dir: &Path, args: &[&str]) {
    let st = Command::new("git")
        .args([
            "-c",
            "user.name=Bench",
            "-c",
            "user.email=bench@example.com",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdout(Stdio::null())
        .status()
        .expect("git");
    assert!(st.success(), "git {args:?}");
}

/// A checked-out repository of FILES files in one commit (fast-import, then checkout).
fn generate(repo: &Path) {
    std::fs::create_dir_all(repo).expect("mkdir");
    git(repo, &["init", "-q", "-b", "main"]);
    let mut child = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(repo)
        .stdin(Stdio::piped())
        .spawn()
        .expect("fast-import");
    {
        let mut w = std::io::BufWriter::new(child.stdin.take().expect("stdin"));
        let out: std::io::Result<()> = (|| {
            write!(w, "commit refs/heads/main\ncommitter Bench <bench@example.com> 1700000000 +0000\ndata 9\ngenerated\n")?;
            for i in 0..FILES {
                let c = content_of(i);
                write!(w, "M 100644 inline {}\ndata {}\n{c}\n", path_of(i), c.len())?;
            }
            w.flush()
        })();
        out.expect("write fast-import stream");
    }
    assert!(child.wait().expect("wait").success());
    git(repo, &["checkout", "-q", "-f", "main"]);
}

async fn main_async() {
    let tmp = tempfile::Builder::new()
        .prefix("boo-review-bench-")
        .tempdir()
        .expect("tmp");
    let repo = tmp.path().join("repo");
    let t = Instant::now();
    generate(&repo);
    println!(
        "generate {FILES} files (checked out):   {:8.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let nvim = Nvim::start_with(NvimOptions {
        cwd: Some(repo.clone()),
        config: json!({
            "backend": { "cmd": env!("CARGO_BIN_EXE_boocoder"), "log_level": "info" },
            "store": { "path": tmp.path().join("boo.db").display().to_string() },
            "worktree": { "dir": tmp.path().join("wt").display().to_string() },
        }),
        ..Default::default()
    })
    .await;
    // A UI attached (200x50), as users run it: every redraw of the review happens.
    nvim.ui_attach(200, 50).await;
    let t = Instant::now();
    nvim.cmd("Boo").await.expect(":Boo");
    nvim.wait_for(
        "the session worktree",
        "require('boo').status().dir ~= nil",
        Duration::from_secs(300),
    )
    .await;
    println!(
        "session worktree ready (:Boo):         {:8.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let dir = nvim.lua("return require('boo').status().dir").await;
    let wt = Path::new(dir.as_str().expect("dir")).to_path_buf();
    std::thread::sleep(Duration::from_millis(1100));
    for k in 0..CHANGED {
        let i = k * (FILES / CHANGED);
        let edited = content_of(i)
            .replacen("line 0:", "line zero:", 1)
            .replace("line 29: some", "line 29: other");
        std::fs::write(wt.join(path_of(i)), edited).expect("edit");
    }
    nvim.start_lag_timer().await;
    let t = Instant::now();
    nvim.cmd("Boo diff").await.expect(":Boo diff");
    let listed = format!(
        "(function() for _, b in ipairs(vim.api.nvim_list_bufs()) do
           if vim.api.nvim_buf_get_name(b):find('boo://review/', 1, true) then
             local n = 0
             for _, l in ipairs(vim.api.nvim_buf_get_lines(b, 0, {lim}, false)) do if l:find('file%d+%.txt') then n = n + 1 end end
             return n >= {CHANGED}
           end
         end end)()",
        lim = CHANGED + 50
    );
    let start = Instant::now();
    loop {
        if nvim.lua(&format!("return {listed}")).await == true {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "review view never listed the files\n{}",
            nvim.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let open = t.elapsed();
    let lag = nvim.stop_lag_timer().await;
    let lines = nvim.lua("for _, b in ipairs(vim.api.nvim_list_bufs()) do if vim.api.nvim_buf_get_name(b):find('boo://review/', 1, true) then return vim.api.nvim_buf_line_count(b) end end").await;
    println!(
        "open review of {CHANGED} files (:Boo diff): {:8.0} ms  ({lines} lines)",
        open.as_secs_f64() * 1e3
    );
    println!(
        "Neovim loop lag meanwhile: p99 {:.1} ms, max {:.1} ms",
        lag["p99"].as_f64().unwrap_or(0.0),
        lag["max"].as_f64().unwrap_or(0.0)
    );

    // Large work: a 50 MB file and 2,000 small new files on top of the above (over 1,000 files:
    // the view lists them and loads hunks per file on demand).
    let big: String =
        "a line of a very large generated file, fifty megabytes of it\n".repeat(BIG_BYTES / 62 + 1);
    std::fs::write(wt.join("big.txt"), &big).expect("big file");
    drop(big);
    for i in 0..SMALL {
        let d = wt.join(format!("new/d{:02}", i % 40));
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::write(
            d.join(format!("n{i:04}.txt")),
            format!("new small file {i}\n"),
        )
        .expect("small file");
    }
    nvim.start_lag_timer().await;
    let t = Instant::now();
    nvim.cmd("Boo diff").await.expect(":Boo diff");
    let shown = "(function() for _, b in ipairs(vim.api.nvim_list_bufs()) do
           if vim.api.nvim_buf_get_name(b):find('boo://review/', 1, true) then
             for _, l in ipairs(vim.api.nvim_buf_get_lines(b, 0, 3, false)) do
               if l:find(' 2501 file') then return true end
             end
           end
         end end)()";
    let start = Instant::now();
    while nvim.lua(&format!("return {shown}")).await != true {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "review view never listed the large work\n{}",
            nvim.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let open = t.elapsed();
    let lag = nvim.stop_lag_timer().await;
    let pid = nvim
        .lua("return vim.fn.jobpid(require('boo.rpc').ensure())")
        .await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid.as_i64().unwrap_or(0)))
        .unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    println!(
        "open review of 50 MB file + {SMALL} new + {CHANGED} edited: {:8.0} ms",
        open.as_secs_f64() * 1e3
    );
    println!(
        "Neovim loop lag meanwhile: p99 {:.1} ms, max {:.1} ms",
        lag["p99"].as_f64().unwrap_or(0.0),
        lag["max"].as_f64().unwrap_or(0.0)
    );
    println!(
        "boocoder RSS now {:.0} MB, peak {:.0} MB",
        kb("VmRSS:") / 1024.0,
        kb("VmHWM:") / 1024.0
    );
    nvim.quit().await;
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(main_async());
}
