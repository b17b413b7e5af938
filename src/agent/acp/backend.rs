//! [`AcpBackend`] behind the [`AgentBackend`] trait: turns started and aborted, permissions
//! answered, chats closed.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use async_trait::async_trait;

use super::AcpBackend;
use crate::agent::{
    AgentBackend, AgentError, AgentEvent, PendingPermission, PermissionReply, TurnOutcome,
    TurnRequest,
};
use crate::model::ChatId;

#[async_trait]
impl AgentBackend for AcpBackend {
    fn name(&self) -> &str {
        self.agent_name()
    }

    async fn start_turn(&self, req: TurnRequest) -> Result<(), AgentError> {
        if self.inner.shut.load(Ordering::SeqCst) {
            return Err(AgentError::Shutdown);
        }
        if !self.inner.running.lock().insert(req.chat) {
            return Err(AgentError::Busy(req.chat));
        }
        let agent = match self.agent_for(&req).await {
            Ok(a) => a,
            Err(e) => {
                self.drop_agent(req.chat);
                self.inner.abort_on_start.lock().remove(&req.chat);
                self.inner.running.lock().remove(&req.chat);
                tracing::warn!(chat = req.chat, agent = self.agent_name(), "{e}");
                return Err(e);
            }
        };
        self.choose(&agent, &req).await;
        self.send(AgentEvent::TurnStarted { chat: req.chat });
        if self.inner.abort_on_start.lock().remove(&req.chat) {
            // Aborted while it started: the prompt is not sent.
            self.drop_agent(req.chat);
            self.inner.running.lock().remove(&req.chat);
            self.send(AgentEvent::TurnDone {
                chat: req.chat,
                outcome: TurnOutcome::Aborted,
            });
            return Ok(());
        }
        tokio::spawn(self.clone().turn(agent, req));
        Ok(())
    }

    async fn abort(&self, chat: ChatId) -> Result<(), AgentError> {
        if !self.inner.running.lock().contains(&chat) {
            return Err(AgentError::NotRunning(chat));
        }
        let Some(a) = self.inner.agents.lock().get(&chat).cloned() else {
            // Still starting: the turn ends as soon as the agent is up.
            self.inner.abort_on_start.lock().insert(chat);
            return Ok(());
        };
        self.cancel(chat, &a);
        Ok(())
    }

    async fn reply_permission(&self, id: &str, reply: PermissionReply) -> Result<(), AgentError> {
        let asked = self
            .inner
            .permissions
            .lock()
            .remove(id)
            .ok_or_else(|| AgentError::UnknownPermission(id.to_string()))?;
        asked
            .reply
            .send(reply)
            .map_err(|_| AgentError::UnknownPermission(id.to_string()))
    }

    async fn pending_permissions(&self) -> Vec<PendingPermission> {
        self.inner
            .permissions
            .lock()
            .values()
            .map(|p| PendingPermission {
                chat: p.chat,
                request: p.request.clone(),
            })
            .collect()
    }

    async fn close_chat(&self, chat: ChatId) {
        let _ = self.abort(chat).await;
        self.inner.permissions.lock().retain(|_, p| p.chat != chat);
        self.drop_agent(chat);
    }

    async fn shutdown(&self) {
        self.inner.shut.store(true, Ordering::SeqCst);
        self.inner.permissions.lock().clear();
        let chats: Vec<ChatId> = self.inner.agents.lock().keys().copied().collect();
        for c in chats {
            if let Some(a) = self.inner.agents.lock().get(&c) {
                a.aborted.store(true, Ordering::SeqCst);
            }
            self.drop_agent(c);
        }
    }

    async fn commands(&self, _directory: PathBuf) -> Vec<(String, String)> {
        let agents = self.inner.agents.lock();
        agents
            .values()
            .next()
            .map(|a| a.translator.lock().commands.clone())
            .unwrap_or_default()
    }
}
