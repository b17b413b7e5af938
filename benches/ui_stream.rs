//! Streaming benchmark of the whole chat path with a UI attached: the fake model streams N
//! chunks through the real opencode and boocoder into `nvim --embed` with the plugin, while this
//! client is attached as a 200x50 `ext_linegrid` UI (so every redraw, highlighter and fold runs;
//! the grid events are dropped). An idle Neovim, also UI-attached, runs alongside as the floor.
//!
//! Prints, per N: Neovim CPU against the idle one, lag p50/p99/max of a 5 ms timer inside
//! Neovim (`own_max`: the max less the time Neovim waited for a CPU; `idle_max`: the idle
//! Neovim's max, what the machine alone does to the timer), boocoder CPU against opencode's,
//! render batches; then the growth of Neovim's CPU above idle from the first N to the last, and
//! the time to open a restored 50,000-line transcript.
//!
//! The scripted model sends a chunk every 2 ms, as in the measurement that opened issue 10.
//! Run: `cargo bench --bench ui_stream` (optionally `-- 3000 9000`; `BOO_BENCH_FPS=N` sets
//! `ui.fps`, `BOO_BENCH_CONCEAL=0` turns `ui.conceal` off,
//! `BOO_BENCH_MD=1` streams some markup, `BOO_BENCH_RTP=DIR BOO_BENCH_LUA=CODE` adds a plugin
//! (a markdown renderer) set up by CODE, `BOO_BENCH_RUNS=N` runs each size N times and prints
//! the median; `--open-only`
//! times only the open, `BOO_BENCH_LOG=1` with boocoder's log of it). The machine's load shows in
//! the idle figures: run it when the machine is quiet.

use std::time::{Duration, Instant};

use boo_testkit::fake_model::FakeModel;
use boo_testkit::nvim::{Nvim, NvimOptions};
use boo_testkit::opencode::{OpencodeEnv, SandboxOptions};
use boo_testkit::repo;
use boocoder::model::{ItemKind, TranscriptItem};
use boocoder::store::Store;
use serde_json::json;

/// The render counters of the measured Neovim (the lag figures come from the test kit's timer).
const RENDER_READ: &str = "local st = require('boo.ui.render').stats
  return { batches = st.batches or 0, apply_ms = st.apply_ms_total or 0,
           op_ms = vim.inspect(st.op_ms, { newline = ' ', indent = '' }) }";

/// utime + stime of one process in milliseconds.
fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    // After the command: state is [0]; utime is field 14 overall = [11], stime [12].
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| f.get(*i)?.parse::<f64>().ok())
        .sum();
    ticks * 1000.0 / 100.0 // USER_HZ
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        let s = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        out.extend(s.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
    }
    out
}

fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut todo = children(pid);
    while let Some(p) = todo.pop() {
        todo.extend(children(p));
        out.push(p);
    }
    out
}

/// CPU of the groups we report: (neovim, boocoder, opencode and its children).
fn cpu_groups(nvim_pid: u32) -> (f64, f64, f64) {
    let (mut boo, mut oc) = (0.0, 0.0);
    let mut boo_pid = None;
    for p in children(nvim_pid) {
        if comm(p) == "boocoder" {
            boo_pid = Some(p);
            boo += cpu_ms(p);
        }
    }
    if let Some(b) = boo_pid {
        for p in descendants(b) {
            oc += cpu_ms(p);
        }
    }
    (cpu_ms(nvim_pid), boo, oc)
}

struct Figures {
    chunks: usize,
    nvim_cpu: f64,
    idle_cpu: f64,
    /// p50, p99, max, own max (ms).
    lag: [f64; 4],
    /// The idle Neovim's worst lateness: what the machine alone does to the timer.
    idle_lag_max: f64,
    boo_cpu: f64,
    oc_cpu: f64,
    batches: u64,
    /// Time inside the Lua handler of the batches (decode and redraw not included).
    apply_ms: f64,
    total: Duration,
}

async fn pid(nvim: &Nvim) -> u32 {
    nvim.lua("return vim.fn.getpid()")
        .await
        .as_u64()
        .unwrap_or(0) as u32
}

