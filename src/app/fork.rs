//! `:Boo fork`: a new chat of the same session that starts from one turn of another chat: its
//! agent context is the agent's fork of the conversation up to the end of that turn (opencode's
//! fork API, exclusive of the next turn's prompt) and the worktree goes to that turn's
//! after-snapshot (refused, like undo, when the worktree holds edits no checkpoint has).

use std::sync::Arc;

use serde_json::json;

use super::review::Target;
use super::App;
use crate::agent::AgentBackend;
use crate::model::{ChatId, ItemKind, SessionId};
use crate::store::{AgentSession, ChatUpdate, Checkpoint, CheckpointState, Store};
use crate::worktree;

const INFO: u8 = 2;
const WARN: u8 = 3;
const ERROR: u8 = 4;

/// Where the fork starts: which turn, and what the agent should keep.
#[derive(Debug, PartialEq)]
pub struct ForkPlan {
    pub turn: u32,
    pub after: String,
    /// The worktree state the chat's undo/redo left (must hold now).
    pub expect: String,
    /// The first later prompt message: the agent keeps what is before it (`None`: all).
    pub keep_before: Option<String>,
}

/// The state undo/redo leave the worktree in: after the last turn not undone, or before the
/// first undone one after it.
pub fn current_state(cps: &[Checkpoint]) -> Option<String> {
    let last = cps
        .iter()
        .rposition(|c| c.state == CheckpointState::Done && c.after_commit.is_some());
    let first_undone = cps
        .iter()
        .skip(last.map_or(0, |i| i + 1))
        .find(|c| c.state == CheckpointState::Undone);
    match (first_undone, last) {
        (Some(u), _) => u.before_commit.clone(),
        (None, Some(i)) => cps[i].after_commit.clone(),
        (None, None) => None,
    }
}

/// Picks the turn: the one whose items hold transcript item `seq`, the numbered `turn`, or the
/// last one not undone.
pub fn fork_plan(
    cps: &[Checkpoint],
    seq: Option<usize>,
    turn: Option<u32>,
) -> Result<ForkPlan, String> {
    let with_after = |c: &&Checkpoint| c.after_commit.is_some();
    let pos = match (turn, seq) {
        (Some(t), _) => cps.iter().position(|c| c.turn == t),
        (None, Some(s)) => cps.iter().rposition(|c| c.seq.is_some_and(|x| x <= s)),
        (None, None) => cps
            .iter()
            .rposition(|c| c.state == CheckpointState::Done && c.after_commit.is_some()),
    }
    .ok_or("no turn to fork from in this chat")?;
    let cp = Some(&cps[pos])
        .filter(with_after)
        .ok_or("that turn has no checkpoint to fork from")?;
    Ok(ForkPlan {
        turn: cp.turn,
        after: cp.after_commit.clone().unwrap_or_default(),
        expect: current_state(cps).ok_or("no turn to fork from in this chat")?,
        keep_before: cps[pos + 1..].iter().find_map(|c| c.message_id.clone()),
    })
}

/// What a fork made, for the loop to open it.
#[derive(Debug)]
pub struct Forked {
    pub from: ChatId,
    pub session: SessionId,
    pub turn: u32,
    pub external_id: String,
    pub config_hash: String,
    pub files: usize,
    /// Absolute paths written, whose clean buffers reload.
    pub reload: Vec<String>,
}

