//! The in-memory workspace: sessions, chats and panes, and the small rules that move tabs
//! around. Pure data, so the rules are unit-tested without Neovim.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use crate::model::{ChatId, PaneId, SessionId, WorktreeId};

#[derive(Clone, Debug)]
pub struct SessionState {
    pub id: SessionId,
    pub repo_root: PathBuf,
    pub title: String,
    /// Where the session's agents run: its worktree (None until ready).
    pub dir: Option<PathBuf>,
    pub worktree_id: Option<WorktreeId>,
    /// Checkout progress (files written, total) while the worktree is being made.
    pub preparing: Option<(usize, usize)>,
    /// Chats in tab order.
    pub chats: Vec<ChatId>,
    pub last_chat: Option<ChatId>,
}

#[derive(Clone, Debug)]
pub struct ChatState {
    pub id: ChatId,
    pub session: SessionId,
    pub title: String,
    pub agent: String,
    pub model: Option<String>,
    /// The task of the running turn.
    pub running: Option<crate::model::TaskId>,
    /// Prompts waiting behind the running turn.
    pub queued: usize,
}

impl ChatState {
    pub fn busy(&self) -> bool {
        self.running.is_some() || self.queued > 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaneKind {
    Float,
    Chat,
    Term,
    Code,
}

impl PaneKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PaneKind::Float => "float",
            PaneKind::Chat => "chat",
            PaneKind::Term => "term",
            PaneKind::Code => "code",
        }
    }
}

#[derive(Clone, Debug)]
pub struct PaneState {
    pub id: PaneId,
    pub session: SessionId,
    pub kind: PaneKind,
    pub tabs: Vec<ChatId>,
    pub active: Option<ChatId>,
    pub visible: bool,
    pub mods: Option<String>,
}

impl PaneState {
    /// Moves the active tab by `step` (wrapping); returns the new active chat.
    pub fn cycle(&mut self, step: isize) -> Option<ChatId> {
        if self.tabs.is_empty() {
            return None;
        }
        let cur = self
            .active
            .and_then(|a| self.tabs.iter().position(|t| *t == a))
            .unwrap_or(0) as isize;
        let n = self.tabs.len() as isize;
        let next = (cur + step).rem_euclid(n) as usize;
        self.active = Some(self.tabs[next]);
        self.active
    }

    /// Removes a tab; the neighbour to its left (or the new first) becomes active.
    pub fn remove_tab(&mut self, chat: ChatId) {
        let Some(pos) = self.tabs.iter().position(|t| *t == chat) else {
            return;
        };
        self.tabs.remove(pos);
        if self.active == Some(chat) {
            self.active = if self.tabs.is_empty() {
                None
            } else {
                Some(self.tabs[pos.saturating_sub(1).min(self.tabs.len() - 1)])
            };
        }
    }

    /// Adds a tab after the active one and makes it active.
    pub fn add_tab(&mut self, chat: ChatId) {
        let pos = self
            .active
            .and_then(|a| self.tabs.iter().position(|t| *t == a))
            .map_or(self.tabs.len(), |p| p + 1);
        self.tabs.insert(pos, chat);
        self.active = Some(chat);
    }
}

#[derive(Debug, Default)]
pub struct Workspace {
    pub sessions: HashMap<SessionId, SessionState>,
    pub chats: HashMap<ChatId, ChatState>,
    pub panes: BTreeMap<PaneId, PaneState>,
    next_pane: PaneId,
    /// The session the user works in now (of the last shown pane or sent prompt).
    pub current_session: Option<SessionId>,
    /// The pane the user last acted in.
    pub current_pane: Option<PaneId>,
}

impl Workspace {
    pub fn new_pane(
        &mut self,
        session: SessionId,
        kind: PaneKind,
        tabs: Vec<ChatId>,
        mods: Option<String>,
    ) -> PaneId {
        self.next_pane += 1;
        let id = self.next_pane;
        let active = tabs.last().copied();
        self.panes.insert(
            id,
            PaneState {
                id,
                session,
                kind,
                tabs,
                active,
                visible: true,
                mods,
            },
        );
        self.current_pane = Some(id);
        id
    }

    /// A pane under an id Lua already uses (the view of a backend that crashed): actions Lua
    /// sends with that id keep reaching it. Later ids are allocated above it.
    pub fn adopt_pane(&mut self, pane: PaneState) {
        self.next_pane = self.next_pane.max(pane.id);
        self.panes.insert(pane.id, pane);
    }

