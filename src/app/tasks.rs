//! Turns that arrive without a chat (the Lua `task()` API, MCP `boo_new_task`, headless
//! `boocoder task`): resolve or create the session, make a new chat in it, and queue the
//! turn through the normal path (`start_turn`), so it is recorded, snapshotted and reviewed
//! like any other. `tasks.creator` says who asked.

use std::path::PathBuf;

use serde_json::json;

use super::agents::{known_agent, split_agent};
use super::App;
use crate::model::{ChatId, ItemKind, SessionId};
use crate::store::ChatUpdate;
use crate::worktree;

/// Where a task's chat goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// This session (loaded from the store when not in use).
    Session(SessionId),
    /// The session in use, else the repository's as `:Boo` picks it.
    Current,
    /// A new session with its own worktree.
    New,
}

/// A turn without a chat.
#[derive(Clone, Debug)]
pub struct TaskSpec {
    pub prompt: String,
    pub agent: Option<String>,
    pub model: Option<String>,
    pub place: Place,
    /// Run in this chat instead of a new one (resolve rather than create).
    pub chat: Option<ChatId>,
    /// `api`, `mcp`, `cli`.
    pub creator: String,
    /// Finds the repository for `Current`/`New` (default: the process's cwd).
    pub cwd: Option<String>,
    /// How many tasks deep the new chat is (0: asked by a person).
    pub depth: u32,
}

/// The chat a task made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Created {
    pub session: SessionId,
    pub chat: ChatId,
}

impl App {
    /// Makes the task's chat and queues its turn; the error is one line for the user.
    pub(super) async fn create_task(&mut self, spec: TaskSpec) -> Result<Created, String> {
        let prompt = spec.prompt.trim().to_string();
        if prompt.is_empty() {
            return Err("task without a prompt".into());
        }
        if let Some(a) = spec.agent.as_deref() {
            if !known_agent(a) && !self.agents.is_acp(a) {
                return Err(format!("unknown agent '{a}'"));
            }
        }
        let agent = spec.agent.clone().unwrap_or_else(|| "opencode".into());
        if let Some(m) = spec.model.as_deref() {
            let ok = m
                .split_once('/')
                .is_some_and(|(p, id)| !p.is_empty() && !id.is_empty());
            if split_agent(&agent).0 == "opencode" && !ok {
                return Err(format!("invalid model '{m}': expected provider/model"));
            }
        }
        let (session, chat) = match spec.chat.and_then(|c| self.ws.chats.get(&c)) {
            Some(c) => {
                if c.busy() && (spec.agent.is_some() || spec.model.is_some()) {
                    return Err(format!(
                        "{} has a turn running; its agent and model stay as they are",
                        c.title
                    ));
                }
                (c.session, c.id)
            }
            None if spec.chat.is_some() => {
                return Err(format!("no chat {}", spec.chat.unwrap_or_default()))
            }
            None => {
                let session = self.task_session(spec.place, spec.cwd.as_deref()).await?;
                // The new chat must not become the one `:Boo send` goes to.
                let before = self.ws.sessions.get(&session).and_then(|s| s.last_chat);
                let chat = self.new_chat(session).await?;
                if let Some(s) = self.ws.sessions.get_mut(&session) {
                    s.last_chat = before.or(Some(chat));
                }
                (session, chat)
            }
        };
        self.register_chat(chat).await;
        if spec.agent.is_some() || spec.model.is_some() {
            let update = ChatUpdate {
                agent: spec.agent.clone(),
                model: spec.model.clone().map(Some),
                ..Default::default()
            };
            self.update_chat(chat, update).await?;
        }
        if spec.chat.is_none() {
            self.task_depth.insert(chat, spec.depth);
        }
        // A tab in the session's float, so the task is seen; the user's tab stays active.
        if let Some(pane) = self.ws.float_of(session) {
            if let Some(p) = self.ws.panes.get_mut(&pane) {
                if !p.tabs.contains(&chat) {
                    p.tabs.push(chat);
                }
            }
            self.refresh_tabs(chat);
        }
        let Some(seq) = self.tx_push(chat, ItemKind::User, None, prompt.clone(), json!({})) else {
            return Err("the task's chat has no transcript".into());
        };
        self.start_turn(
            chat,
            prompt,
            spec.creator.clone(),
            Some(seq),
            Default::default(),
        )
        .await;
        self.ui.autocmd(
            "BooTask",
            json!({"chat": chat, "session": session, "creator": spec.creator}),
        );
        Ok(Created { session, chat })
    }

    async fn task_session(&mut self, place: Place, cwd: Option<&str>) -> Result<SessionId, String> {
        match place {
            Place::Session(id) if self.ws.sessions.contains_key(&id) => Ok(id),
            Place::Session(id) => {
                let store = self.store().await;
                let s = store
                    .session(id)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("no session {id}"))?;
                let current = self.ws.current_session;
                self.load_session(id, &PathBuf::from(&s.repo_root), &s.title)
                    .await?;
                // Loading made it current; the user's stays.
                self.ws.current_session = current.or(Some(id));
                Ok(id)
            }
            Place::Current => match self.ws.current_session {
                Some(s) => Ok(s),
                None => self.ensure_session(cwd).await,
            },
            Place::New => {
                let cwd = match cwd {
                    Some(c) => PathBuf::from(c),
                    None => {
                        std::env::current_dir().map_err(|e| format!("no working directory: {e}"))?
                    }
                };
                let repo = tokio::task::spawn_blocking(move || worktree::discover(&cwd))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
                let store = self.store().await;
                let s = store
                    .create_session(&repo.display().to_string(), "task")
                    .await
                    .map_err(|e| e.to_string())?;
                self.ws
                    .sessions
                    .insert(s.id, super::sessions::new_state(s.id, &repo, &s.title));
                if self.ws.current_session.is_none() {
                    self.ws.current_session = Some(s.id);
                }
                self.create_worktree(s.id, &repo, &s.title);
                Ok(s.id)
            }
        }
    }

    /// `require('boo').task(...)`: errors are one line.
    pub(super) async fn task_from_lua(&mut self, a: crate::rpc::TaskArgs) {
        let spec = TaskSpec {
            prompt: a.prompt,
            agent: a.agent.filter(|s| !s.trim().is_empty()),
            model: a.model.filter(|s| !s.trim().is_empty()),
            place: match a.session {
                Some(s) => Place::Session(s),
                None => Place::Current,
            },
            chat: a.chat,
            creator: "api".into(),
            cwd: a.cwd,
            depth: 0,
        };
        if let Err(e) = self.create_task(spec).await {
            self.ui.notify(format!("boo: task not created: {e}"), 4);
        }
    }
}
