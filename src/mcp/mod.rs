//! boo's MCP server for agents: Streamable HTTP on 127.0.0.1 (a random port), every request
//! with a random bearer token. Tools: `boo_new_task`, `boo_task_status` (see `jsonrpc`).
//!
//! opencode gets one URL for all its directories, but keeps one MCP client per directory (a
//! session's worktree). So the first tool call of an MCP session asks the client for its roots
//! (`roots/list`, which opencode answers with the directory) inside that call's SSE answer; the
//! app maps the directory to the calling session. Calls reach the app loop as [`ToolCall`]s.

pub mod http;
pub mod jsonrpc;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::Value as Json;
use tokio::sync::{mpsc, oneshot};

pub use jsonrpc::Tool;

/// How long the client may take to tell its roots.
const ROOTS_WAIT: Duration = Duration::from_secs(10);
/// How long the app may take to answer a tool call.
const CALL_WAIT: Duration = Duration::from_secs(30);

/// Who called: the directory of the MCP client (a session's worktree), when it told us.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Caller {
    pub directory: Option<PathBuf>,
}

/// A tool call for the app; the answer is the text the model reads (`Err`: the tool failed).
#[derive(Debug)]
pub struct ToolCall {
    pub caller: Caller,
    pub tool: Tool,
    pub reply: oneshot::Sender<Result<String, String>>,
}

#[derive(Default)]
struct State {
    /// MCP session id -> the client's directory once known.
    sessions: HashMap<String, Option<PathBuf>>,
    /// Our requests to clients, by id.
    pending: HashMap<String, oneshot::Sender<Option<Json>>>,
    next: u64,
}

/// The running server; dropping it stops accepting.
pub struct McpServer {
    pub url: String,
    pub token: String,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for McpServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// What the HTTP layer needs to answer a request.
#[derive(Clone)]
pub(crate) struct Shared {
    token: String,
    state: Arc<Mutex<State>>,
    calls: mpsc::UnboundedSender<ToolCall>,
}

impl McpServer {
    /// Binds 127.0.0.1 on a random port; tool calls are sent to `calls`.
    pub async fn start(calls: mpsc::UnboundedSender<ToolCall>) -> std::io::Result<McpServer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let token = crate::agent::opencode::server::random_password();
        let shared = Shared {
            token: token.clone(),
            state: Default::default(),
            calls,
        };
        let accept = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let shared = shared.clone();
                tokio::spawn(async move {
                    if let Err(e) = http::serve(sock, shared).await {
                        tracing::debug!("mcp connection ended: {e}");
                    }
                });
            }
        });
        let url = format!("http://127.0.0.1:{port}/mcp");
        tracing::info!(%url, "mcp server listening");
        Ok(McpServer { url, token, accept })
    }
}

impl Shared {
    fn authorized(&self, header: Option<&str>) -> bool {
        let Some(h) = header else { return false };
        let given = h.strip_prefix("Bearer ").unwrap_or_default().as_bytes();
        let want = self.token.as_bytes();
        // Same time whatever matches.
        given.len() == want.len() && given.iter().zip(want).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0
    }

    fn new_session(&self) -> String {
        let id = crate::agent::opencode::server::random_password();
        self.state.lock().sessions.insert(id.clone(), None);
        id
    }

    fn known_directory(&self, session: Option<&str>) -> Option<PathBuf> {
        let s = self.state.lock();
        session.and_then(|id| s.sessions.get(id).cloned().flatten())
    }

    /// A request of ours to the client: its id and where the answer arrives.
    fn ask(&self) -> (String, oneshot::Receiver<Option<Json>>) {
        let mut s = self.state.lock();
        s.next += 1;
        let id = format!("boo-roots-{}", s.next);
        let (tx, rx) = oneshot::channel();
        s.pending.insert(id.clone(), tx);
        (id, rx)
    }

    fn answered(&self, id: &str, result: Option<Json>) {
        if let Some(tx) = self.state.lock().pending.remove(id) {
            let _ = tx.send(result);
        }
    }

    fn forget(&self, id: &str) {
        self.state.lock().pending.remove(id);
    }

