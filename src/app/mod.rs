//! The one task that owns the state and loops over a closed `enum Event`: RPC calls from Lua,
//! agent events, applied frames, finished background work. Handlers never wait on the network
//! or git: such work is spawned and comes back as an event.

mod actions;
mod agent_cmds;
mod agents;
mod answers;
mod arena;
mod arena_check;
mod checkpoints;
mod compose;
mod conflicts;
mod fork;
pub mod headless;
mod mcp_tasks;
mod permissions;
mod restore;
mod review;
mod session_cmds;
mod sessions;
mod store_jobs;
mod tasks;
mod transcripts;
mod usage;
pub mod workspace;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as Json;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::config::Config;
use crate::error::AppError;
use crate::rpc::{ErrorCode, Inbound, NvimFrontend, Request, RpcError};
use crate::store::Store;
use crate::ui::{Frontend, Ui};
use workspace::Workspace;

/// A change is drawn this soon (deltas arriving meanwhile join the same batch)...
const COALESCE: Duration = Duration::from_millis(8);
/// ...but batches are at least 1/fps apart: each costs Neovim a redraw and an RPC call
/// whatever its size, so a stream is drawn at a frame rate, not one batch per delta.
const DEFAULT_FPS: u32 = 20;
/// Transcript changes are batched for this long before they go to the store (goal: <= 100 ms).
const SAVE: Duration = Duration::from_millis(50);

/// Everything the loop reacts to.
#[derive(Debug)]
pub enum Event {
    Rpc(Inbound),
    /// A backend event, with the task of the turn it belongs to.
    Agent(crate::dispatch::Dispatched),
    /// A line for the user from background work (`level`: vim.log.levels).
    Notice {
        msg: String,
        level: u8,
    },
    /// A render batch was applied by Neovim (or failed to).
    FrameApplied(Result<(), String>),
    /// A new session's worktree is ready (or could not be made).
    SessionReady(sessions::Ready),
    /// The cross-session comparison of a repository's pending diffs finished.
    Conflicts(conflicts::Found),
    /// A spare worktree was checked out for the next session: the agent warms it.
    SpareMade(std::path::PathBuf),
    /// Checkout progress of a session's worktree being made.
    WorktreeProgress {
        session: crate::model::SessionId,
        progress: crate::worktree::Progress,
    },
    /// Review and session-worktree work finished (pending diff, accept/reject, risk, removal).
    Review(review::ReviewEvent),
    /// A probe of agents and models finished.
    Probe(Box<crate::agent::probe::ProbeReport>),
    /// A permission reply was delivered to the agent (or failed to be).
    PermissionReply {
        id: String,
        result: Result<(), String>,
    },
    /// The `:Boo usage` report was built (or the store could not be read).
    UsageReport(Result<Vec<String>, String>),
    /// The store's facts for `:checkhealth boo`.
    Health(Json),
    /// A turn's task row was written (see `store_jobs`): the turn can start.
    TurnRecorded {
        turn: Box<agents::Turn>,
        /// The user item of the turn.
        seq: Option<usize>,
    },
    /// A prompt's mentions were resolved (or one was bad).
    Composed {
        chat: crate::model::ChatId,
        args: Box<crate::rpc::SendArgs>,
        text: String,
        result: Result<compose::Composed, String>,
    },
    /// The agent's own commands in a session (`/` completion).
    Commands {
        session: crate::model::SessionId,
        commands: Vec<(String, String)>,
    },
    /// The files of a session's worktree, for `@` completion.
    Files {
        session: crate::model::SessionId,
        files: Arc<Vec<String>>,
    },
    /// Turn checkpoints: a snapshot written, an undo/redo done.
    Checkpoint(checkpoints::CheckpointEvent),
    /// An agent called a tool of boo's MCP server.
    Mcp(crate::mcp::ToolCall),
    /// An arena's check command finished in one worktree.
    ArenaCheck(arena_check::CheckDone),
    /// A running arena's view is due for a redraw.
    ArenaTick(u32),
}

