//! `session/update` notifications into transcript changes.
//!
//! Chunks of one kind (message, thought, the user's own prompt when a session is replayed)
//! grow one item until another kind comes in between or the agent names a new message id.
//! Tool calls are items keyed by their call id, updated in place (ACP updates carry only the
//! fields that changed, so the last state is kept and merged). A plan is one checklist item;
//! usage (`usage_update`, or qwen's `_meta.usage` on a chunk) becomes a `step-finish` item the
//! usage display reads.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use crate::model::{ItemChange, ItemKind};

/// The translation state of one chat.
pub struct Translator {
    prefix: String,
    n: u64,
    /// The item chunks currently go to: (kind, message id, part id).
    open: Option<(ItemKind, Option<String>, String)>,
    tools: HashMap<String, Map<String, Value>>,
    /// Terminal id -> the tool call showing it.
    terminals: HashMap<String, String>,
    /// Terminal id -> its output so far.
    term_out: HashMap<String, String>,
    /// The agent's own commands (`available_commands_update`): (name, description).
    pub commands: Vec<(String, String)>,
}

impl Translator {
    pub fn new(prefix: String) -> Translator {
        Translator {
            prefix,
            n: 0,
            open: None,
            tools: HashMap::new(),
            terminals: HashMap::new(),
            term_out: HashMap::new(),
            commands: Vec::new(),
        }
    }

    fn next_id(&mut self, what: &str) -> String {
        self.n += 1;
        format!("{}-{what}-{}", self.prefix, self.n)
    }

    /// A new turn: chunks start a new item.
    pub fn new_turn(&mut self) {
        self.open = None;
    }

    /// One `session/update` (its `update` object) into changes.
    pub fn update(&mut self, u: &Value, out: &mut Vec<ItemChange>) {
        let kind = u.get("sessionUpdate").and_then(Value::as_str).unwrap_or("");
        match kind {
            "agent_message_chunk" => self.chunk(ItemKind::Text, u, out),
            "agent_thought_chunk" => self.chunk(ItemKind::Reasoning, u, out),
            "user_message_chunk" => self.chunk(ItemKind::User, u, out),
            "tool_call" | "tool_call_update" => {
                self.open = None;
                self.tool(u, out);
            }
            "plan" => {
                self.open = None;
                out.push(plan(&format!("{}-plan", self.prefix), u));
            }
            "usage_update" => {}
            "available_commands_update" => {
                self.commands = u
                    .get("availableCommands")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|c| {
                                let name = c.get("name")?.as_str()?.to_string();
                                let desc = c
                                    .get("description")
                                    .and_then(Value::as_str)
                                    .unwrap_or("")
                                    .to_string();
                                Some((name, desc))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
            }
            other => tracing::debug!(target: "acp", "session update not shown: {other}"),
        }
        // qwen reports each model call's usage on an (empty) chunk.
        if let Some(usage) = u.pointer("/_meta/usage") {
            let id = self.next_id("step");
            out.push(step(id, usage));
        }
    }

    fn chunk(&mut self, kind: ItemKind, u: &Value, out: &mut Vec<ItemChange>) {
        let text = content_text(u.get("content").unwrap_or(&Value::Null));
        if text.is_empty() {
            return;
        }
        let msg = u
            .get("messageId")
            .and_then(Value::as_str)
            .map(str::to_string);
        match &self.open {
            Some((k, m, part)) if *k == kind && (msg.is_none() || *m == msg) => {
                out.push(ItemChange::Append {
                    part_id: part.clone(),
                    delta: text,
                });
            }
            _ => {
                let part = self.next_id(kind.as_str());
                out.push(ItemChange::Upsert {
                    part_id: part.clone(),
                    kind,
                    content: text,
                    meta: json!({}),
                });
                self.open = Some((kind, msg, part));
            }
        }
    }

    fn tool(&mut self, u: &Value, out: &mut Vec<ItemChange>) {
        let Some(id) = u.get("toolCallId").and_then(Value::as_str) else {
            return;
        };
        let state = self.tools.entry(id.to_string()).or_default();
        if let Value::Object(m) = u {
            for (k, v) in m {
                if k != "sessionUpdate" && !v.is_null() {
                    state.insert(k.clone(), v.clone());
                }
            }
        }
        for c in state
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(t) = c.get("terminalId").and_then(Value::as_str) {
                self.terminals.insert(t.to_string(), id.to_string());
            }
        }
        out.push(tool_item(&self.prefix, id, state, &self.term_out));
    }

