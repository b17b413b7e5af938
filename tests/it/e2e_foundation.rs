//! End-to-end tests of the foundation: the real Neovim with the plugin from this repository
//! starts the real `boocoder`.

use std::time::Duration;

use boo_testkit::nvim::{pid_alive, wait_pid_gone, Nvim, NvimOptions};
use boo_testkit::tools;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(15);

async fn hello(nvim: &Nvim) -> serde_json::Value {
    nvim.lua("local r, err = require('boo.rpc').request('hello', { protocol = 1 }); assert(r, err); return r")
        .await
}

#[tokio::test]
async fn hello_round_trips_with_versions() {
    let nvim = Nvim::start().await;
    let info = hello(&nvim).await;
    assert_eq!(info["protocol"], 1);
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    let rev = info["revision"].as_str().unwrap_or_default();
    assert!(!rev.is_empty(), "revision missing: {info}");
    let pid = info["pid"].as_u64().expect("pid") as u32;
    assert!(pid_alive(pid));
    assert_eq!(
        nvim.lua("return require('boo.rpc').request('ping')").await,
        "pong"
    );
    // A bad request answers one clear line; the process stays up.
    let err = nvim
        .lua("local r, err = require('boo.rpc').request('no_such_method'); return err")
        .await;
    assert!(
        err.as_str()
            .unwrap_or_default()
            .contains("unknown method 'no_such_method'"),
        "{err}"
    );
    assert_eq!(
        nvim.lua("return require('boo.rpc').request('ping')").await,
        "pong"
    );
    nvim.quit().await;
}

async fn health(nvim: &Nvim) -> String {
    nvim.cmd("checkhealth boo").await.expect("checkhealth");
    nvim.lua("return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\\n')")
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn checkhealth_reports_binary_and_tools() {
    let nvim = Nvim::start().await;
    let report = health(&nvim).await;
    let bin = tools::boocoder().display().to_string();
    assert!(report.contains(&format!("OK binary: {bin}")), "{report}");
    assert!(report.contains("protocol 1"), "{report}");
    assert!(report.contains("OK git: git version"), "{report}");
    assert!(report.contains("OK opencode: 1.18.33"), "{report}");
    assert!(report.contains("OK Neovim 0."), "{report}");
    assert!(
        report.contains("OK processes: agents die with boocoder")
            && report.contains("guard process"),
        "the process guard is reported: {report}"
    );
    assert!(!report.contains("ERROR"), "{report}");
    nvim.quit().await;
}

#[tokio::test]
async fn checkhealth_lists_unknown_opencode_events() {
    let nvim = Nvim::start().await;
    // The backend's drift report as the health request returns it, drawn by the health code.
    let lines = nvim
        .lua(
            "local out = {} \
             local function put(level) return function(msg) table.insert(out, level .. ' ' .. msg) end end \
             local h = { start = put('#'), ok = put('OK'), warn = put('WARN'), info = put('INFO'), error = put('ERROR') } \
             local health = require('boo.health') \
             health.report_drift(h, { types = { ['session.next.text.appended'] = 3, ['a.b'] = 1 }, fields = { ['session.idle.why'] = 2 } }) \
             health.report_drift(h, { types = vim.empty_dict(), fields = vim.empty_dict() }) \
             return out",
        )
        .await;
    let lines: Vec<&str> = lines
        .as_array()
        .expect("lines")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        lines,
        vec![
            "# boo: opencode events",
            "WARN unknown event types seen in this run (ignored): a.b (1), session.next.text.appended (3)",
            "INFO unknown event fields (ignored): session.idle.why (2)",
            "# boo: opencode events",
            "OK every event type seen in this run is one boo knows",
        ]
    );
    nvim.quit().await;
}

