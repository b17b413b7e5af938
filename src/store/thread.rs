//! The store thread: owns the SQLite connection, runs calls in arrival order, and buffers
//! transcript writes so a stream of deltas costs one transaction per flush.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use tokio::sync::oneshot;

use super::error::StoreError;
use super::{schema, transcript, FlushStats, StoreOptions};
use crate::model::{ChatId, TaskId, TaskStatus, TranscriptItem};

/// Bounded retry of a whole operation on SQLITE_BUSY, on top of SQLite's own busy timeout
/// (which covers lock waits but not every busy case, e.g. a snapshot gone stale under WAL).
const BUSY_ATTEMPTS: u32 = 8;

pub(super) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

pub(super) enum Msg {
    Put(TranscriptItem),
    /// A task status change, written with the next batch of transcript items.
    PutTask {
        id: TaskId,
        status: TaskStatus,
        error: Option<String>,
    },
    Call(Box<dyn FnOnce(&mut Db) + Send>),
    Flush(Reply<()>),
    /// Answered without flushing, so tests can see what the timer alone did.
    Stats(Reply<FlushStats>),
    Close(Reply<()>),
}

pub(super) enum Target {
    File(PathBuf),
    Memory,
}

/// The connection as the query modules see it: every write is one `BEGIN IMMEDIATE`
/// transaction (never a deferred one that upgrades to a write lock and can deadlock).
pub(super) struct Db {
    conn: Connection,
}

impl Db {
    pub(super) fn write<T>(
        &mut self,
        mut f: impl FnMut(&Transaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = &mut self.conn;
        retry_busy(|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let v = f(&tx)?;
            tx.commit()?;
            Ok(v)
        })
    }

