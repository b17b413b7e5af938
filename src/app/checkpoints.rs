//! Turn checkpoints as `App` methods: `:Boo undo` and `:Boo redo`.
//!
//! Every turn gets a number in its chat when its task row is made (`store::Checkpoint`); the
//! dispatcher's hook snapshots the worktree before it starts and after it ended
//! (`worktree::snapshot_dir`), and the commits come back as [`CheckpointEvent::Snapped`].
//!
//! Undo takes the chat's last turn not undone: it refuses when the worktree is not exactly that
//! turn's after-snapshot (an edit made since is never lost), rewinds the agent's context to
//! before the turn's prompt (opencode's revert; an agent that cannot is named), puts the
//! before-snapshot back, and marks the turn's transcript items undone. Redo does the reverse
//! for the first undone turn. A new turn after an undo drops the undone ones for good (opencode
//! deletes reverted messages at the next prompt). The work runs as a store job, so it sees
//! every snapshot recorded before it; the result comes back as [`CheckpointEvent::Moved`].

use std::sync::Arc;

use serde_json::Value as Json;

use super::review::Target;
use super::App;
use crate::agent::AgentBackend;
use crate::model::{ChatId, SessionId};
use crate::rpc::ChatArgs;
use crate::store::{Checkpoint, CheckpointState, Store};
use crate::worktree::{self, Side};

/// `vim.log.levels`
const INFO: u8 = 2;
const WARN: u8 = 3;
const ERROR: u8 = 4;

#[derive(Debug)]
pub enum CheckpointEvent {
    /// A snapshot of a turn was written (by the dispatcher's hook).
    Snapped {
        chat: ChatId,
        turn: u32,
        side: Side,
        commit: String,
    },
    /// An undo or redo finished, or was refused (`Err`: one line for the user).
    Moved {
        chat: ChatId,
        session: SessionId,
        agent: String,
        /// Each step, in order; an `Err` ends the list.
        result: Vec<Result<Moved, String>>,
    },
    /// The chat's turns for `:Boo timeline`.
    Timeline {
        chat: ChatId,
        result: Result<Vec<crate::ui::TimelineTurn>, String>,
    },
    /// A turn's own diff (the timeline's `<CR>`).
    TurnDiff {
        chat: ChatId,
        turn: u32,
        result: Result<String, String>,
    },
    /// The turn a `:Boo fork session` starts from: (turn, after-snapshot commit).
    ForkSession {
        chat: ChatId,
        result: Result<(u32, String), String>,
    },
    /// A fork finished (see `fork`).
    Forked {
        chat: ChatId,
        result: Result<super::fork::Forked, String>,
    },
}

/// What an undo/redo did.
#[derive(Debug)]
pub struct Moved {
    pub turn: u32,
    pub undone: bool,
    /// Transcript items of the turn: `from..to` (`None`: to the end).
    pub items: (usize, Option<usize>),
    pub files: usize,
    /// Absolute paths written, whose clean buffers reload.
    pub reload: Vec<String>,
    /// What the agent still remembers, when its context could not follow.
    pub agent_note: Option<String>,
}

/// Which turn a move takes, and how.
#[derive(Debug, PartialEq)]
pub struct Plan {
    pub turn: u32,
    /// The state the worktree must hold now, and the one it goes to.
    pub expect: String,
    pub target: String,
    /// Undo: the prompt message the agent forgets from (`None`: unknown).
    pub forget_from: Option<String>,
    /// Redo: after bringing everything back, forget again from this later undone turn's prompt.
    pub forget_again: Option<String>,
    pub items: (usize, Option<usize>),
}

/// Picks the turn an undo (or redo) takes; `Err` says why there is none.
pub fn plan(cps: &[Checkpoint], redo: bool) -> Result<Plan, String> {
    let complete = |c: &Checkpoint| c.before_commit.is_some() && c.after_commit.is_some();
    let pos = if redo {
        let after_done = cps
            .iter()
            .rposition(|c| c.state == CheckpointState::Done)
            .map_or(0, |i| i + 1);
        cps.iter()
            .skip(after_done)
            .position(|c| c.state == CheckpointState::Undone && complete(c))
            .map(|i| i + after_done)
            .ok_or("nothing to redo in this chat")?
    } else {
        cps.iter()
            .rposition(|c| c.state == CheckpointState::Done && complete(c))
            .ok_or("nothing to undo in this chat")?
    };
    let cp = &cps[pos];
    let (before, after) = (
        cp.before_commit.clone().unwrap_or_default(),
        cp.after_commit.clone().unwrap_or_default(),
    );
    let next = cps.get(pos + 1);
    let (expect, target) = if redo {
        (before, after)
    } else {
        (after, before)
    };
    Ok(Plan {
        turn: cp.turn,
        expect,
        target,
        forget_from: cp.message_id.clone(),
        forget_again: next
            .filter(|n| redo && n.state == CheckpointState::Undone)
            .and_then(|n| n.message_id.clone()),
        items: (cp.seq.unwrap_or(0), next.and_then(|n| n.seq)),
    })
}

