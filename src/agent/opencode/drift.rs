//! Drift from the pinned opencode's event schema, counted for `:checkhealth boo`: event types
//! it does not define and top-level `properties` keys it does not list are tolerated (the
//! translator ignores what it does not know) and counted here, process-wide, so an upgraded
//! opencode that renamed an event says so instead of leaving a blank chat.
//!
//! `EVENTS` is the `Event` union of `@opencode-ai/sdk` 1.18.33 (`v2/gen/types.gen.ts`), plus
//! `server.heartbeat`, which the server sends without declaring it. `*` means any keys.

use std::collections::{BTreeMap, HashMap, HashSet};

use parking_lot::Mutex;
use serde_json::{json, Value};

const EVENTS: &[(&str, &[&str])] = &[
    ("server.heartbeat", &["*"]),
    ("models-dev.refreshed", &["*"]),
    ("integration.updated", &["*"]),
    ("integration.connection.updated", &["integrationID"]),
    ("catalog.updated", &["*"]),
    ("session.created", &["sessionID", "info"]),
    ("session.updated", &["sessionID", "info"]),
    ("session.deleted", &["sessionID", "info"]),
    ("message.updated", &["sessionID", "info"]),
    ("message.removed", &["sessionID", "messageID"]),
    ("message.part.updated", &["sessionID", "part", "time"]),
    (
        "message.part.removed",
        &["sessionID", "messageID", "partID"],
    ),
    (
        "session.next.agent.switched",
        &["timestamp", "sessionID", "messageID", "agent"],
    ),
    (
        "session.next.model.switched",
        &["timestamp", "sessionID", "messageID", "model"],
    ),
    (
        "session.next.moved",
        &["timestamp", "sessionID", "location", "subdirectory"],
    ),
    (
        "session.next.prompted",
        &["timestamp", "sessionID", "messageID", "prompt", "delivery"],
    ),
    (
        "session.next.prompt.admitted",
        &["timestamp", "sessionID", "messageID", "prompt", "delivery"],
    ),
    (
        "session.next.context.updated",
        &["timestamp", "sessionID", "messageID", "text"],
    ),
    (
        "session.next.synthetic",
        &["timestamp", "sessionID", "messageID", "text"],
    ),
    (
        "session.next.shell.started",
        &["timestamp", "sessionID", "messageID", "callID", "command"],
    ),
    (
        "session.next.shell.ended",
        &["timestamp", "sessionID", "callID", "output"],
    ),
    (
        "session.next.step.started",
        &[
            "timestamp",
            "sessionID",
            "assistantMessageID",
            "agent",
            "model",
            "snapshot",
        ],
    ),
    (
        "session.next.step.ended",
        &[
            "timestamp",
            "sessionID",
            "assistantMessageID",
            "finish",
            "cost",
            "tokens",
            "snapshot",
            "files",
        ],
    ),
    (
        "session.next.step.failed",
        &["timestamp", "sessionID", "assistantMessageID", "error"],
    ),
    (
        "session.next.text.started",
        &["timestamp", "sessionID", "assistantMessageID", "textID"],
    ),
    (
        "session.next.text.delta",
        &[
            "timestamp",
            "sessionID",
            "assistantMessageID",
            "textID",
            "delta",
        ],
    ),
    (
        "session.next.text.ended",
        &[
            "timestamp",
            "sessionID",
            "assistantMessageID",
            "textID",
            "text",
        ],
    ),
    (
        "session.next.reasoning.started",
        &[
            "timestamp",
            "sessionID",
            "assistantMessageID",
            "reasoningID",
            "providerMetadata",
        ],
    ),
    (
        "session.next.reasoning.delta",
        &[
            "timestamp",
            "sessionID",
            "assistantMessageID",
            "reasoningID",
            "delta",
        ],
    ),
    (
        "session.next.reasoning.ended",
        &[
            "timestamp",
            "sessionID",
            "assistantMessageID",
            "reasoningID",
            "text",
            "providerMetadata",
        ],
    ),
    (
        "session.next.tool.input.started",
        &[
            "timestamp",
            "sessionID",
            "assistantMessageID",
            "callID",
            "name",
        ],
    ),
    (
        "session.next.tool.input.delta",
        &[
            "timestamp",
            "sessionID",
            "assistantMessageID",
            "callID",
            "delta",
        ],
    ),
    (
        "session.next.tool.input.ended",
        &[
            "timestamp",
            "sessionID",
            "assistantMessageID",
            "callID",
            "text",
        ],
    ),
    (
        "session.next.tool.called",
        &[
            "timestamp",
            "sessionID",
            "assistantMessageID",
            "callID",
            "tool",
            "input",
            "provider",
        ],
    ),
    (
        "session.next.tool.progress",
        &[
            "timestamp",
            "sessionID",
            "assistantMessageID",
            "callID",
            "structured",
            "content",
        ],
    ),
    (
        "session.next.tool.success",
        &[
            "timestamp",
            "sessionID",
            "assistantMessageID",
            "callID",
            "structured",
            "content",
            "outputPaths",
            "result",
            "provider",
        ],
    ),
    (
        "session.next.tool.failed",
        &[
            "timestamp",
            "sessionID",
            "assistantMessageID",
            "callID",
            "error",
            "result",
            "provider",
        ],
    ),
    (
        "session.next.retried",
        &["timestamp", "sessionID", "attempt", "error"],
    ),
    (
        "session.next.compaction.started",
        &["timestamp", "sessionID", "messageID", "reason"],
    ),
    (
        "session.next.compaction.delta",
        &["timestamp", "sessionID", "messageID", "text"],
    ),
    (
        "session.next.compaction.ended",
        &[
            "timestamp",
            "sessionID",
            "messageID",
            "reason",
            "text",
            "recent",
        ],
    ),
    (
        "session.next.revert.staged",
        &["timestamp", "sessionID", "revert"],
    ),
    ("session.next.revert.cleared", &["timestamp", "sessionID"]),
    (
        "session.next.revert.committed",
        &["timestamp", "sessionID", "messageID"],
    ),
    (
        "message.part.delta",
        &["sessionID", "messageID", "partID", "field", "delta"],
    ),
    ("session.diff", &["sessionID", "diff"]),
    ("session.error", &["sessionID", "error"]),
    ("installation.updated", &["version"]),
    ("installation.update-available", &["version"]),
    ("file.edited", &["file"]),
    ("reference.updated", &["*"]),
    (
        "permission.v2.asked",
        &[
            "id",
            "sessionID",
            "action",
            "resources",
            "save",
            "metadata",
            "source",
        ],
    ),
    (
        "permission.v2.replied",
        &["sessionID", "requestID", "reply"],
    ),
    ("plugin.added", &["id"]),
    ("project.directories.updated", &["projectID"]),
    ("file.watcher.updated", &["file", "event"]),
    ("pty.created", &["info"]),
    ("pty.updated", &["info"]),
    ("pty.exited", &["id", "exitCode"]),
    ("pty.deleted", &["id"]),
    (
        "question.v2.asked",
        &["id", "sessionID", "questions", "tool"],
    ),
    (
        "question.v2.replied",
        &["sessionID", "requestID", "answers"],
    ),
    ("question.v2.rejected", &["sessionID", "requestID"]),
    ("todo.updated", &["sessionID", "todos"]),
    ("lsp.updated", &["*"]),
    (
        "permission.asked",
        &[
            "id",
            "sessionID",
            "permission",
            "patterns",
            "metadata",
            "always",
            "tool",
        ],
    ),
    ("permission.replied", &["sessionID", "requestID", "reply"]),
    ("tui.prompt.append", &["text"]),
    ("tui.command.execute", &["command"]),
    (
        "tui.toast.show",
        &["title", "message", "variant", "duration"],
    ),
    ("tui.session.select", &["sessionID"]),
    ("mcp.tools.changed", &["server"]),
    ("mcp.browser.open.failed", &["mcpName", "url"]),
    (
        "command.executed",
        &["name", "sessionID", "arguments", "messageID"],
    ),
    (
        "project.updated",
        &[
            "id",
            "worktree",
            "vcs",
            "name",
            "icon",
            "commands",
            "time",
            "sandboxes",
        ],
    ),
    ("session.status", &["sessionID", "status"]),
    ("session.idle", &["sessionID"]),
    ("question.asked", &["id", "sessionID", "questions", "tool"]),
    ("question.replied", &["sessionID", "requestID", "answers"]),
    ("question.rejected", &["sessionID", "requestID"]),
    ("session.compacted", &["sessionID"]),
    ("vcs.branch.updated", &["branch"]),
    ("workspace.ready", &["name"]),
    ("workspace.failed", &["message"]),
    ("workspace.status", &["workspaceID", "status"]),
    ("worktree.ready", &["name", "branch"]),
    ("worktree.failed", &["message"]),
    ("server.connected", &["*"]),
    ("global.disposed", &["*"]),
    ("server.instance.disposed", &["directory"]),
];

