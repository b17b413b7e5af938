//! A scripted OpenAI-compatible model on 127.0.0.1, so opencode can run for real in tests.
//!
//! It serves `POST /v1/chat/completions` (streaming SSE chunks, or one JSON answer when
//! `stream` is false) and `GET /v1/models`. What it answers is chosen by a marker in the text of
//! the LAST user message:
//!
//! | marker | answer |
//! |---|---|
//! | (none) | reasoning `Thinking about: <prompt>` then text `Echo: <prompt>`, a few chunks each |
//! | `[fake:slow MS]` | the default answer, with MS milliseconds between chunks |
//! | `[fake:write PATH CONTENT]` | a `write` tool call (`filePath` PATH, `content` CONTENT; the rest of the marker) |
//! | `[fake:modelwrite]` | a `write` tool call of `<model id>.txt` holding `by <model id>`: contestants with different models write different files |
//! | `[fake:bash CMD]` | a `bash` tool call running CMD (default `echo hi`) |
//! | `[fake:tool NAME JSON]` | a call of the tool NAME with the JSON object as its arguments (agents name their tools differently; the JSON must not contain `]`) |
//! | `[fake:chain NAME]` | a call of the tool NAME with `{"prompt": "<the prompt with this marker>", "where": "chat"}`: a task that hands itself on (boo's MCP `boo_new_task`), however deep |
//! | `[fake:long N]` / `[fake:long N MS]` | N text chunks `chunk-<i> `, as fast as possible or MS ms apart |
//! | `[fake:long N MS md]` | the same, with every 7th chunk in `**bold**` and the next but one a code span |
//! | `[fake:stall]` / `[fake:stall SECS]` | a few text chunks, then silence for SECS (default 3600) with the connection open |
//! | `[fake:error]` | HTTP 400 with an OpenAI-style error JSON; message [`ERROR_MESSAGE`] |
//!
//! Tool-call arguments are split over several chunks. When the last message of a request is a
//! tool result (`role: "tool"`), the answer is the final text `Tool finished: <first line>`, so
//! the turn ends. Title requests (system prompt starting "You are a title generator") get
//! [`TITLE`]. The prompt text in answers is the user text with the marker removed and trimmed.
//!
//! Every completion reports the token usage [`USAGE`].
//!
//! Dropping the [`FakeModel`] stops the server (its own thread and runtime).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The model id the fake serves (and lists under `/v1/models`).
pub const MODEL_ID: &str = "fake-model";
/// The title every title request gets.
pub const TITLE: &str = "Fake title";
/// The error message of the `[fake:error]` scenario.
pub const ERROR_MESSAGE: &str = "fake model refuses: bad request";

/// Tokens every completion reports (prompt, of it cached, completion, of it reasoning), so
/// usage shown by boo can be checked against known numbers.
pub const USAGE: (u64, u64, u64, u64) = (1200, 200, 340, 40);

/// The OpenAI `usage` block of every completion: [`USAGE`].
fn usage() -> Value {
    let (prompt, cached, completion, reasoning) = USAGE;
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    })
}

/// One request the fake model received.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    /// The `model` field of the body, if any.
    pub model: Option<String>,
    /// Text of the last `role:"user"` message.
    pub last_user_text: Option<String>,
    /// Texts of all `role:"user"` messages, oldest first (the conversation the model was given).
    pub user_texts: Vec<String>,
    /// Image parts (`image_url`) of the user messages.
    pub user_images: usize,
    /// The text of every message of the request, in order (what the model was shown).
    pub history: Vec<String>,
    /// A title-generator request.
    pub is_title: bool,
    /// The last message was a tool result (a follow-up after a tool call).
    pub is_tool_followup: bool,
}