async fn run_fork(
    store: Store,
    backend: Arc<dyn AgentBackend>,
    target: Target,
    from: ChatId,
    agent: String,
    seq: Option<usize>,
    turn: Option<u32>,
) -> Result<Forked, String> {
    let cps = store.checkpoints(from).await.map_err(|e| e.to_string())?;
    let plan = fork_plan(&cps, seq, turn)?;
    let binding = store
        .agent_session(from, super::agents::binding_key(&agent))
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{agent} has no conversation to fork in this chat"))?;
    let session = target.session;
    let wt = tokio::task::spawn_blocking(move || target.open())
        .await
        .map_err(|e| e.to_string())??;
    let (wt2, expect) = (wt.clone(), plan.expect.clone());
    let changed = tokio::task::spawn_blocking(move || worktree::changed_since(&wt2, &expect))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    if !changed.is_empty() {
        return Err(format!(
            "the worktree has edits no turn saved ({}); nothing was forked, so they are kept",
            changed.join(", ")
        ));
    }
    let external_id = backend
        .fork(
            wt.path.clone(),
            binding.external_id,
            plan.keep_before.clone(),
        )
        .await
        .map_err(|e| e.to_string())?;
    let after = plan.after.clone();
    let root = wt.path.clone();
    let restored = tokio::task::spawn_blocking(move || worktree::restore(&wt, &after, None))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(Forked {
        from,
        session,
        turn: plan.turn,
        external_id,
        config_hash: binding.config_hash,
        files: restored.written.len(),
        reload: restored
            .written
            .iter()
            .map(|p| root.join(p).display().to_string())
            .collect(),
    })
}

impl App {
    /// `:Boo fork`: from the turn holding item `seq` (the cursor), turn `turn`, or the last.
    pub(super) async fn fork(&mut self, a: crate::rpc::ForkArgs) {
        let Some(chat) = self.ws.target_chat(a.chat, a.pane) else {
            return self.ui.notify("boo: no chat to fork", WARN);
        };
        let Some(c) = self.ws.chats.get(&chat).cloned() else {
            return;
        };
        if a.session {
            let store = self.store().await;
            let events = self.events.clone();
            self.store_jobs.run(async move {
                let result = match store.checkpoints(chat).await {
                    Ok(cps) => fork_plan(&cps, a.seq, a.turn).map(|p| (p.turn, p.after)),
                    Err(e) => Err(e.to_string()),
                };
                let _ = events.send(super::Event::Checkpoint(
                    super::checkpoints::CheckpointEvent::ForkSession { chat, result },
                ));
            });
            return;
        }
        if c.busy() || self.recording.contains_key(&chat) || !self.moving.insert(chat) {
            return self.ui.notify(
                format!("boo: {} is busy; fork it when its turn is done", c.title),
                WARN,
            );
        }
        let (Some(target), Some(backend)) =
            (self.target_of(c.session), self.agents.backend_of(&c.agent))
        else {
            self.moving.remove(&chat);
            return self
                .ui
                .notify("boo: this chat's worktree is not ready yet", WARN);
        };
        let store = self.store().await;
        let events = self.events.clone();
        let agent = c.agent.clone();
        self.store_jobs.run(async move {
            let r = run_fork(store, backend, target, chat, agent, a.seq, a.turn).await;
            let _ = events.send(super::Event::Checkpoint(
                super::checkpoints::CheckpointEvent::Forked { chat, result: r },
            ));
        });
    }

    /// `:Boo fork session`: a new session whose worktree starts from the turn's after-snapshot.
    /// The agent starts a new conversation there: opencode keeps a session in the directory it
    /// was made in, so its fork could not work in the new worktree.
    pub(super) async fn fork_session(
        &mut self,
        chat: ChatId,
        result: Result<(u32, String), String>,
    ) {
        let (turn, commit) = match result {
            Ok(x) => x,
            Err(e) => return self.ui.notify(format!("boo: fork: {e}"), ERROR),
        };
        let Some(old) = self
            .ws
            .chats
            .get(&chat)
            .and_then(|c| self.ws.sessions.get(&c.session))
        else {
            return;
        };
        let repo = old.repo_root.clone();
        let title = format!("{} @{turn}", old.title);
        let store = self.store().await;
        let s = match store
            .create_session(&repo.display().to_string(), &title)
            .await
        {
            Ok(s) => s,
            Err(e) => return self.ui.notify(format!("boo: fork: {e}"), ERROR),
        };
        self.ws
            .sessions
            .insert(s.id, super::sessions::new_state(s.id, &repo, &s.title));
        self.ws.current_session = Some(s.id);
        self.seeds.insert(s.id, commit);
        self.create_worktree(s.id, &repo, &s.title);
        let cwd = repo.display().to_string();
        self.show(Some(&cwd)).await;
        self.ui.notify(
            format!("boo: new session '{}' from turn {turn}'s files; its agent starts a new conversation", s.title),
            INFO,
        );
    }