/// Event ids already counted: every session's stream of a directory carries the same events.
const SEEN_MAX: usize = 4096;

/// Counts of what the schema does not know.
#[derive(Debug, Default)]
pub struct Drift {
    /// Unknown event type -> events.
    types: BTreeMap<String, u64>,
    /// `type.key` of an unknown property of a known type -> events.
    fields: BTreeMap<String, u64>,
    seen: HashSet<String>,
    known: HashMap<&'static str, &'static [&'static str]>,
}

impl Drift {
    pub fn new() -> Drift {
        Drift {
            known: EVENTS.iter().copied().collect(),
            ..Default::default()
        }
    }

    /// Counts one parsed event (`{id, type, properties}`); anything not an object is ignored.
    pub fn note(&mut self, ev: &Value) {
        let Some(ty) = ev.get("type").and_then(Value::as_str) else {
            return;
        };
        if let Some(id) = ev.get("id").and_then(Value::as_str) {
            if self.seen.len() >= SEEN_MAX {
                self.seen.clear();
            }
            if !self.seen.insert(id.to_string()) {
                return;
            }
        }
        let Some(keys) = self.known.get(ty) else {
            *self.types.entry(ty.to_string()).or_default() += 1;
            return;
        };
        if keys.contains(&"*") {
            return;
        }
        if let Some(props) = ev.get("properties").and_then(Value::as_object) {
            for k in props.keys().filter(|k| !keys.contains(&k.as_str())) {
                *self.fields.entry(format!("{ty}.{k}")).or_default() += 1;
            }
        }
    }