#[tokio::test]
async fn checkhealth_reports_missing_binary_and_opencode() {
    let nvim = Nvim::start_with(NvimOptions {
        config: json!({
            "backend": { "cmd": "/nonexistent/dir/boocoder" },
            "opencode": { "cmd": "no-such-opencode-here" },
        }),
        ..Default::default()
    })
    .await;
    let report = health(&nvim).await;
    assert!(
        report.contains("ERROR boocoder binary not found (tried: /nonexistent/dir/boocoder)"),
        "{report}"
    );
    assert!(report.contains("cargo build --release"), "{report}");
    assert!(
        report.contains("ERROR opencode not found ('no-such-opencode-here')"),
        "{report}"
    );
    nvim.quit().await;
}

#[tokio::test]
async fn missing_binary_lists_every_path_tried() {
    // Without backend.cmd the plugin searches CARGO_TARGET_DIR and target/{release,debug}.
    let nvim = Nvim::start_with(NvimOptions {
        config: json!({ "backend": { "cmd": null } }),
        env: vec![("CARGO_TARGET_DIR".into(), "/nonexistent/target".into())],
        ..Default::default()
    })
    .await;
    // vim.NIL from JSON null must not count as a configured command: clear it for real.
    let err = nvim
        .lua("local g = vim.g.boo; g.backend.cmd = nil; vim.g.boo = g; require('boo').setup(); local r = require('boo.rpc'); local paths = {}; for _, c in ipairs(r.candidates()) do table.insert(paths, c.path) end; local cmd, err = r.find(); return { cmd = cmd, err = err, paths = paths }")
        .await;
    let paths: Vec<String> = err["paths"]
        .as_array()
        .expect("paths")
        .iter()
        .map(|p| p.as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(paths[0], "/nonexistent/target/release/boocoder");
    assert_eq!(paths[1], "/nonexistent/target/debug/boocoder");
    assert!(paths[2].ends_with("target/release/boocoder"));
    assert!(paths[3].ends_with("target/debug/boocoder"));
    // Whether the repo's own target/ has a binary depends on the build: the error, when there is
    // one, lists every path.
    if err["cmd"].is_null() {
        let msg = err["err"].as_str().unwrap_or_default();
        for p in &paths {
            assert!(msg.contains(p.as_str()), "{msg} lacks {p}");
        }
    }
    nvim.quit().await;
}

#[tokio::test]
async fn sigkill_then_next_boo_restarts_backend() {
    // In a git repository, so that :Boo has a session to show.
    let tmp = tempfile::tempdir().expect("tmp");
    let project = boo_testkit::repo::sample(&tmp.path().join("p"));
    let nvim = Nvim::start_with(NvimOptions {
        cwd: Some(project),
        ..Default::default()
    })
    .await;
    let first = hello(&nvim).await["pid"].as_u64().expect("pid") as u32;
    // SAFETY: kill(2) has no memory effects; the pid is our own child's child.
    unsafe { libc::kill(first as i32, libc::SIGKILL) };
    nvim.wait_for(
        "the plugin to notice the exit",
        "not require('boo.rpc').running()",
        WAIT,
    )
    .await;
    // The next :Boo restarts the backend and works: the float opens.
    nvim.cmd("Boo").await.expect(":Boo after the crash");
    nvim.wait_for(
        "the float after the restart",
        "(function() local n = 0 for _, w in ipairs(vim.api.nvim_list_wins()) do if vim.w[w].boo_pane then n = n + 1 end end return n == 2 end)()",
        WAIT,
    )
    .await;
    let second = hello(&nvim).await["pid"].as_u64().expect("pid") as u32;
    assert_ne!(first, second, "a new process must serve after the crash");
    assert!(pid_alive(second));
    let msgs = nvim.messages().await;
    assert_eq!(
        msgs.matches("backend exited").count(),
        1,
        "told once: {msgs}"
    );
    nvim.quit().await;
}

#[tokio::test]
async fn quitting_neovim_leaves_no_backend() {
    let nvim = Nvim::start().await;
    let pid = hello(&nvim).await["pid"].as_u64().expect("pid") as u32;
    assert!(pid_alive(pid));
    nvim.quit().await;
    assert!(
        wait_pid_gone(pid, WAIT).await,
        "boocoder {pid} still running after :qa"
    );
}

#[tokio::test]
async fn wrong_config_gives_one_clear_message() {
    let nvim = Nvim::start().await;
    nvim.lua("require('boo').setup({ bogus = 1, keys = { hide = 3 } })")
        .await;
    let msgs = nvim.messages().await;
    let lines: Vec<_> = msgs
        .lines()
        .filter(|l| l.contains("boo: config:"))
        .collect();
    assert_eq!(lines.len(), 1, "one message: {msgs}");
    assert!(lines[0].contains("unknown key 'bogus'"), "{msgs}");
    assert!(lines[0].contains("keys.hide"), "{msgs}");
    // The rest of the config still applies: valid keys are kept, bad ones fall back.
    nvim.lua("require('boo').setup({ keys = { hide = 'Q' } })")
        .await;
    assert_eq!(
        nvim.lua("return require('boo.config').get().keys.hide")
            .await,
        "Q"
    );
    nvim.quit().await;
}

#[tokio::test]
async fn bogus_subcommand_lists_the_subcommands() {
    let nvim = Nvim::start().await;
    let _ = nvim.cmd("Boo bogus").await;
    let msgs = nvim.messages().await;
    assert!(msgs.contains("boo: unknown subcommand 'bogus'"), "{msgs}");
    for sub in ["toggle", "send", "split", "diff", "session", "log"] {
        assert!(msgs.contains(sub), "{sub} missing from: {msgs}");
    }
    let completions = nvim
        .lua("return vim.fn.getcompletion('Boo sp', 'cmdline')")
        .await;
    assert_eq!(completions, json!(["split"]));
    let completions = nvim
        .lua("return vim.fn.getcompletion('Boo split ', 'cmdline')")
        .await;
    assert_eq!(completions, json!(["chat", "term", "code"]));
    nvim.quit().await;
}

#[tokio::test]
async fn help_tags_build_without_errors() {
    let nvim = Nvim::start().await;
    let doc = nvim.dir().join("doc");
    std::fs::create_dir_all(&doc).expect("mkdir");
    std::fs::copy(tools::repo_root().join("doc/boo.txt"), doc.join("boo.txt")).expect("copy doc");
    nvim.lua_with(
        "vim.v.errmsg = ''; vim.cmd.helptags({ args = { ... } }); return vim.v.errmsg",
        vec![json!(doc.display().to_string())],
    )
    .await;
    assert_eq!(nvim.lua("return vim.v.errmsg").await, "");
    let tags = std::fs::read_to_string(doc.join("tags")).expect("tags file");
    for tag in ["boo.txt", ":Boo", "boo-config", "boo-health"] {
        assert!(
            tags.lines().any(|l| l.starts_with(&format!("{tag}\t"))),
            "{tag} missing"
        );
    }
    nvim.quit().await;
}

#[tokio::test]
async fn silent_backend_errors_within_five_seconds_and_neovim_stays_responsive() {
    // `sleep 60` never answers hello; extra_args off so it is run exactly as given.
    let nvim = Nvim::start_with(NvimOptions {
        config: json!({ "backend": { "cmd": ["sleep", "60"], "extra_args": false } }),
        ..Default::default()
    })
    .await;
    let started = std::time::Instant::now();
    let err = nvim
        .lua("local r, err = require('boo.rpc').request('ping'); return err")
        .await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}: {err}");
    let msg = err.as_str().unwrap_or_default();
    assert!(msg.contains("did not answer within"), "{msg}");
    assert!(msg.contains("sleep 60"), "names the command: {msg}");
    assert!(
        !msg.contains("cargo build"),
        "a custom cmd is not ours to rebuild: {msg}"
    );
    // Neovim answers at once afterwards.
    let quick = std::time::Instant::now();
    assert_eq!(nvim.lua("return 1 + 1").await, 2);
    assert!(quick.elapsed() < Duration::from_secs(1));
    nvim.quit().await;
}

