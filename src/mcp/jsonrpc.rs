//! The MCP messages boo's server understands, as pure functions over JSON-RPC 2.0 values:
//! `initialize`, `ping`, `tools/list`, `tools/call` (`boo_new_task`, `boo_task_status`), the
//! client's answer to our `roots/list` (how we learn which worktree called), notifications.

use std::path::PathBuf;

use serde_json::{json, Value as Json};

/// Versions of the protocol we speak; a client asking for another gets the newest.
const VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

pub const NEW_TASK: &str = "boo_new_task";
pub const TASK_STATUS: &str = "boo_task_status";

/// JSON-RPC error codes.
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;

/// A tool call, decoded.
#[derive(Clone, Debug, PartialEq)]
pub enum Tool {
    NewTask {
        prompt: String,
        agent: Option<String>,
        model: Option<String>,
        /// `where: "session"`: a new session (own worktree); else a chat of the caller's.
        new_session: bool,
    },
    Status {
        task: i64,
    },
}

/// What one incoming message asks of the server.
#[derive(Debug, PartialEq)]
pub enum Incoming {
    /// Answer this now.
    Reply(Json),
    /// `initialize`: answer this, and give the client a session id.
    Initialize(Json),
    /// A notification (or an answer nobody waits for): HTTP 202, no body.
    Accepted,
    /// The client answered a request of ours (`roots/list`).
    ClientAnswer { id: String, result: Option<Json> },
    /// A tool to run; its bad arguments are the tool's error (`Err`), for the model to read.
    Call {
        id: Json,
        tool: Result<Tool, String>,
    },
}

pub fn error(id: Json, code: i64, message: &str) -> Json {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

pub fn result(id: Json, result: Json) -> Json {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// A `tools/call` result: one text, flagged as an error when the tool failed.
pub fn tool_result(id: Json, text: &str, is_error: bool) -> Json {
    result(
        id,
        json!({"content": [{"type": "text", "text": text}], "isError": is_error}),
    )
}

pub fn parse_error(detail: &str) -> Json {
    error(Json::Null, PARSE_ERROR, &format!("not JSON: {detail}"))
}

/// Our `roots/list` request to the client.
pub fn roots_request(id: &str) -> Json {
    json!({"jsonrpc": "2.0", "id": id, "method": "roots/list", "params": {}})
}

/// The first `file://` root of a `roots/list` result, as a path.
pub fn first_root(result: &Json) -> Option<PathBuf> {
    let uri = result
        .get("roots")?
        .as_array()?
        .first()?
        .get("uri")?
        .as_str()?;
    let path = uri.strip_prefix("file://")?;
    Some(PathBuf::from(percent_decode(path)))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn tools() -> Json {
    json!({"tools": [
        {
            "name": NEW_TASK,
            "description": "Hand a sub-task to a new boo chat that runs it on its own. where = \"chat\" (default): a new chat in this session, sharing this worktree (its edits land beside yours); where = \"session\": a new session with its own worktree and branch. Returns the task id at once; follow it with boo_task_status.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "prompt": {"type": "string", "description": "What the new chat should do: a complete instruction."},
                    "agent": {"type": "string", "description": "Agent to run it (default opencode)."},
                    "model": {"type": "string", "description": "provider/model (default: the agent's own)."},
                    "where": {"type": "string", "enum": ["chat", "session"]}
                },
                "required": ["prompt"]
            }
        },
        {
            "name": TASK_STATUS,
            "description": "The state of a task started with boo_new_task (queued, running, done, failed, aborted) and its last answer.",
            "inputSchema": {
                "type": "object",
                "properties": {"task": {"type": "integer", "description": "The id boo_new_task returned."}},
                "required": ["task"]
            }
        }
    ]})
}

fn opt_str(args: &Json, key: &str) -> Result<Option<String>, String> {
    match args.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.trim().to_string())),
        Some(v) => Err(format!("'{key}' must be a string, got {v}")),
    }
}

fn decode_tool(name: &str, args: &Json) -> Option<Result<Tool, String>> {
    Some(match name {
        NEW_TASK => (|| {
            let prompt = opt_str(args, "prompt")?.ok_or("'prompt' is required")?;
            let new_session = match opt_str(args, "where")?.as_deref() {
                None | Some("chat") => false,
                Some("session") => true,
                Some(w) => return Err(format!("'where' is \"chat\" or \"session\", got \"{w}\"")),
            };
            Ok(Tool::NewTask {
                prompt,
                agent: opt_str(args, "agent")?,
                model: opt_str(args, "model")?,
                new_session,
            })
        })(),
        TASK_STATUS => match args.get("task") {
            Some(t) => t
                .as_i64()
                .or_else(|| t.as_str().and_then(|s| s.trim().parse().ok()))
                .map(|task| Tool::Status { task })
                .ok_or_else(|| format!("'task' must be a task id, got {t}")),
            None => Err("'task' is required".into()),
        },
        _ => return None,
    })
}