impl Event {
    /// A short name for logs.
    fn kind(&self) -> &'static str {
        match self {
            Event::Rpc(Inbound::Notify(_)) => "rpc notification",
            Event::Rpc(Inbound::Request(..)) => "rpc request",
            Event::Agent(_) => "agent event",
            Event::Notice { .. } => "notice",
            Event::FrameApplied(_) => "frame applied",
            Event::SessionReady(_) => "session ready",
            Event::SpareMade(_) => "spare made",
            Event::Conflicts(_) => "conflicts",
            Event::WorktreeProgress { .. } => "worktree progress",
            Event::Review(_) => "review result",
            Event::Probe(_) => "probe report",
            Event::PermissionReply { .. } => "permission reply",
            Event::TurnRecorded { .. } => "turn recorded",
            Event::Composed { .. } => "prompt composed",
            Event::Files { .. } => "file list",
            Event::Commands { .. } => "command list",
            Event::UsageReport(_) => "usage report",
            Event::Health(_) => "health report",
            Event::Checkpoint(_) => "checkpoint",
            Event::Mcp(_) => "mcp call",
            Event::ArenaCheck(_) => "arena check",
            Event::ArenaTick(_) => "arena tick",
        }
    }
}

pub struct App {
    ui: Ui,
    /// Every registered chat's transcript; the UI renders from it, the store saves it.
    transcripts: crate::model::transcript::Transcripts,
    save_due: Option<Instant>,
    /// The user was told history is not being saved (cleared when writes work again).
    save_warned: bool,
    frontend: Arc<dyn Frontend>,
    store: Option<Store>,
    config: Config,
    ws: Workspace,
    agents: agents::Agents,
    events: mpsc::UnboundedSender<Event>,
    frame_due: Option<Instant>,
    /// When the last batch was sent.
    frame_sent: Option<Instant>,
    frame_in_flight: bool,
    waiting: sessions::Waiting,
    /// The user item of each turn (task id -> chat, seq), to mark it started or failed.
    turn_items: std::collections::HashMap<crate::model::TaskId, (crate::model::ChatId, usize)>,
    review: review::ReviewState,
    /// Answers to Lua's requests and the count of handled notifications (see `answers`).
    shared: answers::Shared,
    handled: u64,
    /// Store writes, in order, off the loop.
    store_jobs: store_jobs::StoreJobs,
    /// Turns per chat whose task row is being written, and the chats aborted meanwhile.
    recording: std::collections::HashMap<crate::model::ChatId, usize>,
    abort_recording: std::collections::HashSet<crate::model::ChatId>,
    /// The worktree files of each session, as last listed (`@` completion).
    files: std::collections::HashMap<crate::model::SessionId, Arc<Vec<String>>>,
    /// The agent's own commands per session, name -> description (`/` completion).
    commands: std::collections::HashMap<crate::model::SessionId, Arc<Json>>,
    /// Each registered chat's input history and draft (see `store::ChatPrompts`).
    prompts: std::collections::HashMap<crate::model::ChatId, Arc<crate::store::ChatPrompts>>,
    /// Each chat's usage totals, summed from its transcript when first asked (statusline,
    /// winbar) and dropped when a step finishes or the transcript is (re)loaded.
    /// What each chat's agent session offers (ACP modes and models), as it last said.
    agent_options: std::collections::HashMap<crate::model::ChatId, crate::agent::AgentOptions>,
    usage_cache: parking_lot::Mutex<
        std::collections::HashMap<crate::model::ChatId, crate::model::usage::Usage>,
    >,
    /// Sessions being made by `:Boo fork session`: the snapshot commit their worktree starts from.
    seeds: std::collections::HashMap<crate::model::SessionId, String>,
    /// Chats with an undo/redo under way.
    moving: std::collections::HashSet<crate::model::ChatId>,
    /// Turns whose prompt message id was recorded (the agent echoes the prompt more than once).
    message_noted: std::collections::HashSet<crate::model::TaskId>,
    /// Chats made by tasks, and how deep in a chain of tasks each is (MCP's depth limit).
    task_depth: std::collections::HashMap<crate::model::ChatId, u32>,
    /// Chats made by agents over MCP, with their last turn's outcome once ended.
    mcp_tasks: std::collections::HashMap<crate::model::ChatId, Option<(String, Option<String>)>>,
    /// boo's MCP server, started with the first configuration that enables it.
    mcp: Option<crate::mcp::McpServer>,
    /// Set when shutdown begins: background work (a spare checkout) is not started after.
    exiting: Arc<std::sync::atomic::AtomicBool>,
    /// `:Boo arena` runs of this process.
    arenas: arena::Arenas,
}