#[tokio::test]
async fn failing_backend_cmd_shows_command_status_and_stderr() {
    // A custom command that fails: the message names it (with the `--log FILE` boo appends).
    let nvim = Nvim::start_with(NvimOptions {
        config: json!({ "backend": { "cmd": ["sh", "-c", "echo first >&2; echo 'it broke' >&2; exit 3", "sh"] } }),
        ..Default::default()
    })
    .await;
    let err = nvim
        .lua("local r, err = require('boo.rpc').request('ping'); return err")
        .await;
    let msg = err.as_str().unwrap_or_default();
    assert!(msg.contains("failed to start"), "{msg}");
    assert!(msg.contains("exit status 3"), "{msg}");
    assert!(msg.contains("it broke"), "stderr tail: {msg}");
    assert!(msg.contains("--log "), "the full command that ran: {msg}");
    assert!(!msg.contains("cargo build"), "{msg}");
    nvim.quit().await;
}

#[tokio::test]
async fn bad_config_values_are_named_in_one_message_and_the_database_stays_on_disk() {
    let nvim = Nvim::start_with(NvimOptions {
        env: vec![("BOO_T_DIR".into(), "sub".into())],
        ..Default::default()
    })
    .await;
    nvim.lua("require('boo').setup({ opencode = { watchdog_seconds = 1.5 }, agents = { qwen = { env = { X = 1 }, watchdog_seconds = -1 } }, worktree = { copy_ignored = { 1 } }, store = { path = '' }, ui = { float = { width = 0 } } })")
        .await;
    let msgs = nvim.messages().await;
    let lines: Vec<_> = msgs
        .lines()
        .filter(|l| l.contains("boo: config:"))
        .collect();
    assert_eq!(lines.len(), 1, "one message: {msgs}");
    for key in [
        "opencode.watchdog_seconds",
        "agents.qwen.env",
        "agents.qwen.watchdog_seconds",
        "worktree.copy_ignored",
        "store.path",
        "ui.float.width",
    ] {
        assert!(lines[0].contains(key), "{key} not named: {msgs}");
    }
    // The backend starts with a database file on disk, not an in-memory one.
    assert_eq!(
        nvim.lua("return require('boo.rpc').request('ping')").await,
        "pong"
    );
    let db = nvim.dir().join("data/boo/boo.db");
    let mut found = false;
    for _ in 0..100 {
        if db.exists() {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(found, "no database at {}: {}", db.display(), nvim.log());
    let msgs = nvim.messages().await;
    assert_eq!(msgs.matches("boo: config:").count(), 1, "{msgs}");
    // Paths: `~` and `$VARS` expanded and made absolute.
    nvim.lua("require('boo').setup({ store = { path = '~/x.db' }, worktree = { dir = '$BOO_T_DIR/wt' } })")
        .await;
    let home = nvim.dir().join("home/x.db").display().to_string();
    let wt = nvim.dir().join("work/sub/wt").display().to_string();
    let got = nvim
        .lua("local r = require('boo.config').resolved(); return { r.store_path, r.worktree_dir }")
        .await;
    assert_eq!(got, json!([home, wt]));
    nvim.quit().await;
}

#[tokio::test]
async fn a_password_over_plain_http_to_another_host_is_warned_about() {
    let nvim = Nvim::start().await;
    let warn = nvim
        .lua("local c = require('boo.config'); local function w(url) return c.warning({ opencode = { url = url, password = 'pw' } }) or '' end; return { w('http://10.0.0.5:4096'), w('https://10.0.0.5:4096'), w('http://127.0.0.1:4096'), w('http://[::1]:4096'), w('http://u@lab.example:80/') }")
        .await;
    let w: Vec<&str> = warn
        .as_array()
        .expect("list")
        .iter()
        .map(|v| v.as_str().unwrap_or_default())
        .collect();
    assert!(w[0].contains("plain http to 10.0.0.5"), "{w:?}");
    assert_eq!(&w[1..4], ["", "", ""], "{w:?}");
    assert!(w[4].contains("lab.example"), "{w:?}");
    nvim.lua(
        "require('boo').setup({ opencode = { url = 'http://10.0.0.5:4096', password = 'pw' } })",
    )
    .await;
    assert!(nvim.messages().await.contains("plain http"));
    nvim.quit().await;
}
