//! Turn queue per chat and model coalescing, in front of an [`AgentBackend`].
//!
//! A prompt for a busy chat waits in that chat's queue (reported as `TurnQueued`, never
//! dropped) and starts when the running turn's `TurnDone` passes through; different chats run
//! concurrently. The dispatcher owns which turn of a chat runs and which wait: it hands every
//! backend event to the caller's [`Sink`] stamped with the task of the turn it belongs to
//! ([`Dispatched`]), so the caller never matches events to turns by order or queue position,
//! and reports a turn that could not start as `TurnDone { Failed }` (with an error item).
//! Diff-supersede after a turn belongs to the caller (it needs the worktree layer).
//!
//! An optional [`TurnHook`] runs before each turn starts and after it ended, before the chat's
//! next turn starts: checkpoints snapshot the worktree there, with nothing of the agent running.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::agent::{AgentBackend, AgentEvent, TurnOutcome, TurnRequest};
use crate::model::{ChatId, ItemChange, ItemKind, TaskId};

/// A backend event with the task of the turn it belongs to (`None`: no turn of the chat runs,
/// e.g. a late event after an abort).
#[derive(Clone, Debug, PartialEq)]
pub struct Dispatched {
    pub task: Option<TaskId>,
    pub event: AgentEvent,
}

/// Where the dispatcher's events go, called on the forwarding task: no relay task between
/// the backend and the caller's loop.
#[derive(Clone)]
pub struct Sink(Arc<dyn Fn(Dispatched) + Send + Sync>);

impl Sink {
    pub fn new(f: impl Fn(Dispatched) + Send + Sync + 'static) -> Sink {
        Sink(Arc::new(f))
    }
}

/// For callers that only want the events (tests, the bench harness).
impl From<mpsc::UnboundedSender<AgentEvent>> for Sink {
    fn from(tx: mpsc::UnboundedSender<AgentEvent>) -> Sink {
        Sink::new(move |d| {
            let _ = tx.send(d.event);
        })
    }
}

impl From<mpsc::UnboundedSender<Dispatched>> for Sink {
    fn from(tx: mpsc::UnboundedSender<Dispatched>) -> Sink {
        Sink::new(move |d| {
            let _ = tx.send(d);
        })
    }
}

/// The model a turn uses: the requested one if not empty, else the configured default if not
/// empty, else `None` (the agent's own default; opencode: the `model` field is omitted).
pub fn coalesce_model(requested: Option<&str>, default: Option<&str>) -> Option<String> {
    requested
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .or_else(|| default.map(str::trim).filter(|m| !m.is_empty()))
        .map(str::to_string)
}

/// What happened to a prompt given to [`Dispatcher::send`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    /// The chat was idle: the turn is starting (`TurnStarted` or `TurnDone` follows).
    Starting,
    /// The chat is busy: the prompt waits at this position (1 = next).
    Queued(usize),
}

/// Where a [`TurnHook`] is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookPoint {
    BeforeStart,
    AfterEnd,
}

/// Awaited around each turn (see the module docs); it must not take long.
pub type TurnHook =
    Arc<dyn Fn(&TurnRequest, HookPoint) -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

#[derive(Default)]
struct ChatQueue {
    running: bool,
    queue: VecDeque<TurnRequest>,
    /// The running turn's request, for the hook after it ends.
    current: Option<TurnRequest>,
}

struct Shared {
    backend: Arc<dyn AgentBackend>,
    out: Sink,
    default_model: Option<String>,
    chats: Mutex<HashMap<ChatId, ChatQueue>>,
    hook: std::sync::OnceLock<TurnHook>,
}

/// Per-chat turn queue. Cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    shared: Arc<Shared>,
}

impl Dispatcher {
    /// Takes the backend and the receiving end of the channel the backend reports on; every
    /// event goes on to `out`. Spawns the forwarding task (ends when the backend's channel
    /// closes).
    pub fn new(
        backend: Arc<dyn AgentBackend>,
        mut backend_events: mpsc::UnboundedReceiver<AgentEvent>,
        out: impl Into<Sink>,
        default_model: Option<String>,
    ) -> Dispatcher {
        let d = Dispatcher {
            shared: Arc::new(Shared {
                backend,
                out: out.into(),
                default_model,
                chats: Mutex::new(HashMap::new()),
                hook: std::sync::OnceLock::new(),
            }),
        };
        let weak = Arc::downgrade(&d.shared);
        tokio::spawn(async move {
            while let Some(ev) = backend_events.recv().await {
                let Some(shared) = weak.upgrade() else { break };
                let d = Dispatcher { shared };
                let AgentEvent::TurnDone { chat, .. } = &ev else {
                    let task = ev.chat().and_then(|c| d.running_task(c));
                    d.emit(task, ev);
                    continue;
                };
                let chat = *chat;
                let ended = d
                    .shared
                    .chats
                    .lock()
                    .get_mut(&chat)
                    .and_then(|q| q.current.take());
                match (d.shared.hook.get().cloned(), ended) {
                    // The hook (a worktree snapshot) runs beside this forwarder, so other
                    // chats' events never wait for it; this chat's end and next turn do.
                    (Some(hook), Some(req)) => {
                        tokio::spawn(async move {
                            hook(&req, HookPoint::AfterEnd).await;
                            d.turn_over(chat, Some(req.task), ev);
                        });
                    }
                    (_, ended) => d.turn_over(chat, ended.map(|r| r.task), ev),
                }
            }
        });
        d
    }