/// Runs the process until Neovim closes the channel (or SIGTERM).
pub async fn run() -> Result<(), AppError> {
    let (rpc_tx, mut rpc_rx) = mpsc::unbounded_channel();
    let (nvim, io_done) = crate::rpc::serve_stdio(rpc_tx).await?;
    let (events_tx, mut events_rx) = mpsc::unbounded_channel();
    // RPC input joins the loop's own events in arrival order; requests are answered here from
    // what the loop published (see `answers`), so they never wait behind a handler.
    let fwd = events_tx.clone();
    let mut app = App::new(Arc::new(NvimFrontend::new(nvim)), events_tx);
    let shared = app.shared.clone();
    tokio::spawn(async move {
        let mut sent = 0u64;
        while let Some(m) = rpc_rx.recv().await {
            let m = match m {
                Inbound::Request(req, reply) => match shared.answer(&req, sent).await {
                    Some(r) => {
                        let _ = reply.send(r);
                        continue;
                    }
                    None => Inbound::Request(req, reply),
                },
                Inbound::Notify(n) => {
                    sent += 1;
                    Inbound::Notify(n)
                }
            };
            if fwd.send(Event::Rpc(m)).is_err() {
                break;
            }
        }
    });
    let mut io_done = io_done;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| AppError::Channel(format!("cannot watch SIGTERM: {e}")))?;
    let result = loop {
        let due = app.frame_due.filter(|_| !app.frame_in_flight);
        tokio::select! {
            biased;
            r = &mut io_done => break r.unwrap_or_else(|e| Err(AppError::Channel(e.to_string()))),
            _ = term.recv() => {
                tracing::info!("SIGTERM");
                break Ok(());
            }
            Some(ev) = events_rx.recv() => app.handle_guarded(ev).await,
            _ = sleep_until(due) => app.frame(),
            // Independent of frames: a hidden chat, or a frame Neovim is slow to apply, must not
            // hold back saving.
            _ = sleep_until(app.save_due) => app.save_transcripts(),
        }
        app.schedule_frame();
    };
    app.shutdown().await;
    result
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

impl App {
    pub fn new(frontend: Arc<dyn Frontend>, events: mpsc::UnboundedSender<Event>) -> App {
        let mut agents = agents::Agents::new(events.clone());
        agents.set_buffers(Arc::new(agents::FrontendBuffers(frontend.clone())));
        App {
            ui: Ui::new(),
            transcripts: Default::default(),
            save_due: None,
            save_warned: false,
            frontend,
            store: None,
            config: Config::default(),
            ws: Workspace::default(),
            agents,
            events,
            frame_due: None,
            frame_sent: None,
            frame_in_flight: false,
            waiting: sessions::Waiting::default(),
            turn_items: Default::default(),
            review: Default::default(),
            shared: answers::Shared::new(),
            handled: 0,
            store_jobs: Default::default(),
            recording: Default::default(),
            abort_recording: Default::default(),
            files: Default::default(),
            commands: Default::default(),
            prompts: Default::default(),
            agent_options: Default::default(),
            usage_cache: Default::default(),
            moving: Default::default(),
            seeds: Default::default(),
            message_noted: Default::default(),
            task_depth: Default::default(),
            mcp_tasks: Default::default(),
            mcp: None,
            arenas: Default::default(),
            exiting: Default::default(),
        }
    }

