//! After a backend crash: the panes Lua still shows come back under the ids Lua knows, with
//! their tabs and transcripts, before the action that restarted the backend is handled.

use std::collections::HashSet;
use std::path::PathBuf;

use super::workspace::{PaneKind, PaneState};
use super::App;
use crate::model::{ChatId, SessionId};
use crate::rpc::{RestoreArgs, RestorePane};

const WARN: u8 = 3;

impl App {
    pub(super) async fn restore(&mut self, a: RestoreArgs) {
        let top = a.panes.iter().map(|p| p.pane).max().unwrap_or(0);
        self.ws.reserve_pane_ids(top);
        let mut sessions = HashSet::new();
        for p in &a.panes {
            match self.adopt(p).await {
                Some(session) => {
                    sessions.insert(session);
                }
                // Its chats are gone (deleted meanwhile): nothing to show.
                None => self.ui.close_pane(p.pane),
            }
        }
        for p in &a.panes {
            if self.ws.panes.contains_key(&p.pane) {
                self.show_pane(p.pane, false).await;
            }
        }
        self.ws.current_pane = a
            .current
            .filter(|c| self.ws.panes.contains_key(c))
            .or(self.ws.current_pane);
        if let Some(s) = self
            .ws
            .current_pane
            .and_then(|p| self.ws.panes.get(&p))
            .map(|p| p.session)
        {
            self.ws.current_session = Some(s);
        }
        for s in sessions {
            self.save_panes(s).await;
        }
        tracing::info!(
            panes = a.panes.len(),
            "view restored after a backend restart"
        );
    }

    /// Adopts one pane; returns its session, or None when none of its chats exist.
    async fn adopt(&mut self, p: &RestorePane) -> Option<SessionId> {
        let mut tabs = Vec::new();
        let mut session = None;
        for &chat in &p.tabs {
            match self.chat_session(chat).await {
                Some(s) if session.is_none_or(|x| x == s) => {
                    session = Some(s);
                    tabs.push(chat);
                }
                _ => {}
            }
        }
        let session = session?;
        let kind = if p.kind == "float" {
            PaneKind::Float
        } else {
            PaneKind::Chat
        };
        // The session's saved panes were loaded hidden: the adopted view replaces them.
        let stale: Vec<_> = self
            .ws
            .panes
            .values()
            .filter(|x| x.session == session && !x.visible && x.kind == kind)
            .map(|x| x.id)
            .collect();
        for id in stale {
            self.ws.panes.remove(&id);
        }
        let active = p
            .active
            .filter(|c| tabs.contains(c))
            .or(tabs.last().copied());
        self.ws.adopt_pane(PaneState {
            id: p.pane,
            session,
            kind,
            tabs,
            active,
            visible: true,
            mods: p.mods.clone(),
        });
        Some(session)
    }

    /// The session of a chat, loading it (with its chats) when this process has not yet.
    async fn chat_session(&mut self, chat: ChatId) -> Option<SessionId> {
        if let Some(c) = self.ws.chats.get(&chat) {
            return Some(c.session);
        }
        let store = self.store().await;
        let session = match store.chat(chat).await {
            Ok(Some(c)) => c.session_id,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(chat, "chat of a restored pane not loaded: {e}");
                return None;
            }
        };
        if !self.ws.sessions.contains_key(&session) {
            let s = match store.session(session).await {
                Ok(Some(s)) => s,
                Ok(None) => return None,
                Err(e) => {
                    tracing::warn!(session, "session of a restored pane not loaded: {e}");
                    return None;
                }
            };
            if let Err(e) = self
                .load_session(session, &PathBuf::from(&s.repo_root), &s.title)
                .await
            {
                self.ui
                    .notify(format!("boo: session not restored: {e}"), WARN);
                return None;
            }
        }
        self.ws.chats.contains_key(&chat).then_some(session)
    }
}
