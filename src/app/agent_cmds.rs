//! `:Boo agent` / `:Boo model` and the probe of agents and models, as `App` methods.
//!
//! The probe runs in the background (never on the loop) and is cached; `probe` requests answer
//! from the cache at once, so pickers and completion never wait. A chat's agent and model are
//! stored with the chat and apply to its next turn: for opencode a changed model changes the
//! session's config fingerprint, so the stale guard gives the chat a session with that model.

use serde_json::{json, Value as Json};

use super::agents::{known_agent, split_agent};
use super::workspace::ChatState;
use super::App;
use crate::agent::probe::ProbeReport;
use crate::model::ChatId;
use crate::rpc::SetArgs;
use crate::store::ChatUpdate;

/// `vim.log.levels`
const INFO: u8 = 2;
const WARN: u8 = 3;
const ERROR: u8 = 4;

impl App {
    /// The model a chat's turn uses: its own, else (for opencode) the configured default; `None`
    /// leaves the choice to the agent.
    pub(super) fn turn_model(&self, c: &ChatState) -> Option<String> {
        let own = c.model.clone().filter(|m| !m.trim().is_empty());
        if split_agent(&c.agent).0 == "opencode" {
            own.or_else(|| self.config.opencode.model.clone())
        } else {
            own
        }
    }

    /// The cached probe for Lua (pickers, completion, health); starts one when asked to or
    /// when there is none yet.
    pub(super) fn probe_request(&mut self, refresh: bool) -> Json {
        if refresh || (self.agents.probe.is_none() && !self.agents.probing) {
            self.agents.start_probe();
        }
        self.probe_json()
    }

    /// The last probe as `probe` answers it (no side effect).
    pub(super) fn probe_json(&self) -> Json {
        let state = if self.agents.probing {
            "running"
        } else if self.agents.probe.is_some() {
            "ready"
        } else {
            "none"
        };
        match &self.agents.probe {
            Some(r) => json!({
                "state": state,
                "agents": r.agents(),
                "models": r.models(),
                // What a CLI agent pointed at the router could use (unprefixed).
                "cli_models": r.router.as_ref().map(|x| x.models.clone()).unwrap_or_default(),
                "report": r,
            }),
            None => {
                json!({"state": state, "agents": ["opencode"], "models": [], "cli_models": [], "report": null})
            }
        }
    }

    pub(super) fn probe_done(&mut self, report: ProbeReport) {
        self.agents.probing = false;
        if let Some(e) = &report.opencode.error {
            tracing::warn!("probe: opencode: {e}");
        }
        self.agents.probe = Some(report);
    }

    fn chat_to_set(&self, a: &SetArgs) -> Result<ChatId, String> {
        self.ws
            .target_chat(a.chat, a.pane)
            .ok_or_else(|| "no chat yet: open one with :Boo".to_string())
    }

    /// Stores the chat's new agent/model and applies it in memory.
    pub(super) async fn update_chat(
        &mut self,
        chat: ChatId,
        update: ChatUpdate,
    ) -> Result<(), String> {
        let store = self.store().await;
        let stored = store
            .update_chat(chat, update)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(c) = self.ws.chats.get_mut(&chat) {
            c.agent = stored.agent;
            c.model = stored.model;
        }
        Ok(())
    }

