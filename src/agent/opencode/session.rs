//! One live opencode session of one chat: an actor task that owns the session's SSE
//! subscription (scoped to its directory), its [`Translator`] and its current turn.
//!
//! The task ends when its command channel closes or it is told to close, when the server
//! process exits, or when the backend shuts down; nothing stays parked.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::StreamExt;
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::client::{Client, ModelRef};
use super::sse::SseParser;
use super::translate::{parse_permission, Output, Translator};
use crate::agent::{AgentError, AgentEvent, PendingPermission, TurnOutcome};
use crate::model::{ChatId, ItemChange, ItemKind};

/// Timings of a session (from the backend config).
#[derive(Clone, Copy, Debug)]
pub struct Timings {
    /// Fail a turn after this long without an event for the session.
    pub watchdog: Duration,
    /// Poll status + messages over REST when no event came for this long while busy.
    pub poll_after: Duration,
    /// Fail a turn when the event stream cannot be re-established for this long.
    pub reconnect_give_up: Duration,
    /// Settle an abort that opencode does not confirm after this long.
    pub abort_grace: Duration,
}

pub enum Cmd {
    Start {
        parts: Vec<serde_json::Value>,
        /// Run this opencode command instead, with the text part as its arguments.
        command: Option<String>,
        model: Option<ModelRef>,
        agent: Option<String>,
        reply: oneshot::Sender<Result<(), AgentError>>,
    },
    Abort {
        reply: oneshot::Sender<Result<(), AgentError>>,
    },
    Close,
}

/// Context window per `provider/model`.
pub type ContextLimits = Arc<Mutex<HashMap<String, u64>>>;

/// `GET /config/providers` -> context window per `provider/model`.
pub fn context_limits(v: &Value) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    let providers = v.get("providers").and_then(Value::as_array);
    for p in providers.into_iter().flatten() {
        let (Some(pid), Some(Value::Object(models))) =
            (p.get("id").and_then(Value::as_str), p.get("models"))
        else {
            continue;
        };
        for (mid, m) in models {
            let limit = m.pointer("/limit/context").and_then(Value::as_u64);
            if let Some(l) = limit.filter(|l| *l > 0) {
                out.insert(format!("{pid}/{mid}"), l);
            }
        }
    }
    out
}

/// Pending permissions of all chats: id -> (chat, directory, request).
pub type PermissionMap = Arc<Mutex<HashMap<String, (PendingPermission, PathBuf)>>>;

struct Turn {
    started: Instant,
    last_activity: Instant,
    last_poll: Instant,
    saw_busy: bool,
    aborted: bool,
    abort_sent: Option<Instant>,
    error: Option<String>,
    idle_hint: Option<Instant>,
}

pub struct Actor {
    pub chat: ChatId,
    pub session_id: String,
    pub directory: PathBuf,
    pub client: Client,
    pub alive: watch::Receiver<bool>,
    pub events: mpsc::UnboundedSender<AgentEvent>,
    pub permissions: PermissionMap,
    pub timings: Timings,
    pub translator: Translator,
    /// Counts live session streams (for `OpencodeBackend::live_streams`).
    pub live: Arc<std::sync::atomic::AtomicUsize>,
    limits: ContextLimits,
    turn: Option<Turn>,
    errors: u32,
    /// A turn was given up (watchdog, lost connection, unconfirmed abort) without opencode
    /// saying it is idle: its late events must not settle the next turn.
    abandoned: bool,
}

/// Messages read per page by a re-sync (a turn is a user message and a few steps).
const RESYNC_PAGE: usize = 8;

type ByteStream = BoxStream<'static, Result<bytes::Bytes, reqwest::Error>>;