    pub(super) async fn forked(&mut self, chat: ChatId, result: Result<Forked, String>) {
        self.moving.remove(&chat);
        let f = match result {
            Ok(f) => f,
            Err(e) => return self.ui.notify(format!("boo: fork: {e}"), ERROR),
        };
        let Some(orig) = self.ws.chats.get(&f.from).cloned() else {
            return;
        };
        let new = match self.new_chat(f.session).await {
            Ok(c) => c,
            Err(e) => return self.ui.notify(format!("boo: fork: {e}"), ERROR),
        };
        let title = format!("{} @{}", orig.title, f.turn);
        let update = ChatUpdate {
            title: Some(title.clone()),
            agent: Some(orig.agent.clone()),
            model: Some(orig.model.clone()),
            ..Default::default()
        };
        if let Err(e) = self.update_chat(new, update).await {
            tracing::warn!(chat = new, "fork's chat settings not saved: {e}");
        }
        if let Some(c) = self.ws.chats.get_mut(&new) {
            c.title = title.clone();
        }
        let worktree = self.ws.sessions.get(&f.session).and_then(|s| s.worktree_id);
        let row = AgentSession {
            chat_id: new,
            agent: super::agents::binding_key(&orig.agent).to_string(),
            external_id: f.external_id,
            config_hash: f.config_hash,
            worktree_id: worktree,
            session_id: Some(f.session),
            state: "live".into(),
            updated_at: 0,
        };
        // Queued before any turn of the new chat looks its binding up (same job queue).
        self.write_later("forked agent session not saved", move |s| async move {
            s.upsert_agent_session(row).await
        })
        .await;
        self.tx_push(
            new,
            ItemKind::Info,
            None,
            format!(
                "Forked from {} at turn {}: the agent remembers up to that turn, the files are that turn's.",
                orig.title, f.turn
            ),
            json!({"status": "forked", "from": f.from, "turn": f.turn}),
        );
        let pane = self
            .ws
            .panes
            .values()
            .find(|p| p.visible && p.tabs.contains(&f.from))
            .map(|p| p.id);
        if let Some(p) = pane {
            if let Some(ps) = self.ws.panes.get_mut(&p) {
                ps.add_tab(new);
                ps.active = Some(new);
            }
            self.show_pane(p, true).await;
            self.save_panes(f.session).await;
        }
        self.ui.reload(f.reload);
        self.refresh_pending(f.session, &orig.agent);
        self.ui.notify(
            format!(
                "boo: forked {} at turn {} into {title} ({} file(s) restored)",
                orig.title, f.turn, f.files
            ),
            INFO,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::checkpoints::tests::cp;
    use super::*;

    #[test]
    fn fork_keeps_the_turn_and_what_came_before() {
        use CheckpointState::*;
        let cps = vec![cp(1, Done), cp(2, Done), cp(3, Undone)];
        assert_eq!(current_state(&cps).as_deref(), Some("b3"));
        let p = fork_plan(&cps, None, None).unwrap();
        assert_eq!((p.turn, p.after.as_str()), (2, "a2"));
        assert_eq!(p.keep_before.as_deref(), Some("msg_3"));
        let p = fork_plan(&cps, Some(15), None).unwrap();
        assert_eq!((p.turn, p.keep_before.as_deref()), (1, Some("msg_2")));
        let p = fork_plan(&cps, None, Some(3)).unwrap();
        assert_eq!((p.turn, p.keep_before), (3, None));
        assert!(fork_plan(&[], None, None).is_err());
        assert_eq!(current_state(&cps[..2]).as_deref(), Some("a2"));
    }
}
