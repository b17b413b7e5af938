//! The little HTTP/1.1 the MCP server needs: requests with a `Content-Length` body on a
//! keep-alive connection, answered with JSON, 202, an error status, or (for a tool call) an
//! SSE stream that ends the connection.

use std::collections::HashMap;

use serde_json::Value as Json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::jsonrpc::{self, Incoming};
use super::{Caller, Shared, ROOTS_WAIT};

const MAX_HEAD: usize = 64 << 10;
const MAX_BODY: usize = 4 << 20;
const SESSION_HEADER: &str = "mcp-session-id";

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("bad request: {0}")]
    Bad(String),
}

struct Request {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

async fn read_request(r: &mut BufReader<TcpStream>) -> Result<Option<Request>, HttpError> {
    let mut line = String::new();
    // Bounded reads: a line without an end must not grow without limit.
    if (&mut *r).take(MAX_HEAD as u64).read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return Err(HttpError::Bad(format!("request line {line:?}")));
    };
    let (method, path) = (method.to_string(), path.to_string());
    let mut headers = HashMap::new();
    let mut size = line.len();
    loop {
        line.clear();
        if (&mut *r).take(MAX_HEAD as u64).read_line(&mut line).await? == 0 {
            return Err(HttpError::Bad("headers cut off".into()));
        }
        size += line.len();
        if size > MAX_HEAD {
            return Err(HttpError::Bad("headers too large".into()));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if len > MAX_BODY {
        return Err(HttpError::Bad("body too large".into()));
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).await?;
    Ok(Some(Request {
        method,
        path,
        headers,
        body,
    }))
}

async fn respond(
    w: &mut BufReader<TcpStream>,
    status: &str,
    extra: &[(&str, &str)],
    body: Option<&Json>,
) -> Result<(), HttpError> {
    let body = body.map(Json::to_string).unwrap_or_default();
    let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let s = w.get_mut();
    s.write_all(head.as_bytes()).await?;
    s.write_all(body.as_bytes()).await?;
    s.flush().await?;
    Ok(())
}

async fn sse_event(w: &mut BufReader<TcpStream>, msg: &Json) -> Result<(), HttpError> {
    let s = w.get_mut();
    s.write_all(format!("event: message\ndata: {msg}\n\n").as_bytes())
        .await?;
    s.flush().await?;
    Ok(())
}

/// Serves one connection until the client closes it (or a tool call's stream ends it).
pub(crate) async fn serve(sock: TcpStream, shared: Shared) -> Result<(), HttpError> {
    let mut conn = BufReader::new(sock);
    while let Some(req) = read_request(&mut conn).await? {
        if req.path.split('?').next() != Some("/mcp") {
            respond(&mut conn, "404 Not Found", &[], None).await?;
            continue;
        }
        if !shared.authorized(req.headers.get("authorization").map(String::as_str)) {
            let body = jsonrpc::error(Json::Null, -32001, "missing or wrong bearer token");
            respond(&mut conn, "401 Unauthorized", &[], Some(&body)).await?;
            continue;
        }
        let session = req.headers.get(SESSION_HEADER).cloned();
        tracing::debug!(method = %req.method, path = %req.path, "mcp request");
        match req.method.as_str() {
            "POST" => {}
            "DELETE" => {
                if let Some(s) = &session {
                    shared.end_session(s);
                }
                respond(&mut conn, "200 OK", &[], None).await?;
                continue;
            }
            // No stream of our own to offer: clients then use POST answers only.
            _ => {
                respond(
                    &mut conn,
                    "405 Method Not Allowed",
                    &[("Allow", "POST, DELETE")],
                    None,
                )
                .await?;
                continue;
            }
        }
        let msg: Json = match serde_json::from_slice(&req.body) {
            Ok(m) => m,
            Err(e) => {
                let body = jsonrpc::parse_error(&e.to_string());
                respond(&mut conn, "400 Bad Request", &[], Some(&body)).await?;
                continue;
            }
        };
        match jsonrpc::handle(&msg) {
            Incoming::Accepted => respond(&mut conn, "202 Accepted", &[], None).await?,
            Incoming::ClientAnswer { id, result } => {
                shared.answered(&id, result);
                respond(&mut conn, "202 Accepted", &[], None).await?;
            }
            Incoming::Reply(r) => respond(&mut conn, "200 OK", &[], Some(&r)).await?,
            Incoming::Initialize(r) => {
                let id = shared.new_session();
                respond(&mut conn, "200 OK", &[("Mcp-Session-Id", &id)], Some(&r)).await?;
            }
            Incoming::Call { id, tool } => {
                return tool_call(conn, &shared, session.as_deref(), id, tool).await;
            }
        }
    }
    Ok(())
}

/// Answers a tool call as an SSE stream: first (once per MCP session) our `roots/list`, so we
/// know which worktree calls, then the result. The connection closes after it.
async fn tool_call(
    mut conn: BufReader<TcpStream>,
    shared: &Shared,
    session: Option<&str>,
    id: Json,
    tool: Result<jsonrpc::Tool, String>,
) -> Result<(), HttpError> {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n";
    conn.get_mut().write_all(head.as_bytes()).await?;
    let tool = match tool {
        Ok(t) => t,
        Err(e) => return sse_event(&mut conn, &jsonrpc::tool_result(id, &e, true)).await,
    };
    let mut directory = shared.known_directory(session);
    if directory.is_none() {
        let (rid, rx) = shared.ask();
        sse_event(&mut conn, &jsonrpc::roots_request(&rid)).await?;
        match tokio::time::timeout(ROOTS_WAIT, rx).await {
            Ok(Ok(Some(result))) => {
                directory = jsonrpc::first_root(&result);
                tracing::info!(?directory, "mcp client's root");
                if let Some(d) = &directory {
                    shared.remember_directory(session, d.clone());
                }
            }
            _ => {
                shared.forget(&rid);
                tracing::info!("mcp client did not tell its roots");
            }
        }
    }
    let r = shared.call(Caller { directory }, tool).await;
    let msg = match r {
        Ok(text) => jsonrpc::tool_result(id, &text, false),
        Err(e) => jsonrpc::tool_result(id, &e, true),
    };
    sse_event(&mut conn, &msg).await
}