/// Off the loop: the checks, the agent's context, the files, the store.
async fn run_move(
    store: Store,
    backend: Option<Arc<dyn AgentBackend>>,
    target: Target,
    chat: ChatId,
    agent: String,
    redo: bool,
) -> Result<Moved, String> {
    let cps = store.checkpoints(chat).await.map_err(|e| e.to_string())?;
    let plan = plan(&cps, redo)?;
    let wt = blocking(move || target.open()).await?;
    let (wt2, expect) = (wt.clone(), plan.expect.clone());
    let changed =
        blocking(move || worktree::changed_since(&wt2, &expect).map_err(|e| e.to_string())).await?;
    if !changed.is_empty() {
        let what = if redo { "redone" } else { "undone" };
        return Err(format!(
            "the worktree changed since turn {} ({}); nothing was {what}, so those edits are kept",
            plan.turn,
            shorten(&changed)
        ));
    }
    let binding = store
        .agent_session(chat, super::agents::binding_key(&agent))
        .await
        .ok()
        .flatten();
    let agent_note = match (backend, binding) {
        (Some(b), Some(s)) => {
            let dir = wt.path.clone();
            let r = if redo {
                match b.rewind(dir.clone(), s.external_id.clone(), None).await {
                    Ok(()) => match plan.forget_again.clone() {
                        Some(m) => b.rewind(dir, s.external_id, Some(m)).await,
                        None => Ok(()),
                    },
                    e => e,
                }
            } else {
                match plan.forget_from.clone() {
                    Some(m) => b.rewind(dir, s.external_id, Some(m)).await,
                    None => Err(crate::agent::AgentError::Cli(format!(
                        "{agent} still remembers turn {} (its message id was not recorded)",
                        plan.turn
                    ))),
                }
            };
            r.err().map(|e| e.to_string())
        }
        _ if redo => None,
        _ => Some(format!("{agent} still remembers turn {}", plan.turn)),
    };
    // The agent's own revert may have written files too: the snapshot is the truth.
    let goal = plan.target.clone();
    let root = wt.path.clone();
    let restored =
        blocking(move || worktree::restore(&wt, &goal, None).map_err(|e| e.to_string())).await?;
    let state = if redo {
        CheckpointState::Done
    } else {
        CheckpointState::Undone
    };
    store
        .set_checkpoint_states(chat, vec![plan.turn], state)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Moved {
        turn: plan.turn,
        undone: !redo,
        items: plan.items,
        files: restored.written.len(),
        reload: restored
            .written
            .iter()
            .map(|p| root.join(p).display().to_string())
            .collect(),
        agent_note,
    })
}

async fn timeline_turns(
    store: Store,
    target: Target,
    chat: ChatId,
) -> Result<Vec<crate::ui::TimelineTurn>, String> {
    let cps = store.checkpoints(chat).await.map_err(|e| e.to_string())?;
    let tasks = store.list_tasks(chat).await.map_err(|e| e.to_string())?;
    let wt = blocking(move || target.open()).await?;
    blocking(move || {
        let mut out = Vec::new();
        for cp in cps {
            let task = tasks.iter().find(|t| t.id == cp.task_id);
            let (mut files, mut additions, mut deletions) = (0, 0, 0);
            if let (Some(b), Some(a)) = (&cp.before_commit, &cp.after_commit) {
                if let Ok((f, _)) = worktree::turn_diff(&wt, b, a) {
                    files = f.len();
                    additions = f.iter().map(|x| x.additions).sum();
                    deletions = f.iter().map(|x| x.deletions).sum();
                }
            }
            out.push(crate::ui::TimelineTurn {
                turn: cp.turn,
                prompt: task.map(|t| t.prompt.clone()).unwrap_or_default(),
                at_ms: task.map_or(0, |t| t.created_at),
                files,
                additions,
                deletions,
                state: cp.state.as_str().to_string(),
                checkpointed: cp.before_commit.is_some() && cp.after_commit.is_some(),
            });
        }
        Ok(out)
    })
    .await
}

fn shorten(paths: &[String]) -> String {
    let mut s = paths.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    if paths.len() > 3 {
        s.push_str(&format!(" and {} more", paths.len() - 3));
    }
    s
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("internal error: {e}"))?
}

