//! Turn queue per chat and model coalescing, in front of an [`AgentBackend`].
//!
//! A prompt for a busy chat waits in that chat's queue (reported as `TurnQueued`, never
//! dropped) and starts when the running turn's `TurnDone` passes through; different chats run
//! concurrently. The dispatcher forwards every backend event to the caller unchanged, and
//! reports a turn that could not start as `TurnDone { Failed }` (with an error item).
//! Diff-supersede after a turn belongs to the caller (it needs the worktree layer).
//!
//! An optional [`TurnHook`] runs before each turn starts and after it ended, before the chat's
//! next turn starts: checkpoints snapshot the worktree there, with nothing of the agent running.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::agent::{AgentBackend, AgentEvent, TurnOutcome, TurnRequest};
use crate::model::{ChatId, ItemChange, ItemKind};

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
    out: mpsc::UnboundedSender<AgentEvent>,
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
        out: mpsc::UnboundedSender<AgentEvent>,
        default_model: Option<String>,
    ) -> Dispatcher {
        let d = Dispatcher {
            shared: Arc::new(Shared {
                backend,
                out,
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
                    let _ = d.shared.out.send(ev);
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
                            d.turn_over(chat, ev);
                        });
                    }
                    _ => d.turn_over(chat, ev),
                }
            }
        });
        d
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
            q.queue.push_back(req);
            let position = q.queue.len();
            drop(chats);
            let _ = self
                .shared
                .out
                .send(AgentEvent::TurnQueued { chat, position });
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
    fn turn_over(&self, chat: ChatId, done: AgentEvent) {
        let next = self.pop_next(chat);
        let _ = self.shared.out.send(done);
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
            let chat = req.chat;
            if let Some(hook) = me.shared.hook.get() {
                hook(&req, HookPoint::BeforeStart).await;
            }
            if let Some(q) = me.shared.chats.lock().get_mut(&chat) {
                q.current = Some(req.clone());
            }
            if let Err(e) = me.shared.backend.start_turn(req).await {
                tracing::warn!(chat, "turn did not start: {e}");
                let msg = e.to_string();
                let _ = me.shared.out.send(AgentEvent::Item {
                    chat,
                    change: ItemChange::Upsert {
                        part_id: format!("start-error-{}", unique()),
                        kind: ItemKind::Error,
                        content: msg.clone(),
                        meta: serde_json::json!({"name": "StartFailed"}),
                    },
                });
                let next = me.pop_next(chat);
                let _ = me.shared.out.send(AgentEvent::TurnDone {
                    chat,
                    outcome: TurnOutcome::Failed(msg),
                });
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
