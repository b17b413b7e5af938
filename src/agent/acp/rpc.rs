//! JSON-RPC 2.0 over an agent's stdio, one JSON object per line (ACP's transport).
//!
//! Written here on `serde_json` rather than taken from the `agent-client-protocol` crate: its
//! connection is built on `LocalBoxFuture`s and a `!Send` spawner, so it would need a
//! single-threaded runtime of its own per agent, while our backends are `Send + Sync` on the
//! shared tokio runtime. The framing is small; the message shapes follow the protocol schema.
//!
//! [`Conn::start`] spawns the writer and the reader. Requests and notifications of the agent
//! come out of the [`Inbox`]; an answer resolves its [`Conn::request`] when the inbox reaches
//! it, so whatever the agent sent before the answer (the turn's last updates) is handled
//! before the request returns. A line that is not JSON-RPC, or the end of the agent's stdout,
//! closes the connection: every waiting request fails with [`RpcError::Closed`] carrying why.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{json, Value};
use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot, watch};

/// Why a request got no result.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum RpcError {
    /// The agent answered with a JSON-RPC error.
    #[error("{message} (code {code})")]
    Remote { code: i64, message: String },
    /// The connection is gone: the reason (exit, malformed output).
    #[error("{0}")]
    Closed(String),
}

/// A request or notification from the agent.
#[derive(Debug)]
pub enum Incoming {
    Request {
        id: Value,
        method: String,
        params: Value,
    },
    Notification {
        method: String,
        params: Value,
    },
}

type Waiters = Mutex<HashMap<u64, oneshot::Sender<Result<Value, RpcError>>>>;

/// What the reader passes on, in the order the agent sent it.
enum Item {
    In(Incoming),
    Answer(u64, Result<Value, RpcError>),
    Closed(String),
}

/// The agent's messages in order; answers are delivered to their requests on the way.
pub struct Inbox {
    rx: mpsc::UnboundedReceiver<Item>,
    waiters: Arc<Waiters>,
    closed: watch::Sender<Option<String>>,
}

impl Inbox {
    /// The next request or notification; `None` once the connection is closed.
    pub async fn next(&mut self) -> Option<Incoming> {
        loop {
            match self.rx.recv().await {
                Some(Item::In(m)) => return Some(m),
                Some(Item::Answer(id, result)) => {
                    if let Some(w) = self.waiters.lock().remove(&id) {
                        let _ = w.send(result);
                    }
                }
                Some(Item::Closed(why)) => {
                    self.close(why);
                    return None;
                }
                None => {
                    self.close("the connection ended".into());
                    return None;
                }
            }
        }
    }

    fn close(&self, why: String) {
        if self.closed.borrow().is_none() {
            let _ = self.closed.send(Some(why.clone()));
        }
        for (_, w) in self.waiters.lock().drain() {
            let _ = w.send(Err(RpcError::Closed(why.clone())));
        }
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        // Nobody reads on: what waits would wait forever.
        self.close("the connection was dropped".into());
    }
}

/// One connection. Cheap to clone.
#[derive(Clone)]
pub struct Conn {
    out: mpsc::UnboundedSender<String>,
    waiters: Arc<Waiters>,
    next: Arc<AtomicU64>,
    closed: watch::Receiver<Option<String>>,
}

/// The longest line kept in a "malformed" message.
const SHOWN: usize = 120;

