//! Translation of the CLIs' JSON-lines output into transcript changes. Pure: one line in, a
//! few [`Out`]s back, so recorded outputs are replayed in unit tests.
//!
//! * [`StreamJson`]: the `stream-json` format of Claude Code, which qwen-code also speaks
//!   (`system/init`, `assistant`/`user` messages with content blocks, optional `stream_event`
//!   partial blocks, and a final `result`).

use std::collections::{HashMap, VecDeque};

use serde_json::{json, Value};

use crate::model::{ItemChange, ItemKind};

/// What one output line means.
#[derive(Clone, Debug, PartialEq)]
pub enum Out {
    Change(ItemChange),
    /// The CLI's own session id (for resuming the next turn).
    Session(String),
    /// The CLI reported the end of the turn; `Some` is a failure message.
    Finished(Option<String>),
}

/// A parser of one CLI's output for one turn.
pub trait LineParser: Send {
    /// Parses one line. `Err` means the line is not the JSON the CLI documents.
    fn line(&mut self, line: &str, out: &mut Vec<Out>) -> Result<(), String>;
}

fn parse_json(line: &str) -> Result<Value, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON ({e})"))?;
    if !v.is_object() {
        return Err("not a JSON object".into());
    }
    Ok(v)
}

fn one_line(s: &str) -> String {
    let first = s.lines().next().unwrap_or_default();
    let mut t: String = first.chars().take(120).collect();
    if t.len() < first.len() || s.lines().nth(1).is_some() {
        t.push('…');
    }
    t
}

/// A one-line summary of a tool's input (command, path, pattern...).
fn input_summary(input: &Value) -> String {
    for k in [
        "command",
        "file_path",
        "filePath",
        "absolute_path",
        "path",
        "pattern",
        "url",
        "description",
    ] {
        if let Some(s) = input.get(k).and_then(Value::as_str) {
            return one_line(s);
        }
    }
    String::new()
}

fn tool_change(
    part_id: &str,
    name: &str,
    call_id: &str,
    input: &Value,
    status: &str,
    output: &Value,
) -> Out {
    let summary = input_summary(input);
    let content = if summary.is_empty() {
        name.to_string()
    } else {
        format!("{name}: {summary}")
    };
    let summary = Value::from(summary);
    let (output, error) = if status == "error" {
        (Value::Null, output.clone())
    } else {
        (output.clone(), Value::Null)
    };
    Out::Change(ItemChange::Upsert {
        part_id: part_id.to_string(),
        kind: ItemKind::Tool,
        content,
        meta: json!({
            "tool": name,
            "call_id": call_id,
            "status": status,
            "title": Value::Null,
            "summary": summary,
            "input": input,
            "output": output,
            "error": error,
        }),
    })
}

/// Text of a tool result's `content` (a string, or a list of `{type:"text", text}`).
/// A `result` line's `usage` (Anthropic's counts; input excludes the cache) as the
/// `step-finish` meta opencode steps have, so usage is shown and summed alike.
fn result_usage(u: &Value, cost: Option<&Value>, cache_in_input: bool) -> Value {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let input = if cache_in_input {
        n("input_tokens").saturating_sub(n("cache_read_input_tokens"))
    } else {
        n("input_tokens")
    };
    json!({
        "type": "step-finish",
        "reason": "stop",
        "tokens": {
            "input": input,
            "output": n("output_tokens"),
            "reasoning": 0,
            "cache": {"read": n("cache_read_input_tokens"), "write": n("cache_creation_input_tokens")},
        },
        "cost": cost.cloned().unwrap_or(Value::Null),
    })
}

fn result_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The Claude Code / qwen-code `stream-json` format.
pub struct StreamJson {
    /// Part ids are unique per turn: `{prefix}-{n}`.
    prefix: String,
    next: usize,
    /// Blocks streamed (partial messages) since the last full `assistant` message, oldest
    /// first: the full message's blocks take over their part ids.
    streamed: VecDeque<(String, ItemKind)>,
    /// Streamed block index -> part id, for the deltas.
    open: HashMap<u64, String>,
    /// Tool calls by id: (name, input).
    tools: HashMap<String, (String, Value)>,
    session: Option<String>,
    /// `usage.input_tokens` includes cache reads (qwen), unlike Anthropic's.
    cache_in_input: bool,
}

