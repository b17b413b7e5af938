//! Streaming benchmark of the whole chat path: the fake model streams N chunks through the real
//! opencode and boocoder into a headless Neovim with the plugin. Prints, per N: total time,
//! Neovim main-loop lag (a 5 ms repeating timer inside Neovim: p99 and max lateness), Neovim CPU
//! time per 1,000 chunks, and the render batches (RPC calls) sent into Neovim.
//!
//! `apply_ms_*` is the time Neovim spent inside the plugin's render apply (our own cost); the lag
//! also includes whatever else delays Neovim's loop, such as a busy machine.
//!
//! Run: `cargo bench --bench ui_stream` (optionally `-- 5000 20000`).

use std::time::{Duration, Instant};

use boo_testkit::fake_model::FakeModel;
use boo_testkit::nvim::{Nvim, NvimOptions};
use boo_testkit::opencode::{OpencodeEnv, SandboxOptions};
use boo_testkit::repo;
use serde_json::json;

struct Figures {
    chunks: usize,
    total: Duration,
    lag_p99_ms: f64,
    lag_max_ms: f64,
    cpu_ms: f64,
    batches: u64,
    lines: u64,
    apply_total_ms: f64,
    apply_max_ms: f64,
    idle_p99_ms: f64,
    idle_max_ms: f64,
}

/// utime + stime of a process in milliseconds.
fn cpu_ms(pid: u64) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields after the command: state is [0]; utime is field 14 overall = [11], stime [12].
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| f.get(*i)?.parse::<f64>().ok())
        .sum();
    let hz = 100.0; // USER_HZ on Linux
    ticks * 1000.0 / hz
}

async fn run(n: usize) -> Figures {
    let model = FakeModel::start();
    let env = OpencodeEnv::new(&model, &SandboxOptions::default());
    let dir = tempfile::Builder::new()
        .prefix("boo-bench-")
        .tempdir()
        .expect("tmp");
    let project = repo::sample(&dir.path().join("project"));
    let nvim = Nvim::start_with(NvimOptions {
        cwd: Some(project),
        env: env.vars().to_vec(),
        config: json!({
            "backend": { "cmd": env!("CARGO_BIN_EXE_boocoder"), "log_level": "info" },
            "store": { "path": dir.path().join("boo.db").display().to_string() },
            "worktree": { "dir": dir.path().join("wt").display().to_string() },
        }),
    })
    .await;
    nvim.cmd("Boo").await.expect(":Boo");
    // Warm up: start opencode and the session outside the measurement.
    nvim.cmd("Boo send warm up").await.expect("send");
    wait(&nvim, "Echo: warm up", Duration::from_secs(60)).await;
    let pid = nvim
        .lua("return vim.fn.getpid()")
        .await
        .as_u64()
        .expect("pid");
    nvim.lua(
        "_G.boo_lag = {}
         local last = vim.uv.hrtime()
         _G.boo_lag_timer = vim.uv.new_timer()
         _G.boo_lag_timer:start(5, 5, function()
           local now = vim.uv.hrtime()
           table.insert(_G.boo_lag, (now - last) / 1e6 - 5)
           last = now
         end)
         local s = require('boo.ui.render').stats
         s.batches, s.ops, s.apply_ms_total, s.apply_ms_max = 0, 0, 0, 0
         _G.boo_lines0 = 0",
    )
    .await;
    // The same timer for a second with nothing streaming: the machine's own noise floor.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let idle = nvim
        .lua(
            "local lag = vim.deepcopy(_G.boo_lag)
             table.sort(lag)
             _G.boo_lag = {}
             return { p99 = lag[math.max(1, math.floor(#lag * 0.99))] or 0, max = lag[#lag] or 0 }",
        )
        .await;
    let cpu0 = cpu_ms(pid);
    let t0 = Instant::now();
    nvim.cmd(&format!("Boo send go [fake:long {n}]"))
        .await
        .expect("send");
    wait(&nvim, &format!("chunk-{}", n - 1), Duration::from_secs(600)).await;
    let total = t0.elapsed();
    let cpu = cpu_ms(pid) - cpu0;
    let r = nvim
        .lua(
            "_G.boo_lag_timer:stop()
             local lag = _G.boo_lag
             table.sort(lag)
             local p99 = lag[math.max(1, math.floor(#lag * 0.99))] or 0
             local lines = 0
             for _, b in ipairs(vim.api.nvim_list_bufs()) do
               if vim.bo[b].filetype == 'boo' then lines = lines + vim.api.nvim_buf_line_count(b) end
             end
             local st = require('boo.ui.render').stats
             return { p99 = p99, max = lag[#lag] or 0, batches = st.batches, lines = lines, at = st.apply_ms_total, am = st.apply_ms_max }",
        )
        .await;
    nvim.quit().await;
    Figures {
        chunks: n,
        total,
        lag_p99_ms: r["p99"].as_f64().unwrap_or(0.0),
        lag_max_ms: r["max"].as_f64().unwrap_or(0.0),
        cpu_ms: cpu,
        batches: r["batches"].as_u64().unwrap_or(0),
        lines: r["lines"].as_u64().unwrap_or(0),
        apply_total_ms: r["at"].as_f64().unwrap_or(0.0),
        apply_max_ms: r["am"].as_f64().unwrap_or(0.0),
        idle_p99_ms: idle["p99"].as_f64().unwrap_or(0.0),
        idle_max_ms: idle["max"].as_f64().unwrap_or(0.0),
    }
}

async fn wait(nvim: &Nvim, needle: &str, timeout: Duration) {
    let code = format!(
        "for _, b in ipairs(vim.api.nvim_list_bufs()) do
           if vim.bo[b].filetype == 'boo' then
             local n = vim.api.nvim_buf_line_count(b)
             for _, l in ipairs(vim.api.nvim_buf_get_lines(b, math.max(0, n - 40), n, false)) do
               if l:find({}, 1, true) then return true end
             end
           end
         end
         return false",
        serde_json::Value::from(needle)
    );
    let start = Instant::now();
    while start.elapsed() < timeout {
        if nvim.lua(&code).await == true {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {needle}\n{}", nvim.log());
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if args.is_empty() {
        vec![5_000, 20_000]
    } else {
        args
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "chunks  total_s  lag_p99_ms  lag_max_ms  nvim_cpu_ms/1k  batches  chunks/batch  lines"
    );
    let mut per_1k = Vec::new();
    for n in sizes {
        let f = rt.block_on(run(n));
        let cpu_1k = f.cpu_ms / (f.chunks as f64 / 1000.0);
        per_1k.push(cpu_1k);
        println!(
            "{:>6}  {:>7.2}  {:>10.2}  {:>10.2}  {:>14.1}  {:>7}  {:>12.1}  {:>5}  {:>14.2}  {:>12.2}  {:>7.2}/{:.2}",
            f.chunks,
            f.total.as_secs_f64(),
            f.lag_p99_ms,
            f.lag_max_ms,
            cpu_1k,
            f.batches,
            f.chunks as f64 / f.batches.max(1) as f64,
            f.lines,
            f.apply_total_ms,
            f.apply_max_ms,
            f.idle_p99_ms,
            f.idle_max_ms
        );
    }
    if per_1k.len() >= 2 {
        println!(
            "cpu per chunk, last / first: {:.2}",
            per_1k[per_1k.len() - 1] / per_1k[0].max(0.001)
        );
    }
}
