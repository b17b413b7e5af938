//! SQLite state on its own thread (the only place with SQL).
//!
//! [`Store`] is a cheap handle: a channel to one thread that owns the connection, so no caller
//! ever blocks the async runtime on disk. Every method sends a closure and awaits its reply;
//! transcript writes ([`Store::put_item`]) are fire-and-forget and batched on the thread.
//! The database is WAL with a busy timeout, and every write is `BEGIN IMMEDIATE` with a
//! bounded retry, so two boocoder processes can share one file.

mod agent_sessions;
mod changes;
mod chats;
mod checkpoints;
mod error;
mod health;
mod panes;
mod prompts;
pub mod schema;
mod sessions;
mod tasks;
mod thread;
mod transcript;
mod types;
mod usage;
mod worktrees;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::oneshot;

pub use checkpoints::{Checkpoint, CheckpointState};
pub use error::StoreError;
pub use health::LiveWorktree;
pub use panes::CLOSED_PANES_CAP;
pub use prompts::{ChatPrompts, HISTORY_CAP};
pub use types::*;
pub use usage::StepRow;

use thread::{Db, Msg, Target};

/// Tuning knobs; the defaults suit the plugin, tests and benchmarks change them.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// How long a transcript item may wait in memory before it is written.
    pub flush_interval: Duration,
    /// Flush early when this many distinct items are buffered.
    pub max_batch: usize,
    /// How long SQLite waits for another process's lock before reporting busy.
    pub busy_timeout: Duration,
    /// Files up to this size get a full `PRAGMA quick_check` when opened.
    pub quick_check_max_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            flush_interval: Duration::from_millis(50),
            max_batch: 512,
            busy_timeout: Duration::from_secs(5),
            quick_check_max_bytes: 256 << 20,
        }
    }
}

/// The default database location under Neovim's `stdpath('data')`.
pub fn default_path(nvim_data_dir: &Path) -> PathBuf {
    nvim_data_dir.join("boo").join("boo.db")
}

/// Handle to the store thread. Clones share the thread; it stops (after a last flush) when the
/// final handle is dropped or [`Store::close`] is called.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::Sender<Msg>,
    persistent: bool,
    /// Why the last transcript write failed, until one succeeds (set by the store thread).
    write_error: WriteError,
}

/// Shared with the store thread; read without waiting on SQLite.
pub(crate) type WriteError = std::sync::Arc<std::sync::Mutex<Option<String>>>;

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("persistent", &self.persistent)
            .finish()
    }
}

impl Store {
    /// Opens (creating it and its directory if needed) and migrates the database at `path`.
    pub async fn open(path: impl Into<PathBuf>) -> Result<Store, StoreError> {
        Self::open_with(path, StoreOptions::default()).await
    }

    pub async fn open_with(
        path: impl Into<PathBuf>,
        opts: StoreOptions,
    ) -> Result<Store, StoreError> {
        Self::start(Target::File(path.into()), opts, true).await
    }

    /// A private database that lives as long as the store; nothing persists.
    pub async fn open_in_memory() -> Result<Store, StoreError> {
        Self::start(Target::Memory, StoreOptions::default(), false).await
    }

    /// Opens `path`, or falls back to an in-memory store so the plugin keeps working for this
    /// session. The error (one line naming the path) is for the user.
    pub async fn open_or_memory(path: impl Into<PathBuf>) -> (Store, Option<StoreError>) {
        let path = path.into();
        let err = match Self::open(path.clone()).await {
            Ok(store) => return (store, None),
            Err(e) => e,
        };
        // The Open wrapper already names the path; the user message names it once.
        let reason = match err {
            StoreError::Open { cause, .. } => cause.to_string(),
            other => other.to_string(),
        };
        let err = StoreError::Fallback {
            path,
            reason: reason.replace(['\n', '\r'], " "),
        };
        tracing::error!("{err}");
        match Self::open_in_memory().await {
            Ok(store) => (store, Some(err)),
            Err(e) => {
                tracing::error!("store: in-memory fallback failed too: {e}");
                (Self::closed(), Some(err))
            }
        }
    }

    /// A store whose every call fails (not even memory works); each call says so.
    pub fn closed() -> Store {
        let (tx, _) = mpsc::channel();
        Store {
            tx,
            persistent: false,
            write_error: WriteError::default(),
        }
    }

    async fn start(
        target: Target,
        opts: StoreOptions,
        persistent: bool,
    ) -> Result<Store, StoreError> {
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        let write_error = WriteError::default();
        let shared = write_error.clone();
        std::thread::Builder::new()
            .name("boo-store".into())
            .spawn(move || thread::run(target, opts, rx, ready_tx, shared))
            .map_err(StoreError::Thread)?;
        ready_rx.await.map_err(|_| StoreError::Closed)??;
        Ok(Store {
            tx,
            persistent,
            write_error,
        })
    }

    /// Why history is not being written right now (locked, disk full, read-only), or None.
    /// The unwritten items stay buffered and are retried.
    pub fn write_error(&self) -> Option<String> {
        self.write_error.lock().ok().and_then(|e| e.clone())
    }

    /// False for the in-memory store: history will not survive this process.
    pub fn is_persistent(&self) -> bool {
        self.persistent
    }

    /// Writes every buffered transcript item now.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Msg::Flush(reply))?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Flushes and stops the store thread; later calls on any clone fail with `Closed`.
    /// Call it on shutdown: a process that exits right after dropping its last handle may not
    /// give the thread time for the final flush.
    pub async fn close(&self) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Msg::Close(reply))?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Counters of the transcript batching; does not flush.
    pub async fn flush_stats(&self) -> Result<FlushStats, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Msg::Stats(reply))?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    fn send(&self, msg: Msg) -> Result<(), StoreError> {
        self.tx.send(msg).map_err(|_| StoreError::Closed)
    }

    /// Runs `f` on the store thread after every earlier message, and awaits its result.
    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Db) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Msg::Call(Box::new(move |db| {
            let _ = reply.send(f(db));
        })))?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

/// Unix time in milliseconds, the unit of every `*_at` column.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests;