    /// Makes new panes get ids above `id` (before loading panes next to adopted ones).
    pub fn reserve_pane_ids(&mut self, id: PaneId) {
        self.next_pane = self.next_pane.max(id);
    }

    pub fn session_by_repo(&self, repo_root: &std::path::Path) -> Option<SessionId> {
        self.sessions
            .values()
            .filter(|s| s.repo_root == repo_root)
            .map(|s| s.id)
            .max_by_key(|id| (Some(*id) == self.current_session, *id))
    }

    pub fn float_of(&self, session: SessionId) -> Option<PaneId> {
        self.panes
            .values()
            .find(|p| p.session == session && p.kind == PaneKind::Float)
            .map(|p| p.id)
    }

    /// Chats shown right now (the active tab of every visible chat pane).
    pub fn visible_chats(&self) -> HashSet<ChatId> {
        self.panes
            .values()
            .filter(|p| p.visible && matches!(p.kind, PaneKind::Float | PaneKind::Chat))
            .filter_map(|p| p.active)
            .collect()
    }

    /// The chat an action without an explicit chat is for.
    pub fn target_chat(&self, chat: Option<ChatId>, pane: Option<PaneId>) -> Option<ChatId> {
        if let Some(c) = chat.filter(|c| self.chats.contains_key(c)) {
            return Some(c);
        }
        let pane = self.target_pane(pane);
        if let Some(a) = pane.and_then(|p| self.panes.get(&p)).and_then(|p| p.active) {
            return Some(a);
        }
        self.current_session
            .and_then(|s| self.sessions.get(&s))
            .and_then(|s| s.last_chat.or_else(|| s.chats.last().copied()))
    }

    /// The pane an action is for: the given one if it exists, else the current one. A given
    /// pane the backend has hidden since (a new session's float replaced it, and the view has
    /// not drawn that yet) is stale: `:Boo session new x | Boo send y` is for the new session.
    pub fn target_pane(&self, pane: Option<PaneId>) -> Option<PaneId> {
        let current = self
            .current_pane
            .filter(|p| self.panes.get(p).is_some_and(|p| p.visible));
        pane.filter(|p| {
            self.panes
                .get(p)
                .is_some_and(|p| p.visible || current.is_none())
        })
        .or(current)
        .or(self.current_pane.filter(|p| self.panes.contains_key(p)))
        .or_else(|| self.panes.values().find(|p| p.visible).map(|p| p.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pane(tabs: Vec<ChatId>) -> PaneState {
        PaneState {
            id: 1,
            session: 1,
            kind: PaneKind::Float,
            active: tabs.first().copied(),
            tabs,
            visible: true,
            mods: None,
        }
    }

    #[test]
    fn cycling_wraps_both_ways() {
        let mut p = pane(vec![10, 20, 30]);
        assert_eq!(p.cycle(1), Some(20));
        assert_eq!(p.cycle(1), Some(30));
        assert_eq!(p.cycle(1), Some(10));
        assert_eq!(p.cycle(-1), Some(30));
    }

    #[test]
    fn removing_the_active_tab_activates_its_left_neighbour() {
        let mut p = pane(vec![10, 20, 30]);
        p.active = Some(20);
        p.remove_tab(20);
        assert_eq!((p.tabs.clone(), p.active), (vec![10, 30], Some(10)));
        p.remove_tab(10);
        assert_eq!(p.active, Some(30));
        p.remove_tab(30);
        assert_eq!(p.active, None);
    }

    #[test]
    fn new_tabs_go_after_the_active_one() {
        let mut p = pane(vec![10, 20]);
        p.add_tab(15);
        assert_eq!(p.tabs, vec![10, 15, 20]);
        assert_eq!(p.active, Some(15));
    }

    #[test]
    fn a_pane_hidden_since_the_view_named_it_yields_to_the_current_one() {
        let mut ws = Workspace::default();
        let old = ws.new_pane(1, PaneKind::Float, vec![10], None);
        let new = ws.new_pane(2, PaneKind::Float, vec![20], None);
        ws.current_pane = Some(new);
        // Both shown: the named pane wins.
        assert_eq!(ws.target_chat(None, Some(old)), Some(10));
        // The new session's float replaced the old one, which the view still names.
        ws.panes.get_mut(&old).unwrap().visible = false;
        assert_eq!(ws.target_chat(None, Some(old)), Some(20));
        assert_eq!(ws.target_pane(Some(old)), Some(new));
        // With nothing current on screen, the named pane is still used.
        ws.panes.get_mut(&new).unwrap().visible = false;
        assert_eq!(ws.target_chat(None, Some(old)), Some(10));
    }
}
