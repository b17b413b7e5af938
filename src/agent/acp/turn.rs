//! One turn: `session/prompt` to its answer, the outcome reported, an agent that ended or was
//! told to stop not kept.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::agent::{tail_of, Agent};
use super::rpc::RpcError;
use super::AcpBackend;
use crate::agent::{AgentEvent, TurnOutcome, TurnRequest};

impl AcpBackend {
    /// Runs one prompt to its end and reports it.
    pub(super) async fn turn(self, a: Arc<Agent>, req: TurnRequest) {
        let chat = req.chat;
        // No reset of `aborted`: an aborted agent is never reused.
        a.translator.lock().new_turn();
        let session = a.session.lock().clone();
        let prompt = json!([{"type": "text", "text": req.text_with_attachments()}]);
        let r = a
            .conn
            .request(
                "session/prompt",
                json!({"sessionId": session, "prompt": prompt}),
            )
            .await;
        let aborted = a.aborted.load(Ordering::SeqCst);
        let outcome = match r {
            Ok(v) => {
                if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
                    let step = a.translator.lock().step(u);
                    self.item(chat, step);
                }
                match v.get("stopReason").and_then(Value::as_str) {
                    Some("cancelled") => TurnOutcome::Aborted,
                    _ if aborted => TurnOutcome::Aborted,
                    Some("refusal") => {
                        TurnOutcome::Failed(format!("{} refused the prompt", self.agent_name()))
                    }
                    _ => TurnOutcome::Done,
                }
            }
            Err(_) if aborted => TurnOutcome::Aborted,
            Err(RpcError::Remote { message, .. }) => {
                TurnOutcome::Failed(format!("{}: {message}", self.agent_name()))
            }
            Err(RpcError::Closed(why)) => {
                // Let the stderr reader catch up with the agent's last lines.
                tokio::time::sleep(Duration::from_millis(200)).await;
                TurnOutcome::Failed(format!(
                    "{}: {why}{}",
                    self.agent_name(),
                    tail_of(&a.stderr)
                ))
            }
        };
        let mut out = Vec::new();
        a.translator.lock().end_turn(&mut out);
        for c in out {
            self.item(chat, c);
        }
        a.terminals.kill_all();
        // An agent that is gone, or was told to stop, is not reused.
        if a.conn.closed().is_some() || aborted {
            self.drop_agent(chat);
        }
        self.inner.running.lock().remove(&chat);
        if let TurnOutcome::Failed(m) = &outcome {
            tracing::warn!(chat, agent = self.agent_name(), "turn failed: {m}");
        }
        self.send(AgentEvent::TurnDone { chat, outcome });
    }
}