    /// Reads run in one deferred transaction so a multi-statement read sees one snapshot.
    pub(super) fn read<T>(
        &mut self,
        mut f: impl FnMut(&Transaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = &mut self.conn;
        retry_busy(|| {
            let tx = conn.transaction()?;
            f(&tx)
        })
    }
}

pub(super) fn retry_busy<T>(mut f: impl FnMut() -> Result<T, StoreError>) -> Result<T, StoreError> {
    let mut attempt = 1;
    loop {
        match f() {
            Err(e) if e.is_busy() => {
                if attempt >= BUSY_ATTEMPTS {
                    tracing::error!(attempt, "store: still busy, giving up: {e}");
                    return Err(StoreError::Busy { attempts: attempt });
                }
                tracing::debug!(attempt, "store: busy, retrying: {e}");
                std::thread::sleep(Duration::from_millis(10 << attempt.min(5)));
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Opens the connection (on this thread), reports readiness, then serves messages until every
/// handle is dropped or `Close` arrives; pending transcript items are flushed either way.
pub(super) fn run(
    target: Target,
    opts: StoreOptions,
    rx: Receiver<Msg>,
    ready: oneshot::Sender<Result<(), StoreError>>,
    write_error: super::WriteError,
) {
    let conn = match &target {
        Target::File(path) => open_file(path, &opts).map_err(|cause| StoreError::Open {
            path: path.clone(),
            cause: Box::new(cause),
        }),
        Target::Memory => open_memory(),
    };
    let db = match conn {
        Ok(conn) => Db { conn },
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    if ready.send(Ok(())).is_err() {
        return; // the opener gave up waiting
    }
    Worker {
        db,
        opts,
        buf: Buffer::default(),
        stats: FlushStats::default(),
        write_error,
    }
    .serve(rx);
}

fn open_file(path: &Path, opts: &StoreOptions) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    // No silent fallback to read-only: we want to know now, not at the first write.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags)?;
    if conn.is_readonly(rusqlite::DatabaseName::Main)? {
        return Err(StoreError::ReadOnly);
    }
    conn.busy_timeout(opts.busy_timeout)?;
    // WAL: readers never block the writer, and a killed process cannot corrupt the file.
    // synchronous=NORMAL keeps every commit safe from a process crash (only an OS crash or
    // power loss may drop the last commits), at a fraction of FULL's fsync cost.
    let mode: String =
        retry_busy(
            || Ok(conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?),
        )?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(mode, "store: WAL not available, using another journal mode");
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    check_integrity(&conn, path, opts)?;
    schema::migrate(&mut conn, schema::MIGRATIONS)?;
    Ok(conn)
}

/// Finds a damaged file now, while falling back to memory is still clean, rather than at some
/// later query. `quick_check` reads every page, so a very large file only gets its schema read.
fn check_integrity(conn: &Connection, path: &Path, opts: &StoreOptions) -> Result<(), StoreError> {
    let size = std::fs::metadata(path).map_or(0, |m| m.len());
    if size > opts.quick_check_max_bytes {
        tracing::info!(size, "store: large database, checking its schema only");
        retry_busy(|| {
            Ok(
                conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                    r.get::<_, i64>(0)
                })?,
            )
        })?;
        return Ok(());
    }
    let started = Instant::now();
    let problems: Vec<String> = retry_busy(|| {
        let mut st = conn.prepare("PRAGMA quick_check")?;
        let rows = st.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    })?;
    tracing::debug!(size, took = ?started.elapsed(), "store: quick_check done");
    match problems.first() {
        Some(first) if first != "ok" => Err(StoreError::Corrupt(format!(
            "{first} ({} problems)",
            problems.len()
        ))),
        _ => Ok(()),
    }
}

fn open_memory() -> Result<Connection, StoreError> {
    let mut conn = Connection::open_in_memory()?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    schema::migrate(&mut conn, schema::MIGRATIONS)?;
    Ok(conn)
}

/// Transcript items waiting for the next flush; one entry per key, the last write wins.
#[derive(Default)]
struct Buffer {
    items: BTreeMap<(ChatId, i64), TranscriptItem>,
    /// Task status changes in the order they were made.
    tasks: Vec<(TaskId, TaskStatus, Option<String>)>,
    deadline: Option<Instant>,
    failures: u32,
}

struct Worker {
    db: Db,
    opts: StoreOptions,
    buf: Buffer,
    stats: FlushStats,
    write_error: super::WriteError,
}

impl Worker {
    fn set_write_error(&self, e: Option<String>) {
        if let Ok(mut w) = self.write_error.lock() {
            *w = e;
        }
    }

    fn serve(mut self, rx: Receiver<Msg>) {
        loop {
            // A steady stream of puts would never let `recv_timeout` time out; check the
            // deadline on every turn instead.
            if self.buf.deadline.is_some_and(|at| at <= Instant::now()) {
                let _ = self.flush();
            }
            let msg = match self.buf.deadline {
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
            };
            match msg {
                Ok(Msg::Put(item)) => {
                    if self.buf.deadline.is_none() {
                        self.buf.deadline = Some(Instant::now() + self.opts.flush_interval);
                    }
                    self.buf.items.insert((item.chat_id, item.seq), item);
                    if self.buf.items.len() >= self.opts.max_batch {
                        let _ = self.flush();
                    }
                }
                Ok(Msg::PutTask { id, status, error }) => {
                    if self.buf.deadline.is_none() {
                        self.buf.deadline = Some(Instant::now() + self.opts.flush_interval);
                    }
                    self.buf.tasks.push((id, status, error));
                }
                Ok(Msg::Call(f)) => {
                    // Calls see every earlier put (and a chat deleted by a call takes its
                    // buffered items with it), so flush first.
                    let _ = self.flush();
                    let db = &mut self.db;
                    if std::panic::catch_unwind(AssertUnwindSafe(move || f(db))).is_err() {
                        tracing::error!("store: a call panicked; its caller sees the store closed");
                    }
                }
                Ok(Msg::Stats(reply)) => {
                    let _ = reply.send(Ok(self.stats.clone()));
                }
                Ok(Msg::Flush(reply)) => {
                    let _ = reply.send(self.flush());
                }
                Ok(Msg::Close(reply)) => {
                    let res = self.flush();
                    // Intake and connection are closed before the reply: nothing sent after
                    // `close()` returns is silently accepted, and the file is complete (WAL
                    // checkpointed when we were its last user) by the time the caller goes on.
                    drop(rx);
                    drop(self);
                    let _ = reply.send(res);
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.flush();
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.flush();
                    return;
                }
            }
        }
    }

    /// Writes the whole buffer in one transaction. On failure the items stay buffered and the
    /// next attempt backs off, so a full disk does not spin the thread.
    fn flush(&mut self) -> Result<(), StoreError> {
        if self.buf.items.is_empty() && self.buf.tasks.is_empty() {
            return Ok(());
        }
        let (items, tasks) = (&self.buf.items, &self.buf.tasks);
        let started = Instant::now();
        match self.db.write(|tx| {
            transcript::write_batch(tx, items.values())?;
            for (id, status, error) in tasks {
                match super::tasks::apply_status(tx, *id, *status, error.clone()) {
                    Ok(_) => {}
                    // A change that no longer applies (the task is gone, or already final)
                    // must not hold back the rest.
                    Err(e @ (StoreError::NotFound { .. } | StoreError::TaskTransition { .. })) => {
                        tracing::warn!(task = id, "task status not saved: {e}");
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        }) {
            Ok(()) => {
                if !self.buf.items.is_empty() {
                    self.stats.record(self.buf.items.len(), started.elapsed());
                }
                self.buf.items.clear();
                self.buf.tasks.clear();
                self.buf.deadline = None;
                self.buf.failures = 0;
                self.set_write_error(None);
                Ok(())
            }
            Err(e) => {
                self.buf.failures += 1;
                self.stats.failed += 1;
                self.set_write_error(Some(e.to_string()));
                let backoff = self
                    .opts
                    .flush_interval
                    .saturating_mul(1 << self.buf.failures.min(7))
                    .min(Duration::from_secs(5));
                self.buf.deadline = Some(Instant::now() + backoff);
                tracing::warn!(
                    items = self.buf.items.len(),
                    failures = self.buf.failures,
                    "store: transcript flush failed, will retry: {e}"
                );
                Err(e)
            }
        }
    }
}