struct Setup {
    _model: FakeModel,
    env: OpencodeEnv,
    dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let model = FakeModel::start();
    let env = OpencodeEnv::new(&model, &SandboxOptions::default());
    let dir = tempfile::Builder::new()
        .prefix("boo-bench-")
        .tempdir()
        .expect("tmp");
    repo::sample(&dir.path().join("project"));
    Setup {
        _model: model,
        env,
        dir,
    }
}

async fn start(s: &Setup) -> Nvim {
    let mut config = json!({
        "backend": { "cmd": env!("CARGO_BIN_EXE_boocoder"), "log_level": "info" },
        "store": { "path": s.dir.path().join("boo.db").display().to_string() },
        "worktree": { "dir": s.dir.path().join("wt").display().to_string() },
    });
    // `BOO_BENCH_FPS=20` measures another `ui.fps` than the default.
    if let Some(fps) = std::env::var("BOO_BENCH_FPS")
        .ok()
        .and_then(|f| f.parse::<u32>().ok())
    {
        config["ui"]["fps"] = json!(fps);
    }
    // `BOO_BENCH_CONCEAL=0` measures without concealed markup.
    if std::env::var("BOO_BENCH_CONCEAL").is_ok_and(|c| c == "0") {
        config["ui"]["conceal"] = json!(false);
    }
    let nvim = Nvim::start_with(NvimOptions {
        cwd: Some(s.dir.path().join("project")),
        env: s.env.vars().to_vec(),
        config,
    })
    .await;
    // `BOO_BENCH_RTP=DIR BOO_BENCH_LUA=CODE`: a markdown renderer the user runs (e.g.
    // render-markdown.nvim checked out in DIR, set up by CODE), measured with boo.
    if let Some(dir) = std::env::var_os("BOO_BENCH_RTP") {
        let dir = dir.to_string_lossy().into_owned();
        nvim.lua_with("vim.opt.rtp:prepend(...)", vec![json!(dir)])
            .await;
    }
    if let Ok(code) = std::env::var("BOO_BENCH_LUA") {
        nvim.lua(&code).await;
    }
    if std::env::var_os("BOO_BENCH_NOUI").is_none() {
        nvim.ui_attach(200, 50).await;
    }
    nvim
}

async fn run(n: usize) -> Figures {
    let s = setup();
    let nvim = start(&s).await;
    let idle = Nvim::start().await;
    idle.ui_attach(200, 50).await;
    nvim.cmd("Boo").await.expect(":Boo");
    // Warm up: start opencode and the session outside the measurement.
    nvim.cmd("Boo send warm up").await.expect("send");
    wait(&nvim, "Echo: warm up", Duration::from_secs(60)).await;
    let (npid, ipid) = (pid(&nvim).await, pid(&idle).await);
    nvim.start_lag_timer().await;
    // The idle Neovim runs the same 5 ms timer: the floor is Neovim with the instrument.
    idle.start_lag_timer().await;
    nvim.lua(
        "local s = require('boo.ui.render').stats s.batches = 0 s.apply_ms_total = 0 s.op_ms = {}",
    )
    .await;
    let (n0, b0, o0) = cpu_groups(npid);
    let i0 = cpu_ms(ipid);
    let t0 = Instant::now();
    // Paced like a fast model (a chunk every 2 ms), so the stream spans many frames.
    // `BOO_BENCH_MD=1`: some chunks bold or code spans (highlighted and concealed).
    let md = if std::env::var_os("BOO_BENCH_MD").is_some() {
        " md"
    } else {
        ""
    };
    nvim.cmd(&format!("Boo send go [fake:long {n} 2{md}]"))
        .await
        .expect("send");
    wait(&nvim, &format!("chunk-{}", n - 1), Duration::from_secs(600)).await;
    let total = t0.elapsed();
    let (n1, b1, o1) = cpu_groups(npid);
    let i1 = cpu_ms(ipid);
    let lag = nvim.stop_lag_timer().await;
    let idle_lag = idle.stop_lag_timer().await;
    let r = nvim.lua(RENDER_READ).await;
    println!(
        "        lua ms per op at {n}: {}",
        r["op_ms"].as_str().unwrap_or_default()
    );
    nvim.quit().await;
    idle.quit().await;
    let f = |k: &str| r[k].as_f64().unwrap_or(0.0);
    Figures {
        chunks: n,
        nvim_cpu: n1 - n0,
        idle_cpu: i1 - i0,
        lag: ["p50", "p99", "max", "own_max"].map(|k| lag[k].as_f64().unwrap_or(0.0)),
        idle_lag_max: idle_lag["max"].as_f64().unwrap_or(0.0),
        boo_cpu: b1 - b0,
        oc_cpu: o1 - o0,
        batches: r["batches"].as_u64().unwrap_or(0),
        apply_ms: f("apply_ms"),
        total,
    }
}

