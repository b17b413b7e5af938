//! ACP agents end to end: the real Neovim with the plugin, the real boocoder, the real
//! `qwen --acp` (its default protocol) against the scripted model. A read of a
//! file open in the editor returns its unsaved text; a command that needs permission goes
//! through the same prompt as opencode's; a write lands in the session's worktree and in the
//! pending diff, not in the checkout; `:checkhealth` lists the ACP agents found.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use boo_testkit::fake_model::{FakeModel, MODEL_ID};
use boo_testkit::nvim::{Nvim, NvimOptions};
use boo_testkit::repo;
use serde_json::{json, Value};

use crate::support::agents::qwen;

const WAIT: Duration = Duration::from_secs(90);

/// Counts permission prompts and answers each `once`.
const PICKER: &str = "_G.boo_perm = { prompts = 0 }
vim.ui.select = function(items, opts, cb)
  if opts.kind == 'boo.permission' then
    _G.boo_perm.prompts = _G.boo_perm.prompts + 1
    vim.schedule(function() cb('once') end)
  else
    vim.schedule(function() cb(items[1]) end)
  end
end";

/// Waits until `p` exists (an agent's tool ran).
async fn wait_file(p: &std::path::Path) {
    let deadline = Instant::now() + WAIT;
    while !p.exists() {
        assert!(Instant::now() < deadline, "{} never appeared", p.display());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_qwen_acp_chat_reads_unsaved_buffers_asks_permission_and_writes_into_the_worktree() {
    let model = FakeModel::start();
    let tmp = tempfile::Builder::new()
        .prefix("boo-e2e-acp-")
        .tempdir()
        .expect("tmp");
    let dir = tmp.path().to_path_buf();
    let project = dir.join("project");
    repo::sample(&project);
    let home = dir.join("qwen-home");
    std::fs::create_dir_all(&home).expect("mkdir");
    let nvim = Nvim::start_with(NvimOptions {
        cwd: Some(project.clone()),
        config: json!({
            "store": { "path": dir.join("boo.db").display().to_string() },
            "worktree": { "dir": dir.join("worktrees").display().to_string() },
            "agents": {
                "qwen": {
                    "protocol": "acp",
                    "cmd": qwen().display().to_string(),
                    "args": ["--auth-type", "openai"],
                    "env": {
                        "OPENAI_BASE_URL": model.base_url(),
                        "OPENAI_API_KEY": "x",
                        "OPENAI_MODEL": MODEL_ID,
                        "HOME": home.display().to_string(),
                    },
                },
            },
        }),
        ..Default::default()
    })
    .await;
    nvim.lua(PICKER).await;
    nvim.cmd("Boo").await.expect(":Boo");
    nvim.cmd("Boo agent qwen").await.expect(":Boo agent");
    nvim.wait_for(
        "agent qwen",
        "require('boo').status().agent == 'qwen'",
        WAIT,
    )
    .await;
    let t0 = Instant::now();
    nvim.cmd("Boo send hello acp").await.expect("send");
    let text = nvim.wait_transcript("the answer", "Echo:", WAIT).await;
    let idle = "not require('boo').status().busy";
    nvim.wait_for("idle", idle, WAIT).await;
    let first = t0.elapsed();
    let text = if text.contains("hello acp") {
        text
    } else {
        nvim.transcript().await
    };
    assert!(
        text.contains("hello acp") && text.contains("Reasoning"),
        "{text}"
    );

    // The session's worktree; its README open in the editor with an edit not saved.
    let info = nvim
        .lua("return require('boo.rpc').request('review_info', { cwd = vim.fn.getcwd() })")
        .await;
    let wt = PathBuf::from(info["worktree"].as_str().expect("worktree dir"));
    let readme = wt.join("README.md");
    nvim.lua_with(
        "vim.cmd.edit(vim.fn.fnameescape(...)); vim.api.nvim_buf_set_lines(0, 0, -1, false, { 'unsaved edit in the editor' }); vim.cmd('wincmd p')",
        vec![Value::from(readme.display().to_string())],
    )
    .await;
    let read = format!(
        "Boo send [fake:tool read_file {}]",
        json!({ "file_path": readme.display().to_string() })
    );
    nvim.cmd(&read).await.expect("send");
    nvim.wait_for("idle", idle, WAIT).await;
    let text = nvim
        .wait_transcript("the buffer's text", "unsaved edit in the editor", WAIT)
        .await;
    assert!(text.contains("unsaved edit in the editor"), "{text}");
    assert_ne!(
        std::fs::read_to_string(&readme).expect("readme"),
        "unsaved edit in the editor\n",
        "the file itself is unchanged"
    );

    // A command that needs permission: asked through boo's prompt, answered once, run.
    let touch = format!(
        "Boo send [fake:tool run_shell_command {}]",
        json!({ "command": "touch acp-made.txt" })
    );
    nvim.cmd(&touch).await.expect("send");
    nvim.wait_for("the prompt", "_G.boo_perm.prompts == 1", WAIT)
        .await;
    wait_file(&wt.join("acp-made.txt")).await;
    nvim.wait_for("idle", idle, WAIT).await;

    // A write: into the worktree, in the pending diff; the checkout is untouched.
    let write = format!(
        "Boo send [fake:tool write_file {}]",
        json!({ "file_path": wt.join("from-acp.txt").display().to_string(), "content": "written over ACP" })
    );
    nvim.cmd(&write).await.expect("send");
    wait_file(&wt.join("from-acp.txt")).await;
    nvim.wait_for("idle", idle, WAIT).await;
    assert_eq!(
        std::fs::read_to_string(wt.join("from-acp.txt"))
            .ok()
            .as_deref(),
        Some("written over ACP")
    );
    assert!(!project.join("from-acp.txt").exists());
    nvim.wait_for(
        "the pending diff",
        "require('boo').status().pending_changes == 2",
        WAIT,
    )
    .await;

    nvim.cmd("checkhealth boo").await.expect(":checkhealth");
    let health = nvim
        .lua("return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\\n')")
        .await;
    let health = health.as_str().unwrap_or_default().to_string();
    for needle in [
        "ACP agent qwen 0.24.4",
        "ACP agent opencode-acp 1.18.33",
        "ACP agent codex-acp: not installed; npm install -g @zed-industries/codex-acp",
        "ACP agents found: ",
    ] {
        assert!(health.contains(needle), "'{needle}' not in:\n{health}");
    }
    eprintln!("qwen --acp first turn (session, worktree, agent start): {first:?}");
    nvim.quit().await;
}

/// Neovim with the plugin and a qwen ACP agent on the scripted model, in `dir`'s project.
async fn qwen_nvim(model: &FakeModel, dir: &std::path::Path) -> Nvim {
    let project = dir.join("project");
    if !project.exists() {
        repo::sample(&project);
    }
    let home = dir.join("qwen-home");
    std::fs::create_dir_all(&home).expect("mkdir");
    Nvim::start_with(NvimOptions {
        cwd: Some(project),
        config: json!({
            "store": { "path": dir.join("boo.db").display().to_string() },
            "worktree": { "dir": dir.join("worktrees").display().to_string() },
            "agents": {
                "qwen": {
                    "protocol": "acp",
                    "cmd": qwen().display().to_string(),
                    "args": ["--auth-type", "openai"],
                    "env": {
                        "OPENAI_BASE_URL": model.base_url(),
                        "OPENAI_API_KEY": "x",
                        "OPENAI_MODEL": MODEL_ID,
                        "HOME": home.display().to_string(),
                    },
                },
            },
        }),
        ..Default::default()
    })
    .await
}

/// Records the pickers' items by kind and picks `_G.boo_pick[kind]` (else the first item).
const RECORDING_PICKER: &str = "_G.boo_items = {}
_G.boo_pick = {}
vim.ui.select = function(items, opts, cb)
  _G.boo_items[opts.kind or '?'] = items
  local want = _G.boo_pick[opts.kind]
  vim.schedule(function() cb(want or items[1]) end)
end";

#[tokio::test]
async fn a_qwen_acp_chat_offers_its_modes_and_models_and_picking_plan_mode_blocks_writes() {
    let model = FakeModel::start();
    let tmp = tempfile::Builder::new()
        .prefix("boo-e2e-acp-modes-")
        .tempdir()
        .expect("tmp");
    let nvim = qwen_nvim(&model, tmp.path()).await;
    nvim.lua(RECORDING_PICKER).await;
    nvim.cmd("Boo").await.expect(":Boo");
    nvim.cmd("Boo agent qwen").await.expect(":Boo agent");
    nvim.cmd("Boo send hello modes").await.expect("send");
    let idle = "not require('boo').status().busy";
    nvim.wait_transcript("the answer", "Echo:", WAIT).await;
    nvim.wait_for("idle", idle, WAIT).await;
    // The session told its modes and models.
    let opts = nvim
        .wait_for(
            "the session's options",
            "(require('boo').status().options or {}).modes",
            WAIT,
        )
        .await;
    let modes: Vec<String> = serde_json::from_value(opts).expect("modes");
    assert!(
        modes.iter().any(|m| m == "qwen:plan") && modes.iter().any(|m| m == "qwen:default"),
        "{modes:?}"
    );
    let status = nvim.lua("return require('boo').status().options").await;
    let first_mode = status["mode"].clone();
    assert!(first_mode.is_string() && first_mode != "plan", "{status}");
    let models = status["models"].as_array().cloned().unwrap_or_default();
    assert!(!models.is_empty(), "qwen lists its models: {status}");

    // Completion and the picker offer the modes after the agent.
    nvim.wait_for(
        "the probe",
        "require('boo.ui.picker').probe(false).state == 'ready'",
        WAIT,
    )
    .await;
    let done = nvim
        .lua("return vim.fn.getcompletion('Boo agent ', 'cmdline')")
        .await;
    let done: Vec<String> = serde_json::from_value(done).expect("list");
    let q = done.iter().position(|a| a == "qwen").expect("qwen offered");
    assert_eq!(
        done.get(q + 1).map(String::as_str),
        Some(modes[0].as_str()),
        "{done:?}"
    );
    assert!(done.iter().any(|a| a == "qwen:plan"), "{done:?}");
    // `:Boo model` lists qwen's own models.
    nvim.lua("_G.boo_pick['boo.model'] = false; require('boo').model()")
        .await;
    let listed = nvim
        .wait_for("the model picker", "_G.boo_items['boo.model']", WAIT)
        .await;
    let mut want = vec![json!("default")];
    want.extend(models.iter().cloned());
    assert_eq!(listed, Value::Array(want));

    // Picking plan mode: the next turn runs in it, and qwen's plan mode refuses a write.
    nvim.lua("_G.boo_pick['boo.agent'] = 'qwen:plan'; require('boo').agent()")
        .await;
    nvim.wait_for(
        "the mode picked",
        "require('boo').status().agent == 'qwen:plan'",
        WAIT,
    )
    .await;
    let picked = nvim.lua("return _G.boo_items['boo.agent']").await;
    assert!(
        picked
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "qwen:plan")),
        "{picked}"
    );
    let info = nvim
        .lua("return require('boo.rpc').request('review_info', { cwd = vim.fn.getcwd() })")
        .await;
    let wt = PathBuf::from(info["worktree"].as_str().expect("worktree dir"));
    let write = format!(
        "Boo send [fake:tool write_file {}]",
        json!({ "file_path": wt.join("planned.txt").display().to_string(), "content": "no" })
    );
    nvim.cmd(&write).await.expect("send");
    nvim.wait_for(
        "the plan mode",
        "(require('boo').status().options or {}).mode == 'plan'",
        WAIT,
    )
    .await;
    nvim.wait_for("idle", idle, WAIT).await;
    let text = nvim
        .wait_transcript("the refusal", "Plan mode is active", WAIT)
        .await;
    assert!(text.contains("Plan mode is active"), "{text}");
    assert!(!wt.join("planned.txt").exists(), "plan mode wrote nothing");

    // Back to the mode the session started in: the write goes through.
    nvim.cmd("Boo agent qwen").await.expect(":Boo agent qwen");
    let write = format!(
        "Boo send [fake:tool write_file {}]",
        json!({ "file_path": wt.join("done.txt").display().to_string(), "content": "yes" })
    );
    nvim.cmd(&write).await.expect("send");
    wait_file(&wt.join("done.txt")).await;
    nvim.wait_for("idle", idle, WAIT).await;
    let mode = nvim
        .lua("return require('boo').status().options.mode")
        .await;
    assert_eq!(mode, first_mode);
    // Another backend: qwen's modes and models are no longer offered.
    nvim.cmd("Boo agent opencode")
        .await
        .expect(":Boo agent opencode");
    nvim.wait_for(
        "the options gone",
        "require('boo').status().agent == 'opencode' and require('boo').status().options == nil",
        WAIT,
    )
    .await;
    nvim.quit().await;
}