    /// `{types: {type: n}, fields: {"type.key": n}}`.
    pub fn report(&self) -> Value {
        json!({"types": self.types, "fields": self.fields})
    }
}

static DRIFT: Mutex<Option<Drift>> = Mutex::new(None);

/// Counts an event of any opencode stream of this process.
pub fn note(ev: &Value) {
    DRIFT.lock().get_or_insert_with(Drift::new).note(ev);
}

/// What this process has seen so far (see [`Drift::report`]).
pub fn report() -> Value {
    DRIFT
        .lock()
        .as_ref()
        .map_or_else(|| Drift::new().report(), Drift::report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_types_and_fields_are_counted_once_per_event() {
        let mut d = Drift::new();
        let ev =
            |id: &str, ty: &str, props: Value| json!({"id": id, "type": ty, "properties": props});
        d.note(&ev("e1", "session.idle", json!({"sessionID": "s"})));
        d.note(&ev("e2", "session.next.text.delta", json!({"sessionID": "s", "textID": "t", "delta": "x", "timestamp": 1, "assistantMessageID": "m"})));
        d.note(&ev(
            "e3",
            "message.part.delta",
            json!({"sessionID": "s", "partID": "p", "delta": "x", "spin": 1}),
        ));
        d.note(&ev(
            "e4",
            "session.next.text.appended",
            json!({"sessionID": "s"}),
        ));
        d.note(&ev(
            "e4",
            "session.next.text.appended",
            json!({"sessionID": "s"}),
        ));
        d.note(&ev("e5", "session.next.text.appended", json!({})));
        d.note(&ev("e6", "catalog.updated", json!({"anything": 1})));
        d.note(&json!("not an event"));
        d.note(&json!({"type": "server.heartbeat", "properties": {}}));
        assert_eq!(
            d.report(),
            json!({"types": {"session.next.text.appended": 2}, "fields": {"message.part.delta.spin": 1}})
        );
    }

    #[test]
    fn the_recorded_streams_hold_no_drift() {
        use crate::agent::opencode::sse::SseParser;
        let mut d = Drift::new();
        for raw in [
            &include_bytes!("../../../tests/data/opencode_answer_v1.sse")[..],
            &include_bytes!("../../../tests/data/opencode_answer_v2.sse")[..],
        ] {
            let mut data = Vec::new();
            SseParser::new().push(raw, &mut data);
            for e in data
                .iter()
                .filter_map(|s| serde_json::from_str::<Value>(s).ok())
            {
                d.note(&e);
            }
        }
        assert_eq!(d.report(), json!({"types": {}, "fields": {}}));
    }
}