    /// Handles one event; a panic in it is logged and reported, and the loop goes on (the panic
    /// hook has already written the details to the log).
    async fn handle_guarded(&mut self, ev: Event) {
        use futures::FutureExt;
        // Only the kind: formatting a whole event (a streamed part's text) would cost work in
        // proportion to the answer on every delta, for a message needed only after a panic.
        let what = ev.kind();
        let notify = matches!(ev, Event::Rpc(Inbound::Notify(_)));
        // A streamed delta or an applied frame changes nothing a request asks about.
        let quiet = matches!(
            ev,
            Event::FrameApplied(_)
                | Event::Agent(crate::dispatch::Dispatched {
                    event: crate::agent::AgentEvent::Item { .. },
                    ..
                })
        );
        let r = std::panic::AssertUnwindSafe(self.handle(ev))
            .catch_unwind()
            .await;
        if r.is_err() {
            tracing::error!("internal error while handling {what}");
            self.ui
                .notify("boo: internal error (details in :Boo log)", 4);
        }
        // Cheap, and sent only when it changed: statuslines stay right whatever happened.
        self.push_status();
        if !quiet {
            self.publish_answers();
        }
        if notify {
            // Counted even after a panic, so requests never wait for a notification forever.
            self.handled += 1;
            self.shared.handled.send_replace(self.handled);
        }
    }

    async fn handle(&mut self, ev: Event) {
        match ev {
            Event::Rpc(Inbound::Notify(n)) => self.notify(*n).await,
            Event::Rpc(Inbound::Request(req, reply)) => {
                let _ = reply.send(self.request(req));
            }
            Event::Agent(e) => self.agent_event(e).await,
            Event::FrameApplied(r) => {
                self.frame_in_flight = false;
                if let Err(e) = r {
                    tracing::warn!("render batch failed: {e}");
                }
            }
            Event::SessionReady(r) => self.session_ready(r).await,
            Event::Conflicts(f) => self.conflicts_found(f),
            Event::SpareMade(dir) => self.agents.prepare_spare(sessions::DEFAULT_AGENT, dir),
            Event::WorktreeProgress { session, progress } => {
                self.worktree_progress(session, progress)
            }
            Event::Notice { msg, level } => self.ui.notify(msg, level),
            Event::Review(r) => self.review_event(r).await,
            Event::Probe(report) => self.probe_done(*report),
            Event::PermissionReply { id, result } => self.permission_reply_done(id, result),
            Event::TurnRecorded { turn, seq } => self.turn_recorded(*turn, seq).await,
            Event::Composed {
                chat,
                args,
                text,
                result,
            } => self.composed(chat, *args, text, result).await,
            Event::Commands { session, commands } => {
                let map: serde_json::Map<String, Json> = commands
                    .into_iter()
                    .map(|(n, d)| (n, Json::String(d)))
                    .collect();
                self.commands.insert(session, Arc::new(Json::Object(map)));
            }
            Event::Files { session, files } => {
                self.files.insert(session, files);
            }
            Event::UsageReport(Ok(lines)) => self.ui.report("boo usage", lines),
            Event::UsageReport(Err(e)) => self.ui.notify(format!("boo: usage: {e}"), 4),
            Event::Health(data) => self.ui.autocmd("BooHealth", data),
            Event::Checkpoint(ev) => self.checkpoint_event(ev).await,
            Event::Mcp(call) => self.mcp_call(call).await,
            Event::ArenaCheck(d) => self.arena_check_done(d),
            Event::ArenaTick(id) => self.arena_tick(id),
        }
    }

    /// A request the forwarder could not answer from the published state (a probe to start,
    /// or answers not published yet): answered by the loop, from the same `Answers`.
    fn request(&mut self, req: Request) -> Result<Json, RpcError> {
        match req {
            Request::Probe(a) => Ok(self.probe_request(a.refresh)),
            Request::Hello(_) | Request::Ping => {
                Err(RpcError::new(ErrorCode::Internal, "answered by rpc"))
            }
            req => {
                self.publish_answers();
                let answers = self.shared.answers.lock().ok();
                answers
                    .and_then(|a| a.answer(&req))
                    .unwrap_or_else(|| Err(RpcError::new(ErrorCode::Internal, "no answer")))
            }
        }
    }

