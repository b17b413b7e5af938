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
    /// This turn's last usage step: its part id and meta, grown by a later `usage_update`.
    step: Option<(String, Value)>,
    /// A `usage_update` no step of this turn has taken yet.
    pending: Option<Ctx>,
    /// The context window last reported; steps without a `usage_update` of their own keep it.
    window: u64,
    /// The session's cumulative cost last reported (ACP's cost is the session's total; ours is
    /// per step).
    session_cost: Option<f64>,
}

/// What a `usage_update` says: the context in use, its window, the cost since the last one.
#[derive(Clone, Copy, Debug, Default)]
struct Ctx {
    used: u64,
    size: u64,
    cost: f64,
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
            step: None,
            pending: None,
            window: 0,
            session_cost: None,
        }
    }

    fn next_id(&mut self, what: &str) -> String {
        self.n += 1;
        format!("{}-{what}-{}", self.prefix, self.n)
    }

    /// A new turn: chunks start a new item.
    pub fn new_turn(&mut self) {
        self.open = None;
        self.step = None;
    }

    /// A model call's token counts (ACP `inputTokens`...) as this turn's newest step; a
    /// `usage_update` that came first gives it the context.
    pub fn step(&mut self, usage: &Value) -> ItemChange {
        let id = self.next_id("step");
        let mut meta = step_meta(usage);
        meta["context_limit"] = json!(self.window);
        if let Some(c) = self.pending.take() {
            apply_ctx(&mut meta, c);
        }
        self.step = Some((id.clone(), meta.clone()));
        step_item(id, meta)
    }

    /// `usage_update`: the context and cost go onto this turn's last step, or wait for the next.
    fn usage(&mut self, u: &Value, out: &mut Vec<ItemChange>) {
        let c = self.ctx_of(u);
        self.window = c.size;
        match &mut self.step {
            Some((id, meta)) => {
                apply_ctx(meta, c);
                out.push(step_item(id.clone(), meta.clone()));
            }
            None => {
                let p = self.pending.get_or_insert_with(Ctx::default);
                p.cost += c.cost;
                (p.used, p.size) = (c.used, c.size);
            }
        }
    }

    /// The session's cost so far as told while a loaded session replays: later costs count
    /// from it.
    pub fn usage_baseline(&mut self, u: &Value) {
        if u.get("sessionUpdate").and_then(Value::as_str) == Some("usage_update") {
            self.ctx_of(u);
        }
    }

    fn ctx_of(&mut self, u: &Value) -> Ctx {
        let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
        let total = u.pointer("/cost/amount").and_then(Value::as_f64);
        let cost = match (total, self.session_cost) {
            (Some(t), Some(before)) => (t - before).max(0.0),
            (Some(t), None) => t,
            (None, _) => 0.0,
        };
        if total.is_some() {
            self.session_cost = total;
        }
        Ctx {
            used: n("used"),
            size: n("size"),
            cost,
        }
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
            "usage_update" => self.usage(u, out),
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
            let step = self.step(usage);
            out.push(step);
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
        // Usage told without a step's tokens: a step of its own, so context and cost show.
        if let Some(c) = self.pending.take() {
            let id = self.next_id("step");
            let mut meta = step_meta(&json!({}));
            apply_ctx(&mut meta, c);
            out.push(step_item(id, meta));
        }
        self.step = None;
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
    // A tool of no known kind is named by its title (goose: `developer__shell`): what it was
    // given says the rest.
    let detail = if tool == title {
        ["command", "path", "file_path", "url", "query"]
            .iter()
            .find_map(|k| s.get("rawInput")?.get(*k)?.as_str())
    } else {
        Some(title)
    };
    let content = match detail {
        Some(d) => format!("{tool}: {d}"),
        None => tool.to_string(),
    };
    ItemChange::Upsert {
        part_id: format!("{prefix}-tool-{id}"),
        kind: ItemKind::Tool,
        content,
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

/// ACP usage (`inputTokens`...) as the meta of a `step-finish` item
/// (`model::usage::Usage::of_step`).
fn step_meta(u: &Value) -> Value {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let cached = n("cachedReadTokens");
    // ACP's inputTokens include cached reads; ours count fresh input only.
    let input = n("inputTokens").saturating_sub(cached);
    let thought = n("thoughtTokens");
    let output = n("outputTokens").saturating_sub(thought);
    let tokens = json!({"input": input, "output": output, "reasoning": thought,
        "cache": {"read": cached, "write": n("cachedWriteTokens")}});
    json!({"type": "step-finish", "tokens": tokens, "cost": 0.0})
}

fn apply_ctx(meta: &mut Value, c: Ctx) {
    let cost = meta.get("cost").and_then(Value::as_f64).unwrap_or(0.0) + c.cost;
    meta["cost"] = json!(cost);
    if c.used > 0 {
        meta["context"] = json!(c.used);
    }
    if c.size > 0 {
        meta["context_limit"] = json!(c.size);
    }
}

fn step_item(part_id: String, meta: Value) -> ItemChange {
    let u = crate::model::usage::Usage::of_step(&meta).unwrap_or_default();
    ItemChange::Upsert {
        part_id,
        kind: ItemKind::Info,
        content: format!("{} tokens", u.tokens()),
        meta,
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

    fn totals(t: &mut Translator, updates: &[Value], end: bool) -> crate::model::usage::Usage {
        let mut tr = Transcript::default();
        let mut out = Vec::new();
        for u in updates {
            t.update(u, &mut out);
        }
        if end {
            t.end_turn(&mut out);
        }
        for c in out {
            tr.apply(c);
        }
        crate::model::usage::Usage::of_transcript(&tr)
    }

    #[test]
    fn usage_updates_give_context_and_cost_to_the_steps() {
        // qwen: the step's tokens first, then the context it filled.
        let mut t = Translator::new("p".into());
        t.new_turn();
        let u = totals(
            &mut t,
            &[
                json!({"sessionUpdate":"agent_message_chunk","content":{"type":"text","text":""},"_meta":{"usage":{"inputTokens":1000,"outputTokens":200}}}),
                json!({"sessionUpdate":"usage_update","used":1200,"size":32000}),
            ],
            true,
        );
        assert_eq!(
            (u.steps, u.tokens(), u.context, u.fill()),
            (1, 1200, 1200, Some(4))
        );
        // opencode: the context and the session's cost so far, the tokens with the answer.
        let mut t = Translator::new("q".into());
        let mut tr = Transcript::default();
        for turn in [0.25, 0.75] {
            t.new_turn();
            let mut out = Vec::new();
            t.update(
                &json!({"sessionUpdate":"usage_update","used":5000,"size":10000,"cost":{"amount":turn,"currency":"USD"}}),
                &mut out,
            );
            out.push(t.step(&json!({"inputTokens":4000,"outputTokens":1000})));
            t.end_turn(&mut out);
            for c in out {
                tr.apply(c);
            }
        }
        let u = crate::model::usage::Usage::of_transcript(&tr);
        assert_eq!((u.steps, u.tokens(), u.fill()), (2, 10000, Some(50)));
        assert!((u.cost - 0.75).abs() < 1e-9, "{}", u.cost);
        // Only a usage_update in a turn: a step of its own. After a restart the replayed
        // session's cost is the baseline.
        let mut t = Translator::new("r".into());
        t.usage_baseline(
            &json!({"sessionUpdate":"usage_update","used":1,"size":2,"cost":{"amount":1.0}}),
        );
        t.new_turn();
        let u = totals(
            &mut t,
            &[
                json!({"sessionUpdate":"usage_update","used":3000,"size":4000,"cost":{"amount":1.5}}),
            ],
            true,
        );
        assert_eq!((u.steps, u.context, u.fill()), (1, 3000, Some(75)));
        assert!((u.cost - 0.5).abs() < 1e-9, "{}", u.cost);
    }
}