impl StreamJson {
    pub fn new(prefix: impl Into<String>) -> StreamJson {
        StreamJson {
            prefix: prefix.into(),
            next: 0,
            streamed: VecDeque::new(),
            open: HashMap::new(),
            tools: HashMap::new(),
            session: None,
            cache_in_input: false,
        }
    }

    pub fn input_includes_cache(mut self) -> StreamJson {
        self.cache_in_input = true;
        self
    }

    fn new_id(&mut self) -> String {
        self.next += 1;
        format!("{}-{}", self.prefix, self.next)
    }

    fn block_kind(ty: &str) -> Option<ItemKind> {
        match ty {
            "text" => Some(ItemKind::Text),
            "thinking" | "reasoning" => Some(ItemKind::Reasoning),
            _ => None,
        }
    }

    fn stream_event(&mut self, ev: &Value, out: &mut Vec<Out>) {
        let ty = ev.get("type").and_then(Value::as_str).unwrap_or_default();
        let index = ev.get("index").and_then(Value::as_u64).unwrap_or(0);
        match ty {
            "content_block_start" => {
                let block_ty = ev
                    .pointer("/content_block/type")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if let Some(kind) = Self::block_kind(block_ty) {
                    let id = self.new_id();
                    self.streamed.push_back((id.clone(), kind));
                    self.open.insert(index, id.clone());
                    out.push(Out::Change(ItemChange::Upsert {
                        part_id: id,
                        kind,
                        content: String::new(),
                        meta: json!({}),
                    }));
                }
            }
            "content_block_delta" => {
                let delta = ev.get("delta").unwrap_or(&Value::Null);
                let text = delta
                    .get("text")
                    .or_else(|| delta.get("thinking"))
                    .and_then(Value::as_str);
                if let (Some(id), Some(text)) = (self.open.get(&index), text) {
                    if !text.is_empty() {
                        out.push(Out::Change(ItemChange::Append {
                            part_id: id.clone(),
                            delta: text.to_string(),
                        }));
                    }
                }
            }
            "content_block_stop" => {
                self.open.remove(&index);
            }
            _ => {}
        }
    }

