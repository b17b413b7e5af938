//! A chat's agent session: the running agent reused, or a new one started whose bound session
//! is loaded (`session/load` when the agent can), else a new session made and bound.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::{json, Value};

use super::agent::Agent;
use super::rpc::RpcError;
use super::AcpBackend;
use crate::agent::{AgentError, AgentEvent, TurnRequest};

impl AcpBackend {
    /// The chat's agent with a session: reused, or started (also when the chat's model
    /// changed), then the bound session loaded or a new one made.
    pub(super) async fn agent_for(&self, req: &TurnRequest) -> Result<Arc<Agent>, AgentError> {
        let existing = self.inner.agents.lock().get(&req.chat).cloned();
        if let Some(a) = existing {
            if a.conn.closed().is_none()
                && a.directory == req.directory
                && a.model == self.model_of(req)
            {
                return Ok(a);
            }
            self.drop_agent(req.chat);
        }
        let agent = self.spawn(req).await?;
        let conn = agent.conn.clone();
        let dir = req.directory.display().to_string();
        let timeout = self.inner.cfg.init_timeout;
        let mut loaded = None;
        if let (Some(b), true) = (&req.binding, agent.load_session.load(Ordering::SeqCst)) {
            agent.replaying.store(true, Ordering::SeqCst);
            let r = tokio::time::timeout(
                timeout,
                conn.request(
                    "session/load",
                    json!({"sessionId": b.external_id, "cwd": dir, "mcpServers": []}),
                ),
            )
            .await;
            agent.replaying.store(false, Ordering::SeqCst);
            match r {
                Ok(Ok(_)) => loaded = Some(b.external_id.clone()),
                Ok(Err(RpcError::Closed(why))) => {
                    return Err(self.fail("ended", why, &agent.stderr));
                }
                Ok(Err(e)) => {
                    tracing::info!(chat = req.chat, "session/load failed: {e}");
                    self.info(
                        req.chat,
                        format!(
                            "{}: its previous session could not be loaded ({e}); this turn starts a new one without the earlier context",
                            self.agent_name()
                        ),
                    );
                }
                Err(_) => {
                    return Err(self.fail(
                        "did not answer session/load",
                        "timed out",
                        &agent.stderr,
                    ))
                }
            }
        }
        let session = match loaded {
            Some(s) => s,
            None => {
                let r = tokio::time::timeout(
                    timeout,
                    conn.request("session/new", json!({"cwd": dir, "mcpServers": []})),
                )
                .await;
                let v = match r {
                    Ok(Ok(v)) => v,
                    Ok(Err(e)) => {
                        return Err(self.fail("could not make a session", e, &agent.stderr))
                    }
                    Err(_) => {
                        return Err(self.fail(
                            "did not answer session/new",
                            "timed out",
                            &agent.stderr,
                        ))
                    }
                };
                let Some(id) = v.get("sessionId").and_then(Value::as_str) else {
                    return Err(self.fail("made a session without an id", v, &agent.stderr));
                };
                let same = req.binding.as_ref().is_some_and(|b| b.external_id == id);
                if !same {
                    self.send(AgentEvent::SessionBound {
                        chat: req.chat,
                        agent: self.agent_name().to_string(),
                        external_id: id.to_string(),
                        config_hash: self.agent_name().to_string(),
                    });
                }
                id.to_string()
            }
        };
        *agent.session.lock() = session;
        self.inner.agents.lock().insert(req.chat, agent.clone());
        Ok(agent)
    }
}
