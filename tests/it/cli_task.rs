//! `boocoder task`: the real binary runs one turn without Neovim (the real opencode, the
//! scripted model, a real git repository, the store file Neovim's boo uses); then the real
//! Neovim finds the session and its pending diff.

use std::path::{Path, PathBuf};
use std::time::Duration;

use boo_testkit::fake_model::FakeModel;
use boo_testkit::nvim::{Nvim, NvimOptions};
use boo_testkit::opencode::{OpencodeEnv, SandboxOptions};
use boo_testkit::tools;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `boocoder task` in the sandbox's environment, with opencode on `PATH`.
async fn task(env: &OpencodeEnv, repo: &Path, args: &[&str]) -> Run {
    let oc_dir = tools::opencode()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let path = std::env::join_paths(std::iter::once(oc_dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("PATH");
    let mut cmd = tokio::process::Command::new(tools::boocoder());
    cmd.arg("task")
        .arg("--repo")
        .arg(repo)
        .args(args)
        .arg("--log")
        .arg(env.root().join("boocoder.log"))
        .envs(env.vars().iter().cloned())
        .env("PATH", path)
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("boocoder task ended within 120 s")
        .expect("run boocoder task");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn data_dir(env: &OpencodeEnv) -> PathBuf {
    let (_, v) = env
        .vars()
        .iter()
        .find(|(k, _)| k == "XDG_DATA_HOME")
        .expect("XDG_DATA_HOME");
    PathBuf::from(v).join("nvim").join("boo")
}

/// Processes started with the sandbox's environment (opencode serve and its children).
fn sandbox_processes(env: &OpencodeEnv) -> Vec<String> {
    let marker = format!("XDG_DATA_HOME={}", env.root().join("data").display());
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(environ) = std::fs::read(e.path().join("environ")) else {
            continue;
        };
        if environ.split(|b| *b == 0).any(|v| v == marker.as_bytes()) {
            found.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    found
}

fn rows(db: &Path, sql: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).expect("db");
    let mut st = conn.prepare(sql).expect("sql");
    st.query_map([], |r| r.get::<_, String>(0))
        .expect("rows")
        .filter_map(Result::ok)
        .collect()
}

#[tokio::test]
async fn a_headless_task_leaves_a_branch_and_a_pending_diff_for_the_next_boo() {
    let model = FakeModel::start();
    let env = OpencodeEnv::new(&model, &SandboxOptions::default());
    let repo = env.project_dir().to_path_buf();
    let run = task(
        &env,
        &repo,
        &[
            "--prompt",
            "make notes [fake:write notes.txt from the task]",
            "--model",
            "fake/fake-model",
            "--json",
        ],
    )
    .await;
    assert_eq!(
        run.code,
        Some(0),
        "stdout {}\nstderr {}",
        run.stdout,
        run.stderr
    );
    let s: Value = serde_json::from_str(run.stdout.trim()).expect("one JSON object");
    assert_eq!(s["outcome"], "done", "{s}");
    assert_eq!(s["files"], json!(["notes.txt"]), "{s}");
    let branch = s["branch"].as_str().expect("branch").to_string();
    assert!(branch.starts_with("boo/"), "{s}");
    let branches = boo_testkit::repo::git(&repo, &["branch", "--list", &branch]);
    assert!(branches.contains(&branch), "{branches}");
    // opencode (started for the turn) ended with us.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !sandbox_processes(&env).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "left running: {:?}",
            sandbox_processes(&env)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let db = data_dir(&env).join("boo.db");
    // (Two rows when a cold opencode on a loaded machine missed the first start: retried.)
    let tasks = rows(
        &db,
        "SELECT creator || ' ' || model || ' ' || status FROM tasks ORDER BY id",
    );
    assert_eq!(
        tasks.last().map(String::as_str),
        Some("cli fake/fake-model done"),
        "{tasks:?}"
    );
    assert!(
        tasks.len() <= 2 && tasks.iter().all(|t| t.starts_with("cli ")),
        "{tasks:?}"
    );
    assert_eq!(
        rows(&db, "SELECT path FROM pending_changes"),
        vec!["notes.txt".to_string()]
    );
    // The session was released at exit: Neovim's :Boo takes it and reviews the change.
    let nvim = Nvim::start_with(NvimOptions {
        cwd: Some(repo.clone()),
        env: env.vars().to_vec(),
        config: json!({
            "store": { "path": db.display().to_string() },
            "worktree": { "dir": data_dir(&env).join("worktrees").display().to_string() },
        }),
    })
    .await;
    nvim.cmd("Boo").await.expect(":Boo");
    nvim.cmd("Boo diff").await.expect(":Boo diff");
    nvim.wait_for(
        "notes.txt in the review",
        "(function() for _, b in ipairs(vim.api.nvim_list_bufs()) do
           if vim.api.nvim_buf_get_name(b):find('^boo://review/') and
              table.concat(vim.api.nvim_buf_get_lines(b, 0, -1, false), '\\n'):find('notes.txt', 1, true) then return true end
         end end)()",
        WAIT,
    )
    .await;
    let transcript = nvim.transcript().await;
    assert!(transcript.contains("make notes"), "{transcript}");
    nvim.quit().await;
}

#[tokio::test]
async fn a_failed_headless_turn_exits_1() {
    let model = FakeModel::start();
    let env = OpencodeEnv::new(&model, &SandboxOptions::default());
    let repo = env.project_dir().to_path_buf();
    let run = task(&env, &repo, &["--prompt", "break [fake:error]"]).await;
    assert_eq!(
        run.code,
        Some(1),
        "stdout {}\nstderr {}",
        run.stdout,
        run.stderr
    );
    assert!(run.stdout.contains("boo task: failed"), "{}", run.stdout);
    let bad = task(&env, &repo, &["--agent", "opencode"]).await;
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);
    assert!(bad.stderr.contains("task needs --prompt"), "{}", bad.stderr);
    let bad = task(&env, &repo, &["--prompt", "x", "--model", "nope"]).await;
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);
    assert!(
        bad.stderr.contains("invalid model 'nope'"),
        "{}",
        bad.stderr
    );
}