    fn assistant(&mut self, msg: &Value, out: &mut Vec<Out>) {
        let blocks = msg
            .get("content")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for b in &blocks {
            let ty = b.get("type").and_then(Value::as_str).unwrap_or_default();
            if let Some(kind) = Self::block_kind(ty) {
                let text = b
                    .get("text")
                    .or_else(|| b.get("thinking"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let id = match self.streamed.front() {
                    Some((_, k)) if *k == kind => self
                        .streamed
                        .pop_front()
                        .map(|(id, _)| id)
                        .unwrap_or_default(),
                    _ => self.new_id(),
                };
                if text.is_empty() && kind == ItemKind::Reasoning {
                    continue;
                }
                out.push(Out::Change(ItemChange::Upsert {
                    part_id: id,
                    kind,
                    content: text,
                    meta: json!({}),
                }));
            } else if ty == "tool_use" {
                let call = b.get("id").and_then(Value::as_str).unwrap_or_default();
                let name = b.get("name").and_then(Value::as_str).unwrap_or("tool");
                let input = b.get("input").cloned().unwrap_or(Value::Null);
                self.tools
                    .insert(call.to_string(), (name.to_string(), input.clone()));
                out.push(tool_change(
                    &format!("{}-tool-{call}", self.prefix),
                    name,
                    call,
                    &input,
                    "running",
                    &Value::Null,
                ));
            }
        }
        self.streamed.clear();
        self.open.clear();
    }

    fn user(&mut self, msg: &Value, out: &mut Vec<Out>) {
        let Some(blocks) = msg.get("content").and_then(Value::as_array) else {
            return;
        };
        for b in blocks {
            if b.get("type").and_then(Value::as_str) != Some("tool_result") {
                continue;
            }
            let call = b
                .get("tool_use_id")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let (name, input) = self
                .tools
                .get(call)
                .cloned()
                .unwrap_or_else(|| ("tool".to_string(), Value::Null));
            let is_error = b.get("is_error").and_then(Value::as_bool) == Some(true);
            let text = result_text(b.get("content").unwrap_or(&Value::Null));
            out.push(tool_change(
                &format!("{}-tool-{call}", self.prefix),
                &name,
                call,
                &input,
                if is_error { "error" } else { "completed" },
                &Value::String(text),
            ));
        }
    }
}

impl LineParser for StreamJson {
    fn line(&mut self, line: &str, out: &mut Vec<Out>) -> Result<(), String> {
        let v = parse_json(line)?;
        if let Some(s) = v.get("session_id").and_then(Value::as_str) {
            if self.session.as_deref() != Some(s) {
                self.session = Some(s.to_string());
                out.push(Out::Session(s.to_string()));
            }
        }
        match v.get("type").and_then(Value::as_str).unwrap_or_default() {
            "stream_event" => {
                if let Some(ev) = v.get("event") {
                    self.stream_event(ev, out);
                }
            }
            "assistant" => {
                if let Some(m) = v.get("message") {
                    self.assistant(m, out);
                }
            }
            "user" => {
                if let Some(m) = v.get("message") {
                    self.user(m, out);
                }
            }
            "result" => {
                let failed = v.get("is_error").and_then(Value::as_bool) == Some(true)
                    || v.get("subtype")
                        .and_then(Value::as_str)
                        .is_some_and(|s| s.starts_with("error"));
                let msg = failed.then(|| {
                    v.pointer("/error/message")
                        .and_then(Value::as_str)
                        .or_else(|| v.get("result").and_then(Value::as_str))
                        .or_else(|| v.get("subtype").and_then(Value::as_str))
                        .unwrap_or("the agent reported an error")
                        .to_string()
                });
                if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
                    let id = self.new_id();
                    out.push(Out::Change(ItemChange::Upsert {
                        part_id: id,
                        kind: ItemKind::Info,
                        content: String::new(),
                        meta: result_usage(u, v.get("total_cost_usd"), self.cache_in_input),
                    }));
                }
                out.push(Out::Finished(msg));
            }
            // system/init (session id handled above), and anything newer: ignored.
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(p: &mut dyn LineParser, text: &str) -> Vec<Out> {
        let mut out = Vec::new();
        for l in text.lines().filter(|l| !l.trim().is_empty()) {
            p.line(l, &mut out).expect("parses");
        }
        out
    }

    /// Applies the changes like the UI does: the final content of each part, in order.
    fn items(out: &[Out]) -> Vec<(ItemKind, String)> {
        let mut order: Vec<String> = Vec::new();
        let mut items: HashMap<String, (ItemKind, String)> = HashMap::new();
        for o in out {
            match o {
                Out::Change(ItemChange::Upsert {
                    part_id,
                    kind,
                    content,
                    ..
                }) => {
                    if !items.contains_key(part_id) {
                        order.push(part_id.clone());
                    }
                    items.insert(part_id.clone(), (*kind, content.clone()));
                }
                Out::Change(ItemChange::Append { part_id, delta }) => {
                    if let Some(i) = items.get_mut(part_id) {
                        i.1.push_str(delta);
                    }
                }
                _ => {}
            }
        }
        order
            .iter()
            .filter_map(|id| items.get(id).cloned())
            .collect()
    }

    #[test]
    fn claude_style_lines_with_partials_keep_one_item_per_block() {
        let text = r#"
{"type":"system","subtype":"init","session_id":"s1"}
{"type":"stream_event","session_id":"s1","event":{"type":"message_start","message":{"id":"m1"}}}
{"type":"stream_event","session_id":"s1","event":{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}}
{"type":"stream_event","session_id":"s1","event":{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}}
{"type":"stream_event","session_id":"s1","event":{"type":"content_block_stop","index":0}}
{"type":"stream_event","session_id":"s1","event":{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}}
{"type":"stream_event","session_id":"s1","event":{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Hel"}}}
{"type":"stream_event","session_id":"s1","event":{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"lo"}}}
{"type":"assistant","session_id":"s1","message":{"id":"m1","content":[{"type":"thinking","thinking":"hmm"},{"type":"text","text":"Hello"},{"type":"tool_use","id":"t1","name":"Bash","input":{"command":"ls"}}]}}
{"type":"user","session_id":"s1","message":{"content":[{"type":"tool_result","tool_use_id":"t1","content":"a.txt"}]}}
{"type":"assistant","session_id":"s1","message":{"id":"m2","content":[{"type":"text","text":"Done."}]}}
{"type":"result","subtype":"success","is_error":false,"session_id":"s1","result":"Done."}
"#;
        let mut p = StreamJson::new("t");
        let out = run(&mut p, text);
        assert_eq!(out[0], Out::Session("s1".into()));
        assert_eq!(
            items(&out),
            vec![
                (ItemKind::Reasoning, "hmm".into()),
                (ItemKind::Text, "Hello".into()),
                (ItemKind::Tool, "Bash: ls".into()),
                (ItemKind::Text, "Done.".into()),
            ]
        );
        assert_eq!(out.last(), Some(&Out::Finished(None)));
        let tool_done = out.iter().any(|o| matches!(o, Out::Change(ItemChange::Upsert { kind: ItemKind::Tool, meta, .. }) if meta["status"] == "completed" && meta["output"] == "a.txt"));
        assert!(tool_done, "{out:?}");
    }

    #[test]
    fn a_result_with_usage_becomes_a_step_item() {
        let mut p = StreamJson::new("t");
        let out = run(
            &mut p,
            r#"{"type":"result","subtype":"success","is_error":false,"result":"ok","total_cost_usd":0.012,"usage":{"input_tokens":900,"output_tokens":120,"cache_read_input_tokens":300,"cache_creation_input_tokens":50}}"#,
        );
        let Some(Out::Change(ItemChange::Upsert { kind, meta, .. })) = out.first() else {
            panic!("{out:?}");
        };
        assert_eq!(*kind, ItemKind::Info);
        let u = crate::model::usage::Usage::of_step(meta).expect("a step");
        assert_eq!((u.tokens_in(), u.tokens_out(), u.cost), (1250, 120, 0.012));
        assert_eq!(out.last(), Some(&Out::Finished(None)));
    }

    #[test]
    fn error_results_and_garbage() {
        let mut p = StreamJson::new("t");
        let out = run(
            &mut p,
            r#"{"type":"result","subtype":"error_during_execution","is_error":true,"error":{"message":"boom"}}"#,
        );
        assert_eq!(out, vec![Out::Finished(Some("boom".into()))]);
        let mut out = Vec::new();
        assert!(p.line("Loaded cached credentials.", &mut out).is_err());
        assert!(p.line("[1,2]", &mut out).is_err());
    }
}

#[cfg(test)]
mod random_tests {
    use super::*;
    use crate::agent::fuzz::{for_seeds, mutate, mutate_line, random_value};

    const FIXTURES: &[&str] = &[
        include_str!("../../../tests/data/cli/claude_tool.jsonl"),
        include_str!("../../../tests/data/cli/qwen_error.jsonl"),
        include_str!("../../../tests/data/cli/qwen_text.jsonl"),
        include_str!("../../../tests/data/cli/qwen_tool.jsonl"),
    ];

    #[test]
    fn mutated_truncated_and_garbage_lines_do_not_panic() {
        let lines: Vec<&str> = FIXTURES.iter().flat_map(|f| f.lines()).collect();
        assert!(lines.len() > 20, "{}", lines.len());
        for_seeds(400, |rng| {
            let mut parsers: Vec<Box<dyn LineParser>> = vec![Box::new(StreamJson::new("p"))];
            let mut out = Vec::new();
            for l in &lines {
                let line = match rng.below(6) {
                    0 => mutate_line(l, rng),
                    1 | 2 => match serde_json::from_str::<Value>(l) {
                        Ok(v) => mutate(&v, rng).to_string(),
                        Err(_) => l.to_string(),
                    },
                    3 if rng.chance(10) => random_value(rng, 0).to_string(),
                    _ => l.to_string(),
                };
                for p in parsers.iter_mut() {
                    let _ = p.line(&line, &mut out);
                }
            }
        });
    }
}