impl Conn {
    /// Starts reading `input` and writing to `output`; the agent's messages go to the returned
    /// receiver.
    pub fn start<R, W>(input: R, output: W) -> (Conn, Inbox)
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<String>();
        let (in_tx, in_rx) = mpsc::unbounded_channel();
        let (closed_tx, closed_rx) = watch::channel(None);
        let waiters: Arc<Waiters> = Arc::default();
        let conn = Conn {
            out: out_tx,
            waiters: waiters.clone(),
            next: Arc::new(AtomicU64::new(1)),
            closed: closed_rx,
        };
        let inbox = Inbox {
            rx: in_rx,
            waiters,
            closed: closed_tx,
        };
        tokio::spawn(async move {
            let mut w = output;
            while let Some(line) = out_rx.recv().await {
                if w.write_all(line.as_bytes()).await.is_err() || w.flush().await.is_err() {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            let mut r = BufReader::new(input);
            let mut buf = Vec::new();
            let why = loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf).await {
                    Ok(0) => break "the agent closed its output (exited)".to_string(),
                    Err(e) => break format!("reading the agent's output failed: {e}"),
                    Ok(_) => {}
                }
                let line = String::from_utf8_lossy(&buf);
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                tracing::trace!(target: "acp", "<< {}", line.chars().take(2000).collect::<String>());
                match classify(line) {
                    Ok(Msg::Answer(id, result)) => {
                        let _ = in_tx.send(Item::Answer(id, result));
                    }
                    Ok(Msg::In(m)) => {
                        let _ = in_tx.send(Item::In(m));
                    }
                    Err(()) => {
                        let shown: String = line.chars().take(SHOWN).collect();
                        break format!("the agent sent malformed JSON-RPC: '{shown}'");
                    }
                }
            };
            tracing::info!(target: "acp", "connection closed: {why}");
            let _ = in_tx.send(Item::Closed(why));
        });
        (conn, inbox)
    }

    /// Why the connection closed, once it has.
    pub fn closed(&self) -> Option<String> {
        self.closed.borrow().clone()
    }

    /// Waits until the connection closes; returns why.
    pub async fn wait_closed(&self) -> String {
        let mut rx = self.closed.clone();
        loop {
            if let Some(w) = rx.borrow().clone() {
                return w;
            }
            if rx.changed().await.is_err() {
                return "the connection ended".to_string();
            }
        }
    }

    fn write(&self, v: &Value) {
        let mut s = v.to_string();
        tracing::trace!(target: "acp", ">> {}", s.chars().take(2000).collect::<String>());
        s.push('\n');
        let _ = self.out.send(s);
    }

    /// Sends a request and waits for its answer.
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiters.lock().insert(id, tx);
        // Closed before we registered: the reader will never drain this waiter.
        if let Some(why) = self.closed() {
            self.waiters.lock().remove(&id);
            return Err(RpcError::Closed(why));
        }
        self.write(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        rx.await
            .unwrap_or_else(|_| Err(RpcError::Closed("the connection ended".into())))
    }

    pub fn notify(&self, method: &str, params: Value) {
        self.write(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Answers a request of the agent.
    pub fn respond(&self, id: Value, result: Result<Value, (i64, String)>) {
        let msg = match result {
            Ok(r) => json!({"jsonrpc": "2.0", "id": id, "result": r}),
            Err((code, message)) => {
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
            }
        };
        self.write(&msg);
    }
}

enum Msg {
    Answer(u64, Result<Value, RpcError>),
    In(Incoming),
}

/// One line as a message; `Err` for anything that is not a JSON-RPC object.
fn classify(line: &str) -> Result<Msg, ()> {
    let Ok(Value::Object(mut m)) = serde_json::from_str::<Value>(line) else {
        return Err(());
    };
    let params = m.remove("params").unwrap_or(Value::Null);
    match (m.remove("method"), m.remove("id")) {
        (Some(Value::String(method)), Some(id)) if !id.is_null() => {
            Ok(Msg::In(Incoming::Request { id, method, params }))
        }
        (Some(Value::String(method)), _) => Ok(Msg::In(Incoming::Notification { method, params })),
        (None, Some(id)) => {
            // Our ids are numbers; an answer to anything else is not ours.
            let id = id.as_u64().ok_or(())?;
            if let Some(e) = m.remove("error") {
                let code = e.get("code").and_then(Value::as_i64).unwrap_or(0);
                let message = e
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("error")
                    .to_string();
                Ok(Msg::Answer(id, Err(RpcError::Remote { code, message })))
            } else {
                Ok(Msg::Answer(
                    id,
                    Ok(m.remove("result").unwrap_or(Value::Null)),
                ))
            }
        }
        _ => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_answers_and_incoming_over_a_pipe() {
        let (ours, theirs) = tokio::io::duplex(4096);
        let (r, w) = tokio::io::split(ours);
        let (conn, mut inbox) = Conn::start(r, w);
        // Messages and answers in order, as the agent's consumer reads them.
        let (seen_tx, mut incoming) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(m) = inbox.next().await {
                let _ = seen_tx.send(m);
            }
        });
        let (tr, mut tw) = tokio::io::split(theirs);
        let mut tr = BufReader::new(tr);
        let c = conn.clone();
        let call = tokio::spawn(async move { c.request("initialize", json!({"a": 1})).await });
        let mut line = String::new();
        tr.read_line(&mut line).await.expect("reads");
        let sent: Value = serde_json::from_str(&line).expect("json");
        assert_eq!(sent["method"], "initialize");
        let id = sent["id"].clone();
        let msgs = format!(
            "{}\n{}\n{}\n",
            json!({"jsonrpc":"2.0","method":"session/update","params":{"x":1}}),
            json!({"jsonrpc":"2.0","id":"p1","method":"fs/read_text_file","params":{}}),
            json!({"jsonrpc":"2.0","id":id,"result":{"ok":true}}),
        );
        tw.write_all(msgs.as_bytes()).await.expect("writes");
        assert_eq!(call.await.expect("joins"), Ok(json!({"ok": true})));
        assert!(
            matches!(incoming.recv().await, Some(Incoming::Notification { method, .. }) if method == "session/update")
        );
        assert!(
            matches!(incoming.recv().await, Some(Incoming::Request { method, id, .. }) if method == "fs/read_text_file" && id == "p1")
        );
        // Garbage closes the connection and fails what waits.
        let c = conn.clone();
        let call = tokio::spawn(async move { c.request("session/prompt", json!({})).await });
        tr.read_line(&mut line).await.expect("reads");
        tw.write_all(b"not json at all\n").await.expect("writes");
        let e = call.await.expect("joins").expect_err("fails");
        assert!(
            e.to_string()
                .contains("malformed JSON-RPC: 'not json at all'"),
            "{e}"
        );
        assert!(conn.closed().is_some());
        assert!(matches!(
            conn.request("x", json!({})).await,
            Err(RpcError::Closed(_))
        ));
    }
}