impl App {
    /// `:Boo undo` (`redo` false) and `:Boo redo` on a chat; with `until`, undo until that
    /// turn is undone too (the timeline's `u`).
    pub(super) async fn checkpoint_move(&mut self, a: ChatArgs, redo: bool, until: Option<u32>) {
        let Some(chat) = self.ws.target_chat(a.chat, a.pane) else {
            return self.ui.notify("boo: no chat to undo in", WARN);
        };
        let Some(c) = self.ws.chats.get(&chat).cloned() else {
            return;
        };
        if c.busy() || self.recording.contains_key(&chat) {
            return self.ui.notify(
                format!(
                    "boo: {} has a turn running; undo or redo when it is done",
                    c.title
                ),
                WARN,
            );
        }
        if !self.moving.insert(chat) {
            return self
                .ui
                .notify("boo: an undo or redo of this chat is under way", WARN);
        }
        let Some(target) = self.target_of(c.session) else {
            self.moving.remove(&chat);
            return self
                .ui
                .notify("boo: this chat's worktree is not ready yet", WARN);
        };
        let backend = self.agents.backend_of(&c.agent);
        let store = self.store().await;
        let events = self.events.clone();
        let (session, agent) = (c.session, c.agent.clone());
        self.store_jobs.run(async move {
            let mut result = Vec::new();
            loop {
                let r = run_move(
                    store.clone(),
                    backend.clone(),
                    target.clone(),
                    chat,
                    agent.clone(),
                    redo,
                )
                .await;
                let more = match (&r, until) {
                    (Ok(m), Some(t)) => m.turn > t,
                    _ => false,
                };
                result.push(r);
                if !more {
                    break;
                }
            }
            let _ = events.send(super::Event::Checkpoint(CheckpointEvent::Moved {
                chat,
                session,
                agent,
                result,
            }));
        });
    }

    pub(super) async fn checkpoint_event(&mut self, ev: CheckpointEvent) {
        match ev {
            CheckpointEvent::Snapped {
                chat,
                turn,
                side,
                commit,
            } => {
                let after = side == Side::After;
                self.write_later("turn checkpoint not saved", move |s| async move {
                    s.set_checkpoint_commit(chat, turn, after, commit).await
                })
                .await
            }
            CheckpointEvent::Moved {
                chat,
                session,
                agent,
                result,
            } => {
                self.moving.remove(&chat);
                for r in result {
                    match r {
                        Ok(m) => self.moved(chat, session, &agent, m),
                        Err(e) => self.ui.notify(format!("boo: {e}"), ERROR),
                    }
                }
            }
            CheckpointEvent::Timeline { chat, result } => match result {
                Ok(turns) => {
                    let title = self.ws.chats.get(&chat).map(|c| c.title.clone());
                    self.ui.timeline(chat, title.unwrap_or_default(), turns)
                }
                Err(e) => self.ui.notify(format!("boo: timeline: {e}"), ERROR),
            },
            CheckpointEvent::TurnDiff { chat, turn, result } => match result {
                Ok(patch) => self.ui.report_as(
                    &format!("boo://turn/{chat}/{turn}"),
                    patch.lines().map(str::to_string).collect(),
                    Some("diff"),
                ),
                Err(e) => self.ui.notify(format!("boo: {e}"), ERROR),
            },
            CheckpointEvent::Forked { chat, result } => self.forked(chat, result).await,
            CheckpointEvent::ForkSession { chat, result } => self.fork_session(chat, result).await,
        }
    }

    /// The worktree target of the chat's session (None until its worktree is ready).
    fn chat_target(&mut self, chat: ChatId) -> Option<Target> {
        let session = self.ws.chats.get(&chat)?.session;
        self.target_of(session)
    }

    /// `:Boo timeline`: the chat's turns with prompt, time and diffstat.
    pub(super) async fn timeline(&mut self, a: ChatArgs) {
        let Some(chat) = self.ws.target_chat(a.chat, a.pane) else {
            return self.ui.notify("boo: no chat yet: open one with :Boo", WARN);
        };
        let Some(target) = self.chat_target(chat) else {
            return self
                .ui
                .notify("boo: this chat's worktree is not ready yet", WARN);
        };
        let store = self.store().await;
        let events = self.events.clone();
        // A store job: it sees every checkpoint and undo queued before it.
        self.store_jobs.run(async move {
            let result = timeline_turns(store, target, chat).await;
            let _ = events.send(super::Event::Checkpoint(CheckpointEvent::Timeline {
                chat,
                result,
            }));
        });
    }

