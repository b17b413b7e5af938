//! Handlers of the user's intents (RPC notifications) and of agent events.

use serde_json::{json, Value as Json};

use super::agents::{binding_key, PermissionInfo, Turn};
use super::sessions::WaitingSend;
use super::workspace::PaneKind;
use super::App;
use crate::agent::{AgentEvent, SessionBinding, TurnOutcome as Outcome};
use crate::model::{ChatId, ItemChange, ItemKind, PaneId, SessionId, TaskId, TaskStatus};
use crate::rpc::{ChatArgs, Notify, SendArgs, SplitArgs};
use crate::store::{AgentSession, NewTask, Pane as StoredPane};
use crate::ui::{PaneView, Tab};

/// `vim.log.levels`
const WARN: u8 = 3;
const ERROR: u8 = 4;

impl App {
    pub(super) async fn notify(&mut self, n: Notify) {
        match n {
            Notify::Log { message } => tracing::info!(target: "lua", "{message}"),
            Notify::Configure(cfg) => {
                if !cfg.problems.is_empty() {
                    let msg = format!("boo: config: {}", cfg.problems.join("; "));
                    self.ui.notify(msg, ERROR);
                }
                self.config = *cfg;
                self.agents.configure(&self.config);
                self.ensure_mcp().await;
                // Open the store now, so a bad path is reported at start, not at first prompt.
                self.store().await;
            }
            Notify::Show(a) => self.show(a.cwd.as_deref()).await,
            Notify::Send(a) => self.send(a).await,
            Notify::Task(a) => self.task_from_lua(a).await,
            Notify::FilesRefresh(a) => self.refresh_files(a.chat, a.pane),
            Notify::Draft(a) => self.save_draft(a.chat, a.text).await,
            Notify::Abort(a) => match self.ws.target_chat(a.chat, a.pane) {
                Some(chat) => {
                    // Turns whose task row is still being made are dropped when it is.
                    if self.recording.contains_key(&chat) {
                        self.abort_recording.insert(chat);
                    }
                    self.agents.abort(chat)
                }
                None => self.ui.notify("boo: no chat to abort", WARN),
            },
            Notify::NewChat(a) => self.new_tab(a).await,
            Notify::TabClose(a) => self.tab_close(a).await,
            Notify::TabNext(a) => self.tab_cycle(a.pane, 1).await,
            Notify::TabPrev(a) => self.tab_cycle(a.pane, -1).await,
            Notify::SelectChat(a) => self.select_chat(a).await,
            Notify::Split(a) => self.split(a).await,
            Notify::PaneClosed(a) => self.pane_closed(a.pane, false).await,
            Notify::ClosePane(a) => {
                let pane = self.ws.target_pane(a.pane);
                self.pane_closed(pane, true).await
            }
            Notify::Reopen(a) => self.reopen(a.cwd.as_deref()).await,
            Notify::Restore(a) => self.restore(a).await,
            Notify::SetAgent(a) => self.set_agent(a).await,
            Notify::SetModel(a) => self.set_model(a).await,
            Notify::PermissionReply(a) => {
                if let Err(e) = self.agents.reply_permission(&a.id, &a.reply) {
                    self.ui.notify(format!("boo: {e}"), WARN);
                }
            }
            Notify::Diff(a) => self.diff(a).await,
            Notify::Usage(a) => self.usage_report(a.today).await,
            Notify::Health => self.health_report().await,
            Notify::Accept(a) if a.preview => {
                self.review_act(super::review::ActKind::Preview, a).await
            }
            Notify::Accept(a) => self.review_act(super::review::ActKind::Accept, a).await,
            Notify::Reject(a) => self.review_act(super::review::ActKind::Reject, a).await,
            Notify::ReviewClosed(a) => self.review_closed(a),
            Notify::SessionPick(a) => self.session_pick(a).await,
            Notify::SessionSwitch(a) => self.session_switch(a).await,
            Notify::SessionNew(a) => self.session_new(a).await,
            Notify::SessionRename(a) => self.session_rename(a).await,
            Notify::SessionDelete(a) => self.session_delete(a).await,
            Notify::Undo(a) => self.checkpoint_move(a, false, None).await,
            Notify::Redo(a) => self.checkpoint_move(a, true, None).await,
            Notify::UndoTo(a) => {
                let args = ChatArgs {
                    pane: a.pane,
                    chat: a.chat,
                    cwd: None,
                };
                self.checkpoint_move(args, false, a.turn.or(Some(u32::MAX)))
                    .await
            }
            Notify::Timeline(a) => self.timeline(a).await,
            Notify::Arena(a) => self.arena_start(a).await,
            Notify::ArenaAction(a) => self.arena_action(a).await,
            Notify::TurnDiff(a) => self.turn_diff(a).await,
            Notify::Fork(a) => self.fork(a).await,
        }
        self.push_status();
    }

