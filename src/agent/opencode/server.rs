//! Lifecycle of the `opencode serve` process: spawn, readiness, health, death, stop.
//!
//! The server runs in its own process group (so stopping it also stops the tools it runs) with
//! a random `OPENCODE_SERVER_PASSWORD`, bound to 127.0.0.1. It must die with boocoder even when
//! boocoder is killed with SIGKILL: the child asks for `PR_SET_PDEATHSIG(SIGKILL)`, and the
//! guard of `agent::process` kills what its tools started in sessions of their own. The signal
//! fires when the *thread* that forked exits, so every server is forked by one dedicated thread
//! that lives as long as the process (never by a tokio blocking-pool thread, which is reaped
//! when idle).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{oneshot, watch};

use super::client::Client;
use crate::agent::process::Group;
use crate::agent::AgentError;

/// How to start (or find) the server.
#[derive(Clone, Debug)]
pub struct ServerSpec {
    pub command: PathBuf,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    pub start_timeout: Duration,
    /// boo's MCP server, given to opencode as the remote MCP server `boo`.
    pub mcp: Option<McpRemote>,
}

/// Where boo's MCP server listens and its bearer token.
#[derive(Clone, Debug, PartialEq)]
pub struct McpRemote {
    pub url: String,
    pub token: String,
}

struct SpawnJob {
    cmd: Command,
    reply: oneshot::Sender<std::io::Result<Child>>,
}

/// The forking thread: lives for the whole process, so the parent-death signal of the
/// children it forks fires only when the process dies.
fn spawner() -> &'static std::sync::mpsc::Sender<SpawnJob> {
    static SPAWNER: OnceLock<std::sync::mpsc::Sender<SpawnJob>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<SpawnJob>();
        let spawned = std::thread::Builder::new()
            .name("boo-spawner".into())
            .spawn(move || {
                while let Ok(mut job) = rx.recv() {
                    let r = job.cmd.spawn();
                    let _ = job.reply.send(r);
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the spawner thread: {e}");
        }
        tx
    })
}

/// A running (or attached) opencode server.
pub struct Server {
    client: Client,
    group: Option<Group>,
    alive: watch::Receiver<bool>,
    /// Kept so the watch never reports "closed" for an attached server.
    _alive_tx: Option<watch::Sender<bool>>,
    version: String,
    /// Whether its config has the warm-up provider (see `warm`).
    warmup: bool,
    /// The directories whose instance it has loaded (warmed, or prepared without a warm-up).
    ready_dirs: Mutex<std::collections::HashSet<PathBuf>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("url", &self.client.base())
            .field("pid", &self.pid())
            .finish()
    }
}