    /// A terminal's output grew: the tool call showing it, re-rendered.
    pub fn terminal_output(&mut self, terminal: &str, output: &str) -> Option<ItemChange> {
        self.term_out
            .insert(terminal.to_string(), output.to_string());
        let call = self.terminals.get(terminal)?;
        let state = self.tools.get(call)?;
        Some(tool_item(&self.prefix, call, state, &self.term_out))
    }

    /// Running tool calls of an ended turn: shown as stopped.
    pub fn end_turn(&mut self, out: &mut Vec<ItemChange>) {
        self.open = None;
        for (id, state) in &mut self.tools {
            let st = state.get("status").and_then(Value::as_str).unwrap_or("");
            if st == "pending" || st == "in_progress" {
                state.insert("status".into(), json!("failed"));
                out.push(tool_item(&self.prefix, id, state, &self.term_out));
            }
        }
        self.tools.clear();
        self.terminals.clear();
        self.term_out.clear();
    }
}

/// The text of a content block (text, a resource's text, or a resource link's name).
fn content_text(c: &Value) -> String {
    match c.get("type").and_then(Value::as_str) {
        Some("text") => c.get("text").and_then(Value::as_str).unwrap_or("").into(),
        Some("resource") => c
            .pointer("/resource/text")
            .and_then(Value::as_str)
            .unwrap_or("")
            .into(),
        Some("resource_link") => c
            .get("uri")
            .and_then(Value::as_str)
            .map(|u| format!("[{u}]"))
            .unwrap_or_default(),
        Some("image") => "[image]".into(),
        _ => String::new(),
    }
}

fn tool_item(
    prefix: &str,
    id: &str,
    s: &Map<String, Value>,
    terminals: &HashMap<String, String>,
) -> ItemChange {
    let get = |k: &str| s.get(k).cloned().unwrap_or(Value::Null);
    let title = s.get("title").and_then(Value::as_str).unwrap_or("tool");
    let kind = s.get("kind").and_then(Value::as_str).unwrap_or("other");
    let status = match s.get("status").and_then(Value::as_str).unwrap_or("pending") {
        "in_progress" => "running",
        "failed" => "error",
        other => other,
    };
    // Tool content: text, diffs (as unified-ish text), terminals (their output).
    let mut text = Vec::new();
    for c in s
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match c.get("type").and_then(Value::as_str) {
            Some("content") => text.push(content_text(c.get("content").unwrap_or(&Value::Null))),
            Some("diff") => text.push(diff_text(c)),
            Some("terminal") => {
                let t = c.get("terminalId").and_then(Value::as_str).unwrap_or("");
                if let Some(o) = terminals.get(t) {
                    text.push(o.clone());
                }
            }
            _ => {}
        }
    }
    let body = text.join("\n");
    let (output, error) = if status == "error" {
        (Value::Null, json!(body))
    } else {
        (json!(body), Value::Null)
    };
    // Titles like "bash" are the tool; opencode's later titles are the command.
    let tool = match kind {
        "execute" => "bash",
        "edit" => "edit",
        "read" => "read",
        "search" => "grep",
        "fetch" => "webfetch",
        _ => title,
    };
    ItemChange::Upsert {
        part_id: format!("{prefix}-tool-{id}"),
        kind: ItemKind::Tool,
        content: format!("{tool}: {title}"),
        meta: json!({
            "tool": tool,
            "call_id": id,
            "status": status,
            "title": title,
            "summary": Value::Null,
            "input": get("rawInput"),
            "output": output,
            "error": error,
            "locations": get("locations"),
        }),
    }
}

fn diff_text(c: &Value) -> String {
    let path = c.get("path").and_then(Value::as_str).unwrap_or("");
    let old = c.get("oldText").and_then(Value::as_str).unwrap_or("");
    let new = c.get("newText").and_then(Value::as_str).unwrap_or("");
    let mut s = format!("--- {path}\n+++ {path}\n");
    for l in old.lines() {
        s.push_str(&format!("-{l}\n"));
    }
    for l in new.lines() {
        s.push_str(&format!("+{l}\n"));
    }
    s
}

