//! A chat's agent session: the running agent reused, or a new one started whose bound session
//! is loaded (`session/load` when the agent can), else a new session made and bound.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::{json, Value};

use super::agent::Agent;
use super::rpc::RpcError;
use super::{requested_model, AcpBackend};
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
        // The bound session back: loaded (its history replayed, which we already have), else
        // resumed, else a new one with one line saying so.
        let load = agent.load_session.load(Ordering::SeqCst);
        let resume = agent.resume_session.load(Ordering::SeqCst);
        let method = match (load, resume) {
            (true, _) => Some("session/load"),
            (false, true) => Some("session/resume"),
            (false, false) => None,
        };
        if let (Some(_), None) = (&req.binding, method) {
            self.info(
                req.chat,
                format!(
                    "{} cannot load or resume its earlier session; this turn starts a new one without the earlier context",
                    self.agent_name()
                ),
            );
        }
        if let (Some(b), Some(method)) = (&req.binding, method) {
            agent.replaying.store(true, Ordering::SeqCst);
            let r = tokio::time::timeout(
                timeout,
                conn.request(
                    method,
                    json!({"sessionId": b.external_id, "cwd": dir, "mcpServers": []}),
                ),
            )
            .await;
            agent.replaying.store(false, Ordering::SeqCst);
            match r {
                Ok(Ok(v)) => {
                    agent.options.lock().session(&v);
                    loaded = Some(b.external_id.clone());
                }
                Ok(Err(RpcError::Closed(why))) => {
                    return Err(self.fail("ended", why, &agent.stderr));
                }
                Ok(Err(e)) => {
                    tracing::info!(chat = req.chat, "{method} failed: {e}");
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
                        &format!("did not answer {method}"),
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
                agent.options.lock().session(&v);
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

    /// Puts the session in the mode the chat's agent names (`qwen:plan`; the session's first
    /// mode without one) and on the chat's model when the agent lists it; a refusal is one
    /// line in the chat, the turn runs on. Then tells the app what the session offers.
    pub(super) async fn choose(&self, a: &Arc<Agent>, req: &TurnRequest) {
        let session = a.session.lock().clone();
        let mut calls = Vec::new();
        {
            let o = a.options.lock();
            let mode = req.agent.clone().or_else(|| o.default_mode.clone());
            if let Some(m) = mode.filter(|m| o.mode() != Some(m.as_str())) {
                if o.has_mode(&m) {
                    calls.extend(o.set_call("mode", &session, &m).map(|c| ("mode", m, c)));
                } else {
                    let known = o.view(self.agent_name()).modes.join(", ");
                    let known = if known.is_empty() {
                        "none".into()
                    } else {
                        known
                    };
                    self.info(
                        a.chat,
                        format!("{}: no mode '{m}' (modes: {known})", self.agent_name()),
                    );
                }
            }
            if let Some(m) = requested_model(req)
                .or_else(|| o.default_model.clone())
                .filter(|m| o.has_model(m) && o.model() != Some(m.as_str()))
            {
                calls.extend(o.set_call("model", &session, &m).map(|c| ("model", m, c)));
            }
        }
        for (kind, id, (method, params)) in calls {
            match tokio::time::timeout(self.inner.cfg.init_timeout, a.conn.request(method, params))
                .await
            {
                Ok(Ok(v)) => {
                    let mut o = a.options.lock();
                    o.chosen(kind, &id);
                    // `set_config_option` answers with every option's new state.
                    o.update(&json!({"sessionUpdate": "config_option_update", "configOptions": v.get("configOptions")}));
                }
                Ok(Err(e)) => self.info(
                    a.chat,
                    format!("{}: {kind} '{id}' not set: {e}", self.agent_name()),
                ),
                Err(_) => self.info(
                    a.chat,
                    format!("{}: {kind} '{id}' not set: no answer", self.agent_name()),
                ),
            }
        }
        self.options_changed(a);
    }

    /// Sends the session's options to the app (when they changed) and remembers its settable
    /// models.
    pub(super) fn options_changed(&self, a: &Agent) {
        let view = a.options.lock().view(self.agent_name());
        {
            let mut sent = a.options_sent.lock();
            if sent.as_ref() == Some(&view) {
                return;
            }
            *sent = Some(view.clone());
        }
        tracing::debug!(target: "acp", chat = a.chat, modes = view.modes.len(), models = view.models.len(), mode = ?view.mode, "session options");
        {
            let mut known = self.inner.known_models.lock();
            for m in &view.models {
                if !known.contains(m) {
                    known.push(m.clone());
                }
            }
        }
        self.send(AgentEvent::Options {
            chat: a.chat,
            options: view,
        });
    }
}