/// A running fake model server.
pub struct FakeModel {
    port: u16,
    log: Arc<Mutex<Vec<RequestRecord>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeModel {
    /// Starts the server on 127.0.0.1 with a random port.
    pub fn start() -> FakeModel {
        let log = Arc::new(Mutex::new(Vec::new()));
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let log2 = log.clone();
        let thread = std::thread::Builder::new()
            .name("fake-model".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = port_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                rt.block_on(async move {
                    let listener = match TcpListener::bind("127.0.0.1:0").await {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = port_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
                    let _ = port_tx.send(Ok(port));
                    let accept = async {
                        loop {
                            let Ok((sock, _)) = listener.accept().await else {
                                continue;
                            };
                            let log = log2.clone();
                            tokio::spawn(async move {
                                let _ = serve_conn(sock, log).await;
                            });
                        }
                    };
                    tokio::select! {
                        _ = accept => {}
                        _ = stop_rx => {}
                    }
                });
                // Stalled connections must not keep the thread alive.
                rt.shutdown_background();
            })
            .expect("spawn fake-model thread");
        let port = port_rx
            .recv()
            .expect("fake model thread died")
            .expect("fake model failed to start");
        FakeModel {
            port,
            log,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT/v1`
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// A copy of the request log, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Chat-completion requests that were not title requests.
    pub fn chat_requests(&self) -> Vec<RequestRecord> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.ends_with("/chat/completions") && !r.is_title)
            .collect()
    }
}

impl Drop for FakeModel {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct HttpRequest {
    method: String,
    path: String,
    body: Vec<u8>,
}

async fn read_request(sock: &mut TcpStream) -> std::io::Result<Option<HttpRequest>> {
    let mut buf = Vec::with_capacity(8192);
    let mut tmp = [0u8; 8192];
    let head_end = loop {
        if let Some(p) = find(&buf, b"\r\n\r\n") {
            break p;
        }
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let mut it = first.split_whitespace();
    let method = it.next().unwrap_or_default().to_string();
    let path = it.next().unwrap_or_default().to_string();
    let mut content_length = None;
    let mut chunked = false;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let k = k.trim().to_ascii_lowercase();
            let v = v.trim();
            if k == "content-length" {
                content_length = v.parse::<usize>().ok();
            } else if k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            }
        }
    }
    let mut rest = buf[head_end + 4..].to_vec();
    let body = if chunked {
        // Decode chunked transfer encoding.
        let mut out = Vec::new();
        loop {
            let Some(le) = find(&rest, b"\r\n") else {
                let n = sock.read(&mut tmp).await?;
                if n == 0 {
                    break;
                }
                rest.extend_from_slice(&tmp[..n]);
                continue;
            };
            let size_str = String::from_utf8_lossy(&rest[..le]).to_string();
            let size = usize::from_str_radix(size_str.split(';').next().unwrap_or("0").trim(), 16)
                .unwrap_or(0);
            while rest.len() < le + 2 + size + 2 {
                let n = sock.read(&mut tmp).await?;
                if n == 0 {
                    break;
                }
                rest.extend_from_slice(&tmp[..n]);
            }
            if size == 0 {
                break;
            }
            let end = (le + 2 + size).min(rest.len());
            out.extend_from_slice(&rest[le + 2..end]);
            let drain = (le + 2 + size + 2).min(rest.len());
            rest.drain(..drain);
        }
        out
    } else {
        let len = content_length.unwrap_or(0);
        while rest.len() < len {
            let n = sock.read(&mut tmp).await?;
            if n == 0 {
                break;
            }
            rest.extend_from_slice(&tmp[..n]);
        }
        rest.truncate(len);
        rest
    };
    Ok(Some(HttpRequest { method, path, body }))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn serve_conn(
    mut sock: TcpStream,
    log: Arc<Mutex<Vec<RequestRecord>>>,
) -> std::io::Result<()> {
    let _ = sock.set_nodelay(true);
    // One request per connection (we answer `Connection: close`).
    let Some(req) = read_request(&mut sock).await? else {
        return Ok(());
    };
    let path = req.path.split('?').next().unwrap_or_default().to_string();
    if req.method == "GET" && path.ends_with("/models") {
        log_req(&log, &req, &path, &Value::Null);
        let body = json!({"object":"list","data":[{"id":MODEL_ID,"object":"model","created":0,"owned_by":"fake"}]});
        return respond_json(&mut sock, 200, &body).await;
    }
    if req.method == "POST" && path.ends_with("/chat/completions") {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let rec = log_req(&log, &req, &path, &body);
        return chat(&mut sock, &body, &rec).await;
    }
    log_req(&log, &req, &path, &Value::Null);
    respond_json(
        &mut sock,
        404,
        &json!({"error":{"message":"not found","type":"invalid_request_error"}}),
    )
    .await
}

fn message_text(m: &Value) -> String {
    match m.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn log_req(
    log: &Arc<Mutex<Vec<RequestRecord>>>,
    req: &HttpRequest,
    path: &str,
    body: &Value,
) -> RequestRecord {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let last_user_text = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .map(message_text);
    let user_texts = messages
        .iter()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .map(message_text)
        .collect();
    let is_title = messages.iter().any(|m| {
        m.get("role").and_then(Value::as_str) == Some("system")
            && message_text(m)
                .trim_start()
                .starts_with("You are a title generator")
    });
    let is_tool_followup = messages
        .last()
        .and_then(|m| m.get("role"))
        .and_then(Value::as_str)
        == Some("tool");
    let user_images = messages
        .iter()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .filter_map(|m| m.get("content").and_then(Value::as_array))
        .flatten()
        .filter(|p| p.get("type").and_then(Value::as_str) == Some("image_url"))
        .count();
    let rec = RequestRecord {
        method: req.method.clone(),
        path: path.to_string(),
        model: body.get("model").and_then(Value::as_str).map(String::from),
        last_user_text,
        user_texts,
        user_images,
        history: messages.iter().map(message_text).collect(),
        is_title,
        is_tool_followup,
    };
    if let Ok(mut l) = log.lock() {
        l.push(rec.clone());
    }
    rec
}

async fn respond_json(sock: &mut TcpStream, status: u16, body: &Value) -> std::io::Result<()> {
    let text = body.to_string();
    let reason = if status == 200 { "OK" } else { "Error" };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        text.len()
    );
    sock.write_all(head.as_bytes()).await?;
    sock.write_all(text.as_bytes()).await?;
    sock.flush().await?;
    let _ = sock.shutdown().await;
    Ok(())
}

/// What to answer, decided from the request.
#[derive(Debug, Clone, PartialEq)]
enum Scenario {
    Title,
    ToolFollowup(String),
    Plain {
        prompt: String,
        delay_ms: u64,
    },
    Write {
        path: String,
        content: String,
    },
    Bash {
        command: String,
    },
    /// `markup`: some chunks in `**bold**` or a code span, as prose with markdown.
    Long {
        n: usize,
        delay_ms: u64,
        markup: bool,
    },
    Stall {
        secs: u64,
    },
    Error,
    Tool {
        name: String,
        args: Value,
    },
}

/// Splits `[fake:NAME ARGS]` out of `text`: (name, args, text without the marker).
fn marker(text: &str) -> Option<(String, String, String)> {
    let start = text.find("[fake:")?;
    let end = start + text[start..].find(']')?;
    let inner = &text[start + 6..end];
    let (name, args) = match inner.split_once(' ') {
        Some((n, a)) => (n.to_string(), a.trim().to_string()),
        None => (inner.to_string(), String::new()),
    };
    let rest = format!("{}{}", &text[..start], &text[end + 1..]);
    Some((name, args, rest.trim().to_string()))
}

fn scenario(rec: &RequestRecord, body: &Value) -> Scenario {
    if rec.is_title {
        return Scenario::Title;
    }
    if rec.is_tool_followup {
        let out = body
            .get("messages")
            .and_then(Value::as_array)
            .and_then(|m| m.last())
            .map(message_text)
            .unwrap_or_default();
        let first = out.lines().next().unwrap_or_default().to_string();
        return Scenario::ToolFollowup(first);
    }
    let text = rec.last_user_text.clone().unwrap_or_default();
    let Some((name, args, rest)) = marker(&text) else {
        return Scenario::Plain {
            prompt: text.trim().to_string(),
            delay_ms: 0,
        };
    };
    match name.as_str() {
        "slow" => Scenario::Plain {
            prompt: rest,
            delay_ms: args.parse().unwrap_or(50),
        },
        "write" => {
            let (path, content) = match args.split_once(' ') {
                Some((p, c)) => (p.to_string(), c.to_string()),
                None => (args.clone(), "hello from the fake model\n".to_string()),
            };
            Scenario::Write { path, content }
        }
        "modelwrite" => {
            let m = rec.model.clone().unwrap_or_else(|| MODEL_ID.to_string());
            let m = m.rsplit('/').next().unwrap_or_default().to_string();
            Scenario::Write {
                path: format!("{m}.txt"),
                content: format!("by {m}\n"),
            }
        }
        "bash" => Scenario::Bash {
            command: if args.is_empty() {
                "echo hi".to_string()
            } else {
                args
            },
        },
        "long" => {
            let mut it = args.split_whitespace();
            Scenario::Long {
                n: it.next().and_then(|a| a.parse().ok()).unwrap_or(1000),
                delay_ms: it.next().and_then(|a| a.parse().ok()).unwrap_or(0),
                markup: it.next() == Some("md"),
            }
        }
        "stall" => Scenario::Stall {
            secs: args.parse().unwrap_or(3600),
        },
        "error" => Scenario::Error,
        "chain" => Scenario::Tool {
            name: args.clone(),
            args: json!({"prompt": format!("again [fake:chain {args}]"), "where": "chat"}),
        },
        "tool" => {
            let (name, json) = args.split_once(' ').unwrap_or((args.as_str(), "{}"));
            Scenario::Tool {
                name: name.to_string(),
                args: serde_json::from_str(json).unwrap_or_else(|_| json!({})),
            }
        }
        _ => Scenario::Plain {
            prompt: rest,
            delay_ms: 0,
        },
    }
}

/// Splits `s` into about `n` pieces on char boundaries.
fn pieces(s: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    if chars.is_empty() {
        return Vec::new();
    }
    let size = chars.len().div_ceil(n.max(1)).max(1);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

struct Sse<'a> {
    sock: &'a mut TcpStream,
    model: String,
}

impl Sse<'_> {
    async fn start(&mut self) -> std::io::Result<()> {
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n";
        self.sock.write_all(head.as_bytes()).await?;
        self.sock.flush().await
    }

    async fn chunk(&mut self, delta: Value, finish: Option<&str>) -> std::io::Result<()> {
        let c = json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        });
        self.raw(&c).await
    }

    async fn raw(&mut self, v: &Value) -> std::io::Result<()> {
        let line = format!("data: {v}\n\n");
        self.sock.write_all(line.as_bytes()).await?;
        self.sock.flush().await
    }

    async fn finish(&mut self, reason: &str) -> std::io::Result<()> {
        self.chunk(json!({}), Some(reason)).await?;
        let usage = json!({
            "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0,
            "model": self.model, "choices": [],
            "usage": usage(),
        });
        self.raw(&usage).await?;
        self.sock.write_all(b"data: [DONE]\n\n").await?;
        self.sock.flush().await?;
        let _ = self.sock.shutdown().await;
        Ok(())
    }

    async fn text(&mut self, field: &str, s: &str, n: usize, delay_ms: u64) -> std::io::Result<()> {
        for p in pieces(s, n) {
            self.chunk(json!({ field: p }), None).await?;
            if delay_ms > 0 {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            }
        }
        Ok(())
    }

    async fn tool_call(&mut self, name: &str, args: &Value) -> std::io::Result<()> {
        let args = args.to_string();
        self.chunk(
            json!({"role":"assistant","tool_calls":[{"index":0,"id":"call_fake_1","type":"function","function":{"name":name,"arguments":""}}]}),
            None,
        )
        .await?;
        for p in pieces(&args, 4) {
            self.chunk(
                json!({"tool_calls":[{"index":0,"function":{"arguments":p}}]}),
                None,
            )
            .await?;
        }
        self.finish("tool_calls").await
    }
}

async fn chat(sock: &mut TcpStream, body: &Value, rec: &RequestRecord) -> std::io::Result<()> {
    let sc = scenario(rec, body);
    let model = rec.model.clone().unwrap_or_else(|| MODEL_ID.to_string());
    if sc == Scenario::Error {
        return respond_json(
            sock,
            400,
            &json!({"error":{"message":ERROR_MESSAGE,"type":"invalid_request_error","param":null,"code":"fake_error"}}),
        )
        .await;
    }
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    if !stream {
        // Non-streaming: one JSON completion with the plain text of the scenario.
        let text = match &sc {
            Scenario::Title => TITLE.to_string(),
            Scenario::ToolFollowup(o) => format!("Tool finished: {o}"),
            Scenario::Plain { prompt, .. } => format!("Echo: {prompt}"),
            _ => "ok".to_string(),
        };
        let v = json!({
            "id":"chatcmpl-fake","object":"chat.completion","created":0,"model":model,
            "choices":[{"index":0,"message":{"role":"assistant","content":text},"finish_reason":"stop"}],
            "usage": usage(),
        });
        return respond_json(sock, 200, &v).await;
    }
    let mut sse = Sse { sock, model };
    sse.start().await?;
    sse.chunk(json!({"role":"assistant","content":""}), None)
        .await?;
    match sc {
        Scenario::Title => {
            sse.text("content", TITLE, 2, 0).await?;
            sse.finish("stop").await
        }
        Scenario::ToolFollowup(o) => {
            sse.text("content", &format!("Tool finished: {o}"), 3, 0)
                .await?;
            sse.finish("stop").await
        }
        Scenario::Plain { prompt, delay_ms } => {
            sse.text(
                "reasoning_content",
                &format!("Thinking about: {prompt}"),
                4,
                delay_ms,
            )
            .await?;
            sse.text("content", &format!("Echo: {prompt}"), 5, delay_ms)
                .await?;
            sse.finish("stop").await
        }
        Scenario::Write { path, content } => {
            sse.tool_call("write", &json!({"filePath": path, "content": content}))
                .await
        }
        Scenario::Bash { command } => {
            sse.tool_call(
                "bash",
                &json!({"command": command, "description": "Run a command"}),
            )
            .await
        }
        Scenario::Long {
            n,
            delay_ms,
            markup,
        } => {
            for i in 0..n {
                // A line break every 10 chunks, like real prose (about 90 characters a line).
                let sep = if i % 10 == 9 { "\n" } else { " " };
                let word = match (markup, i % 7) {
                    (true, 3) => format!("**chunk-{i}**"),
                    (true, 5) => format!("`chunk-{i}`"),
                    _ => format!("chunk-{i}"),
                };
                sse.chunk(json!({ "content": format!("{word}{sep}") }), None)
                    .await?;
                if delay_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                }
            }
            sse.finish("stop").await
        }
        Scenario::Stall { secs } => {
            sse.text("content", "Starting, then stalling", 3, 0).await?;
            tokio::time::sleep(Duration::from_secs(secs)).await;
            sse.finish("stop").await
        }
        Scenario::Tool { name, args } => sse.tool_call(&name, &args).await,
        Scenario::Error => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_parsing() {
        let (n, a, r) = marker("hello [fake:bash echo hi] there").unwrap();
        assert_eq!(
            (n.as_str(), a.as_str(), r.as_str()),
            ("bash", "echo hi", "hello  there")
        );
        let (n, a, r) = marker("[fake:error]").unwrap();
        assert_eq!((n.as_str(), a.as_str(), r.as_str()), ("error", "", ""));
        assert!(marker("no marker").is_none());
    }

    #[test]
    fn pieces_cover_text() {
        let p = pieces("hello world", 4);
        assert!(p.len() >= 3);
        assert_eq!(p.concat(), "hello world");
        assert_eq!(pieces("ä€b", 10).concat(), "ä€b");
    }
}