    /// The timeline's `<CR>`: a turn's own diff, after-snapshot vs before-snapshot.
    pub(super) async fn turn_diff(&mut self, a: crate::rpc::ForkArgs) {
        let (Some(chat), Some(turn)) = (self.ws.target_chat(a.chat, a.pane), a.turn) else {
            return self.ui.notify("boo: which turn? (use the timeline)", WARN);
        };
        let Some(target) = self.chat_target(chat) else {
            return;
        };
        let store = self.store().await;
        let events = self.events.clone();
        self.store_jobs.run(async move {
            let result = async {
                let cps = store.checkpoints(chat).await.map_err(|e| e.to_string())?;
                let cp = cps
                    .into_iter()
                    .find(|c| c.turn == turn)
                    .ok_or(format!("no turn {turn} in this chat"))?;
                let (Some(b), Some(a)) = (cp.before_commit, cp.after_commit) else {
                    return Err(format!("turn {turn} has no checkpoint"));
                };
                let wt = blocking(move || target.open()).await?;
                let (_, patch) =
                    blocking(move || worktree::turn_diff(&wt, &b, &a).map_err(|e| e.to_string()))
                        .await?;
                Ok(if patch.is_empty() {
                    format!("turn {turn} changed no file")
                } else {
                    patch
                })
            }
            .await;
            let _ = events.send(super::Event::Checkpoint(CheckpointEvent::TurnDiff {
                chat,
                turn,
                result,
            }));
        });
    }

    fn moved(&mut self, chat: ChatId, session: SessionId, agent: &str, m: Moved) {
        let (from, to) = m.items;
        let end = self.transcripts.get(chat).map_or(0, |t| t.items().count());
        for idx in from..to.unwrap_or(end).min(end) {
            self.mark_undone(chat, idx, m.undone);
        }
        self.ui.reload(m.reload);
        self.refresh_pending(session, agent);
        let did = if m.undone { "undid" } else { "redid" };
        let mut msg = format!("boo: {did} turn {} ({} file(s) restored)", m.turn, m.files);
        if m.undone {
            msg.push_str("; :Boo redo brings it back");
        }
        let level = match &m.agent_note {
            Some(note) => {
                msg.push_str(&format!("; {note}"));
                WARN
            }
            None => INFO,
        };
        self.ui.notify(msg, level);
    }

    /// Sets or clears an item's `undone` mark (kept in its meta, so it is saved with it).
    fn mark_undone(&mut self, chat: ChatId, idx: usize, undone: bool) {
        let Some(it) = self.transcripts.get(chat).and_then(|t| t.get(idx)) else {
            return;
        };
        let mut meta = it.meta.clone();
        let content = it.content.clone();
        if !meta.is_object() {
            meta = Json::Object(Default::default());
        }
        if let Some(o) = meta.as_object_mut() {
            if undone {
                o.insert("undone".into(), Json::Bool(true));
            } else if o.remove("undone").is_none() {
                return;
            }
        }
        self.tx_set(chat, idx, content, meta);
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A checkpoint of turn `turn` (also used by `fork`'s tests).
    pub(in crate::app) fn cp(turn: u32, state: CheckpointState) -> Checkpoint {
        Checkpoint {
            task_id: turn as i64,
            chat_id: 1,
            turn,
            seq: Some(turn as usize * 10),
            before_commit: Some(format!("b{turn}")),
            after_commit: Some(format!("a{turn}")),
            message_id: Some(format!("msg_{turn}")),
            state,
        }
    }

    #[test]
    fn undo_takes_the_last_done_turn_and_redo_the_first_undone() {
        use CheckpointState::*;
        let cps = vec![cp(1, Done), cp(2, Done)];
        let p = plan(&cps, false).unwrap();
        assert_eq!(
            (p.turn, p.expect.as_str(), p.target.as_str()),
            (2, "a2", "b2")
        );
        assert_eq!(p.forget_from.as_deref(), Some("msg_2"));
        assert_eq!(p.items, (20, None));
        assert!(plan(&cps, true).is_err());

        let cps = vec![cp(1, Done), cp(2, Undone)];
        assert_eq!(plan(&cps, false).unwrap().turn, 1);
        assert_eq!(plan(&cps, false).unwrap().items, (10, Some(20)));
        let r = plan(&cps, true).unwrap();
        assert_eq!(
            (r.turn, r.expect.as_str(), r.target.as_str()),
            (2, "b2", "a2")
        );
        assert_eq!(r.forget_again, None);

        let cps = vec![cp(1, Undone), cp(2, Undone)];
        assert!(plan(&cps, false).is_err());
        let r = plan(&cps, true).unwrap();
        assert_eq!((r.turn, r.forget_again.as_deref()), (1, Some("msg_2")));

        // A turn run after an undo drops the undone one: nothing to redo.
        let cps = vec![cp(1, Done), cp(2, Dropped), cp(3, Done)];
        assert!(plan(&cps, true).is_err());
        assert_eq!(plan(&cps, false).unwrap().turn, 3);
        let mut no_after = cp(3, Done);
        no_after.after_commit = None;
        assert_eq!(plan(&[cp(1, Done), no_after], false).unwrap().turn, 1);
    }
}
