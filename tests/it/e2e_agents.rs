//! End-to-end agents and models: the real Neovim with the plugin, the real boocoder, the real
//! opencode and qwen CLIs, scripted models on 127.0.0.1 (one as opencode's configured provider,
//! one as an OpenAI-compatible model router). `:Boo model` / `:Boo agent` with and without a
//! picker, the turn of a qwen chat (streamed, aborted), a missing CLI, and the `tasks` rows.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::agents::{qwen, qwen_args};
use boo_testkit::fake_model::{FakeModel, MODEL_ID};
use boo_testkit::nvim::{Nvim, NvimOptions};
use boo_testkit::opencode::{OpencodeEnv, SandboxOptions};
use boo_testkit::repo;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(90);

struct World {
    nvim: Nvim,
    model: FakeModel,
    router: FakeModel,
    _env: OpencodeEnv,
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

async fn world() -> World {
    world_with(None).await
}

/// `claude`: the command of the claude agent (a missing one by default).
async fn world_with(claude: Option<PathBuf>) -> World {
    let model = FakeModel::start();
    let router = FakeModel::start();
    let env = OpencodeEnv::new(&model, &SandboxOptions::default());
    let tmp = tempfile::Builder::new()
        .prefix("boo-e2e-agents-")
        .tempdir()
        .expect("tmp");
    let dir = tmp.path().to_path_buf();
    let project = dir.join("project");
    repo::sample(&project);
    let qwen_home = dir.join("qwen-home");
    std::fs::create_dir_all(&qwen_home).expect("mkdir");
    let nvim = Nvim::start_with(NvimOptions {
        cwd: Some(project),
        env: env.vars().to_vec(),
        config: json!({
            "store": { "path": dir.join("boo.db").display().to_string() },
            "worktree": { "dir": dir.join("worktrees").display().to_string() },
            "router": { "url": router.base_url() },
            "agents": {
                "qwen": {
                    "cmd": qwen().display().to_string(),
                    "args": qwen_args(),
                    "env": {
                        "OPENAI_BASE_URL": model.base_url(),
                        "OPENAI_API_KEY": "x",
                        "OPENAI_MODEL": MODEL_ID,
                        "HOME": qwen_home.display().to_string(),
                    },
                },
                "claude": {
                    "cmd": claude.unwrap_or_else(|| dir.join("no-such-claude")).display().to_string(),
                },
            },
        }),
    })
    .await;
    World {
        nvim,
        model,
        router,
        _env: env,
        dir,
        _tmp: tmp,
    }
}

async fn transcript(nvim: &Nvim) -> String {
    nvim.transcript().await
}

async fn wait_transcript(w: &World, what: &str, needle: &str) -> String {
    w.nvim.wait_transcript(what, needle, WAIT).await
}

async fn wait_idle(w: &World) {
    w.nvim
        .wait_for("idle", "not require('boo').status().busy", WAIT)
        .await;
}

async fn wait_status(w: &World, key: &str, value: &str) {
    let code = format!(
        "require('boo').status()[{}] == {}",
        Value::from(key),
        Value::from(value)
    );
    w.nvim
        .wait_for(&format!("status {key}={value}"), &code, WAIT)
        .await;
}

/// (status, agent, model, creator, error, started, finished) of a task.
type TaskRow = (
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    bool,
    bool,
);

/// Every task, oldest first.
fn tasks(db: &Path) -> Vec<TaskRow> {
    // Not there yet (the backend opens it on first use): no tasks.
    let Ok(conn) = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) else {
        return Vec::new();
    };
    let Ok(mut st) = conn.prepare(
        "SELECT status, agent, model, creator, error, started_at IS NOT NULL,
                finished_at IS NOT NULL FROM tasks ORDER BY id",
    ) else {
        return Vec::new();
    };
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .expect("rows");
    rows.collect::<Result<Vec<_>, _>>().expect("tasks")
}

