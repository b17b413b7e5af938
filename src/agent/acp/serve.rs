//! What the agent sends: session updates into items, and its requests (files, terminals,
//! permissions) answered.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use super::agent::Agent;
use super::rpc::{Inbox, Incoming};
use super::{client, AcpBackend, Asked};
use crate::agent::{AgentEvent, PermissionReply, PermissionRequest};
use crate::model::{ItemChange, ItemKind};

impl AcpBackend {
    /// Handles what the agent sends until its connection closes.
    pub(super) async fn serve(self, agent: std::sync::Weak<Agent>, mut incoming: Inbox) {
        while let Some(m) = incoming.next().await {
            let Some(a) = agent.upgrade() else { break };
            *a.heard.lock() = Instant::now();
            match m {
                Incoming::Notification { method, params } => {
                    let update = params.get("update");
                    if method == "session/update" && a.replaying.load(Ordering::SeqCst) {
                        if let Some(u) = update {
                            a.translator.lock().usage_baseline(u);
                            a.options.lock().update(u);
                        }
                    } else if method == "session/update" {
                        let mut out = Vec::new();
                        if let Some(u) = update {
                            a.translator.lock().update(u, &mut out);
                            if a.options.lock().update(u) {
                                self.options_changed(&a);
                            }
                        }
                        for c in out {
                            self.item(a.chat, c);
                        }
                    }
                }
                Incoming::Request { id, method, params } => {
                    let me = self.clone();
                    a.serving.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(async move {
                        let r = me.answer(&a, &method, &params).await;
                        a.serving.fetch_sub(1, Ordering::SeqCst);
                        *a.heard.lock() = Instant::now();
                        if let Err(e) = &r {
                            tracing::info!(target: "acp", method, "refused: {e}");
                        }
                        a.conn.respond(id, r.map_err(|e| (-32603, e)));
                    });
                }
            }
        }
    }

    /// The answer to one request of the agent.
    async fn answer(&self, a: &Arc<Agent>, method: &str, p: &Value) -> Result<Value, String> {
        let dir = &a.directory;
        match method {
            "session/request_permission" => Ok(self.permission(a, p).await),
            "fs/read_text_file" => client::read(dir, p, self.inner.buffers.as_deref()).await,
            "fs/write_text_file" => client::write(dir, p).await,
            "terminal/create" => {
                let (tx, mut rx) = mpsc::unbounded_channel();
                let id = a.terminals.create(dir, p, tx)?;
                // The terminal's output goes into the tool block that shows it.
                let (me, weak) = (self.clone(), Arc::downgrade(a));
                tokio::spawn(async move {
                    while let Some((term, text)) = rx.recv().await {
                        let Some(a) = weak.upgrade() else { break };
                        let change = a.translator.lock().terminal_output(&term, &text);
                        if let Some(c) = change {
                            me.item(a.chat, c);
                        }
                    }
                });
                Ok(json!({ "terminalId": id }))
            }
            "terminal/output" => a.terminals.output(p),
            "terminal/wait_for_exit" => a.terminals.wait(p).await,
            "terminal/kill" => a.terminals.kill(p),
            "terminal/release" => a.terminals.release(p),
            other => Err(format!("method not supported by boo: {other}")),
        }
    }

    /// `session/request_permission`: asked through the same inbox as opencode's; the answer is
    /// the agent's option nearest to the user's reply (`cancelled` when the turn is aborted).
    async fn permission(&self, a: &Arc<Agent>, p: &Value) -> Value {
        let call = p.get("toolCall").cloned().unwrap_or(Value::Null);
        let title = call
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or("tool")
            .to_string();
        // Without a kind (goose names its tools, e.g. `developer__shell`) the tool is the
        // permission and its command what it is asked for.
        let kind = call.get("kind").and_then(Value::as_str).map(str::to_string);
        let command = call.pointer("/rawInput/command").and_then(Value::as_str);
        let (kind, title) = match (kind, command) {
            (Some(k), _) => (k, title),
            (None, Some(c)) => (title, c.to_string()),
            (None, None) => ("other".to_string(), title),
        };
        let id = format!("acp-perm-{}-{}", a.chat, self.unique());
        let mut metadata = json!({"options": p.get("options")});
        if let Some(c) = call.pointer("/rawInput/command") {
            metadata["command"] = c.clone();
        }
        let request = PermissionRequest {
            id: id.clone(),
            session_id: a.session.lock().clone(),
            permission: kind,
            patterns: vec![title],
            always: Vec::new(),
            metadata,
            call_id: call
                .get("toolCallId")
                .and_then(Value::as_str)
                .map(str::to_string),
        };
        let (tx, rx) = oneshot::channel();
        self.inner.permissions.lock().insert(
            id.clone(),
            Asked {
                chat: a.chat,
                request: request.clone(),
                reply: tx,
            },
        );
        self.item(a.chat, permission_item(&request, "asked"));
        self.send(AgentEvent::PermissionAsked {
            chat: a.chat,
            request: request.clone(),
        });
        let reply = rx.await.ok();
        let options = p.get("options").cloned().unwrap_or(Value::Null);
        let status = reply.map_or("cancelled", PermissionReply::as_str);
        self.item(a.chat, permission_item(&request, status));
        self.send(AgentEvent::PermissionReplied {
            chat: a.chat,
            id: id.clone(),
            reply: status.to_string(),
        });
        match reply.and_then(|r| client::pick_option(&options, r)) {
            Some(option) => json!({"outcome": {"outcome": "selected", "optionId": option}}),
            None => json!({"outcome": {"outcome": "cancelled"}}),
        }
    }
}

fn permission_item(req: &PermissionRequest, status: &str) -> ItemChange {
    ItemChange::Upsert {
        part_id: req.id.clone(),
        kind: ItemKind::Permission,
        content: format!("{}: {}", req.permission, req.patterns.join(", ")),
        meta: json!({
            "id": req.id,
            "permission": req.permission,
            "patterns": req.patterns,
            "always": req.always,
            "call_id": req.call_id,
            "status": status,
        }),
    }
}