    fn emit(&self, task: Option<TaskId>, event: AgentEvent) {
        (self.shared.out.0)(Dispatched { task, event });
    }

    /// The task of the chat's running turn, once it was handed to the backend.
    pub fn running_task(&self, chat: ChatId) -> Option<TaskId> {
        self.shared
            .chats
            .lock()
            .get(&chat)
            .and_then(|q| q.current.as_ref().map(|r| r.task))
    }

    pub fn backend(&self) -> &Arc<dyn AgentBackend> {
        &self.shared.backend
    }

    /// Sets the hook called around every turn (once; later calls are ignored).
    pub fn set_hook(&self, hook: TurnHook) {
        let _ = self.shared.hook.set(hook);
    }

    /// Sends a prompt: starts it, or queues it when the chat has a running turn.
    pub fn send(&self, mut req: TurnRequest) -> Sent {
        req.model = coalesce_model(req.model.as_deref(), self.shared.default_model.as_deref());
        let chat = req.chat;
        let mut chats = self.shared.chats.lock();
        let q = chats.entry(chat).or_default();
        if q.running {
            let task = req.task;
            q.queue.push_back(req);
            let position = q.queue.len();
            drop(chats);
            self.emit(Some(task), AgentEvent::TurnQueued { chat, position });
            return Sent::Queued(position);
        }
        q.running = true;
        drop(chats);
        self.launch(req);
        Sent::Starting
    }

    /// Whether the chat has a running turn.
    pub fn is_busy(&self, chat: ChatId) -> bool {
        self.shared
            .chats
            .lock()
            .get(&chat)
            .is_some_and(|q| q.running)
    }

    /// Number of prompts waiting for the chat.
    pub fn queued(&self, chat: ChatId) -> usize {
        self.shared
            .chats
            .lock()
            .get(&chat)
            .map_or(0, |q| q.queue.len())
    }

    /// Removes and returns the chat's waiting prompts (the running turn is not touched).
    pub fn clear_queue(&self, chat: ChatId) -> Vec<TurnRequest> {
        self.shared
            .chats
            .lock()
            .get_mut(&chat)
            .map(|q| q.queue.drain(..).collect())
            .unwrap_or_default()
    }

    /// Closes the chat: its waiting prompts are returned (not run), its stream ends.
    pub async fn close_chat(&self, chat: ChatId) -> Vec<TurnRequest> {
        let dropped = self
            .shared
            .chats
            .lock()
            .remove(&chat)
            .map(|q| q.queue.into_iter().collect())
            .unwrap_or_default();
        self.shared.backend.close_chat(chat).await;
        dropped
    }

    /// The queue is updated before the caller sees `TurnDone`, and the next turn starts after.
    fn turn_over(&self, chat: ChatId, task: Option<TaskId>, done: AgentEvent) {
        let next = self.pop_next(chat);
        self.emit(task, done);
        if let Some(req) = next {
            self.launch(req);
        }
    }

    /// The chat's turn is over: its next prompt (still marked running), or idle.
    fn pop_next(&self, chat: ChatId) -> Option<TurnRequest> {
        let mut chats = self.shared.chats.lock();
        let q = chats.get_mut(&chat)?;
        q.current = None;
        let next = q.queue.pop_front();
        q.running = next.is_some();
        next
    }

    fn launch(&self, req: TurnRequest) {
        let me = self.clone();
        tokio::spawn(async move {
            let (chat, task) = (req.chat, req.task);
            if let Some(hook) = me.shared.hook.get() {
                hook(&req, HookPoint::BeforeStart).await;
            }
            if let Some(q) = me.shared.chats.lock().get_mut(&chat) {
                q.current = Some(req.clone());
            }
            if let Err(e) = me.shared.backend.start_turn(req).await {
                tracing::warn!(chat, "turn did not start: {e}");
                let msg = e.to_string();
                if let Some(q) = me.shared.chats.lock().get_mut(&chat) {
                    q.current = None;
                }
                me.emit(
                    Some(task),
                    AgentEvent::Item {
                        chat,
                        change: ItemChange::Upsert {
                            part_id: format!("start-error-{}", unique()),
                            kind: ItemKind::Error,
                            content: msg.clone(),
                            meta: serde_json::json!({"name": "StartFailed"}),
                        },
                    },
                );
                let next = me.pop_next(chat);
                me.emit(
                    Some(task),
                    AgentEvent::TurnDone {
                        chat,
                        outcome: TurnOutcome::Failed(msg),
                    },
                );
                if let Some(req) = next {
                    me.launch(req);
                }
            }
        });
    }
}

fn unique() -> u64 {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    t * 1000 + N.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_coalescing() {
        assert_eq!(
            coalesce_model(Some("a/b"), Some("c/d")).as_deref(),
            Some("a/b")
        );
        assert_eq!(
            coalesce_model(Some("  "), Some("c/d")).as_deref(),
            Some("c/d")
        );
        assert_eq!(coalesce_model(None, Some("c/d")).as_deref(), Some("c/d"));
        assert_eq!(coalesce_model(Some(""), Some("")), None);
        assert_eq!(coalesce_model(None, None), None);
    }
}
