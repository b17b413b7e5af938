//! The app's side of boo's MCP server: which session and chat called (by the worktree the
//! MCP client told), the limits (`mcp.max_depth`, `mcp.max_tasks`), and the two tools:
//! `boo_new_task` makes a task (see `tasks`), `boo_task_status` reports on one.

use std::path::Path;

use super::tasks::{Place, TaskSpec};
use super::App;
use crate::mcp::{Caller, McpServer, Tool, ToolCall};
use crate::model::{ChatId, ItemKind, SessionId};

const WARN: u8 = 3;
/// The most of a task's answer `boo_task_status` returns.
const ANSWER_MAX: usize = 4000;

impl App {
    /// Starts the MCP server once, when the configuration enables it; opencode started from
    /// then on is given it. Not for a remote opencode (it could not reach 127.0.0.1 here), and
    /// stopped when the configuration turns it off.
    pub(super) async fn ensure_mcp(&mut self) {
        let remote = self
            .config
            .opencode
            .url
            .as_deref()
            .is_some_and(|u| !u.trim().is_empty());
        if !self.config.mcp.enabled || remote {
            self.mcp = None;
            self.agents.set_mcp(None);
            return;
        }
        if self.mcp.is_some() {
            return;
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        match McpServer::start(tx).await {
            Ok(s) => {
                self.agents
                    .set_mcp(Some(crate::agent::opencode::server::McpRemote {
                        url: s.url.clone(),
                        token: s.token.clone(),
                    }));
                self.mcp = Some(s);
                let events = self.events.clone();
                tokio::spawn(async move {
                    while let Some(call) = rx.recv().await {
                        if events.send(super::Event::Mcp(call)).is_err() {
                            break;
                        }
                    }
                });
            }
            Err(e) => tracing::warn!("no MCP server for agents: {e}"),
        }
    }

    pub(super) async fn mcp_call(&mut self, call: ToolCall) {
        let r = match call.tool {
            Tool::NewTask {
                prompt,
                agent,
                model,
                new_session,
            } => {
                self.mcp_new_task(&call.caller, prompt, agent, model, new_session)
                    .await
            }
            Tool::Status { task } => self.mcp_status(task),
        };
        if let Err(e) = &r {
            tracing::info!("mcp call refused: {e}");
        }
        let _ = call.reply.send(r);
    }

    /// The calling session and the depth of its deepest running chat (a chat of the user is
    /// 0): several chats of one session share its worktree, hence its MCP client.
    fn mcp_caller(&self, caller: &Caller) -> Result<(SessionId, u32), String> {
        let same = |d: &Path| {
            caller.directory.as_deref().is_some_and(|c| {
                c == d
                    || d.canonicalize()
                        .is_ok_and(|d| c.canonicalize().is_ok_and(|c| c == d))
            })
        };
        let session = self
            .ws
            .sessions
            .values()
            .find(|s| s.dir.as_deref().is_some_and(same))
            .map(|s| s.id);
        // A client that did not tell its directory: the one chat with an opencode turn, if
        // there is just one.
        let session = match session {
            Some(s) => s,
            None => {
                let running: Vec<ChatId> = self
                    .ws
                    .chats
                    .values()
                    .filter(|c| c.running.is_some() && self.agents.runs_on(c.id, "opencode"))
                    .map(|c| c.id)
                    .collect();
                match running.as_slice() {
                    [one] => self.ws.chats[one].session,
                    _ => {
                        return Err(format!(
                            "boo cannot tell which session called (directory {})",
                            caller
                                .directory
                                .as_deref()
                                .map_or("unknown".into(), |d| d.display().to_string())
                        ))
                    }
                }
            }
        };
        let depth = self
            .ws
            .chats
            .values()
            .filter(|c| c.session == session && c.running.is_some())
            .map(|c| self.task_depth.get(&c.id).copied().unwrap_or(0))
            .max()
            .unwrap_or(0);
        Ok((session, depth))
    }

    async fn mcp_new_task(
        &mut self,
        caller: &Caller,
        prompt: String,
        agent: Option<String>,
        model: Option<String>,
        new_session: bool,
    ) -> Result<String, String> {
        let (session, depth) = self.mcp_caller(caller)?;
        let max_depth = self.config.mcp.max_depth;
        if depth + 1 > max_depth {
            let line = format!(
                "task refused: it would be {} tasks deep, and mcp.max_depth is {max_depth}; do this work in the current chat",
                depth + 1
            );
            self.ui.notify(format!("boo: {line}"), WARN);
            return Err(line);
        }
        let max_tasks = self.config.mcp.max_tasks as usize;
        let busy = self
            .mcp_tasks
            .keys()
            .filter(|c| self.ws.chats.get(c).is_some_and(|c| c.busy()))
            .count();
        if busy >= max_tasks {
            let line = format!(
                "task refused: {busy} tasks started by agents are still running (mcp.max_tasks is {max_tasks}); wait for one with boo_task_status"
            );
            self.ui.notify(format!("boo: {line}"), WARN);
            return Err(line);
        }
        let repo = self
            .ws
            .sessions
            .get(&session)
            .map(|s| s.repo_root.display().to_string());
        let spec = TaskSpec {
            prompt,
            agent,
            model,
            place: if new_session {
                Place::New
            } else {
                Place::Session(session)
            },
            chat: None,
            creator: "mcp".into(),
            cwd: repo,
            depth: depth + 1,
        };
        let created = self.create_task(spec).await?;
        self.mcp_tasks.insert(created.chat, None);
        let place = if new_session {
            format!("a new session ({}) with its own worktree", created.session)
        } else {
            "this session (same worktree)".to_string()
        };
        Ok(format!(
            "Started task {} in {place}. It runs on its own; call boo_task_status with task {} to see its state and answer.",
            created.chat, created.chat
        ))
    }

    fn mcp_status(&self, task: i64) -> Result<String, String> {
        let chat: ChatId = task;
        let c = self
            .ws
            .chats
            .get(&chat)
            .filter(|_| self.mcp_tasks.contains_key(&chat))
            .ok_or_else(|| format!("no task {task} (ids come from boo_new_task)"))?;
        let state = if c.running.is_some() {
            "running".to_string()
        } else if c.queued > 0 {
            "queued".to_string()
        } else {
            match self.mcp_tasks.get(&chat).cloned().flatten() {
                Some((s, Some(e))) => format!("{s}: {e}"),
                Some((s, None)) => s,
                None => "queued".to_string(),
            }
        };
        let answer: String = self
            .transcripts
            .get(chat)
            .and_then(|t| {
                t.items()
                    .filter(|i| i.kind == ItemKind::Text)
                    .last()
                    .map(|i| i.content.clone())
            })
            .unwrap_or_default();
        let mut answer: String = answer.chars().take(ANSWER_MAX).collect();
        if answer.is_empty() {
            answer = "(no answer yet)".into();
        }
        Ok(format!("Task {task}: {state}.\nLast answer:\n{answer}"))
    }
}