impl Server {
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn url(&self) -> &str {
        self.client.base()
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// The server's pid (= its process group), when we started it.
    pub fn pid(&self) -> Option<u32> {
        self.group.as_ref().map(|g| g.pgid as u32)
    }

    /// Whether prompts in `dir` can be warmed up (the warm-up provider is configured).
    pub fn can_warm(&self) -> bool {
        self.warmup
    }

    /// Marks `dir` as prepared; false when it already was.
    pub fn mark_ready(&self, dir: &Path) -> bool {
        self.ready_dirs.lock().insert(dir.to_path_buf())
    }

    /// False once a server we started has exited.
    pub fn is_alive(&self) -> bool {
        *self.alive.borrow()
    }

    /// A receiver that changes to `false` when the process exits.
    pub fn watch_alive(&self) -> watch::Receiver<bool> {
        self.alive.clone()
    }

    /// Uses a server somebody else runs.
    pub async fn attach(
        url: &str,
        username: &str,
        password: Option<String>,
    ) -> Result<Server, AgentError> {
        let client = Client::new(url, username, password);
        let version = client.health().await?;
        let (tx, rx) = watch::channel(true);
        Ok(Server {
            client,
            group: None,
            alive: rx,
            _alive_tx: Some(tx),
            version,
            warmup: false,
            ready_dirs: Mutex::default(),
        })
    }

    /// Starts `opencode serve --hostname 127.0.0.1 --port 0` and waits until it is healthy.
    pub async fn spawn(spec: &ServerSpec) -> Result<Server, AgentError> {
        let password = random_password();
        let mut cmd = Command::new(&spec.command);
        cmd.args(["serve", "--hostname", "127.0.0.1", "--port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(d) = &spec.cwd {
            cmd.current_dir(d);
        }
        for (k, v) in &spec.env {
            cmd.env(k, v);
        }
        let user = spec
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == "OPENCODE_CONFIG_CONTENT")
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var("OPENCODE_CONFIG_CONTENT").ok());
        let warmup = super::warm::default_model_named(user.as_deref(), &spec.env);
        cmd.env(
            "OPENCODE_CONFIG_CONTENT",
            contained_config(user.as_deref(), warmup, spec.mcp.as_ref()),
        );
        cmd.env("OPENCODE_SERVER_PASSWORD", &password);
        cmd.env_remove("OPENCODE_SERVER_USERNAME");
        crate::agent::process::own_std(&mut cmd);
        let (tx, rx) = oneshot::channel();
        spawner()
            .send(SpawnJob { cmd, reply: tx })
            .map_err(|_| AgentError::Start("spawner thread is gone".into()))?;
        let mut child = match rx.await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(AgentError::NotFound(spec.command.display().to_string()))
            }
            Ok(Err(e)) => {
                return Err(AgentError::Start(format!(
                    "{}: {e}",
                    spec.command.display()
                )))
            }
            Err(_) => return Err(AgentError::Start("spawner thread is gone".into())),
        };
        let group = Group {
            pgid: child.id() as i32,
        };
        tracing::info!(pid = child.id(), command = %spec.command.display(), "opencode serve started");

        let tail = Arc::new(Mutex::new(VecDeque::<String>::new()));
        let (url_tx, url_rx) = oneshot::channel::<String>();
        if let Some(out) = child.stdout.take() {
            let tail = tail.clone();
            let _ = std::thread::Builder::new()
                .name("opencode-stdout".into())
                .spawn(move || read_output(out, tail, Some(url_tx), "stdout"));
        }
        if let Some(err) = child.stderr.take() {
            let tail = tail.clone();
            let _ = std::thread::Builder::new()
                .name("opencode-stderr".into())
                .spawn(move || read_output(err, tail, None, "stderr"));
        }
        let (alive_tx, alive_rx) = watch::channel(true);
        let _ = std::thread::Builder::new()
            .name("opencode-wait".into())
            .spawn(move || {
                let status = child.wait();
                tracing::warn!(?status, "opencode serve exited");
                let _ = alive_tx.send(false);
            });

        let mut alive = alive_rx.clone();
        let url = tokio::select! {
            u = url_rx => u.ok(),
            _ = alive.wait_for(|a| !*a) => None,
            _ = tokio::time::sleep(spec.start_timeout) => None,
        };
        let last = |tail: &Arc<Mutex<VecDeque<String>>>| {
            tail.lock().iter().cloned().collect::<Vec<_>>().join(" | ")
        };
        let Some(url) = url else {
            group.signal(libc::SIGKILL);
            let why = if *alive_rx.borrow() {
                format!(
                    "no 'listening on' line within {} s",
                    spec.start_timeout.as_secs()
                )
            } else {
                "it exited".to_string()
            };
            return Err(AgentError::Start(format!("{why}; output: {}", last(&tail))));
        };
        let client = Client::new(&url, "opencode", Some(password));
        let mut version = Err(AgentError::Start("not healthy".into()));
        for _ in 0..20 {
            version = client.health().await;
            if version.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let version = match version {
            Ok(v) => v,
            Err(e) => {
                group.signal(libc::SIGKILL);
                return Err(AgentError::Start(format!("health check failed: {e}")));
            }
        };
        tracing::info!(%url, %version, "opencode serve ready");
        Ok(Server {
            client,
            group: Some(group),
            alive: alive_rx,
            _alive_tx: None,
            version,
            warmup,
            ready_dirs: Mutex::default(),
        })
    }

    /// Stops a server we started: SIGTERM to its group, SIGKILL after `grace`.
    pub async fn stop(&self, grace: Duration) {
        let Some(g) = &self.group else { return };
        g.signal(libc::SIGTERM);
        let mut alive = self.alive.clone();
        if tokio::time::timeout(grace, alive.wait_for(|a| !*a))
            .await
            .is_err()
        {
            tracing::warn!("opencode serve ignored SIGTERM; killing it");
        }
        // Also the group's other members (tools it ran).
        g.signal(libc::SIGKILL);
        let _ = tokio::time::timeout(Duration::from_secs(3), alive.wait_for(|a| !*a)).await;
    }
}

fn read_output(
    r: impl std::io::Read,
    tail: Arc<Mutex<VecDeque<String>>>,
    mut url_tx: Option<oneshot::Sender<String>>,
    stream: &'static str,
) {
    for line in BufReader::new(r).lines() {
        let Ok(line) = line else { break };
        if let Some(rest) = line.trim().strip_prefix("opencode server listening on ") {
            let url = rest.trim();
            if url.starts_with("http://") {
                if let Some(tx) = url_tx.take() {
                    let _ = tx.send(url.to_string());
                }
            }
        }
        tracing::debug!(target: "opencode", stream, "{line}");
        let mut t = tail.lock();
        if t.len() >= 10 {
            t.pop_front();
        }
        t.push_back(line);
    }
}