#[tokio::test]
async fn a_qwen_acp_chat_comes_back_after_a_boocoder_kill_and_continues_its_session() {
    let model = FakeModel::start();
    let tmp = tempfile::Builder::new()
        .prefix("boo-e2e-acp-restart-")
        .tempdir()
        .expect("tmp");
    let nvim = qwen_nvim(&model, tmp.path()).await;
    nvim.cmd("Boo").await.expect(":Boo");
    nvim.cmd("Boo agent qwen").await.expect(":Boo agent");
    nvim.cmd("Boo send remember the word banana")
        .await
        .expect("send");
    let idle = "not require('boo').status().busy";
    nvim.wait_transcript("the first answer", "Echo:", WAIT)
        .await;
    nvim.wait_for("idle", idle, WAIT).await;
    let first = nvim.transcript().await;
    // The first turn on disk before the kill (the store writes within ~100 ms).
    let db = tmp.path().join("boo.db");
    let deadline = Instant::now() + WAIT;
    while !boo_testkit::world::stored_texts(&db)
        .iter()
        .any(|t| t.contains("Echo:") && t.contains("banana"))
    {
        assert!(Instant::now() < deadline, "the first answer never stored");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = nvim
        .lua("local r, err = require('boo.rpc').request('hello', { protocol = require('boo.rpc').PROTOCOL }); assert(r, err); return r.pid")
        .await
        .as_i64()
        .expect("pid") as i32;
    // SAFETY: kill(2) has no memory effects; the pid is the backend Neovim started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    nvim.wait_for(
        "the plugin to notice the exit",
        "not require('boo.rpc').running()",
        WAIT,
    )
    .await;

    // The next prompt restarts boocoder, which shows the chat and loads qwen's session.
    let before = model.chat_requests().len();
    let t0 = Instant::now();
    nvim.cmd("Boo send what word did I say")
        .await
        .expect("send after the kill");
    let text = nvim
        .wait_transcript("the second answer", "what word did I say", WAIT)
        .await;
    nvim.wait_for("idle", idle, WAIT).await;
    let took = t0.elapsed();
    let text = if text.matches("Echo:").count() >= 2 {
        text
    } else {
        nvim.transcript().await
    };
    // Both answers shown: the new process's items did not overwrite the earlier turn's.
    assert!(
        text.contains("remember the word banana")
            && text.matches("Echo:").count() >= 2
            && !text.contains("could not be loaded")
            && !text.contains("cannot load or resume"),
        "before:\n{first}\nafter:\n{text}"
    );
    let last = model.chat_requests()[before..]
        .last()
        .cloned()
        .expect("a model call after the restart");
    assert!(
        last.history.iter().any(|m| m.contains("banana")),
        "qwen's session went on (session/load): {last:#?}"
    );
    let new_pid = nvim
        .lua("return require('boo.rpc').request('hello', { protocol = require('boo.rpc').PROTOCOL }).pid")
        .await;
    assert_ne!(new_pid, json!(pid), "a new boocoder");
    eprintln!("restart, session/load and the second turn: {took:?}");
    nvim.quit().await;
}