    fn remember_directory(&self, session: Option<&str>, dir: PathBuf) {
        if let Some(id) = session {
            self.state.lock().sessions.insert(id.to_string(), Some(dir));
        }
    }

    fn end_session(&self, session: &str) {
        self.state.lock().sessions.remove(session);
    }

    /// Runs a tool call in the app; the text for the model, or the tool's error.
    async fn call(&self, caller: Caller, tool: Tool) -> Result<String, String> {
        let (tx, rx) = oneshot::channel();
        self.calls
            .send(ToolCall {
                caller,
                tool,
                reply: tx,
            })
            .map_err(|_| "boo is shutting down".to_string())?;
        match tokio::time::timeout(CALL_WAIT, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err("boo dropped the call".into()),
            Err(_) => Err(format!("boo did not answer within {CALL_WAIT:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    async fn post(
        c: &reqwest::Client,
        s: &McpServer,
        token: &str,
        session: Option<&str>,
        body: Json,
    ) -> reqwest::Response {
        let mut r = c
            .post(&s.url)
            .header("Authorization", format!("Bearer {token}"))
            .header("Accept", "application/json, text/event-stream")
            .json(&body);
        if let Some(id) = session {
            r = r.header("Mcp-Session-Id", id);
        }
        r.send().await.expect("post")
    }

    /// The `data:` of each SSE event in a body.
    fn events(body: &str) -> Vec<Json> {
        body.lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str(d).ok())
            .collect()
    }

    #[tokio::test]
    async fn a_tool_call_asks_the_clients_root_once_then_reaches_the_app() {
        let (tx, mut calls) = mpsc::unbounded_channel();
        let s = McpServer::start(tx).await.expect("start");
        let c = reqwest::Client::new();
        let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18"}});
        let bad = post(&c, &s, "wrong", None, init.clone()).await;
        assert_eq!(bad.status(), 401);
        let r = post(&c, &s, &s.token, None, init).await;
        assert_eq!(r.status(), 200);
        let session = r
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .expect("a session id")
            .to_string();
        let note = json!({"jsonrpc":"2.0","method":"notifications/initialized"});
        assert_eq!(
            post(&c, &s, &s.token, Some(&session), note).await.status(),
            202
        );
        let get = c
            .get(&s.url)
            .header("Authorization", format!("Bearer {}", s.token))
            .send()
            .await
            .expect("get");
        assert_eq!(get.status(), 405);
        // The app answers the call it receives, with the directory the client told.
        let app = tokio::spawn(async move {
            let mut seen = Vec::new();
            while let Some(call) = calls.recv().await {
                seen.push(call.caller.clone());
                let _ = call.reply.send(Ok(format!("ok {}", seen.len())));
                if seen.len() == 2 {
                    break;
                }
            }
            seen
        });
        let call = json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"boo_task_status","arguments":{"task":3}}});
        let mut stream = post(&c, &s, &s.token, Some(&session), call.clone()).await;
        assert_eq!(
            stream.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        let first = stream.chunk().await.expect("chunk").expect("an event");
        let ask = events(&String::from_utf8_lossy(&first)).remove(0);
        assert_eq!(ask["method"], "roots/list");
        let answer =
            json!({"jsonrpc":"2.0","id":ask["id"],"result":{"roots":[{"uri":"file:///w/t%201"}]}});
        assert_eq!(
            post(&c, &s, &s.token, Some(&session), answer)
                .await
                .status(),
            202
        );
        let rest = stream.text().await.expect("rest");
        let result = events(&rest).remove(0);
        assert_eq!(result["id"], 5);
        assert_eq!(result["result"]["content"][0]["text"], "ok 1");
        assert_eq!(result["result"]["isError"], false);
        // The root is remembered for the MCP session: no second question.
        let again = post(&c, &s, &s.token, Some(&session), call).await;
        let evs = events(&again.text().await.expect("body"));
        assert_eq!(evs.len(), 1, "{evs:?}");
        assert_eq!(evs[0]["result"]["content"][0]["text"], "ok 2");
        let seen = app.await.expect("app");
        let dir = Some(PathBuf::from("/w/t 1"));
        assert_eq!(
            seen,
            vec![
                Caller {
                    directory: dir.clone()
                },
                Caller { directory: dir }
            ]
        );
    }
}