async fn wait_tasks(w: &World, what: &str, pred: impl Fn(&[TaskRow]) -> bool) -> Vec<TaskRow> {
    let db = w.dir.join("boo.db");
    let deadline = Instant::now() + WAIT;
    loop {
        let t = tasks(&db);
        if pred(&t) {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {t:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_model_chosen_with_boo_model_is_used_by_the_next_opencode_turn() {
    let w = world().await;
    let t0 = Instant::now();
    // A prompt from a buffer with no Boo window: the repository's session and a chat are made.
    w.nvim.cmd("edit README.md").await.expect("edit");
    w.nvim
        .cmd("1,1Boo ask what is this")
        .await
        .expect(":Boo ask");
    wait_tasks(&w, "the ask turn done", |t| {
        t.len() == 1 && t[0].0 == "done"
    })
    .await;
    let first = t0.elapsed();
    assert!(w.model.chat_requests().iter().any(|r| r
        .last_user_text
        .as_deref()
        .unwrap_or_default()
        .contains("what is this")));
    w.nvim.cmd("Boo").await.expect(":Boo");
    wait_transcript(&w, "the ask's answer", "Echo: what is this").await;

    // The probe lists the router's models (the completion of `:Boo model`).
    let probe = w
        .nvim
        .lua("return require('boo.ui.picker').probe(true).state")
        .await;
    assert!(probe == "running" || probe == "ready", "{probe}");
    w.nvim
        .wait_for(
            "the probe",
            "require('boo.ui.picker').probe(false).state == 'ready'",
            WAIT,
        )
        .await;
    let completion = w
        .nvim
        .lua("return vim.fn.getcompletion('Boo model ', 'cmdline')")
        .await;
    let completion: Vec<String> = serde_json::from_value(completion).expect("list");
    assert!(
        completion.contains(&"llama-swap/fake-model".to_string())
            && completion.contains(&"fake/fake-model".to_string()),
        "{completion:?}"
    );

    w.nvim
        .cmd("Boo model llama-swap/fake-model")
        .await
        .expect(":Boo model");
    wait_status(&w, "model", "llama-swap/fake-model").await;
    w.nvim.cmd("Boo send second question").await.expect("send");
    wait_transcript(&w, "the router's answer", "Echo: second question").await;
    wait_idle(&w).await;
    let routed = w.router.chat_requests();
    assert!(
        routed.iter().any(|r| r.model.as_deref() == Some(MODEL_ID)
            && r.last_user_text
                .as_deref()
                .unwrap_or_default()
                .contains("second question")),
        "the router got the turn: {routed:#?}"
    );
    assert!(
        !w.model.chat_requests().iter().any(|r| r
            .last_user_text
            .as_deref()
            .unwrap_or_default()
            .contains("second question")),
        "the default model did not"
    );

    // Without an argument: a picker (here answered like a user would) sets it back.
    w.nvim
        .lua(
            "vim.ui.select = function(items, opts, cb)
               _G.boo_picked_from = items
               vim.schedule(function() cb('fake/fake-model') end)
             end",
        )
        .await;
    w.nvim.cmd("Boo model").await.expect(":Boo model");
    wait_status(&w, "model", "fake/fake-model").await;
    let items = w.nvim.lua("return _G.boo_picked_from").await;
    assert!(
        items.to_string().contains("llama-swap/fake-model"),
        "{items}"
    );
    w.nvim.cmd("Boo send third question").await.expect("send");
    wait_transcript(&w, "the answer", "Echo: third question").await;
    wait_idle(&w).await;
    assert!(w.model.chat_requests().iter().any(|r| r
        .last_user_text
        .as_deref()
        .unwrap_or_default()
        .contains("third question")));

    let t = wait_tasks(&w, "three tasks done", |t| {
        t.len() == 3 && t.iter().all(|x| x.0 == "done")
    })
    .await;
    assert_eq!(t[0].3, "selection");
    assert_eq!(t[1].2.as_deref(), Some("llama-swap/fake-model"));
    assert_eq!(t[2].2.as_deref(), Some("fake/fake-model"));
    assert!(t.iter().all(|x| x.1 == "opencode"), "{t:#?}");
    // A model name that is not provider/model is refused for opencode.
    w.nvim.cmd("Boo model nonsense").await.expect(":Boo model");
    w.nvim
        .wait_for(
            "the refusal",
            "vim.fn.execute('messages'):find('expected provider/model', 1, true) ~= nil",
            WAIT,
        )
        .await;
    wait_status(&w, "model", "fake/fake-model").await;
    // :checkhealth shows a fresh probe.
    let t1 = Instant::now();
    w.nvim.cmd("checkhealth boo").await.expect(":checkhealth");
    let health = w
        .nvim
        .lua("return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\\n')")
        .await;
    let health = health.as_str().unwrap_or_default().to_string();
    for needle in [
        "boo: agents and models",
        "opencode 1.18.33: server starts and answers",
        "provider fake: fake-model",
        "provider llama-swap: fake-model",
        "model router llama-swap",
        "qwen 0.24.4",
        "agents: opencode, opencode:plan, qwen",
        // The turns' real events, counted by the backend against the pinned schema.
        "boo: opencode events",
        "every event type seen in this run is one boo knows",
    ] {
        assert!(health.contains(needle), "'{needle}' not in:\n{health}");
    }
    eprintln!(
        "first (ask) turn incl. session and opencode start: {first:?}; checkhealth: {:?}; all: {:?}",
        t1.elapsed(),
        t0.elapsed()
    );
    w.nvim.quit().await;
}

#[tokio::test]
async fn a_qwen_chat_streams_aborts_and_a_missing_cli_is_one_clear_message() {
    let w = world().await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    w.nvim.cmd("Boo agent qwen").await.expect(":Boo agent");
    wait_status(&w, "agent", "qwen").await;
    let t0 = Instant::now();
    w.nvim.cmd("Boo send hello qwen").await.expect("send");
    // The answer, not the prompt (which shows at once, before the turn is even busy).
    let text = wait_transcript(&w, "qwen's answer", "Echo:").await;
    wait_idle(&w).await;
    let took = t0.elapsed();
    let text = if text.contains("Echo:") {
        text
    } else {
        transcript(&w.nvim).await
    };
    assert!(text.contains("Echo:"), "{text}");
    assert!(text.contains("Reasoning"), "the reasoning block:\n{text}");
    assert!(w.model.chat_requests().iter().any(|r| r
        .last_user_text
        .as_deref()
        .unwrap_or_default()
        .contains("hello qwen")));

    // Abort kills it mid-turn.
    let before = w.model.chat_requests().len();
    w.nvim
        .cmd("Boo send [fake:stall 600] hold on")
        .await
        .expect("send");
    let deadline = Instant::now() + WAIT;
    while w.model.chat_requests().len() <= before {
        assert!(Instant::now() < deadline, "qwen never asked the model");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let t1 = Instant::now();
    w.nvim.cmd("Boo abort").await.expect(":Boo abort");
    wait_transcript(&w, "aborted", "(aborted)").await;
    wait_idle(&w).await;
    let abort_took = t1.elapsed();

    // A missing CLI: one clear message in the transcript and as a notification.
    w.nvim.cmd("Boo agent claude").await.expect(":Boo agent");
    wait_status(&w, "agent", "claude").await;
    w.nvim.cmd("Boo send hi claude").await.expect("send");
    let text = wait_transcript(&w, "the error", "claude not found").await;
    wait_idle(&w).await;
    assert!(text.contains("agents.claude.cmd"), "{text}");
    let text = transcript(&w.nvim).await;
    assert_eq!(
        text.matches("claude not found").count(),
        1,
        "one error item:\n{text}"
    );
    w.nvim
        .wait_for(
            "the notification",
            "vim.fn.execute('messages'):find('claude not found', 1, true) ~= nil",
            WAIT,
        )
        .await;

    let t = wait_tasks(&w, "three final tasks", |t| {
        t.len() == 3 && t.iter().all(|x| x.0 != "queued" && x.0 != "running")
    })
    .await;
    let lifecycle: Vec<(&str, &str)> = t.iter().map(|x| (x.0.as_str(), x.1.as_str())).collect();
    assert_eq!(
        lifecycle,
        [("done", "qwen"), ("aborted", "qwen"), ("failed", "claude")],
        "{t:#?}"
    );
    assert!(t[2]
        .4
        .as_deref()
        .unwrap_or_default()
        .contains("claude not found"));
    // Started and finished stamps: the failed one never started.
    let stamps: Vec<(bool, bool)> = t.iter().map(|x| (x.5, x.6)).collect();
    assert_eq!(stamps, [(true, true), (true, true), (false, true)]);
    assert!(
        t.iter().all(|x| x.2.is_none()),
        "no opencode model for CLIs: {t:#?}"
    );
    // A CLI chat's model completion offers the router's own model names.
    w.nvim
        .lua("return require('boo.ui.picker').probe(true).state")
        .await;
    w.nvim
        .wait_for(
            "the probe",
            "require('boo.ui.picker').probe(false).state == 'ready'",
            WAIT,
        )
        .await;
    let completion = w
        .nvim
        .lua("return vim.fn.getcompletion('Boo model ', 'cmdline')")
        .await;
    let completion: Vec<String> = serde_json::from_value(completion).expect("list");
    assert_eq!(completion, ["default", "fake-model"]);
    eprintln!("qwen turn via nvim: {took:?}; abort to idle: {abort_took:?}");
    w.nvim.quit().await;
}

#[tokio::test]
async fn a_cli_agents_edits_become_the_pending_diff_stamped_with_the_agent() {
    // A claude stand-in: writes a file where it runs (the session's worktree), then answers
    // with the recorded output of the documented format.
    let bin = tempfile::tempdir().expect("tmp");
    let claude = crate::support::agents::script(
        bin.path(),
        "claude",
        &format!(
            "cat >/dev/null; echo 'from claude' > claude-was-here.txt; cat '{}'",
            crate::support::agents::recorded("claude_tool.jsonl").display()
        ),
    );
    let w = world_with(Some(claude)).await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    w.nvim.cmd("Boo agent claude").await.expect(":Boo agent");
    wait_status(&w, "agent", "claude").await;
    w.nvim.cmd("Boo send list the files").await.expect("send");
    let text = wait_transcript(&w, "the answer", "There are two entries").await;
    wait_idle(&w).await;
    assert!(
        text.contains("⚙ Bash: ls (completed)") && text.contains("$ ls"),
        "{text}"
    );
    // The checkout is untouched; the worktree has the file; the pending diff names claude.
    assert!(!w.dir.join("project/claude-was-here.txt").exists());
    let db = w.dir.join("boo.db");
    let deadline = Instant::now() + WAIT;
    let rows = loop {
        let rows: Vec<(String, String)> =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .ok()
                .and_then(|c| {
                    let mut st = c
                        .prepare("SELECT agent, path FROM pending_changes ORDER BY path")
                        .ok()?;
                    let rows = st
                        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                        .ok()?
                        .collect::<Result<Vec<_>, _>>()
                        .ok()?;
                    Some(rows)
                })
                .unwrap_or_default();
        if !rows.is_empty() || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        rows,
        [("claude".to_string(), "claude-was-here.txt".to_string())]
    );
    let pending = w
        .nvim
        .lua("return require('boo').status().pending_changes")
        .await;
    assert_eq!(pending, 1, "{pending}");
    w.nvim.quit().await;
}
