//! One turn: `session/prompt` to its answer, the outcome reported, an agent that ended or was
//! told to stop not kept.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::agent::{tail_of, Agent};
use super::rpc::RpcError;
use super::AcpBackend;
use crate::agent::{AgentEvent, TurnOutcome, TurnRequest};
use crate::model::ChatId;

impl AcpBackend {
    /// Runs one prompt to its end and reports it.
    pub(super) async fn turn(self, a: Arc<Agent>, req: TurnRequest) {
        let chat = req.chat;
        // No reset of `aborted`: an aborted agent is never reused.
        a.translator.lock().new_turn();
        let session = a.session.lock().clone();
        let prompt = json!([{"type": "text", "text": req.text_with_attachments()}]);
        *a.heard.lock() = Instant::now();
        let prompt = a.conn.request(
            "session/prompt",
            json!({"sessionId": session, "prompt": prompt}),
        );
        tokio::pin!(prompt);
        let r = tokio::select! {
            r = &mut prompt => r,
            () = self.watchdog(&a) => {
                // Stopped like an abort; the answer (or the group's end) still ends the turn.
                a.stalled.store(true, Ordering::SeqCst);
                self.cancel(chat, &a);
                prompt.await
            }
        };
        let aborted = a.aborted.load(Ordering::SeqCst);
        let stalled = a.stalled.load(Ordering::SeqCst);
        let outcome = match r {
            _ if stalled => {
                let name = self.agent_name();
                let secs = self.inner.cfg.watchdog.map_or(0, |w| w.as_secs());
                TurnOutcome::Failed(format!(
                    "{name} sent nothing for {secs} s and was stopped (agents.{name}.watchdog_seconds){}",
                    tail_of(&a.stderr)
                ))
            }
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

    /// Returns once the agent has sent nothing for the watchdog's time while not waiting on
    /// us (a permission, a terminal); never without a watchdog.
    async fn watchdog(&self, a: &Agent) {
        let Some(limit) = self.inner.cfg.watchdog else {
            return std::future::pending().await;
        };
        loop {
            let quiet = a.heard.lock().elapsed();
            if quiet >= limit && a.serving.load(Ordering::SeqCst) == 0 {
                tracing::warn!(
                    chat = a.chat,
                    agent = self.agent_name(),
                    "no message for {quiet:?}; cancelling the turn"
                );
                return;
            }
            // Waiting on us counts as heard from.
            if a.serving.load(Ordering::SeqCst) > 0 {
                *a.heard.lock() = Instant::now();
            }
            let left = limit.saturating_sub(quiet);
            tokio::time::sleep(left.clamp(Duration::from_millis(50), Duration::from_secs(1))).await;
        }
    }

    /// Tells the agent to stop the turn (`session/cancel`); if it has not ended the turn after
    /// the grace, kills its group (the turn then ends).
    pub(super) fn cancel(&self, chat: ChatId, a: &Arc<Agent>) {
        a.aborted.store(true, Ordering::SeqCst);
        let session = a.session.lock().clone();
        a.conn
            .notify("session/cancel", json!({ "sessionId": session }));
        // Its pending permission requests are answered `cancelled`.
        self.inner.permissions.lock().retain(|_, p| p.chat != chat);
        a.terminals.kill_all();
        let grace = self.inner.cfg.cancel_grace;
        let (me, a) = (self.clone(), a.clone());
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            // The agent did not end its turn: the group goes (the turn then ends Aborted).
            let same = me
                .inner
                .agents
                .lock()
                .get(&chat)
                .is_some_and(|b| Arc::ptr_eq(b, &a));
            if same && me.inner.running.lock().contains(&chat) {
                a.group.signal(libc::SIGKILL);
            }
        });
    }
}
