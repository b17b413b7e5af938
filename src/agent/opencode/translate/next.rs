//! The V2 runner's `session.next.*` events (opencode 1.18.31 and later), turned into the same
//! items as `message.part.*`: each event is rebuilt as the V1 part it stands for and applied
//! through [`Translator::put_part`], so both streams share one rendering path.
//!
//! Text and reasoning are keyed by the stream's `textID`/`reasoningID` (ids of the provider's
//! stream, unique only within a step), tools by `callID`, steps by their order in the message.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::{Output, Proto, Slot, Translator};

#[derive(Debug, Default)]
pub(super) struct NextState {
    /// (message id, "text"/"reasoning", stream id) -> item id, while the part streams.
    open: HashMap<(String, &'static str, String), String>,
    /// call id -> the tool call as a V1 `tool` part, grown by each event.
    tools: HashMap<String, Value>,
}

impl Translator {
    pub(super) fn on_next(&mut self, ty: &str, props: &Value, out: &mut Vec<Output>) {
        let s = |k: &str| props.get(k).and_then(Value::as_str).unwrap_or_default();
        let msg = props
            .get("assistantMessageID")
            .or_else(|| props.get("messageID"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        match ty.strip_prefix("session.next.").unwrap_or_default() {
            "prompted" | "prompt.admitted" => {
                let text = props
                    .pointer("/prompt/text")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                self.user_msgs.insert(msg.clone(), true);
                self.last_user = Some(msg.clone());
                let id = self.item_id(Proto::V2, &format!("{msg}/user"), &msg, Slot::Nth("user"));
                let part = json!({"id": id, "messageID": msg, "type": "text", "text": text,
                                  "time": {"end": 0}});
                self.put_part(&id, &part, Proto::V2, out);
            }
            "step.started" => {
                self.user_msgs.insert(msg.clone(), false);
                let model = ["providerID", "id"].map(|k| {
                    props
                        .get("model")
                        .and_then(|m| m.get(k))
                        .and_then(Value::as_str)
                });
                if let [Some(p), Some(m)] = model {
                    self.msg_models.insert(msg, format!("{p}/{m}"));
                }
            }
            "step.ended" => {
                let n = self.next_count(&msg, "step");
                let id = self.item_id(
                    Proto::V2,
                    &format!("{msg}/step{n}"),
                    &msg,
                    Slot::Nth("step"),
                );
                let part = json!({"id": id, "messageID": msg, "type": "step-finish",
                    "reason": props.get("finish").cloned().unwrap_or(Value::Null),
                    "tokens": with_total(props.get("tokens")),
                    "cost": props.get("cost").cloned().unwrap_or(Value::Null)});
                self.put_part(&id, &part, Proto::V2, out);
            }
            "step.failed" => {
                let message = props
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("step failed");
                out.push(Output::Error {
                    name: "UnknownError".into(),
                    message: message.to_string(),
                });
            }
            "retried" => out.push(Output::Busy {
                retry: Some(
                    props
                        .pointer("/error/message")
                        .and_then(Value::as_str)
                        .unwrap_or("retrying")
                        .to_string(),
                ),
            }),
            "text.started" | "text.delta" | "text.ended" => {
                self.on_next_text(ty, "text", &msg, s("textID"), props, out)
            }
            "reasoning.started" | "reasoning.delta" | "reasoning.ended" => {
                self.on_next_text(ty, "reasoning", &msg, s("reasoningID"), props, out)
            }
            "tool.input.started" | "tool.called" | "tool.progress" | "tool.success"
            | "tool.failed" => self.on_next_tool(ty, &msg, s("callID"), props, out),
            // Known, nothing to show: agent/model switches, shell, compaction, revert, context.
            _ => {}
        }
    }

    /// Counts a slot kind of the V2 stream, for ids of items that have no id of their own.
    fn next_count(&self, msg: &str, kind: &'static str) -> usize {
        self.counts
            .get(&(msg.to_string(), Proto::V2 as u8, kind))
            .copied()
            .unwrap_or(0)
    }

    fn on_next_text(
        &mut self,
        ty: &str,
        kind: &'static str,
        msg: &str,
        stream_id: &str,
        props: &Value,
        out: &mut Vec<Output>,
    ) {
        let key = (msg.to_string(), kind, stream_id.to_string());
        let started = ty.ends_with(".started");
        let id = match self.next.open.get(&key) {
            // A repeated start of an open id is the same part; after its end, a new one.
            Some(id) => id.clone(),
            None => {
                let n = self.next_count(msg, kind);
                let own = format!("{msg}/{kind}{n}");
                let id = self.item_id(Proto::V2, &own, msg, Slot::Nth(kind));
                self.next.open.insert(key.clone(), id.clone());
                let part = json!({"id": id, "messageID": msg, "type": kind, "text": "",
                                  "time": {"start": 0}});
                self.put_part(&id, &part, Proto::V2, out);
                id
            }
        };
        if started {
            return;
        }
        if ty.ends_with(".delta") {
            if let Some(d) = props.get("delta").and_then(Value::as_str) {
                self.on_delta(&id, d, Proto::V2, out);
            }
            return;
        }
        let text = props
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let part = json!({"id": id, "messageID": msg, "type": kind, "text": text,
                          "time": {"start": 0, "end": 0}});
        self.put_part(&id, &part, Proto::V2, out);
        self.next.open.remove(&key);
    }

    fn on_next_tool(
        &mut self,
        ty: &str,
        msg: &str,
        call: &str,
        props: &Value,
        out: &mut Vec<Output>,
    ) {
        if call.is_empty() {
            return;
        }
        let id = self.item_id(
            Proto::V2,
            &format!("{msg}/call/{call}"),
            msg,
            Slot::Call(call.into()),
        );
        let part = self.next.tools.entry(call.to_string()).or_insert_with(|| {
            json!({"id": id, "messageID": msg, "type": "tool", "tool": "tool", "callID": call,
                   "state": {"status": "pending", "input": {}}})
        });
        let state = &mut part["state"];
        match ty.strip_prefix("session.next.tool.").unwrap_or_default() {
            "input.started" => {
                if let Some(n) = props.get("name").and_then(Value::as_str) {
                    part["tool"] = json!(n);
                }
            }
            "called" => {
                state["status"] = json!("running");
                state["input"] = props.get("input").cloned().unwrap_or(json!({}));
                if let Some(n) = props.get("tool").and_then(Value::as_str) {
                    part["tool"] = json!(n);
                }
            }
            "progress" => {
                state["status"] = json!("running");
                state["metadata"] = progress_metadata(props);
            }
            "success" => {
                state["status"] = json!("completed");
                let meta = progress_metadata(props);
                state["output"] = meta.get("output").cloned().unwrap_or(json!(""));
                state["metadata"] = meta;
                // The schema types `result` as unknown; a tool's `{title, ...}` is taken.
                if let Some(t) = props.pointer("/result/title") {
                    state["title"] = t.clone();
                }
            }
            "failed" => {
                state["status"] = json!("error");
                state["error"] = props
                    .pointer("/error/message")
                    .cloned()
                    .unwrap_or(json!("tool failed"));
            }
            _ => return,
        }
        let part = part.clone();
        self.put_part(&id, &part, Proto::V2, out);
    }
}

/// V2 step tokens with V1's `total` (input, output, reasoning and cache, as V1 counts it).
fn with_total(tokens: Option<&Value>) -> Value {
    let Some(Value::Object(t)) = tokens else {
        return tokens.cloned().unwrap_or(Value::Null);
    };
    let mut t = t.clone();
    if !t.contains_key("total") {
        let n = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
        let cache = t.get("cache");
        let sum = ["input", "output", "reasoning"]
            .iter()
            .map(|k| n(t.get(*k)))
            .sum::<u64>()
            + n(cache.and_then(|c| c.get("read")))
            + n(cache.and_then(|c| c.get("write")));
        t.insert("total".into(), json!(sum));
    }
    Value::Object(t)
}

/// A tool's `structured` result with its text `content` as `output`, like V1's metadata.
fn progress_metadata(props: &Value) -> Value {
    let mut meta = match props.get("structured") {
        Some(Value::Object(o)) => Value::Object(o.clone()),
        _ => json!({}),
    };
    let text: String = props
        .get("content")
        .and_then(Value::as_array)
        .map(|c| {
            c.iter()
                .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    if meta.get("output").is_none() || !text.is_empty() {
        meta["output"] = json!(text);
    }
    meta
}
