//! A real `nvim --embed --headless` with the plugin loaded from this repository, driven over
//! msgpack-RPC by nvim-rs. Each instance has its own temp dir, HOME and XDG dirs, and a config
//! (`vim.g.boo`) that points the plugin at the freshly built `boocoder`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nvim_rs::compat::tokio::Compat;
use nvim_rs::rpc::handler::Dummy;
use nvim_rs::{Neovim, Value};
use serde_json::{json, Value as Json};
use tokio::process::{Child, ChildStdin, Command};

use crate::tools;

/// How long one call into Neovim may take before the test fails (never hang CI). 60 s:
/// `:checkhealth boo` waits for the probe (a cold opencode start), which load stretches past 20 s.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

pub type Api = Neovim<Compat<ChildStdin>>;

pub struct Nvim {
    pub api: Api,
    child: Child,
    dir: crate::dir::TestDir,
}

/// Options for starting Neovim.
pub struct NvimOptions {
    /// Merged into the default test config (`vim.g.boo`).
    pub config: Json,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Working directory (default: the temp dir's `work/`).
    pub cwd: Option<PathBuf>,
}

impl Default for NvimOptions {
    fn default() -> Self {
        NvimOptions {
            config: json!({}),
            env: Vec::new(),
            cwd: None,
        }
    }
}

pub(crate) fn merge(base: &mut Json, over: &Json) {
    match (base, over) {
        (Json::Object(b), Json::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(Json::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

impl Nvim {
    pub async fn start() -> Nvim {
        Nvim::start_with(NvimOptions::default()).await
    }

    pub async fn start_with(opts: NvimOptions) -> Nvim {
        let dir = crate::dir::TestDir::new("boo-nvim-");
        let root = dir.path().to_path_buf();
        for sub in ["home", "config", "data", "state", "cache", "work", "tmp"] {
            std::fs::create_dir_all(root.join(sub)).expect("mkdir");
        }
        let mut config = json!({
            "backend": {
                "cmd": tools::boocoder().display().to_string(),
                "log_file": root.join("boo.log").display().to_string(),
                "log_level": "debug",
            },
            "opencode": { "cmd": tools::opencode().display().to_string() },
            "store": { "path": root.join("data/boo/boo.db").display().to_string() },
            "worktree": { "dir": root.join("data/boo/worktrees").display().to_string() },
        });
        merge(&mut config, &opts.config);

        let repo = tools::repo_root();
        let mut cmd = Command::new(tools::nvim());
        cmd.args(["--embed", "--headless", "--clean", "-n", "-i", "NONE"])
            .arg("--cmd")
            .arg(format!("set rtp^={}", repo.display()))
            .arg("--cmd")
            .arg("lua vim.g.boo = vim.json.decode(vim.env.BOO_TEST_CONFIG)")
            .current_dir(opts.cwd.clone().unwrap_or_else(|| root.join("work")))
            .env("HOME", root.join("home"))
            .env("XDG_CONFIG_HOME", root.join("config"))
            .env("XDG_DATA_HOME", root.join("data"))
            .env("XDG_STATE_HOME", root.join("state"))
            .env("XDG_CACHE_HOME", root.join("cache"))
            // Neovim's own temp files (and those of what it starts) go with the test's folder,
            // also when the test kills it.
            .env("TMPDIR", root.join("tmp"))
            .env("BOO_TEST_CONFIG", config.to_string())
            .env_remove("NVIM")
            .env_remove("NVIM_LISTEN_ADDRESS")
            .stderr(Stdio::null())
            .kill_on_drop(true);
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let (api, _io, child) = nvim_rs::create::tokio::new_child_cmd(&mut cmd, Dummy::new())
            .await
            .expect("start nvim --embed");
        let nvim = Nvim { api, child, dir };
        // The first call proves the channel works (and that --embed did not wait for a UI).
        nvim.lua("return 1").await;
        nvim
    }

    /// Attaches this client as a UI (`ext_linegrid`), so Neovim redraws as with a real screen:
    /// highlighters, folds and decoration providers run. The redraw events are dropped.
    pub async fn ui_attach(&self, width: i64, height: i64) {
        let mut opts = nvim_rs::UiAttachOptions::new();
        opts.set_linegrid_external(true).set_rgb(true);
        tokio::time::timeout(CALL_TIMEOUT, self.api.ui_attach(width, height, &opts))
            .await
            .expect("nvim_ui_attach timed out")
            .expect("nvim_ui_attach");
    }

    /// The temp dir of this instance (home, config, data, state, cache, work, boo.log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("boo.log")
    }

    /// The backend log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Starts a 5 ms libuv timer inside Neovim that records how late each tick fires (ms) in
    /// `_G.boo_lag`: the benches' measure of how long Neovim's loop was blocked.
    ///
    /// On a loaded machine most of a long gap is the scheduler's, not Neovim's: the main
    /// thread sat runnable with no CPU free. Where Linux reports it (`/proc/self/schedstat`:
    /// time on CPU, time waiting for one), each tick also records its lateness less that wait
    /// (`_G.boo_lag_own`: Neovim busy or blocked). A wait that ends inside a tick's own
    /// callback is read before it belongs (it delays the next tick), so an excess is carried.
    pub async fn start_lag_timer(&self) {
        self.lua(
            "_G.boo_lag, _G.boo_lag_own, _G.boo_lag_spikes = {}, {}, {}
             local function sched()
               local f = io.open('/proc/self/schedstat')
               if not f then return nil end
               local c, w = (f:read('*l') or ''):match('^(%d+) (%d+)')
               f:close()
               if not w then return nil end
               return tonumber(c), tonumber(w)
             end
             local last = vim.uv.hrtime()
             local last_cpu, last_wait = sched()
             local carry = 0
             _G.boo_lag_timer = vim.uv.new_timer()
             _G.boo_lag_timer:start(5, 5, function()
               local now = vim.uv.hrtime()
               local cpu, wait = sched()
               local lag = (now - last) / 1e6 - 5
               table.insert(_G.boo_lag, lag)
               local own = lag
               if wait and last_wait then
                 own = lag - (wait - last_wait) / 1e6 - carry
                 carry = math.max(0, -own)
               end
               own = math.max(0, own)
               table.insert(_G.boo_lag_own, own)
               if lag > 50 and #_G.boo_lag_spikes < 20 then
                 table.insert(_G.boo_lag_spikes, {
                   lag = lag, own = own, cpu = cpu and (cpu - last_cpu) / 1e6 or vim.NIL })
               end
               last, last_cpu, last_wait = now, cpu, wait
             end)",
        )
        .await;
    }

    /// Stops the timer of [`Nvim::start_lag_timer`]; returns `{p50, p99, max}` of its lateness
    /// (ms), `own_p99` and `own_max` of the same less run-queue wait, and `spikes`: the first
    /// ticks over 50 ms late, with their own part and CPU time.
    pub async fn stop_lag_timer(&self) -> Json {
        self.lua(
            "_G.boo_lag_timer:stop()
             local function q(l, p) return l[math.max(1, math.floor(#l * p))] or 0 end
             local l, o = _G.boo_lag, _G.boo_lag_own
             table.sort(l)
             table.sort(o)
             return { p50 = q(l, 0.5), p99 = q(l, 0.99), max = l[#l] or 0,
                      own_p99 = q(o, 0.99), own_max = o[#o] or 0, spikes = _G.boo_lag_spikes }",
        )
        .await
    }

    /// Runs Lua in Neovim and returns its result as JSON; panics (failing the test) on error.
    pub async fn lua(&self, code: &str) -> Json {
        self.try_lua(code, vec![])
            .await
            .unwrap_or_else(|e| panic!("lua failed: {e}\ncode: {code}\nlog:\n{}", self.log()))
    }

    /// Runs Lua with arguments (`...` in the chunk).
    pub async fn lua_with(&self, code: &str, args: Vec<Json>) -> Json {
        self.try_lua(code, args)
            .await
            .unwrap_or_else(|e| panic!("lua failed: {e}\ncode: {code}\nlog:\n{}", self.log()))
    }

    pub async fn try_lua(&self, code: &str, args: Vec<Json>) -> Result<Json, String> {
        let args = args.iter().map(from_json).collect();
        match tokio::time::timeout(CALL_TIMEOUT, self.api.exec_lua(code, args)).await {
            Err(_) => Err(format!("timed out after {CALL_TIMEOUT:?}")),
            Ok(Err(e)) => Err(e.to_string()),
            Ok(Ok(v)) => Ok(to_json(&v)),
        }
    }

    /// Runs an Ex command; returns its error message on failure.
    pub async fn cmd(&self, command: &str) -> Result<(), String> {
        match tokio::time::timeout(CALL_TIMEOUT, self.api.command(command)).await {
            Err(_) => Err(format!("timed out after {CALL_TIMEOUT:?}: {command}")),
            Ok(Err(e)) => Err(e.to_string()),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// The message history (`:messages`).
    pub async fn messages(&self) -> String {
        self.lua("return vim.api.nvim_exec2('messages', { output = true }).output")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Polls a Lua expression until it is truthy; panics with `what` and the last value.
    pub async fn wait_for(&self, what: &str, lua_expr: &str, timeout: Duration) -> Json {
        let code = format!("return {lua_expr}");
        let start = Instant::now();
        let mut last = Json::Null;
        while start.elapsed() < timeout {
            last = self.lua(&code).await;
            if !matches!(last, Json::Null | Json::Bool(false)) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "timed out after {timeout:?} waiting for {what} ({lua_expr}); last value {last}\nmessages:\n{}\nlog:\n{}",
            self.messages().await,
            self.log()
        );
    }

    /// The text of the transcript (filetype `boo`) shown in a window, or "".
    pub async fn transcript(&self) -> String {
        self.lua(
            "for _, w in ipairs(vim.api.nvim_list_wins()) do
               local b = vim.api.nvim_win_get_buf(w)
               if vim.bo[b].filetype == 'boo' then return table.concat(vim.api.nvim_buf_get_lines(b, 0, -1, false), '\\n') end
             end
             return ''",
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Waits until a shown transcript contains `needle`; returns the transcript.
    pub async fn wait_transcript(&self, what: &str, needle: &str, timeout: Duration) -> String {
        let code = format!(
            "(function() for _, wi in ipairs(vim.api.nvim_list_wins()) do local b = vim.api.nvim_win_get_buf(wi)
               if vim.bo[b].filetype == 'boo' and table.concat(vim.api.nvim_buf_get_lines(b, 0, -1, false), '\\n'):find({}, 1, true) then return true end end end)()",
            Json::from(needle)
        );
        self.wait_for(what, &code, timeout).await;
        self.transcript().await
    }

    /// Quits Neovim with `:qa!` and waits for the process to end. Panics (after quitting) when
    /// a render op failed in this Neovim: such a failure is only logged for users, so a test
    /// would otherwise pass over it.
    pub async fn quit(mut self) {
        let failures = tokio::time::timeout(
            Duration::from_secs(5),
            self.api.exec_lua(
                "local r = package.loaded['boo.ui.render']
                 return r and table.concat(r.stats.failures or {}, '\\n') or ''",
                vec![],
            ),
        )
        .await;
        let failures = match failures {
            Ok(Ok(Value::String(s))) => s.as_str().unwrap_or_default().to_string(),
            _ => String::new(),
        };
        // The backend outlives Neovim by its exit work (flush, a spare worktree being made), so
        // its pid is waited for too: a test's temp dir is removed only once nothing writes there.
        let backend = tokio::time::timeout(
            Duration::from_secs(5),
            self.api.exec_lua(
                "local ok, rpc = pcall(require, 'boo.rpc')
                 if not (ok and rpc.running()) then return 0 end
                 local ok2, r = pcall(rpc.request, 'hello', { protocol = rpc.PROTOCOL })
                 return ok2 and type(r) == 'table' and r.pid or 0",
                vec![],
            ),
        )
        .await;
        let backend = match backend {
            Ok(Ok(v)) => v.as_u64().unwrap_or(0) as u32,
            _ => 0,
        };
        // The channel drops while the command runs, so its result is an error by design.
        let _ = tokio::time::timeout(Duration::from_secs(5), self.api.command("qa!")).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        if backend != 0 {
            wait_pid_gone(backend, Duration::from_secs(10)).await;
        }
        assert!(
            failures.is_empty(),
            "render ops failed in Neovim:\n{failures}"
        );
    }
}

/// Whether a process with this pid exists (and is not a zombie).
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state letter follows the parenthesised command name.
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|s| s.split_whitespace().next());
            !matches!(state, Some("Z") | Some("X"))
        }
        Err(_) => false,
    }
}

/// Waits up to `timeout` for a process to be gone.
pub async fn wait_pid_gone(pid: u32, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if !pid_alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    !pid_alive(pid)
}

pub fn to_json(v: &Value) -> Json {
    match v {
        Value::Nil => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Integer(i) => i
            .as_i64()
            .map(Json::from)
            .or_else(|| i.as_u64().map(Json::from))
            .unwrap_or(Json::Null),
        Value::F32(f) => json!(*f),
        Value::F64(f) => json!(*f),
        Value::String(s) => Json::String(
            s.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| String::from_utf8_lossy(s.as_bytes()).into_owned()),
        ),
        Value::Binary(b) => Json::String(String::from_utf8_lossy(b).into_owned()),
        Value::Array(a) => Json::Array(a.iter().map(to_json).collect()),
        Value::Map(m) => Json::Object(
            m.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Value::String(s) => s.as_str().unwrap_or_default().to_string(),
                        other => to_json(other).to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Value::Ext(_, _) => Json::Null,
    }
}

pub fn from_json(v: &Json) -> Value {
    match v {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => n
            .as_i64()
            .map(Value::from)
            .or_else(|| n.as_u64().map(Value::from))
            .unwrap_or_else(|| Value::F64(n.as_f64().unwrap_or(0.0))),
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(a) => Value::Array(a.iter().map(from_json).collect()),
        Json::Object(o) => Value::Map(
            o.iter()
                .map(|(k, v)| (Value::from(k.as_str()), from_json(v)))
                .collect(),
        ),
    }
}
