//! Shared helpers of the `agents_*` tests: the real qwen CLI, hermetic environments, fake CLIs
//! made of small shell scripts that replay recorded output.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use boocoder::agent::AgentEvent;
use tokio::sync::mpsc;

pub const WAIT: Duration = Duration::from_secs(90);

/// The qwen CLI the tests run: `BOO_QWEN`, the project's `.deps/bin/qwen`, or `PATH`.
pub fn qwen() -> PathBuf {
    if let Some(p) = std::env::var_os("BOO_QWEN") {
        return PathBuf::from(p);
    }
    let local = boo_testkit::tools::repo_root().join(".deps/bin/qwen");
    if local.exists() {
        return local;
    }
    boocoder::agent::probe::find_command(Path::new("qwen"), None)
        .expect("qwen not found: run scripts/bootstrap (or set BOO_QWEN)")
}

/// HOME and XDG dirs inside `root`, so no CLI reads or writes the user's own settings.
pub fn hermetic_env(root: &Path) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for (k, sub) in [
        ("HOME", "home"),
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_STATE_HOME", "state"),
        ("XDG_CACHE_HOME", "cache"),
    ] {
        let p = root.join(sub);
        std::fs::create_dir_all(&p).expect("mkdir");
        v.push((k.to_string(), p.display().to_string()));
    }
    v
}

/// Environment pointing qwen at an OpenAI-compatible model.
pub fn qwen_env(root: &Path, base_url: &str) -> Vec<(String, String)> {
    let mut v = hermetic_env(root);
    v.push(("OPENAI_BASE_URL".into(), base_url.to_string()));
    v.push(("OPENAI_API_KEY".into(), "x".into()));
    v.push((
        "OPENAI_MODEL".into(),
        boo_testkit::fake_model::MODEL_ID.into(),
    ));
    v.push(("QWEN_CODE_SUPPRESS_YOLO_WARNING".into(), "1".into()));
    v
}

/// qwen's arguments for the tests: no startup discovery, OpenAI auth, edits allowed.
pub fn qwen_args() -> Vec<String> {
    [
        "--bare",
        "--auth-type",
        "openai",
        "--approval-mode",
        "auto-edit",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// An executable shell script at `dir/name`.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p
}

/// A recorded CLI output of `tests/data/cli`.
pub fn recorded(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/cli")
        .join(name)
}

/// A git repository with one commit.
pub fn project(dir: &Path) -> PathBuf {
    let p = dir.join("project");
    boo_testkit::repo::sample(&p);
    p
}

/// Events until `pred` matches one (which is returned last); fails after `WAIT`.
pub async fn until(
    rx: &mut mpsc::UnboundedReceiver<AgentEvent>,
    what: &str,
    pred: impl Fn(&AgentEvent) -> bool,
) -> Vec<AgentEvent> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(e)) => {
                let hit = pred(&e);
                seen.push(e);
                if hit {
                    return seen;
                }
            }
            Ok(None) => panic!("event channel closed waiting for {what}; seen: {seen:#?}"),
            Err(_) => panic!("timed out waiting for {what}; seen: {seen:#?}"),
        }
    }
}