    fn tabs_of(&self, pane: PaneId) -> Vec<Tab> {
        let Some(p) = self.ws.panes.get(&pane) else {
            return Vec::new();
        };
        p.tabs
            .iter()
            .filter_map(|c| self.ws.chats.get(c))
            .map(|c| Tab {
                chat: c.id,
                title: c.title.clone(),
                active: p.active == Some(c.id),
                busy: c.busy(),
                info: (p.active == Some(c.id)).then(|| self.tab_info(c.id)),
            })
            .collect()
    }

    /// Sends a pane (its windows and active chat) to Lua.
    pub(super) async fn show_pane(&mut self, pane: PaneId, focus: bool) {
        let Some(p) = self.ws.panes.get(&pane).cloned() else {
            return;
        };
        for chat in &p.tabs {
            self.register_chat(*chat).await;
        }
        if let Some(active) = p.active {
            self.ui.ensure_created(active);
        }
        let cwd = self
            .ws
            .sessions
            .get(&p.session)
            .and_then(|s| s.dir.clone().or(Some(s.repo_root.clone())))
            .map(|d| d.display().to_string());
        let view = PaneView {
            pane,
            kind: p.kind.as_str().to_string(),
            chat: p.active,
            tabs: self.tabs_of(pane),
            mods: p.mods.clone(),
            focus,
            cwd,
        };
        self.ws.current_pane = Some(pane);
        if let Some(s) = self.ws.sessions.get_mut(&p.session) {
            s.last_chat = p.active.or(s.last_chat);
        }
        self.ui.show_pane(view);
    }

    /// Redraws the winbar of every pane showing `chat` (busy marks, titles).
    pub(super) fn refresh_tabs(&mut self, chat: ChatId) {
        let panes: Vec<PaneId> = self
            .ws
            .panes
            .values()
            .filter(|p| p.visible && p.tabs.contains(&chat))
            .map(|p| p.id)
            .collect();
        for pane in panes {
            let tabs = self.tabs_of(pane);
            self.ui.tabs(pane, tabs);
        }
    }

    pub(super) async fn show(&mut self, cwd: Option<&str>) {
        let session = match self.ensure_session(cwd).await {
            Ok(s) => s,
            Err(e) => return self.ui.notify(format!("boo: {e}"), ERROR),
        };
        let pane = match self.ws.float_of(session) {
            Some(p) => p,
            None => {
                let chats = self
                    .ws
                    .sessions
                    .get(&session)
                    .map(|s| s.chats.clone())
                    .unwrap_or_default();
                let tabs = if chats.is_empty() {
                    match self.new_chat(session).await {
                        Ok(c) => vec![c],
                        Err(e) => {
                            return self
                                .ui
                                .notify(format!("boo: cannot create a chat: {e}"), ERROR)
                        }
                    }
                } else {
                    chats
                };
                let last = self.ws.sessions.get(&session).and_then(|s| s.last_chat);
                let pane = self.ws.new_pane(session, PaneKind::Float, tabs, None);
                if let Some(p) = self.ws.panes.get_mut(&pane) {
                    p.active = last.filter(|l| p.tabs.contains(l)).or(p.active);
                }
                pane
            }
        };
        // One float at a time: another session's float hides.
        let others: Vec<PaneId> = self
            .ws
            .panes
            .values()
            .filter(|p| p.kind == PaneKind::Float && p.visible && p.id != pane)
            .map(|p| p.id)
            .collect();
        for o in others {
            if let Some(p) = self.ws.panes.get_mut(&o) {
                p.visible = false;
            }
            self.ui.close_pane(o);
        }
        if let Some(p) = self.ws.panes.get_mut(&pane) {
            p.visible = true;
        }
        self.show_pane(pane, true).await;
        self.save_panes(session).await;
        // The chat is open: its first prompt should not wait for what can start now.
        self.prepare_agent(session);
    }

