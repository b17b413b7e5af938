//! `agent_sessions`: the agent's own session id for one (chat, agent), reused on switch-back.

use rusqlite::{params, OptionalExtension, Row};

use super::{now_ms, AgentSession, Store, StoreError};
use crate::model::ChatId;

const COLS: &str =
    "chat_id, agent, external_id, config_hash, worktree_id, session_id, state, updated_at";

fn row(r: &Row) -> rusqlite::Result<AgentSession> {
    Ok(AgentSession {
        chat_id: r.get(0)?,
        agent: r.get(1)?,
        external_id: r.get(2)?,
        config_hash: r.get(3)?,
        worktree_id: r.get(4)?,
        session_id: r.get(5)?,
        state: r.get(6)?,
        updated_at: r.get(7)?,
    })
}

impl Store {
    /// Inserts or replaces the row for `(chat_id, agent)`; `updated_at` is set here.
    pub async fn upsert_agent_session(&self, s: AgentSession) -> Result<(), StoreError> {
        self.call(move |db| {
            db.write(|tx| {
                tx.execute(
                    "INSERT INTO agent_sessions
                        (chat_id, agent, external_id, config_hash, worktree_id, session_id,
                         state, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT (chat_id, agent) DO UPDATE SET
                        external_id = excluded.external_id,
                        config_hash = excluded.config_hash,
                        worktree_id = excluded.worktree_id,
                        session_id = excluded.session_id,
                        state = excluded.state,
                        updated_at = excluded.updated_at",
                    params![
                        s.chat_id,
                        s.agent,
                        s.external_id,
                        s.config_hash,
                        s.worktree_id,
                        s.session_id,
                        s.state,
                        now_ms()
                    ],
                )?;
                Ok(())
            })
        })
        .await
    }

    pub async fn agent_session(
        &self,
        chat_id: ChatId,
        agent: &str,
    ) -> Result<Option<AgentSession>, StoreError> {
        let agent = agent.to_owned();
        self.call(move |db| {
            db.read(|tx| {
                let sql =
                    format!("SELECT {COLS} FROM agent_sessions WHERE chat_id = ?1 AND agent = ?2");
                Ok(tx
                    .query_row(&sql, params![chat_id, agent], row)
                    .optional()?)
            })
        })
        .await
    }

    /// Every agent session of a chat (one per agent used in it).
    pub async fn list_agent_sessions(
        &self,
        chat_id: ChatId,
    ) -> Result<Vec<AgentSession>, StoreError> {
        self.call(move |db| {
            db.read(|tx| {
                let sql =
                    format!("SELECT {COLS} FROM agent_sessions WHERE chat_id = ?1 ORDER BY agent");
                let mut st = tx.prepare_cached(&sql)?;
                let rows = st.query_map([chat_id], row)?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
        })
        .await
    }

    /// Forgets the agent session (e.g. it went stale). Returns whether it existed.
    pub async fn delete_agent_session(
        &self,
        chat_id: ChatId,
        agent: &str,
    ) -> Result<bool, StoreError> {
        let agent = agent.to_owned();
        self.call(move |db| {
            db.write(|tx| {
                Ok(tx.execute(
                    "DELETE FROM agent_sessions WHERE chat_id = ?1 AND agent = ?2",
                    params![chat_id, agent],
                )? > 0)
            })
        })
        .await
    }
}