impl Actor {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        chat: ChatId,
        session_id: String,
        directory: PathBuf,
        client: Client,
        alive: watch::Receiver<bool>,
        events: mpsc::UnboundedSender<AgentEvent>,
        permissions: PermissionMap,
        timings: Timings,
        live: Arc<std::sync::atomic::AtomicUsize>,
    ) -> Actor {
        Actor {
            live,
            chat,
            translator: Translator::new(session_id.clone()),
            session_id,
            directory,
            client,
            alive,
            events,
            permissions,
            timings,
            limits: Default::default(),
            turn: None,
            errors: 0,
            abandoned: false,
        }
    }

    pub fn with_limits(mut self, limits: ContextLimits) -> Actor {
        self.limits = limits;
        self
    }

    /// A step's usage gets its model's context window, for the context fill shown.
    fn with_context_limit(&self, mut change: ItemChange) -> ItemChange {
        if let ItemChange::Upsert { meta, .. } = &mut change {
            if meta.get("type").and_then(Value::as_str) == Some("step-finish") {
                let model = meta.get("model").and_then(Value::as_str);
                if let Some(l) = model.and_then(|m| self.limits.lock().get(m).copied()) {
                    meta["context_limit"] = l.into();
                }
            }
        }
        change
    }

    fn emit(&self, ev: AgentEvent) {
        let _ = self.events.send(ev);
    }

    /// Subscribes to the directory's events and waits for the first bytes (`server.connected`),
    /// so the subscription is live on the server before anything relies on it. The first
    /// subscription of a session waits longer: for a new directory opencode boots an instance
    /// first, seconds on a loaded machine or with several new worktrees at once (an arena).
    async fn connect(&self, first: bool) -> Result<(ByteStream, bytes::Bytes), AgentError> {
        let timeout = || AgentError::Unreachable("event stream: timed out".into());
        let wait = Duration::from_secs(if first { 20 } else { 5 });
        let s = tokio::time::timeout(wait, self.client.events(&self.directory))
            .await
            .map_err(|_| timeout())??;
        let mut s = s.boxed();
        match tokio::time::timeout(wait, s.next()).await {
            Ok(Some(Ok(first))) => Ok((s, first)),
            Ok(Some(Err(e))) => Err(AgentError::Unreachable(format!("event stream: {e}"))),
            Ok(None) => Err(AgentError::Unreachable("event stream: closed".into())),
            Err(_) => Err(timeout()),
        }
    }

    /// Runs until closed. `ready` gets the result of the first subscription.
    pub async fn run(
        mut self,
        mut cmds: mpsc::UnboundedReceiver<Cmd>,
        ready: oneshot::Sender<Result<(), AgentError>>,
    ) {
        self.live.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.run_inner(&mut cmds, ready).await;
        self.live.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }

    async fn run_inner(
        &mut self,
        cmds: &mut mpsc::UnboundedReceiver<Cmd>,
        ready: oneshot::Sender<Result<(), AgentError>>,
    ) {
        let mut parser = SseParser::new();
        let mut datas: Vec<String> = Vec::new();
        let mut stream: Option<ByteStream> = match self.connect(true).await {
            Ok((s, first)) => {
                parser.push(&first, &mut datas);
                Some(s)
            }
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        // Pick up what the session already holds (a reused session, maybe with a permission
        // request still pending from before a restart), without events.
        self.resync(true).await;
        let _ = ready.send(Ok(()));
        for d in std::mem::take(&mut datas) {
            self.on_data(&d).await;
        }
        let mut reconnect_at: Option<Instant> = None;
        let mut disconnected_since: Option<Instant> = None;
        let mut backoff = Duration::from_millis(100);
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut alive = self.alive.clone();
        loop {
            if stream.is_none() && reconnect_at.is_some_and(|t| Instant::now() >= t) {
                match self.connect(false).await {
                    Ok((s, first)) => {
                        tracing::info!(session = %self.session_id, "event stream reconnected");
                        stream = Some(s);
                        parser.reset();
                        parser.push(&first, &mut datas);
                        reconnect_at = None;
                        disconnected_since = None;
                        backoff = Duration::from_millis(100);
                        // SSE has no replay: re-sync what we missed.
                        self.resync(true).await;
                        for d in std::mem::take(&mut datas) {
                            self.on_data(&d).await;
                        }
                    }
                    Err(e) => {
                        tracing::debug!(session = %self.session_id, "reconnect failed: {e}");
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                        reconnect_at = Some(Instant::now() + backoff);
                    }
                }
            }
            tokio::select! {
                biased;
                changed = alive.changed() => {
                    if changed.is_err() || !*alive.borrow() {
                        self.settle(TurnOutcome::Failed(
                            "the opencode server exited during the turn".into(),
                        ), false)
                        .await;
                        break;
                    }
                }
                cmd = cmds.recv() => match cmd {
                    None | Some(Cmd::Close) => {
                        if self.turn.is_some() {
                            let _ = self.client.abort(&self.session_id, &self.directory).await;
                            self.settle(TurnOutcome::Aborted, false).await;
                        }
                        break;
                    }
                    Some(Cmd::Start { parts, command, model, agent, reply }) => {
                        let r = self.start(parts, command, model.as_ref(), agent.as_deref()).await;
                        let _ = reply.send(r);
                    }
                    Some(Cmd::Abort { reply }) => {
                        let r = self.abort().await;
                        let _ = reply.send(r);
                    }
                },
                chunk = next_chunk(&mut stream) => match chunk {
                    Some(Ok(bytes)) => {
                        parser.push(&bytes, &mut datas);
                        for d in std::mem::take(&mut datas) {
                            self.on_data(&d).await;
                        }
                    }
                    other => {
                        if let Some(Err(e)) = other {
                            tracing::info!(session = %self.session_id, "event stream error: {e}");
                        } else {
                            tracing::info!(session = %self.session_id, "event stream ended");
                        }
                        stream = None;
                        disconnected_since.get_or_insert_with(Instant::now);
                        reconnect_at = Some(Instant::now() + backoff);
                    }
                },
                _ = tick.tick() => {
                    if let Some(since) = disconnected_since {
                        if self.turn.is_some() && since.elapsed() > self.timings.reconnect_give_up {
                            self.settle(TurnOutcome::Failed(
                                "lost the connection to the opencode server".into(),
                            ), false)
                            .await;
                            self.abandoned = true;
                        }
                    }
                    self.on_tick().await;
                }
            }
        }
        self.forget_permissions();
        tracing::debug!(session = %self.session_id, "session stream closed");
    }

    async fn start(
        &mut self,
        parts: Vec<serde_json::Value>,
        command: Option<String>,
        model: Option<&ModelRef>,
        agent: Option<&str>,
    ) -> Result<(), AgentError> {
        if self.turn.is_some() {
            return Err(AgentError::Busy(self.chat));
        }
        if self.abandoned {
            // Let the given-up turn end on the server first (bounded).
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline
                && self
                    .client
                    .is_busy(&self.session_id, &self.directory)
                    .await
                    .unwrap_or(false)
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            self.abandoned = false;
        }
        let now = Instant::now();
        self.turn = Some(Turn {
            started: now,
            last_activity: now,
            last_poll: now,
            saw_busy: false,
            aborted: false,
            abort_sent: None,
            error: None,
            idle_hint: None,
        });
        if let Some(name) = command {
            // `POST /command` answers when the turn is over; its events arrive on the stream
            // like a prompt's, so it runs in the background and the stream ends the turn.
            let client = self.client.clone();
            let (id, dir, events) = (
                self.session_id.clone(),
                self.directory.clone(),
                self.events.clone(),
            );
            let model = model.map(|m| format!("{}/{}", m.provider, m.model));
            let agent = agent.map(str::to_string);
            tokio::spawn(async move {
                if let Err(e) = client.command(&id, &dir, &name, parts, model, agent).await {
                    tracing::warn!(session = %id, "command /{name}: {e}");
                    let _ = events.send(AgentEvent::ServerError(format!(
                        "opencode command /{name} failed: {e}"
                    )));
                }
            });
            self.emit(AgentEvent::TurnStarted { chat: self.chat });
            return Ok(());
        }
        match self
            .client
            .prompt_async(&self.session_id, &self.directory, parts, model, agent)
            .await
        {
            Ok(()) => {
                self.emit(AgentEvent::TurnStarted { chat: self.chat });
                Ok(())
            }
            Err(e) => {
                self.turn = None;
                Err(e)
            }
        }
    }

    async fn abort(&mut self) -> Result<(), AgentError> {
        let Some(t) = self.turn.as_mut() else {
            return Err(AgentError::NotRunning(self.chat));
        };
        t.aborted = true;
        t.abort_sent = Some(Instant::now());
        self.client.abort(&self.session_id, &self.directory).await
    }

    async fn on_data(&mut self, data: &str) {
        let Ok(ev) = serde_json::from_str::<Value>(data) else {
            tracing::debug!(
                "unparsable event: {}",
                data.chars().take(200).collect::<String>()
            );
            return;
        };
        super::drift::note(&ev);
        let mut outs = Vec::new();
        if !self.translator.on_event(&ev, &mut outs) {
            // The instance loading its plugins (first prompt in a directory) can take seconds
            // without a session event: that is progress too, for the watchdog.
            let ty = ev.get("type").and_then(Value::as_str).unwrap_or_default();
            if matches!(
                ty,
                "plugin.added" | "catalog.updated" | "reference.updated" | "integration.updated"
            ) {
                if let Some(t) = self.turn.as_mut() {
                    t.last_activity = Instant::now();
                }
            }
            return;
        }
        if let Some(t) = self.turn.as_mut() {
            t.last_activity = Instant::now();
        }
        self.handle(outs).await;
    }

    async fn handle(&mut self, outs: Vec<Output>) {
        if let Some(outcome) = self.apply(outs) {
            self.settle(outcome, true).await;
        }
    }

    /// Applies translator outputs; returns the outcome when they end the turn.
    fn apply(&mut self, outs: Vec<Output>) -> Option<TurnOutcome> {
        let mut settle = None;
        for o in outs {
            match o {
                Output::Change(change) => self.emit(AgentEvent::Item {
                    chat: self.chat,
                    change: self.with_context_limit(change),
                }),
                Output::Busy { retry } => {
                    if let Some(t) = self.turn.as_mut() {
                        t.saw_busy = true;
                        t.idle_hint = None;
                    }
                    if let Some(message) = retry {
                        self.emit(AgentEvent::Retrying {
                            chat: self.chat,
                            message,
                        });
                    }
                }
                Output::StatusIdle => {
                    if let Some(t) = self.turn.as_mut() {
                        t.idle_hint.get_or_insert_with(Instant::now);
                    }
                }
                Output::Idle => {
                    if self.turn.is_none() {
                        // A given-up turn has ended on the server.
                        self.abandoned = false;
                    }
                    if let Some(t) = self.turn.as_mut() {
                        if t.saw_busy {
                            settle = Some(outcome_of(t));
                        } else {
                            // Maybe a late idle of an earlier turn: confirm over REST later.
                            t.idle_hint.get_or_insert_with(Instant::now);
                        }
                    }
                }
                Output::Error { name, message } => {
                    let Some(t) = self.turn.as_mut() else {
                        continue;
                    };
                    if name == "MessageAbortedError" {
                        // Only an abort of this turn: the late error of a turn given up before
                        // (watchdog) arrives ahead of this turn's first busy status.
                        if t.abort_sent.is_some() || t.saw_busy {
                            t.aborted = true;
                        }
                    } else {
                        t.error = Some(message.clone());
                        self.errors += 1;
                        self.emit(AgentEvent::Item {
                            chat: self.chat,
                            change: ItemChange::Upsert {
                                part_id: format!("error_{}_{}", self.session_id, self.errors),
                                kind: ItemKind::Error,
                                content: message,
                                meta: serde_json::json!({"name": name}),
                            },
                        });
                    }
                }
                Output::PermissionAsked(request) => {
                    self.permissions.lock().insert(
                        request.id.clone(),
                        (
                            PendingPermission {
                                chat: self.chat,
                                request: request.clone(),
                            },
                            self.directory.clone(),
                        ),
                    );
                    self.emit(AgentEvent::PermissionAsked {
                        chat: self.chat,
                        request,
                    });
                }
                Output::Title(title) => self.emit(AgentEvent::Title {
                    chat: self.chat,
                    title,
                }),
                Output::PermissionReplied { id, reply } => {
                    self.permissions.lock().remove(&id);
                    self.emit(AgentEvent::PermissionReplied {
                        chat: self.chat,
                        id,
                        reply,
                    });
                }
                Output::FilesChanged(files) => self.emit(AgentEvent::FilesChanged {
                    chat: self.chat,
                    files,
                }),
            }
        }
        settle
    }

    /// Fetches the session's messages (and, after a reconnect, its pending permissions) and
    /// reconciles the transcript with them.
    /// The messages since the session's last user message (the current or last turn): read
    /// from the end, a page at a time, so the cost follows the turn, not the session's length.
    async fn turn_messages(&self) -> Result<Value, AgentError> {
        let mut limit = RESYNC_PAGE;
        loop {
            let msgs = self
                .client
                .last_messages(&self.session_id, &self.directory, limit)
                .await?;
            let list = msgs.as_array().map(Vec::as_slice).unwrap_or_default();
            let has_user = list
                .iter()
                .any(|m| m["info"]["role"].as_str() == Some("user"));
            if has_user || list.len() < limit || limit >= RESYNC_PAGE << 8 {
                return Ok(msgs);
            }
            limit *= 4;
        }
    }

    async fn resync(&mut self, permissions: bool) {
        match self.turn_messages().await {
            Ok(msgs) => {
                let mut outs = Vec::new();
                self.translator.resync(&msgs, &mut outs);
                if !outs.is_empty() {
                    if let Some(t) = self.turn.as_mut() {
                        t.last_activity = Instant::now();
                    }
                }
                // Only transcript changes: turn state is decided by status, not by a snapshot.
                for o in outs {
                    if let Output::Change(change) = o {
                        self.emit(AgentEvent::Item {
                            chat: self.chat,
                            change,
                        });
                    }
                }
            }
            Err(e) => tracing::info!(session = %self.session_id, "re-sync failed: {e}"),
        }
        if permissions {
            if let Ok(list) = self.client.permissions(&self.directory).await {
                let mut outs = Vec::new();
                for p in list.iter().filter_map(parse_permission) {
                    if p.session_id == self.session_id {
                        self.translator.note_permission(&p, &mut outs);
                    }
                }
                let outs: Vec<Output> = outs
                    .into_iter()
                    .filter(|o| matches!(o, Output::Change(_) | Output::PermissionAsked(_)))
                    .collect();
                let _ = self.apply(outs);
            }
        }
    }

    async fn on_tick(&mut self) {
        let waiting_for_user = self
            .permissions
            .lock()
            .values()
            .any(|(p, _)| p.chat == self.chat);
        let Some(t) = self.turn.as_mut() else { return };
        let now = Instant::now();
        if waiting_for_user && t.abort_sent.is_none() {
            // The turn waits for the user, not for the agent: no watchdog, no polling.
            t.last_activity = now;
            return;
        }
        // opencode did not confirm an abort: settle it anyway.
        if t.abort_sent
            .is_some_and(|s| now.duration_since(s) > self.timings.abort_grace)
        {
            self.settle(TurnOutcome::Aborted, true).await;
            self.abandoned = true;
            return;
        }
        let hint = t
            .idle_hint
            .is_some_and(|h| now.duration_since(h) > Duration::from_millis(1500));
        let quiet = now.duration_since(t.last_activity);
        let poll = quiet > self.timings.poll_after
            && now.duration_since(t.last_poll) > self.timings.poll_after;
        let watchdog = quiet > self.timings.watchdog;
        if !(hint || poll || watchdog) {
            return;
        }
        if let Some(t) = self.turn.as_mut() {
            t.last_poll = now;
            t.idle_hint = None;
        }
        // Re-sync first: the events may have been lost, not the work.
        self.resync(false).await;
        let busy = self
            .client
            .is_busy(&self.session_id, &self.directory)
            .await
            .unwrap_or(true);
        let Some(t) = self.turn.as_ref() else { return };
        if !busy && (t.saw_busy || now.duration_since(t.started) > Duration::from_secs(2)) {
            let outcome = outcome_of(t);
            self.settle(outcome, false).await;
            return;
        }
        let quiet = Instant::now().duration_since(t.last_activity);
        if watchdog && quiet > self.timings.watchdog {
            let secs = self.timings.watchdog.as_secs_f64();
            tracing::warn!(session = %self.session_id, "watchdog: no event for {secs} s");
            let _ = self.client.abort(&self.session_id, &self.directory).await;
            self.settle(
                TurnOutcome::Failed(format!(
                    "no response from the agent for {secs:.0} s; the turn was stopped (watchdog)"
                )),
                false,
            )
            .await;
            self.abandoned = true;
        }
    }

    /// Ends the current turn: a final re-sync (so the transcript equals what opencode holds),
    /// then `TurnDone`.
    async fn settle(&mut self, outcome: TurnOutcome, resync: bool) {
        if self.turn.is_none() {
            return;
        }
        if resync {
            self.resync(false).await;
        }
        let reported = self.turn.as_ref().and_then(|t| t.error.clone());
        self.turn = None;
        self.forget_permissions();
        if let TurnOutcome::Failed(msg) = &outcome {
            if reported.as_deref() == Some(msg.as_str()) {
                self.emit(AgentEvent::TurnDone {
                    chat: self.chat,
                    outcome,
                });
                return;
            }
            // Errors from opencode already have their item; the others get one here.
            self.errors += 1;
            self.emit(AgentEvent::Item {
                chat: self.chat,
                change: ItemChange::Upsert {
                    part_id: format!("error_{}_{}", self.session_id, self.errors),
                    kind: ItemKind::Error,
                    content: msg.clone(),
                    meta: serde_json::json!({"name": "TurnFailed"}),
                },
            });
        }
        self.emit(AgentEvent::TurnDone {
            chat: self.chat,
            outcome,
        });
    }

    fn forget_permissions(&self) {
        self.permissions
            .lock()
            .retain(|_, (p, _)| p.chat != self.chat);
    }
}

fn outcome_of(t: &Turn) -> TurnOutcome {
    if t.aborted {
        TurnOutcome::Aborted
    } else if let Some(e) = &t.error {
        TurnOutcome::Failed(e.clone())
    } else {
        TurnOutcome::Done
    }
}

async fn next_chunk(s: &mut Option<ByteStream>) -> Option<Result<bytes::Bytes, reqwest::Error>> {
    match s {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}
