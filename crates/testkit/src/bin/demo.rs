//! `boo-demo`: the try-out. A sample repository, the real opencode and the scripted local model
//! (no API key), then Neovim with the plugin and the chat open. Run through `make demo`.
//!
//! Everything it makes lives under `.tmp/demo/` in the repository (removed at the next run).

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use boo_testkit::fake_model::FakeModel;
use boo_testkit::opencode::{OpencodeEnv, SandboxOptions};
use boo_testkit::{repo, tools};
use serde_json::json;

const INTRO: &str = "\
boo.nvim try-out: a sample repository, the real opencode, and a scripted local model.
In the chat's input (bottom), type a prompt and press <CR> (normal mode) or <C-s> (insert).
  hello                           a streamed answer with folded reasoning (<Tab> unfolds)
  list files [fake:bash ls]       a tool call: answer the permission prompt
  [fake:write notes.txt hi]       the agent writes a file in its own worktree
  [fake:long 2000]                a long fast stream
Keys in the chat: q hide, gn new tab, ]t/[t switch tabs; :Boo opens it again. :qa quits.";

fn main() -> ExitCode {
    let root = tools::repo_root();
    let demo = root.join(".tmp").join("demo");
    let _ = std::fs::remove_dir_all(&demo);
    if let Err(e) = std::fs::create_dir_all(&demo) {
        eprintln!("boo-demo: cannot create {}: {e}", demo.display());
        return ExitCode::FAILURE;
    }
    let project = repo::sample(&demo.join("sample-project"));
    let model = FakeModel::start();
    let env = OpencodeEnv::new(&model, &SandboxOptions::default());
    let boocoder = std::env::var_os("BOO_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/release/boocoder"));
    let config = json!({
        "backend": { "cmd": boocoder.display().to_string(), "log_file": demo.join("boo.log").display().to_string() },
        "opencode": { "cmd": tools::opencode().display().to_string() },
        "store": { "path": demo.join("boo.db").display().to_string() },
        "worktree": { "dir": demo.join("worktrees").display().to_string() },
    });
    println!(
        "{INTRO}\n\nmodel: {} · log: {}",
        model.base_url(),
        demo.join("boo.log").display()
    );
    let status = Command::new(tools::nvim())
        .arg("--clean")
        .arg("--cmd")
        .arg(format!("set rtp^={}", root.display()))
        .arg("--cmd")
        .arg("lua vim.g.boo = vim.json.decode(vim.env.BOO_DEMO_CONFIG)")
        .arg("-c")
        .arg("lua vim.schedule(function() vim.cmd('Boo') end)")
        .arg(project.join("src/main.py"))
        .current_dir(&project)
        .envs(env.vars().iter().map(|(k, v)| (k.as_str(), v.as_str())))
        // Neovim keeps the user's own XDG dirs out of the way too.
        .env("NVIM_APPNAME", "boo-demo")
        .env("BOO_DEMO_CONFIG", config.to_string())
        .status();
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => {
            eprintln!("boo-demo: nvim exited with {s}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("boo-demo: cannot run nvim: {e}");
            ExitCode::FAILURE
        }
    }
}