    /// The chat a prompt goes to; resolves or creates the session and a chat when needed.
    async fn resolve_chat(
        &mut self,
        chat: Option<ChatId>,
        pane: Option<PaneId>,
        cwd: Option<&str>,
    ) -> Result<ChatId, String> {
        if let Some(c) = self.ws.target_chat(chat, pane) {
            return Ok(c);
        }
        let session = self.ensure_session(cwd).await?;
        let last = self
            .ws
            .sessions
            .get(&session)
            .and_then(|s| s.last_chat.or_else(|| s.chats.last().copied()));
        match last {
            Some(c) => Ok(c),
            None => self.new_chat(session).await,
        }
    }

    async fn send(&mut self, a: SendArgs) {
        let text = a.text.trim().to_string();
        if text.is_empty() {
            return self.ui.notify("boo: nothing to send (empty prompt)", WARN);
        }
        let chat = match self.resolve_chat(a.chat, a.pane, a.cwd.as_deref()).await {
            Ok(c) => c,
            Err(e) => {
                if a.from_input {
                    self.ui.notify(
                        format!("boo: prompt not sent, it stays in the input: {e}"),
                        ERROR,
                    );
                } else {
                    self.ui.notify(format!("boo: prompt not sent: {e}"), ERROR);
                }
                return;
            }
        };
        if self.moving.contains(&chat) {
            // The worktree and the agent's context are being moved: a turn now would see half.
            let keep = if a.from_input {
                ", it stays in the input"
            } else {
                ""
            };
            return self.ui.notify(
                format!(
                    "boo: prompt not sent{keep}: an undo, redo or fork of this chat is under way"
                ),
                WARN,
            );
        }
        self.register_chat(chat).await;
        self.compose(chat, a, text).await;
    }

