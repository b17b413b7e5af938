//! `terminal/*`: commands the agent asks the client to run, in the session's worktree and in a
//! process group of their own (`process::own`), from an argv (never a shell string we build).
//! Output (stdout and stderr, interleaved as read) is kept up to the agent's byte limit, the
//! oldest part dropped first. Killed on `terminal/kill`, `terminal/release`, abort and exit.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, watch};

use crate::agent::process::{self, Group};

/// Output kept when the agent gives no limit.
const DEFAULT_LIMIT: usize = 1 << 20;

#[derive(Clone, Debug, PartialEq)]
pub struct Exit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

struct Output {
    text: String,
    truncated: bool,
    limit: usize,
}

pub struct Terminal {
    group: Group,
    output: Arc<Mutex<Output>>,
    exit: watch::Receiver<Option<Exit>>,
}

/// The terminals of one agent connection.
#[derive(Default)]
pub struct Terminals {
    map: Mutex<HashMap<String, Arc<Terminal>>>,
    n: std::sync::atomic::AtomicU64,
}

/// Output changed: (terminal id, the output so far).
pub type OutputTx = mpsc::UnboundedSender<(String, String)>;

impl Terminals {
    /// `terminal/create`: starts the command; returns its id.
    pub fn create(&self, worktree: &Path, p: &Value, changed: OutputTx) -> Result<String, String> {
        let command = p
            .get("command")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .ok_or("terminal/create without a command")?;
        let args: Vec<String> = p
            .get("args")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let cwd = match p.get("cwd").and_then(Value::as_str) {
            Some(c) => super::client::inside(worktree, c)?,
            None => worktree.to_path_buf(),
        };
        let limit = p
            .get("outputByteLimit")
            .and_then(Value::as_u64)
            .map_or(DEFAULT_LIMIT, |l| l as usize);
        let mut cmd = tokio::process::Command::new(command);
        cmd.args(&args)
            .current_dir(&cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for e in p.get("env").and_then(Value::as_array).into_iter().flatten() {
            if let (Some(k), Some(v)) = (
                e.get("name").and_then(Value::as_str),
                e.get("value").and_then(Value::as_str),
            ) {
                cmd.env(k, v);
            }
        }
        process::own(&mut cmd);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("could not run '{command}': {e}"))?;
        let id = format!(
            "term-{}",
            self.n.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
        );
        tracing::info!(target: "acp", terminal = id, args = args.len(), "terminal started");
        let output = Arc::new(Mutex::new(Output {
            text: String::new(),
            truncated: false,
            limit,
        }));
        let (exit_tx, exit_rx) = watch::channel(None);
        let pgid = child.id().map_or(0, |p| p as i32);
        let mut readers = Vec::new();
        for r in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let (out, changed, id) = (output.clone(), changed.clone(), id.clone());
            readers.push(tokio::spawn(async move {
                let mut r = r;
                let mut buf = [0u8; 4096];
                while let Ok(n) = r.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let now = {
                        let mut o = out.lock();
                        o.text.push_str(&String::from_utf8_lossy(&buf[..n]));
                        if o.text.len() > o.limit {
                            let mut cut = o.text.len() - o.limit;
                            while !o.text.is_char_boundary(cut) {
                                cut += 1;
                            }
                            o.text.drain(..cut);
                            o.truncated = true;
                        }
                        o.text.clone()
                    };
                    let _ = changed.send((id.clone(), now));
                }
            }));
        }
        tokio::spawn(async move {
            let st = child.wait().await;
            for r in readers {
                let _ = r.await;
            }
            let exit = match st {
                Ok(st) => {
                    use std::os::unix::process::ExitStatusExt;
                    Exit {
                        code: st.code(),
                        signal: st.signal(),
                    }
                }
                Err(_) => Exit {
                    code: None,
                    signal: None,
                },
            };
            let _ = exit_tx.send(Some(exit));
        });
        self.map.lock().insert(
            id.clone(),
            Arc::new(Terminal {
                group: Group { pgid },
                output,
                exit: exit_rx,
            }),
        );
        Ok(id)
    }

    fn get(&self, p: &Value) -> Result<Arc<Terminal>, String> {
        let id = p.get("terminalId").and_then(Value::as_str).unwrap_or("");
        self.map
            .lock()
            .get(id)
            .cloned()
            .ok_or_else(|| format!("no terminal '{id}'"))
    }

    /// `terminal/output`.
    pub fn output(&self, p: &Value) -> Result<Value, String> {
        let t = self.get(p)?;
        let o = t.output.lock();
        let mut v = json!({"output": o.text, "truncated": o.truncated});
        if let Some(e) = t.exit.borrow().as_ref() {
            v["exitStatus"] = exit_json(e);
        }
        Ok(v)
    }

    /// `terminal/wait_for_exit`.
    pub async fn wait(&self, p: &Value) -> Result<Value, String> {
        let t = self.get(p)?;
        let mut rx = t.exit.clone();
        loop {
            if let Some(e) = rx.borrow().clone() {
                return Ok(exit_json(&e));
            }
            if rx.changed().await.is_err() {
                return Err("the terminal is gone".into());
            }
        }
    }

    /// `terminal/kill`: the command's whole group; the terminal stays readable.
    pub fn kill(&self, p: &Value) -> Result<Value, String> {
        self.get(p)?.group.signal(libc::SIGKILL);
        Ok(Value::Null)
    }

    /// `terminal/release`: killed and forgotten.
    pub fn release(&self, p: &Value) -> Result<Value, String> {
        let t = self.get(p)?;
        t.group.signal(libc::SIGKILL);
        let id = p.get("terminalId").and_then(Value::as_str).unwrap_or("");
        self.map.lock().remove(id);
        Ok(Value::Null)
    }

    /// Kills every terminal (abort, the agent's end). Their groups are also killed on drop.
    pub fn kill_all(&self) {
        for t in self.map.lock().drain().map(|(_, t)| t) {
            t.group.signal(libc::SIGKILL);
        }
    }
}

fn exit_json(e: &Exit) -> Value {
    json!({"exitCode": e.code, "signal": e.signal.map(|s| s.to_string())})
}
