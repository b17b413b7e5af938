//! `checkpoints`: each turn's number in its chat, its worktree snapshots and whether it was
//! undone (see `worktree::snapshot`).

use rusqlite::{params, Row};
use serde::{Deserialize, Serialize};

use super::error::bad_column;
use super::{Store, StoreError};
use crate::model::{ChatId, TaskId};

/// Where a turn stands for undo/redo.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointState {
    Done,
    /// Undone; `:Boo redo` brings it back.
    Undone,
    /// Undone, and a later turn was run instead: it stays undone (the agent forgot it).
    Dropped,
}

impl CheckpointState {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckpointState::Done => "done",
            CheckpointState::Undone => "undone",
            CheckpointState::Dropped => "dropped",
        }
    }

    fn parse(s: &str) -> Option<CheckpointState> {
        Some(match s {
            "done" => CheckpointState::Done,
            "undone" => CheckpointState::Undone,
            "dropped" => CheckpointState::Dropped,
            _ => return None,
        })
    }
}

/// One turn's checkpoint row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub task_id: TaskId,
    pub chat_id: ChatId,
    /// 1, 2, ... in the chat.
    pub turn: u32,
    /// The transcript item of the turn's prompt.
    pub seq: Option<usize>,
    pub before_commit: Option<String>,
    pub after_commit: Option<String>,
    /// The agent's id of the prompt's message (opencode `msg_...`).
    pub message_id: Option<String>,
    pub state: CheckpointState,
}

const COLS: &str = "task_id, chat_id, turn, seq, before_commit, after_commit, message_id, state";

fn row(r: &Row) -> rusqlite::Result<Checkpoint> {
    let state: String = r.get(7)?;
    Ok(Checkpoint {
        task_id: r.get(0)?,
        chat_id: r.get(1)?,
        turn: r.get(2)?,
        seq: r.get::<_, Option<i64>>(3)?.map(|s| s.max(0) as usize),
        before_commit: r.get(4)?,
        after_commit: r.get(5)?,
        message_id: r.get(6)?,
        state: CheckpointState::parse(&state)
            .ok_or_else(|| bad_column(7, "checkpoint state", &state))?,
    })
}

impl Store {
    /// Numbers a new turn of its chat (one more than the last) and records it. Turns undone
    /// before it can no longer be redone: they become `Dropped`. Returns the number.
    pub async fn add_checkpoint(
        &self,
        task_id: TaskId,
        chat_id: ChatId,
        seq: Option<usize>,
    ) -> Result<u32, StoreError> {
        self.call(move |db| {
            db.write(|tx| {
                let turn: u32 = tx.query_row(
                    "SELECT coalesce(max(turn), 0) + 1 FROM checkpoints WHERE chat_id = ?1",
                    [chat_id],
                    |r| r.get(0),
                )?;
                tx.execute(
                    "UPDATE checkpoints SET state = 'dropped' WHERE chat_id = ?1 AND state = 'undone'",
                    [chat_id],
                )?;
                tx.execute(
                    "INSERT INTO checkpoints (task_id, chat_id, turn, seq) VALUES (?1, ?2, ?3, ?4)",
                    params![task_id, chat_id, turn, seq.map(|s| s as i64)],
                )?;
                Ok(turn)
            })
        })
        .await
    }

    /// Records a snapshot commit of a turn (`after`: the after-snapshot).
    pub async fn set_checkpoint_commit(
        &self,
        chat_id: ChatId,
        turn: u32,
        after: bool,
        commit: String,
    ) -> Result<(), StoreError> {
        let col = if after {
            "after_commit"
        } else {
            "before_commit"
        };
        self.call(move |db| {
            db.write(|tx| {
                tx.execute(
                    &format!("UPDATE checkpoints SET {col} = ?3 WHERE chat_id = ?1 AND turn = ?2"),
                    params![chat_id, turn, commit],
                )?;
                Ok(())
            })
        })
        .await
    }

    /// Records the agent's id of a turn's prompt message (the first one reported wins).
    pub async fn set_checkpoint_message(
        &self,
        task_id: TaskId,
        message_id: String,
    ) -> Result<(), StoreError> {
        self.call(move |db| {
            db.write(|tx| {
                tx.execute(
                    "UPDATE checkpoints SET message_id = ?2 WHERE task_id = ?1 AND message_id IS NULL",
                    params![task_id, message_id],
                )?;
                Ok(())
            })
        })
        .await
    }

    /// Sets the state of some turns of a chat.
    pub async fn set_checkpoint_states(
        &self,
        chat_id: ChatId,
        turns: Vec<u32>,
        state: CheckpointState,
    ) -> Result<(), StoreError> {
        self.call(move |db| {
            db.write(|tx| {
                for t in &turns {
                    tx.execute(
                        "UPDATE checkpoints SET state = ?3 WHERE chat_id = ?1 AND turn = ?2",
                        params![chat_id, t, state.as_str()],
                    )?;
                }
                Ok(())
            })
        })
        .await
    }

    /// A chat's turns, oldest first.
    pub async fn checkpoints(&self, chat_id: ChatId) -> Result<Vec<Checkpoint>, StoreError> {
        self.call(move |db| {
            db.read(|tx| {
                let sql =
                    format!("SELECT {COLS} FROM checkpoints WHERE chat_id = ?1 ORDER BY turn");
                let mut st = tx.prepare_cached(&sql)?;
                let rows = st.query_map([chat_id], row)?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
        })
        .await
    }
}