    /// Records the task and hands the prompt to the chat's agent (or waits for the worktree).
    pub(super) async fn start_turn(
        &mut self,
        chat: ChatId,
        text: String,
        creator: String,
        seq: Option<usize>,
        extras: crate::agent::Extras,
    ) {
        let Some(c) = self.ws.chats.get(&chat).cloned() else {
            return;
        };
        let dir = self.ws.sessions.get(&c.session).and_then(|s| s.dir.clone());
        let Some(dir) = dir else {
            let seq = seq.unwrap_or(0);
            let status = self.preparing_text(c.session);
            self.tx_set(chat, seq, text.clone(), json!({ "status": status }));
            self.waiting
                .entry(c.session)
                .or_default()
                .push(WaitingSend {
                    chat,
                    text,
                    creator,
                    seq,
                    extras,
                });
            return;
        };
        let store = self.store().await;
        let model = self.turn_model(&c);
        if let Some(c) = self.ws.chats.get_mut(&chat) {
            c.queued += 1;
        }
        *self.recording.entry(chat).or_default() += 1;
        self.refresh_tabs(chat);
        // The task row is the turn's id; it may wait behind another editor's write lock, so
        // it is made off the loop and the turn starts when it exists (`turn_recorded`).
        let new = NewTask {
            chat_id: chat,
            session_id: c.session,
            agent: c.agent.clone(),
            model: model.clone(),
            prompt: text.clone(),
            creator,
        };
        let agent = c.agent.clone();
        let events = self.events.clone();
        self.store_jobs.run(async move {
            let task = store.create_task(new).await.unwrap_or_else(|e| {
                tracing::warn!("task not recorded: {e}");
                0
            });
            let mut extras = extras;
            if task > 0 {
                match store.add_checkpoint(task, chat, seq).await {
                    Ok(n) => extras.checkpoint = Some(n),
                    Err(e) => tracing::warn!(chat, "turn not numbered (no checkpoint): {e}"),
                }
            }
            let binding = match store.agent_session(chat, binding_key(&agent)).await {
                Ok(Some(s)) => Some(SessionBinding {
                    external_id: s.external_id,
                    config_hash: s.config_hash,
                }),
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(chat, "agent session not loaded: {e}");
                    None
                }
            };
            let turn = Turn {
                chat,
                task,
                dir,
                text,
                model,
                binding,
                agent,
                extras,
            };
            let _ = events.send(super::Event::TurnRecorded {
                turn: Box::new(turn),
                seq,
            });
        });
    }

    /// A turn's task row exists: hand the prompt to the agent, unless the chat went away or
    /// the user aborted before.
    pub(super) async fn turn_recorded(&mut self, turn: Turn, seq: Option<usize>) {
        let chat = turn.chat;
        let left = self.recording.get_mut(&chat).map(|n| {
            *n = n.saturating_sub(1);
            *n
        });
        if left == Some(0) {
            self.recording.remove(&chat);
        }
        if let Some(seq) = seq {
            self.turn_items.insert(turn.task, (chat, seq));
        }
        let aborted = self.abort_recording.contains(&chat);
        if left == Some(0) {
            self.abort_recording.remove(&chat);
        }
        if aborted || !self.ws.chats.contains_key(&chat) {
            return self.turn_done(chat, turn.task, Outcome::Aborted).await;
        }
        self.agents.send(turn);
    }

    /// A backend event; `task` is the turn it belongs to, as the dispatcher knows it.
    pub(super) async fn agent_event(&mut self, d: crate::dispatch::Dispatched) {
        let task = d.task;
        match d.event {
            AgentEvent::TurnQueued { .. } => {
                if let Some(task) = task {
                    self.set_task(task, TaskStatus::Queued, None);
                    self.mark_user_item(task, json!({"status": "queued"}));
                }
            }
            AgentEvent::TurnStarted { chat } => {
                if let Some(c) = self.ws.chats.get_mut(&chat) {
                    if c.running.is_none() {
                        c.queued = c.queued.saturating_sub(1);
                    }
                    c.running = Some(task.unwrap_or(0));
                }
                if let Some(task) = task {
                    self.mark_user_item(task, json!({}));
                    self.set_task(task, TaskStatus::Running, None);
                }
                self.refresh_tabs(chat);
                self.ui.autocmd("BooTurnStart", json!({"chat": chat}));
            }
            // The prompt is shown by us when sent (also while queued); the agent's echo of it
            // would show it twice.
            AgentEvent::Item {
                chat: _,
                change:
                    ItemChange::Upsert {
                        kind: ItemKind::User,
                        meta,
                        ..
                    },
            } => self.note_prompt_message(task, &meta).await,
            AgentEvent::Item { chat, change } => {
                let step = match &change {
                    ItemChange::Upsert {
                        kind: ItemKind::Info,
                        meta,
                        ..
                    } if meta.get("type").and_then(Json::as_str) == Some("step-finish") => {
                        Some(self.stamp_step(chat, meta.clone()))
                    }
                    _ => None,
                };
                match (step, change) {
                    (
                        Some(meta),
                        ItemChange::Upsert {
                            part_id,
                            kind,
                            content,
                            ..
                        },
                    ) => {
                        self.tx_apply(
                            chat,
                            ItemChange::Upsert {
                                part_id,
                                kind,
                                content,
                                meta: meta.clone(),
                            },
                        );
                        self.step_finished(chat, &meta);
                    }
                    (_, change) => self.tx_apply(chat, change),
                }
            }
            AgentEvent::PermissionAsked { chat, request } => {
                let title = request
                    .metadata
                    .get("command")
                    .and_then(Json::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| request.patterns.join(" "));
                let p = PermissionInfo {
                    id: request.id.clone(),
                    chat,
                    permission: request.permission.clone(),
                    title: title.clone(),
                    patterns: request.patterns.clone(),
                    replying: false,
                };
                let req = crate::ui::PermissionView {
                    id: p.id.clone(),
                    chat,
                    title,
                    permission: p.permission.clone(),
                    patterns: p.patterns.clone(),
                };
                self.agents.note_permission(p);
                self.ui.permission(req);
            }
            AgentEvent::PermissionReplied { id, .. } => self.agents.forget_permission(&id),
            AgentEvent::TurnDone { chat, outcome } => {
                self.agents.forget_chat_permissions(chat);
                self.agents.turn_over(chat);
                self.turn_done(chat, task.unwrap_or(0), outcome).await
            }
            AgentEvent::SessionBound {
                chat,
                agent,
                external_id,
                config_hash,
            } => {
                // Keyed by the chat's agent (`opencode`, `opencode:plan`, `qwen`), as turns look
                // it up, not by the backend's own agent name (`build`).
                let agent = self
                    .ws
                    .chats
                    .get(&chat)
                    .map_or(agent, |c| binding_key(&c.agent).to_string());
                let session = self.ws.chats.get(&chat).map(|c| c.session);
                let worktree = session
                    .and_then(|s| self.ws.sessions.get(&s))
                    .and_then(|s| s.worktree_id);
                let row = AgentSession {
                    chat_id: chat,
                    agent,
                    external_id,
                    config_hash,
                    worktree_id: worktree,
                    session_id: session,
                    state: "live".into(),
                    updated_at: 0,
                };
                self.write_later("agent session not saved", move |s| async move {
                    s.upsert_agent_session(row).await
                })
                .await;
            }
            AgentEvent::Title { chat, title } => self.agent_title(chat, title).await,
            AgentEvent::Retrying { chat, message } => {
                tracing::info!(chat, "agent retrying: {message}");
                self.ui
                    .notify(format!("boo: the model is retrying: {message}"), WARN);
            }
            AgentEvent::ServerError(msg) => self.ui.notify(format!("boo: opencode: {msg}"), ERROR),
            AgentEvent::FilesChanged { chat, files } => {
                tracing::debug!(chat, "agent changed {} file(s)", files.len());
                // Mid-turn, only an open review follows the agent's edits: the pending rows
                // and `BooChangesPending` stay once per turn (diff-supersede at its end).
                if let Some(c) = self.ws.chats.get(&chat).cloned() {
                    if self.review_open(c.session) {
                        self.refresh_pending(c.session, &c.agent);
                    }
                }
            }
            AgentEvent::Options { chat, options } => {
                self.agent_options.insert(chat, options);
            }
        }
        self.push_status();
    }

    /// The agent named the conversation: the tab takes that name unless the user gave one.
    async fn agent_title(&mut self, chat: ChatId, title: String) {
        let title = title.trim().chars().take(40).collect::<String>();
        let Some(c) = self.ws.chats.get_mut(&chat) else {
            return;
        };
        let default_name =
            c.title.starts_with("chat ") && c.title[5..].chars().all(|ch| ch.is_ascii_digit());
        if title.is_empty() || !default_name {
            return;
        }
        c.title = title.clone();
        self.ui.set_title(chat, title.clone());
        let update = crate::store::ChatUpdate {
            title: Some(title),
            ..Default::default()
        };
        self.write_later("chat title not saved", move |s| async move {
            s.update_chat(chat, update).await
        })
        .await;
        self.refresh_tabs(chat);
    }

    /// The agent's echo of a prompt names its message: the turn's rewind point for undo.
    async fn note_prompt_message(&mut self, task: Option<TaskId>, meta: &Json) {
        let Some(id) = meta.get("message_id").and_then(Json::as_str) else {
            return;
        };
        let Some(task) = task else {
            return;
        };
        if id.is_empty() || !self.message_noted.insert(task) {
            return;
        }
        let id = id.to_string();
        self.write_later("turn message not saved", move |s| async move {
            s.set_checkpoint_message(task, id).await
        })
        .await;
    }

    /// Sets the meta (status) of a turn's user item, keeping its text.
    fn mark_user_item(&mut self, task: i64, meta: Json) {
        if let Some((chat, seq)) = self.turn_items.get(&task).copied() {
            self.tx_set_meta(chat, seq, meta);
        }
    }

    async fn turn_done(&mut self, chat: ChatId, turn: i64, outcome: Outcome) {
        self.message_noted.remove(&turn);
        // A turn that never started (aborted while queued, or failed to start) was counted
        // as queued; the running one is known by its task.
        let was_running = self
            .ws
            .chats
            .get(&chat)
            .is_some_and(|c| c.running.is_some() && c.running == Some(turn));
        if let Some(c) = self.ws.chats.get_mut(&chat) {
            if was_running {
                c.running = None;
            } else {
                c.queued = c.queued.saturating_sub(1);
            }
        }
        let (status, error) = match &outcome {
            Outcome::Done => (TaskStatus::Done, None),
            Outcome::Aborted => (TaskStatus::Aborted, None),
            Outcome::Failed(m) => (TaskStatus::Failed, Some(m.clone())),
        };
        self.set_task(turn, status, error.clone());
        if let Some(slot) = self.mcp_tasks.get_mut(&chat) {
            *slot = Some((status.as_str().to_string(), error.clone()));
        }
        if let Some((c, seq)) = self.turn_items.remove(&turn) {
            if !was_running && outcome != Outcome::Done {
                // Never started: the prompt's item says so, and the text can be sent again.
                self.tx_set_meta(c, seq, json!({"status": "not sent"}));
            }
        }
        match &outcome {
            Outcome::Failed(m) => {
                // A turn that did not start already has its error item (from the dispatcher).
                let shown = self.transcripts.get(chat).is_some_and(|t| {
                    t.items()
                        .last()
                        .is_some_and(|i| i.kind == ItemKind::Error && i.content == *m)
                });
                if !shown {
                    self.tx_push(chat, ItemKind::Error, None, m.clone(), json!({}));
                }
                self.ui.notify(format!("boo: turn failed: {m}"), ERROR);
            }
            Outcome::Aborted => {
                self.tx_push(
                    chat,
                    ItemKind::Info,
                    None,
                    "(aborted)".into(),
                    json!({"status": "aborted"}),
                );
            }
            Outcome::Done => {}
        }
        self.refresh_tabs(chat);
        // Diff-supersede: the session's pending changes are what the worktree holds now,
        // stamped with the agent that ran the turn.
        if let Some(c) = self.ws.chats.get(&chat).cloned() {
            self.refresh_pending(c.session, &c.agent);
        }
        let mut data = json!({"chat": chat, "ok": outcome == Outcome::Done});
        if let Some(e) = error {
            data["error"] = Json::from(e);
        }
        self.ui.autocmd("BooTurnDone", data);
        self.arena_turn_done(chat, outcome == Outcome::Done).await;
    }

    /// Updates a task row; returns whether it was recorded.
    /// Records a turn's status with the next store flush: never waits on SQLite, and a
    /// database that fails for a while gets it once it works again.
    fn set_task(&mut self, turn: i64, status: TaskStatus, error: Option<String>) {
        if turn <= 0 {
            return;
        }
        let Some(store) = &self.store else { return };
        if let Err(e) = store.put_task_status(turn, status, error) {
            tracing::warn!(turn, "task status not saved: {e}");
        }
    }

    async fn new_tab(&mut self, a: ChatArgs) {
        let pane = self.ws.target_pane(a.pane);
        let session = match pane.and_then(|p| self.ws.panes.get(&p)).map(|p| p.session) {
            Some(s) => s,
            None => match self.ensure_session(a.cwd.as_deref()).await {
                Ok(s) => s,
                Err(e) => return self.ui.notify(format!("boo: {e}"), ERROR),
            },
        };
        let chat = match self.new_chat(session).await {
            Ok(c) => c,
            Err(e) => {
                return self
                    .ui
                    .notify(format!("boo: cannot create a chat: {e}"), ERROR)
            }
        };
        match pane {
            Some(p) => {
                if let Some(ps) = self.ws.panes.get_mut(&p) {
                    ps.add_tab(chat);
                    ps.visible = true;
                }
                self.show_pane(p, true).await;
            }
            None => self.show(a.cwd.as_deref()).await,
        }
        self.save_panes(session).await;
    }

    async fn tab_cycle(&mut self, pane: Option<PaneId>, step: isize) {
        let Some(pane) = self.ws.target_pane(pane) else {
            return;
        };
        let session = match self.ws.panes.get_mut(&pane) {
            Some(p) => {
                p.cycle(step);
                p.session
            }
            None => return,
        };
        self.show_pane(pane, false).await;
        self.save_panes(session).await;
    }

    async fn select_chat(&mut self, a: ChatArgs) {
        let (Some(pane), Some(chat)) = (self.ws.target_pane(a.pane), a.chat) else {
            return;
        };
        let session = match self.ws.panes.get_mut(&pane) {
            Some(p) => {
                if !p.tabs.contains(&chat) {
                    p.add_tab(chat);
                }
                p.active = Some(chat);
                p.session
            }
            None => return,
        };
        self.show_pane(pane, true).await;
        self.save_panes(session).await;
        // The chat is open: its first prompt should not wait for what can start now.
        self.prepare_agent(session);
    }

    async fn tab_close(&mut self, a: ChatArgs) {
        let Some(pane) = self.ws.target_pane(a.pane) else {
            return;
        };
        let Some(p) = self.ws.panes.get_mut(&pane) else {
            return;
        };
        let chat = a.chat.or(p.active);
        let Some(chat) = chat else { return };
        p.remove_tab(chat);
        let session = p.session;
        if p.tabs.is_empty() {
            self.pane_closed(Some(pane), true).await;
        } else {
            self.show_pane(pane, false).await;
        }
        self.save_panes(session).await;
    }

    async fn split(&mut self, a: SplitArgs) {
        let kind = match a.kind.as_deref().unwrap_or("chat") {
            "chat" => PaneKind::Chat,
            "term" => PaneKind::Term,
            "code" => PaneKind::Code,
            other => {
                return self.ui.notify(
                    format!("boo: unknown split kind '{other}' (chat, term or code)"),
                    ERROR,
                )
            }
        };
        let session = match self
            .ws
            .target_pane(a.pane)
            .and_then(|p| self.ws.panes.get(&p))
            .map(|p| p.session)
        {
            Some(s) => s,
            None => match self.ensure_session(a.cwd.as_deref()).await {
                Ok(s) => s,
                Err(e) => return self.ui.notify(format!("boo: {e}"), ERROR),
            },
        };
        let tabs = if kind == PaneKind::Chat {
            match self.new_chat(session).await {
                Ok(c) => vec![c],
                Err(e) => {
                    return self
                        .ui
                        .notify(format!("boo: cannot create a chat: {e}"), ERROR)
                }
            }
        } else {
            Vec::new()
        };
        let pane = self
            .ws
            .new_pane(session, kind, tabs, a.mods.filter(|m| !m.is_empty()));
        self.show_pane(pane, true).await;
        self.save_panes(session).await;
        // The chat is open: its first prompt should not wait for what can start now.
        self.prepare_agent(session);
    }

    /// A pane's window went away. The float only hides; other panes are remembered for reopen.
    async fn pane_closed(&mut self, pane: Option<PaneId>, close_windows: bool) {
        let Some(pane) = pane else { return };
        let Some(p) = self.ws.panes.get(&pane).cloned() else {
            return;
        };
        if close_windows {
            self.ui.close_pane(pane);
        }
        if p.kind == PaneKind::Float {
            if let Some(p) = self.ws.panes.get_mut(&pane) {
                p.visible = false;
            }
        } else {
            self.ws.panes.remove(&pane);
            if p.kind == PaneKind::Chat && !p.tabs.is_empty() {
                let stored = StoredPane {
                    kind: super::sessions::stored_kind(p.kind, p.mods.as_deref()),
                    chat_ids: p.tabs.clone(),
                    active_chat: p.active,
                };
                let session = p.session;
                self.write_later("closed pane not remembered", move |s| async move {
                    s.push_closed_pane(session, stored).await
                })
                .await;
            }
        }
        if self.ws.current_pane == Some(pane) {
            self.ws.current_pane = None;
        }
        self.save_panes(p.session).await;
    }

    async fn reopen(&mut self, cwd: Option<&str>) {
        let session = match self.ws.current_session {
            Some(s) => s,
            None => match self.ensure_session(cwd).await {
                Ok(s) => s,
                Err(e) => return self.ui.notify(format!("boo: {e}"), ERROR),
            },
        };
        let store = self.store().await;
        let closed = match store.pop_closed_pane(session).await {
            Ok(Some(p)) => p,
            Ok(None) => return self.ui.notify("boo: no closed pane to reopen", WARN),
            Err(e) => return self.ui.notify(format!("boo: {e}"), ERROR),
        };
        let tabs: Vec<ChatId> = closed
            .chat_ids
            .into_iter()
            .filter(|c| self.ws.chats.contains_key(c))
            .collect();
        if tabs.is_empty() {
            return self
                .ui
                .notify("boo: the closed pane's chats are gone", WARN);
        }
        let mods = match closed.kind {
            crate::store::PaneKind::Vsplit => Some("vertical".to_string()),
            crate::store::PaneKind::Tab => Some("tab".to_string()),
            _ => None,
        };
        let pane = self.ws.new_pane(session, PaneKind::Chat, tabs, mods);
        if let Some(p) = self.ws.panes.get_mut(&pane) {
            p.active = closed
                .active_chat
                .filter(|a| p.tabs.contains(a))
                .or(p.active);
        }
        self.show_pane(pane, true).await;
        self.save_panes(session).await;
        // The chat is open: its first prompt should not wait for what can start now.
        self.prepare_agent(session);
    }

    #[allow(dead_code)]
    fn session_of(&self, chat: ChatId) -> Option<SessionId> {
        self.ws.chats.get(&chat).map(|c| c.session)
    }
}