    /// The store, opened lazily (in memory when Lua never configured a path).
    async fn store(&mut self) -> Store {
        if let Some(s) = &self.store {
            return s.clone();
        }
        let (store, err) = match self.config.store_path.clone() {
            Some(path) => Store::open_or_memory(path).await,
            None => {
                tracing::warn!("no store path configured: history will not persist");
                match Store::open_in_memory().await {
                    Ok(s) => (s, None),
                    // Not even memory: a closed store whose calls say so (never a shared
                    // file under /tmp that another user could plant).
                    Err(e) => (Store::closed(), Some(e)),
                }
            }
        };
        if let Some(e) = err {
            self.ui.notify(e.to_string(), 3);
        }
        // Turns a crashed boocoder left running will never end: say so, in the task row and
        // in the chat, before any chat is loaded.
        match store.interrupt_orphaned_tasks().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(n, "marked turns interrupted by a crash"),
            Err(e) => tracing::warn!("interrupted turns not marked: {e}"),
        }
        self.store = Some(store.clone());
        store
    }

    /// Queues a store write whose result matters only to the log (see `store_jobs`).
    async fn write_later<T, F, Fut>(&mut self, what: &'static str, write: F)
    where
        F: FnOnce(Store) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, crate::store::StoreError>> + Send + 'static,
    {
        let store = self.store().await;
        self.store_jobs.run(async move {
            if let Err(e) = write(store).await {
                tracing::warn!("{what}: {e}");
            }
        });
    }

    fn schedule_frame(&mut self) {
        if self.frame_due.is_none() && self.ui.is_dirty() {
            let soon = Instant::now() + COALESCE;
            self.frame_due = Some(
                self.frame_sent
                    .map_or(soon, |t| soon.max(t + self.frame_gap())),
            );
        }
        if self.save_due.is_none() && self.transcripts.has_unsaved() {
            self.save_due = Some(Instant::now() + SAVE);
        }
    }

    fn frame_gap(&self) -> Duration {
        Duration::from_millis(1000 / u64::from(self.config.ui_fps.unwrap_or(DEFAULT_FPS)))
    }

    /// Sends one batch for what is visible.
    fn frame(&mut self) {
        self.frame_due = None;
        self.ui.set_visible(self.ws.visible_chats());
        let Some(batch) = self.ui.frame() else { return };
        self.frame_in_flight = true;
        self.frame_sent = Some(Instant::now());
        let frontend = self.frontend.clone();
        let events = self.events.clone();
        tokio::spawn(async move {
            let r = frontend.apply(batch).await;
            let _ = events.send(Event::FrameApplied(r));
        });
    }

    /// Pushes the statusline state of the current chat (and its session).
    fn push_status(&mut self) {
        let chat = self.ws.target_chat(None, None);
        let c = chat.and_then(|c| self.ws.chats.get(&c));
        let session = c.map(|c| c.session).or(self.ws.current_session);
        let s = session.and_then(|s| self.ws.sessions.get(&s));
        let pending = s.and_then(|s| self.review.pending_count(s.id)).unwrap_or(0);
        let status = crate::ui::StatusView {
            session,
            chat: c.map(|c| c.id),
            agent: c.map(|c| c.agent.clone()),
            model: c.and_then(|c| c.model.clone()),
            busy: c.is_some_and(|c| c.busy()),
            pending_changes: pending,
            permissions: self.agents.permission_count(),
            cost: session.map(|s| self.session_usage(s).cost),
            dir: s
                .and_then(|s| s.dir.as_ref())
                .map(|d| d.display().to_string()),
            options: c.and_then(|c| self.agent_options.get(&c.id)).cloned(),
        };
        self.ui.status(status);
    }

    /// The store is flushed before the agents are stopped: stopping can take seconds, and
    /// whatever is in memory must be on disk by then.
    async fn shutdown(&mut self) {
        self.exiting
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.store_jobs.settle(Duration::from_secs(5)).await;
        self.save_transcripts();
        if let Some(store) = &self.store {
            if let Err(e) = store.flush().await {
                tracing::warn!("history not flushed at exit: {e}");
            }
            // Another editor may take our sessions from now on.
            if let Err(e) = store.release_sessions().await {
                tracing::warn!("sessions not released at exit: {e}");
            }
        }
        self.agents.shutdown().await;
        self.save_transcripts();
        if let Some(store) = &self.store {
            let _ = store.flush().await;
            let _ = store.close().await;
        }
    }
}