/// The inline config with opencode's own containment turned on: its `external_directory`
/// permission (asked for any file tool path, and any directory a bash command names, outside
/// the session's directory) is denied unless the user's config already sets it. Commands can
/// still reach outside through paths opencode's parser does not see (`cd $(...)`, scripts).
/// opencode's own snapshots are off unless the user's inline config sets them: boo reviews
/// against its own review base, and opencode's first snapshot of a new worktree stages every file
/// (the first answer of a new session waited tens of seconds at 20,000 files). With `warmup`,
/// the warm-up provider of `warm` is added; with `mcp`, boo's MCP server as `mcp.boo` (unless
/// the user's config has one of that name).
pub fn contained_config(user: Option<&str>, warmup: bool, mcp: Option<&McpRemote>) -> String {
    let mut cfg = user
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        .filter(serde_json::Value::is_object)
        .unwrap_or_else(|| serde_json::json!({}));
    if let Some(o) = cfg.as_object_mut() {
        o.entry("snapshot")
            .or_insert_with(|| serde_json::json!(false));
        let perm = o
            .entry("permission")
            .or_insert_with(|| serde_json::json!({}));
        // A single string is the user's rule for every permission: keep it.
        if let Some(p) = perm.as_object_mut() {
            p.entry("external_directory")
                .or_insert_with(|| serde_json::json!("deny"));
        }
        if let Some(m) = mcp {
            let servers = o.entry("mcp").or_insert_with(|| serde_json::json!({}));
            if let Some(sv) = servers.as_object_mut() {
                // oauth off: a refused token is our bug, not a login to start.
                sv.entry("boo").or_insert_with(|| {
                    serde_json::json!({
                        "type": "remote",
                        "url": m.url,
                        "enabled": true,
                        "oauth": false,
                        "headers": {"Authorization": format!("Bearer {}", m.token)},
                    })
                });
            }
        }
        if warmup {
            let providers = o.entry("provider").or_insert_with(|| serde_json::json!({}));
            if let Some(p) = providers.as_object_mut() {
                p.entry(super::warm::PROVIDER)
                    .or_insert_with(super::warm::provider_config);
            }
        }
    }
    cfg.to_string()
}

/// A random password (hex) from the OS.
pub fn random_password() -> String {
    let mut b = [0u8; 24];
    if getrandom::getrandom(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b[..16].copy_from_slice(&(t ^ u128::from(std::process::id())).to_le_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The default command: `opencode` from `PATH`.
pub fn default_command() -> PathBuf {
    Path::new("opencode").to_path_buf()
}

#[cfg(test)]
mod containment_tests {
    use super::contained_config;
    use serde_json::{json, Value};

    #[test]
    fn external_directory_is_denied_unless_the_user_chose() {
        let c: Value = serde_json::from_str(&contained_config(None, false, None)).expect("json");
        assert_eq!(c["permission"]["external_directory"], "deny");
        assert_eq!(c["snapshot"], false);
        let c: Value =
            serde_json::from_str(&contained_config(Some(r#"{"snapshot":true}"#), false, None))
                .expect("json");
        assert_eq!(c["snapshot"], true);
        let user = r#"{"model":"a/b","permission":{"bash":"ask"}}"#;
        let c: Value =
            serde_json::from_str(&contained_config(Some(user), false, None)).expect("json");
        assert_eq!(
            c["permission"],
            json!({"bash": "ask", "external_directory": "deny"})
        );
        assert_eq!(c["model"], "a/b");
        let user = r#"{"permission":{"external_directory":"ask"}}"#;
        let c: Value =
            serde_json::from_str(&contained_config(Some(user), false, None)).expect("json");
        assert_eq!(c["permission"]["external_directory"], "ask");
        let c: Value =
            serde_json::from_str(&contained_config(Some("not json"), false, None)).expect("json");
        assert_eq!(c["permission"]["external_directory"], "deny");
    }

    #[test]
    fn boos_mcp_server_is_added_beside_the_users() {
        let m = super::McpRemote {
            url: "http://127.0.0.1:9/mcp".into(),
            token: "t0k".into(),
        };
        let user = r#"{"mcp":{"other":{"type":"local","command":["x"]}}}"#;
        let c: Value =
            serde_json::from_str(&contained_config(Some(user), false, Some(&m))).expect("json");
        assert_eq!(c["mcp"]["other"]["type"], "local");
        assert_eq!(c["mcp"]["boo"]["url"], "http://127.0.0.1:9/mcp");
        assert_eq!(c["mcp"]["boo"]["headers"]["Authorization"], "Bearer t0k");
        assert_eq!(c["mcp"]["boo"]["oauth"], false);
        let none: Value = serde_json::from_str(&contained_config(None, false, None)).expect("json");
        assert!(none.get("mcp").is_none());
    }

    #[test]
    fn the_warm_up_provider_joins_the_users_providers_only_when_asked() {
        let user = r#"{"model":"a/b","provider":{"a":{"name":"A"}}}"#;
        let c: Value =
            serde_json::from_str(&contained_config(Some(user), true, None)).expect("json");
        assert_eq!(c["provider"]["a"]["name"], "A");
        assert_eq!(
            c["provider"][crate::agent::opencode::warm::PROVIDER]["options"]["baseURL"],
            "http://127.0.0.1:1/v1"
        );
        let c: Value =
            serde_json::from_str(&contained_config(Some(user), false, None)).expect("json");
        assert!(c["provider"]
            .get(crate::agent::opencode::warm::PROVIDER)
            .is_none());
    }
}
