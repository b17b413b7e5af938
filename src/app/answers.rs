//! Answers to Lua's requests, published by the loop after each event that may change them and
//! read by the RPC forwarder. A request is answered from here, never queued behind a handler
//! that waits on SQLite (a busy database, another editor's write lock): Neovim is blocked for
//! as long as a request takes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value as Json};
use tokio::sync::watch;

use super::App;
use crate::model::{ChatId, PaneId, SessionId};
use crate::rpc::{ErrorCode, Request, RpcError};

/// How long a request waits for the notifications sent before it to be handled, so that
/// `:Boo new` then `chats` sees the new tab. Past this it gets the last published state.
pub const ORDER_GRACE: Duration = Duration::from_millis(20);

#[derive(Debug, Default)]
pub struct Answers {
    permissions: Json,
    review_info: Json,
    /// None until a probe report (or a running probe) exists: the loop starts one then.
    probe: Option<Json>,
    /// The session shown in each pane, and the one an action without a pane is for.
    pane_session: HashMap<PaneId, SessionId>,
    fallback: Option<SessionId>,
    chats: HashMap<SessionId, Json>,
    chat_session: HashMap<ChatId, SessionId>,
    files: HashMap<SessionId, Arc<Vec<String>>>,
    commands: HashMap<SessionId, Arc<Json>>,
    prompts: HashMap<ChatId, Arc<crate::store::ChatPrompts>>,
}

impl Answers {
    /// The answer, or None when only the loop can give it (a probe must be started).
    pub fn answer(&self, req: &Request) -> Option<Result<Json, RpcError>> {
        Some(match req {
            Request::Permissions => Ok(self.permissions.clone()),
            Request::ReviewInfo(_) => Ok(self.review_info.clone()),
            Request::Probe(a) if !a.refresh => return self.probe.clone().map(Ok),
            Request::Chats(a) => a
                .pane
                .and_then(|p| self.pane_session.get(&p).copied())
                .or(self.fallback)
                .and_then(|s| self.chats.get(&s).cloned())
                .ok_or_else(|| {
                    RpcError::new(ErrorCode::NotFound, "no session yet: open one with :Boo")
                }),
            Request::Files(a) => {
                let session = a
                    .chat
                    .and_then(|c| self.chat_session.get(&c).copied())
                    .or_else(|| a.pane.and_then(|p| self.pane_session.get(&p).copied()))
                    .or(self.fallback);
                let files = session.and_then(|s| self.files.get(&s));
                Ok(files.map_or(Json::Array(Vec::new()), |f| json!(**f)))
            }
            Request::History(a) => {
                let p = a.chat.and_then(|c| self.prompts.get(&c));
                Ok(p.map_or(
                    json!({"history": [], "draft": ""}),
                    |p| json!({"history": p.history, "draft": p.draft}),
                ))
            }
            Request::Commands(a) => {
                let session = a
                    .chat
                    .and_then(|c| self.chat_session.get(&c).copied())
                    .or_else(|| a.pane.and_then(|p| self.pane_session.get(&p).copied()))
                    .or(self.fallback);
                let c = session.and_then(|s| self.commands.get(&s));
                Ok(c.map_or(json!({}), |c| (**c).clone()))
            }
            _ => return None,
        })
    }
}

/// What the loop and the forwarder share: the answers, and how many notifications the loop
/// has handled.
#[derive(Clone)]
pub struct Shared {
    pub answers: Arc<Mutex<Answers>>,
    pub handled: watch::Sender<u64>,
}

impl Shared {
    pub fn new() -> Shared {
        Shared {
            answers: Arc::default(),
            handled: watch::channel(0).0,
        }
    }

    /// Answers `req` once the loop handled `sent` notifications (or `ORDER_GRACE` passed).
    pub async fn answer(&self, req: &Request, sent: u64) -> Option<Result<Json, RpcError>> {
        let started = std::time::Instant::now();
        let mut rx = self.handled.subscribe();
        let _ = tokio::time::timeout(ORDER_GRACE, rx.wait_for(|n| *n >= sent)).await;
        let r = self.answers.lock().ok()?.answer(req);
        let took = started.elapsed();
        if took > Duration::from_millis(5) {
            tracing::debug!(
                ?took,
                "request answered after waiting for earlier notifications"
            );
        }
        r
    }
}

impl App {
    /// Publishes the answers of the current state.
    pub(super) fn publish_answers(&mut self) {
        let mut pane_session = HashMap::new();
        for p in self.ws.panes.values() {
            pane_session.insert(p.id, p.session);
        }
        let fallback = self
            .ws
            .target_pane(None)
            .and_then(|p| self.ws.panes.get(&p))
            .map(|p| p.session)
            .or(self.ws.current_session);
        let chats = self
            .ws
            .sessions
            .values()
            .map(|s| {
                let list: Vec<Json> = s
                    .chats
                    .iter()
                    .filter_map(|c| self.ws.chats.get(c))
                    .map(|c| {
                        json!(crate::ui::ChatEntry {
                            id: c.id,
                            title: c.title.clone(),
                            busy: c.busy(),
                            agent: c.agent.clone(),
                            model: c.model.clone(),
                        })
                    })
                    .collect();
                (s.id, Json::Array(list))
            })
            .collect();
        let probe = (self.agents.probe.is_some() || self.agents.probing).then(|| self.probe_json());
        let chat_session = self.ws.chats.values().map(|c| (c.id, c.session)).collect();
        let a = Answers {
            permissions: self.agents.permissions_json(),
            review_info: self.review_info(),
            probe,
            pane_session,
            fallback,
            chats,
            chat_session,
            files: self.files.clone(),
            commands: self.commands.clone(),
            prompts: self.prompts.clone(),
        };
        if let Ok(mut shared) = self.shared.answers.lock() {
            *shared = a;
        }
    }
}