/// Decodes one message (not a batch).
pub fn handle(msg: &Json) -> Incoming {
    let id = msg.get("id").cloned();
    let Some(method) = msg.get("method").and_then(Json::as_str) else {
        // An answer to our request, or nothing we know.
        return match (id, msg.get("result"), msg.get("error")) {
            (Some(id), result, error) if result.is_some() || error.is_some() => {
                Incoming::ClientAnswer {
                    id: id
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| id.to_string()),
                    result: result.cloned(),
                }
            }
            (Some(id), ..) => Incoming::Reply(error(id, INVALID_REQUEST, "no method")),
            (None, ..) => Incoming::Accepted,
        };
    };
    let Some(id) = id.filter(|i| !i.is_null()) else {
        return Incoming::Accepted; // notifications/initialized, cancelled...
    };
    let params = msg.get("params").cloned().unwrap_or(Json::Null);
    match method {
        "initialize" => {
            let asked = params
                .get("protocolVersion")
                .and_then(Json::as_str)
                .unwrap_or_default();
            let version = VERSIONS
                .iter()
                .find(|v| **v == asked)
                .unwrap_or(&VERSIONS[0]);
            Incoming::Initialize(result(
                id,
                json!({
                    "protocolVersion": version,
                    "capabilities": {"tools": {"listChanged": false}},
                    "serverInfo": {"name": "boo", "version": crate::VERSION},
                    "instructions": "boo runs coding agents in git worktrees. boo_new_task hands a sub-task to a new chat; boo_task_status follows it."
                }),
            ))
        }
        "ping" => Incoming::Reply(result(id, json!({}))),
        "tools/list" => Incoming::Reply(result(id, tools())),
        "tools/call" => {
            let name = params
                .get("name")
                .and_then(Json::as_str)
                .unwrap_or_default();
            let args = params.get("arguments").cloned().unwrap_or(json!({}));
            match decode_tool(name, &args) {
                Some(tool) => Incoming::Call { id, tool },
                None => Incoming::Reply(error(
                    id,
                    INVALID_PARAMS,
                    &format!("unknown tool '{name}' ({NEW_TASK}, {TASK_STATUS})"),
                )),
            }
        }
        m => Incoming::Reply(error(
            id,
            METHOD_NOT_FOUND,
            &format!("method not found: {m}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initialize_answers_the_clients_version_or_the_newest() {
        let m = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{"roots":{}},"clientInfo":{"name":"opencode"}}});
        let Incoming::Initialize(r) = handle(&m) else {
            panic!("not initialize")
        };
        assert_eq!(r["id"], 0);
        assert_eq!(r["result"]["protocolVersion"], "2025-03-26");
        assert!(r["result"]["capabilities"]["tools"].is_object());
        let m = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"1999-01-01"}});
        let Incoming::Initialize(r) = handle(&m) else {
            panic!("not initialize")
        };
        assert_eq!(r["result"]["protocolVersion"], VERSIONS[0]);
    }

    #[test]
    fn tools_are_listed_with_their_schemas() {
        let Incoming::Reply(r) = handle(&json!({"jsonrpc":"2.0","id":"a","method":"tools/list"}))
        else {
            panic!("no reply")
        };
        let names: Vec<&str> = r["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, [NEW_TASK, TASK_STATUS]);
        assert_eq!(
            r["result"]["tools"][0]["inputSchema"]["required"],
            json!(["prompt"])
        );
    }

    #[test]
    fn tool_calls_are_decoded_and_bad_arguments_are_the_tools_error() {
        let call = |name: &str, args: Json| {
            handle(
                &json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":name,"arguments":args}}),
            )
        };
        assert_eq!(
            call(
                NEW_TASK,
                json!({"prompt":" do it ","where":"session","model":"a/b"})
            ),
            Incoming::Call {
                id: json!(7),
                tool: Ok(Tool::NewTask {
                    prompt: "do it".into(),
                    agent: None,
                    model: Some("a/b".into()),
                    new_session: true
                })
            }
        );
        let Incoming::Call { tool: Err(e), .. } = call(NEW_TASK, json!({"where":"chat"})) else {
            panic!("no error")
        };
        assert!(e.contains("'prompt' is required"), "{e}");
        let Incoming::Call { tool: Err(e), .. } =
            call(NEW_TASK, json!({"prompt":"x","where":"elsewhere"}))
        else {
            panic!("no error")
        };
        assert!(e.contains("\"chat\" or \"session\""), "{e}");
        assert_eq!(
            call(TASK_STATUS, json!({"task":"12"})),
            Incoming::Call {
                id: json!(7),
                tool: Ok(Tool::Status { task: 12 })
            }
        );
        let Incoming::Reply(r) = call("rm_rf", json!({})) else {
            panic!("no reply")
        };
        assert_eq!(r["error"]["code"], INVALID_PARAMS);
    }

    #[test]
    fn notifications_answers_and_unknown_methods() {
        assert_eq!(
            handle(&json!({"jsonrpc":"2.0","method":"notifications/initialized"})),
            Incoming::Accepted
        );
        assert_eq!(
            handle(&json!({"jsonrpc":"2.0","id":"boo-roots-1","result":{"roots":[]}})),
            Incoming::ClientAnswer {
                id: "boo-roots-1".into(),
                result: Some(json!({"roots":[]}))
            }
        );
        let Incoming::Reply(r) = handle(&json!({"jsonrpc":"2.0","id":3,"method":"resources/list"}))
        else {
            panic!("no reply")
        };
        assert_eq!(r["error"]["code"], METHOD_NOT_FOUND);
        let Incoming::Reply(r) = handle(&json!({"jsonrpc":"2.0","id":4,"method":"ping"})) else {
            panic!("no reply")
        };
        assert_eq!(r["result"], json!({}));
    }

    #[test]
    fn the_callers_root_is_a_decoded_path() {
        let r = json!({"roots":[{"uri":"file:///tmp/a%20b/wt%2Dx","name":"x"}]});
        assert_eq!(first_root(&r), Some(PathBuf::from("/tmp/a b/wt-x")));
        assert_eq!(first_root(&json!({"roots":[]})), None);
        assert_eq!(first_root(&json!({"roots":[{"uri":"http://x"}]})), None);
    }
}