    pub(super) async fn set_agent(&mut self, a: SetArgs) {
        let chat = match self.chat_to_set(&a) {
            Ok(c) => c,
            Err(e) => return self.ui.notify(format!("boo: {e}"), WARN),
        };
        let name = a.name.as_deref().map(str::trim).unwrap_or_default();
        if name.is_empty() {
            return self.ui.notify(
                "boo: which agent? (:Boo agent {name}, or :Boo agent to pick)",
                WARN,
            );
        }
        // An ACP agent with one of its modes: `qwen:plan`.
        let acp_mode = match split_agent(name) {
            (b, Some(_)) => self.agents.is_acp(b),
            _ => false,
        };
        if !known_agent(name) && !self.agents.is_acp(name) && !acp_mode {
            return self.ui.notify(
                format!("boo: unknown agent '{name}' (opencode, opencode:<agent>, qwen, claude, goose, opencode-acp, gemini, codex-acp, or agents.{name} with protocol = 'acp' and a cmd)"),
                ERROR,
            );
        }
        let Some(c) = self.ws.chats.get(&chat).cloned() else {
            return;
        };
        // Modes the chat's session listed are checked now; others when its agent starts.
        let offered = self
            .agent_options
            .get(&chat)
            .filter(|_| acp_mode && split_agent(&c.agent).0 == split_agent(name).0)
            .map(|o| o.modes.clone())
            .filter(|m| !m.is_empty());
        if let Some(modes) = offered.filter(|m| !m.iter().any(|x| x == name)) {
            return self.ui.notify(
                format!(
                    "boo: {} has no mode '{}' (modes: {})",
                    split_agent(name).0,
                    split_agent(name).1.unwrap_or_default(),
                    modes.join(", ")
                ),
                ERROR,
            );
        }
        if c.agent == name {
            return self
                .ui
                .notify(format!("boo: {} already uses {name}", c.title), INFO);
        }
        if c.busy() {
            return self.ui.notify(
                format!(
                    "boo: {} has a turn running; change its agent when it is done",
                    c.title
                ),
                WARN,
            );
        }
        // A model means something else to another backend: back to that one's default.
        let other_backend = split_agent(&c.agent).0 != split_agent(name).0;
        let update = ChatUpdate {
            agent: Some(name.to_string()),
            model: other_backend.then_some(None),
            ..Default::default()
        };
        if let Err(e) = self.update_chat(chat, update).await {
            return self
                .ui
                .notify(format!("boo: agent not changed: {e}"), ERROR);
        }
        // Another backend's modes and models are not this one's.
        if other_backend {
            self.agent_options.remove(&chat);
        }
        let missing = self
            .agents
            .probe
            .as_ref()
            .is_some_and(|p| !p.agents().iter().any(|x| x == name));
        if missing {
            self.ui.notify(
                format!("boo: {} now uses {name}, which the last probe did not find (see :checkhealth boo)", c.title),
                WARN,
            );
        } else {
            self.ui
                .notify(format!("boo: {} now uses {name}", c.title), INFO);
        }
    }

    pub(super) async fn set_model(&mut self, a: SetArgs) {
        let chat = match self.chat_to_set(&a) {
            Ok(c) => c,
            Err(e) => return self.ui.notify(format!("boo: {e}"), WARN),
        };
        let Some(c) = self.ws.chats.get(&chat).cloned() else {
            return;
        };
        let name = a.name.as_deref().map(str::trim).unwrap_or_default();
        let model = (!name.is_empty() && name != "default").then(|| name.to_string());
        let opencode = split_agent(&c.agent).0 == "opencode";
        if let Some(m) = &model {
            let ok = m
                .split_once('/')
                .is_some_and(|(p, id)| !p.is_empty() && !id.is_empty());
            if opencode && !ok {
                return self.ui.notify(
                    format!("boo: invalid model '{m}': expected provider/model (see :Boo model)"),
                    ERROR,
                );
            }
        }
        if c.model == model {
            return;
        }
        let update = ChatUpdate {
            model: Some(model.clone()),
            ..Default::default()
        };
        if let Err(e) = self.update_chat(chat, update).await {
            return self
                .ui
                .notify(format!("boo: model not changed: {e}"), ERROR);
        }
        let shown = model.clone().unwrap_or_else(|| "the default model".into());
        let unknown = opencode
            && model.as_ref().is_some_and(|m| {
                self.agents
                    .probe
                    .as_ref()
                    .is_some_and(|p| !p.models().contains(m))
            });
        if unknown {
            self.ui.notify(
                format!(
                    "boo: {} uses {shown} from its next turn; the last probe did not list it",
                    c.title
                ),
                WARN,
            );
        } else {
            self.ui.notify(
                format!("boo: {} uses {shown} from its next turn", c.title),
                INFO,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_names() {
        assert_eq!(split_agent("opencode"), ("opencode", None));
        assert_eq!(split_agent("opencode:plan"), ("opencode", Some("plan")));
        assert_eq!(split_agent("opencode:"), ("opencode", None));
        assert_eq!(split_agent("qwen"), ("qwen", None));
        for ok in [
            "opencode",
            "opencode:plan",
            "qwen",
            "claude",
            "goose",
            "opencode-acp",
            "gemini",
            "codex-acp",
        ] {
            assert!(known_agent(ok), "{ok}");
        }
        for bad in ["", "gpt", "qwen:x", "aider"] {
            assert!(!known_agent(bad), "{bad}");
        }
    }
}
