//! `tasks`: every turn, with its status lifecycle queued -> running -> done/failed/aborted.

use rusqlite::{params, OptionalExtension, Row, Transaction};

use super::error::bad_column;
use super::{now_ms, NewTask, Store, StoreError, Task};
use crate::model::{ChatId, TaskId, TaskStatus};

const COLS: &str = "id, chat_id, session_id, agent, model, prompt, creator, status, error, \
                    created_at, started_at, finished_at";

fn row(r: &Row) -> rusqlite::Result<Task> {
    let status: String = r.get(7)?;
    Ok(Task {
        id: r.get(0)?,
        chat_id: r.get(1)?,
        session_id: r.get(2)?,
        agent: r.get(3)?,
        model: r.get(4)?,
        prompt: r.get(5)?,
        creator: r.get(6)?,
        status: TaskStatus::parse(&status).ok_or_else(|| bad_column(7, "task status", &status))?,
        error: r.get(8)?,
        created_at: r.get(9)?,
        started_at: r.get(10)?,
        finished_at: r.get(11)?,
    })
}

fn get(tx: &Transaction, id: TaskId) -> Result<Option<Task>, StoreError> {
    let sql = format!("SELECT {COLS} FROM tasks WHERE id = ?1");
    Ok(tx.query_row(&sql, [id], row).optional()?)
}

/// A final status is final, and nothing goes back to queued.
fn allowed(from: TaskStatus, to: TaskStatus) -> bool {
    !from.is_final() && (to != TaskStatus::Queued || from == TaskStatus::Queued)
}

/// Moves a task along its lifecycle, stamping `started_at` on running and `finished_at` on a
/// final status. Returns the task as stored afterwards.
pub(super) fn apply_status(
    tx: &Transaction,
    id: TaskId,
    status: TaskStatus,
    error: Option<String>,
) -> Result<Task, StoreError> {
    let task = get(tx, id)?.ok_or(StoreError::NotFound { what: "task", id })?;
    if !allowed(task.status, status) {
        return Err(StoreError::TaskTransition {
            id,
            from: task.status.as_str(),
            to: status.as_str(),
        });
    }
    let now = now_ms();
    let started = task
        .started_at
        .or((status == TaskStatus::Running).then_some(now));
    let finished = status.is_final().then_some(now);
    tx.execute(
        "UPDATE tasks SET status = ?2, error = ?3, started_at = ?4, finished_at = ?5
         WHERE id = ?1",
        params![id, status.as_str(), error, started, finished],
    )?;
    get(tx, id)?.ok_or(StoreError::NotFound { what: "task", id })
}

impl Store {
    /// A new task, queued. Returns its id.
    pub async fn create_task(&self, new: NewTask) -> Result<TaskId, StoreError> {
        self.call(move |db| {
            db.write(|tx| {
                tx.execute(
                    "INSERT INTO tasks (chat_id, session_id, agent, model, prompt, creator,
                                        status, created_at, owner_pid)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        new.chat_id,
                        new.session_id,
                        new.agent,
                        new.model,
                        new.prompt,
                        new.creator,
                        TaskStatus::Queued.as_str(),
                        now_ms(),
                        std::process::id()
                    ],
                )?;
                Ok(tx.last_insert_rowid())
            })
        })
        .await
    }

    pub async fn task(&self, id: TaskId) -> Result<Option<Task>, StoreError> {
        self.call(move |db| db.read(|tx| get(tx, id))).await
    }

    /// Moves a task along its lifecycle, stamping `started_at` on running and `finished_at`
    /// on a final status. Returns the task as stored afterwards.
    pub async fn set_task_status(
        &self,
        id: TaskId,
        status: TaskStatus,
        error: Option<String>,
    ) -> Result<Task, StoreError> {
        self.call(move |db| db.write(|tx| apply_status(tx, id, status, error.clone())))
            .await
    }

    /// Queues a status change for the next transcript flush (same transaction, same retries):
    /// it does not wait on SQLite, and a database that fails for a while (locked, read-only)
    /// gets it once it works again.
    pub fn put_task_status(
        &self,
        id: TaskId,
        status: TaskStatus,
        error: Option<String>,
    ) -> Result<(), StoreError> {
        self.tx
            .send(super::thread::Msg::PutTask { id, status, error })
            .map_err(|_| StoreError::Closed)
    }

    /// Marks the unfinished tasks whose boocoder is gone as interrupted, each with a visible
    /// transcript item after its chat's last one. Returns how many there were. A task of a
    /// live process (another editor on the same database) is left alone.
    pub async fn interrupt_orphaned_tasks(&self) -> Result<usize, StoreError> {
        self.call(move |db| {
            db.write(|tx| {
                let mut st = tx.prepare(
                    "SELECT id, chat_id, owner_pid FROM tasks WHERE status IN ('queued', 'running')",
                )?;
                let found: Vec<(TaskId, ChatId, Option<i64>)> = st
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<Result<_, _>>()?;
                drop(st);
                let now = now_ms();
                let mut n = 0;
                for (id, chat, owner) in found {
                    if owner.is_some_and(owner_alive) {
                        continue;
                    }
                    tx.execute(
                        "UPDATE tasks SET status = ?2, error = ?3, finished_at = ?4 WHERE id = ?1",
                        params![
                            id,
                            TaskStatus::Interrupted.as_str(),
                            "boocoder stopped during the turn",
                            now
                        ],
                    )?;
                    tx.execute(
                        "INSERT INTO transcript (chat_id, seq, kind, part_id, content, meta, updated_at)
                         SELECT ?1, coalesce(max(seq) + 1, 0), 'info', NULL,
                                '(interrupted: boocoder stopped during this turn)',
                                '{\"status\":\"interrupted\"}', ?2
                         FROM transcript WHERE chat_id = ?1",
                        params![chat, now],
                    )?;
                    n += 1;
                }
                Ok(n)
            })
        })
        .await
    }

    /// A chat's tasks, oldest first.
    pub async fn list_tasks(&self, chat_id: ChatId) -> Result<Vec<Task>, StoreError> {
        self.call(move |db| {
            db.read(|tx| {
                let sql = format!("SELECT {COLS} FROM tasks WHERE chat_id = ?1 ORDER BY id");
                let mut st = tx.prepare_cached(&sql)?;
                let rows = st.query_map([chat_id], row)?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
        })
        .await
    }
}

/// Whether a process with this pid runs (ours counts: a task of this process is not orphaned).
pub(super) fn owner_alive(pid: i64) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;
    use TaskStatus::*;

    #[test]
    fn lifecycle_rules() {
        assert!(allowed(Queued, Running));
        assert!(allowed(Queued, Aborted));
        assert!(allowed(Running, Done));
        assert!(allowed(Running, Failed));
        assert!(!allowed(Running, Queued));
        assert!(!allowed(Done, Running));
        assert!(!allowed(Aborted, Failed));
    }
}