fn plan(part_id: &str, u: &Value) -> ItemChange {
    let mut lines = vec!["Plan:".to_string()];
    for e in u
        .get("entries")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let mark = match e.get("status").and_then(Value::as_str) {
            Some("completed") => "[x]",
            Some("in_progress") => "[~]",
            _ => "[ ]",
        };
        let text = e.get("content").and_then(Value::as_str).unwrap_or("");
        lines.push(format!("- {mark} {text}"));
    }
    ItemChange::Upsert {
        part_id: part_id.to_string(),
        kind: ItemKind::Info,
        content: lines.join("\n"),
        meta: json!({"plan": u.get("entries").cloned().unwrap_or(Value::Null)}),
    }
}

/// ACP usage (`inputTokens`...) as a `step-finish` item (`model::usage::Usage::of_step`).
pub fn step(part_id: String, u: &Value) -> ItemChange {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let cached = n("cachedReadTokens");
    // ACP's inputTokens include cached reads; ours count fresh input only.
    let input = n("inputTokens").saturating_sub(cached);
    let thought = n("thoughtTokens");
    let output = n("outputTokens").saturating_sub(thought);
    let tokens = json!({"input": input, "output": output, "reasoning": thought,
        "cache": {"read": cached, "write": n("cachedWriteTokens")}});
    let used = input + cached + output + thought;
    ItemChange::Upsert {
        part_id,
        kind: ItemKind::Info,
        content: format!("{used} tokens"),
        meta: json!({"type": "step-finish", "tokens": tokens, "cost": 0.0}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::transcript::Transcript;

    fn run(t: &mut Translator, updates: &[Value]) -> Vec<(ItemKind, String)> {
        let mut tr = Transcript::default();
        for u in updates {
            let mut out = Vec::new();
            t.update(u, &mut out);
            for c in out {
                tr.apply(c);
            }
        }
        tr.items().map(|i| (i.kind, i.content.clone())).collect()
    }

    #[test]
    fn chunks_tools_and_plans_become_items() {
        let mut t = Translator::new("acp-1".into());
        let items = run(
            &mut t,
            &[
                json!({"sessionUpdate":"agent_thought_chunk","content":{"type":"text","text":"Think"}}),
                json!({"sessionUpdate":"agent_thought_chunk","content":{"type":"text","text":"ing"}}),
                json!({"sessionUpdate":"agent_message_chunk","messageId":"m1","content":{"type":"text","text":"Hel"}}),
                json!({"sessionUpdate":"agent_message_chunk","messageId":"m1","content":{"type":"text","text":"lo"}}),
                json!({"sessionUpdate":"tool_call","toolCallId":"c1","title":"bash","kind":"execute","status":"pending"}),
                json!({"sessionUpdate":"tool_call_update","toolCallId":"c1","status":"completed","title":"echo hi","content":[{"type":"content","content":{"type":"text","text":"hi\n"}}]}),
                json!({"sessionUpdate":"plan","entries":[{"content":"a","status":"completed","priority":"high"},{"content":"b","status":"pending","priority":"low"}]}),
                json!({"sessionUpdate":"agent_message_chunk","messageId":"m2","content":{"type":"text","text":"Done"}}),
            ],
        );
        assert_eq!(
            items,
            vec![
                (ItemKind::Reasoning, "Thinking".into()),
                (ItemKind::Text, "Hello".into()),
                (ItemKind::Tool, "bash: echo hi".into()),
                (ItemKind::Info, "Plan:\n- [x] a\n- [ ] b".into()),
                (ItemKind::Text, "Done".into()),
            ]
        );
    }

    #[test]
    fn usage_in_meta_is_a_step() {
        let mut t = Translator::new("p".into());
        let mut out = Vec::new();
        t.update(
            &json!({"sessionUpdate":"agent_message_chunk","content":{"type":"text","text":""},"_meta":{"usage":{"inputTokens":1200,"outputTokens":340,"thoughtTokens":40,"cachedReadTokens":200}}}),
            &mut out,
        );
        let [ItemChange::Upsert { meta, .. }] = &out[..] else {
            panic!("{out:?}")
        };
        let u = crate::model::usage::Usage::of_step(meta).expect("a step");
        assert_eq!(
            (u.tokens_in(), u.tokens_out(), u.cache_read),
            (1200, 340, 200)
        );
    }
}