/// Restores a chat of `lines` lines (long answers and tool outputs) and times `:Boo` until the
/// transcript is in its window; then the worst redraw while scrolling through it.
async fn open_restored(lines: usize) -> (Duration, f64) {
    let s = setup();
    let nvim = start(&s).await;
    nvim.cmd("Boo").await.expect(":Boo");
    nvim.cmd("Boo send warm up").await.expect("send");
    wait(&nvim, "Echo: warm up", Duration::from_secs(60)).await;
    let chat = nvim
        .lua("return next(require('boo.ui.chat').chats)")
        .await
        .as_i64()
        .expect("chat id");
    nvim.quit().await;
    let store = Store::open(s.dir.path().join("boo.db"))
        .await
        .expect("store");
    let mut seq = store.next_seq(chat).await.expect("seq");
    let mut made = 0;
    let mut i = 0;
    while made < lines {
        let (kind, content, meta) = match i % 3 {
            0 => (ItemKind::User, format!("question {i}"), json!({})),
            1 => (
                ItemKind::Tool,
                (0..200).map(|l| format!("output line {l}\n")).collect(),
                json!({"tool": "bash", "status": "completed", "summary": "ls"}),
            ),
            _ => (
                ItemKind::Text,
                (0..800)
                    .map(|l| match l % 40 {
                        0 => "## A heading\n".to_string(),
                        5 => "```lua\nlocal x = 1\n```\n".to_string(),
                        _ => format!("- item {l} with `code` and **bold** text\n"),
                    })
                    .collect(),
                json!({}),
            ),
        };
        made += content.lines().count() + 2;
        store
            .put_item(TranscriptItem {
                chat_id: chat,
                seq,
                kind,
                part_id: None,
                content,
                meta,
            })
            .expect("put");
        seq += 1;
        i += 1;
    }
    store.flush().await.expect("flush");
    store.close().await.expect("close");
    let nvim = start(&s).await;
    let t0 = Instant::now();
    nvim.cmd("Boo").await.expect(":Boo");
    let want = lines as u64;
    loop {
        let n = nvim
            .lua("for _, w in ipairs(vim.api.nvim_list_wins()) do local b = vim.api.nvim_win_get_buf(w)
                    if vim.bo[b].filetype == 'boo' then return vim.api.nvim_buf_line_count(b) end end return 0")
            .await
            .as_u64()
            .unwrap_or(0);
        if n >= want {
            break;
        }
        if t0.elapsed() > Duration::from_secs(120) {
            panic!("restored transcript never opened\n{}", nvim.log());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let open = t0.elapsed();
    // `BOO_BENCH_LOG=1`: boocoder's INFO lines of the open (its start, the chat's load and
    // layout, slow batches), to see where the time goes.
    if std::env::var_os("BOO_BENCH_LOG").is_some() {
        for l in nvim.log().lines().filter(|l| l.contains(" INFO ")) {
            println!("        {l}");
        }
    }
    let ops = nvim
        .lua("return vim.inspect(require('boo.ui.render').stats.op_ms, { newline = ' ', indent = '' })")
        .await;
    println!(
        "        lua ms per op while opening: {}",
        ops.as_str().unwrap_or_default()
    );
    // Scroll a page at a time from the top, redrawing each step: the worst step.
    let worst = nvim
        .lua(
            "local win
              for _, w in ipairs(vim.api.nvim_list_wins()) do
                if vim.bo[vim.api.nvim_win_get_buf(w)].filetype == 'boo' then win = w end
              end
              local worst = 0
              vim.api.nvim_win_call(win, function()
                vim.cmd('normal! gg')
                for _ = 1, 300 do
                  local t = vim.uv.hrtime()
                  vim.cmd('execute \"normal! \\\\<C-f>\"')
                  vim.cmd('redraw')
                  worst = math.max(worst, (vim.uv.hrtime() - t) / 1e6)
                end
              end)
              return worst",
        )
        .await
        .as_f64()
        .unwrap_or(0.0);
    nvim.quit().await;
    (open, worst)
}

async fn wait(nvim: &Nvim, needle: &str, timeout: Duration) {
    // Polled 10 times a second inside the measured Neovim, so it stays cheap: the transcript
    // buffer is looked up once (an option read of a hidden buffer switches Neovim's context).
    let code = format!(
        "local b = _G.boo_bench_buf
         if not (b and vim.api.nvim_buf_is_valid(b)) then
           for _, c in pairs(package.loaded['boo.ui.chat'] and require('boo.ui.chat').chats or {{}}) do b = c.buf end
           _G.boo_bench_buf = b
         end
         if not b then return false end
         local n = vim.api.nvim_buf_line_count(b)
         for _, l in ipairs(vim.api.nvim_buf_get_lines(b, math.max(0, n - 40), n, false)) do
           if l:find({}, 1, true) then return true end
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

fn print_figures(f: &Figures, above: f64) {
    println!(
        "{:>6}  {:>7.2}  {:>8.2}  {:>8.2}  {:>10.2}  {:>7.2}  {:>7.2}  {:>7.2}  {:>7.2}  {:>8.2}  {:>8.2}  {:>8.2}  {:>5.1}%  {:>7}  {:>11.2}",
        f.chunks,
        f.total.as_secs_f64(),
        f.nvim_cpu / 1000.0,
        f.idle_cpu / 1000.0,
        above,
        f.lag[0],
        f.lag[1],
        f.lag[2],
        f.lag[3],
        f.idle_lag_max,
        f.boo_cpu / 1000.0,
        f.oc_cpu / 1000.0,
        100.0 * f.boo_cpu / f.oc_cpu.max(1.0),
        f.batches,
        f.apply_ms / 1000.0,
    );
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if std::env::args().any(|a| a == "--open-only") {
        Vec::new()
    } else if args.is_empty() {
        vec![3_000, 9_000]
    } else {
        args
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!("UI attached (200x50, ext_linegrid). CPU in seconds.");
    println!("chunks  total_s  nvim_cpu  idle_cpu  above_idle  lag_p50  lag_p99  lag_max  own_max  idle_max  boocoder  opencode  boo/oc  batches  lua_apply_s");
    // `BOO_BENCH_RUNS=N` runs each size N times and adds the median: on 2 cores one run's
    // figure above idle moves by about 0.05 s with whatever else the machine does.
    let runs = std::env::var("BOO_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let mut above = Vec::new();
    for n in sizes {
        let mut of_n = Vec::new();
        for _ in 0..runs {
            let f = rt.block_on(run(n));
            let a = (f.nvim_cpu - f.idle_cpu) / 1000.0;
            of_n.push((a, f.lag[2], f.lag[3]));
            print_figures(&f, a);
        }
        of_n.sort_by(|x, y| x.0.total_cmp(&y.0));
        let median = of_n[of_n.len() / 2].0;
        if runs > 1 {
            let mid = |k: fn(&(f64, f64, f64)) -> f64| {
                let mut v: Vec<f64> = of_n.iter().map(k).collect();
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            println!(
                "{n:>6}  median of {runs}: above idle {median:.2} s, lag max {:.2} ms, own max {:.2} ms",
                mid(|x| x.1),
                mid(|x| x.2)
            );
        }
        above.push(median);
    }
    if above.len() >= 2 {
        println!(
            "growth of Neovim CPU above idle, last / first: {:.2}x",
            above[above.len() - 1] / above[0].max(0.001)
        );
    }
    if std::env::args().any(|a| a == "--no-open") {
        return;
    }
    let (open, worst) = rt.block_on(open_restored(50_000));
    println!(
        "restored 50,000-line transcript: open {:.0} ms, worst page-scroll redraw {:.1} ms",
        open.as_secs_f64() * 1000.0,
        worst
    );
}
