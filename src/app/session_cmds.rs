//! `:Boo session`: pick/switch, new (with its own worktree), rename, delete (risk-checked:
//! the user is asked before work is lost; stashing keeps it on a branch).

use crate::ui::{Choice, ChoiceValue};
use std::path::PathBuf;

use serde_json::json;

use super::review::{Job, Target};
use super::App;
use crate::model::{ChatId, PaneId, SessionId};
use crate::rpc::{CwdArgs, SessionCmdArgs};
use crate::worktree::{self, RemoveMode};

const INFO: u8 = 2;
const WARN: u8 = 3;
const ERROR: u8 = 4;

impl App {
    /// The repository of `cwd` (discovered off the loop's thread).
    pub(super) async fn repo_of(&self, cwd: Option<&str>) -> Result<PathBuf, String> {
        let cwd = match cwd {
            Some(c) => PathBuf::from(c),
            None => std::env::current_dir().map_err(|e| format!("no working directory: {e}"))?,
        };
        tokio::task::spawn_blocking(move || worktree::discover(&cwd))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// The session a command without an explicit one is for.
    async fn command_session(&mut self, a: &SessionCmdArgs) -> Result<SessionId, String> {
        if let Some(s) = a.session.filter(|s| self.ws.sessions.contains_key(s)) {
            return Ok(s);
        }
        self.ensure_session(a.cwd.as_deref()).await
    }

    /// `:Boo session`: the repository's sessions in a picker; the choice comes back as
    /// `session_switch`.
    pub(super) async fn session_pick(&mut self, a: CwdArgs) {
        let repo = match self.repo_of(a.cwd.as_deref()).await {
            Ok(r) => r,
            Err(e) => return self.ui.notify(format!("boo: {e}"), ERROR),
        };
        let store = self.store().await;
        let list = match store.list_sessions(&repo.display().to_string()).await {
            Ok(l) => l,
            Err(e) => return self.ui.notify(format!("boo: {e}"), ERROR),
        };
        if list.is_empty() {
            return self.ui.notify(
                "boo: no sessions in this repository yet (:Boo starts one)",
                INFO,
            );
        }
        let current = self.ws.current_session;
        let items: Vec<_> = list
            .iter()
            .map(|s| {
                let mark = if Some(s.id) == current {
                    " (current)"
                } else {
                    ""
                };
                Choice::new(format!("{}{mark}", s.title), ChoiceValue::Id(s.id))
            })
            .collect();
        self.ui.select(
            "boo: sessions",
            items,
            "session_switch",
            json!({"cwd": a.cwd}),
            "session",
        );
    }

    /// Makes a session current and shows its float.
    pub(super) async fn session_switch(&mut self, a: SessionCmdArgs) {
        let Some(id) = a.session else { return };
        if !self.ws.sessions.contains_key(&id) {
            let store = self.store().await;
            let s = match store.session(id).await {
                Ok(Some(s)) => s,
                Ok(None) => return self.ui.notify(format!("boo: no session {id}"), WARN),
                Err(e) => return self.ui.notify(format!("boo: {e}"), ERROR),
            };
            if let Err(e) = self
                .load_session(id, &PathBuf::from(&s.repo_root), &s.title)
                .await
            {
                return self.ui.notify(format!("boo: {e}"), ERROR);
            }
        }
        self.ws.current_session = Some(id);
        self.write_later("session not touched", move |s| async move {
            s.touch_session(id).await
        })
        .await;
        self.show(a.cwd.as_deref()).await;
    }

    /// `:Boo session new {title}`: a new session with its own worktree; it becomes current.
    pub(super) async fn session_new(&mut self, a: SessionCmdArgs) {
        let repo = match self.repo_of(a.cwd.as_deref()).await {
            Ok(r) => r,
            Err(e) => return self.ui.notify(format!("boo: {e}"), ERROR),
        };
        let title = a
            .title
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "session".into());
        let store = self.store().await;
        let s = match store
            .create_session(&repo.display().to_string(), &title)
            .await
        {
            Ok(s) => s,
            Err(e) => return self.ui.notify(format!("boo: {e}"), ERROR),
        };
        self.ws
            .sessions
            .insert(s.id, super::sessions::new_state(s.id, &repo, &s.title));
        self.ws.current_session = Some(s.id);
        self.create_worktree(s.id, &repo, &s.title);
        let id = s.id;
        self.write_later("session not touched", move |s| async move {
            s.touch_session(id).await
        })
        .await;
        self.show(a.cwd.as_deref()).await;
        self.ui
            .notify(format!("boo: new session '{}'", s.title), INFO);
    }

    /// `:Boo session rename {title}` (the branch keeps its name).
    pub(super) async fn session_rename(&mut self, a: SessionCmdArgs) {
        let Some(title) = a
            .title
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
        else {
            return self
                .ui
                .notify("boo: give the new title: :Boo session rename {title}", WARN);
        };
        let id = match self.command_session(&a).await {
            Ok(s) => s,
            Err(e) => return self.ui.notify(format!("boo: {e}"), ERROR),
        };
        let store = self.store().await;
        if let Err(e) = store.rename_session(id, &title).await {
            return self.ui.notify(format!("boo: {e}"), ERROR);
        }
        if let Some(s) = self.ws.sessions.get_mut(&id) {
            s.title = title.clone();
        }
        self.ui
            .notify(format!("boo: session renamed to '{title}'"), INFO);
    }

    /// `:Boo session delete`: checks what would be lost and asks first (`choice` carries the
    /// answer: stash, force or cancel).
    pub(super) async fn session_delete(&mut self, a: SessionCmdArgs) {
        let id = match self.command_session(&a).await {
            Ok(s) => s,
            Err(e) => return self.ui.notify(format!("boo: {e}"), ERROR),
        };
        let Some(s) = self.ws.sessions.get(&id).cloned() else {
            return;
        };
        let busy = s
            .chats
            .iter()
            .filter_map(|c| self.ws.chats.get(c))
            .any(|c| c.busy());
        if busy {
            return self.ui.notify(
                format!(
                    "boo: session '{}' has a turn running; abort it first (:Boo abort)",
                    s.title
                ),
                WARN,
            );
        }
        let mode = match a.choice.as_deref() {
            Some("cancel") => {
                return self
                    .ui
                    .notify(format!("boo: session '{}' kept", s.title), INFO)
            }
            Some("stash") => Some(RemoveMode::Stash),
            Some("force") => Some(RemoveMode::Force),
            Some(other) => {
                return self
                    .ui
                    .notify(format!("boo: unknown choice '{other}'"), ERROR)
            }
            None => None,
        };
        let Some(target) = self.target_of(id) else {
            // No worktree (never made, or being made): nothing on disk to lose.
            if self.waiting.contains_key(&id) {
                return self.ui.notify(
                    "boo: the session's worktree is still being created; try again in a moment",
                    WARN,
                );
            }
            return self.forget_session(id, &s.title, None).await;
        };
        let title = s.title.clone();
        match mode {
            Some(mode) => self.review_job(Job::Remove {
                target,
                title,
                mode,
            }),
            None => self.review_job(Job::Risk { target, title }),
        }
    }

    pub(super) async fn delete_risk_done(
        &mut self,
        target: Target,
        title: String,
        result: Result<worktree::Risk, String>,
    ) {
        let risk = match result {
            Ok(r) => r,
            // The worktree was deleted by hand: nothing on disk is left to lose.
            Err(_) if !target.dir.exists() => worktree::Risk::default(),
            Err(e) => {
                return self.ui.notify(
                    format!("boo: cannot check the session's worktree: {e}"),
                    ERROR,
                )
            }
        };
        if !risk.at_risk() {
            return self.review_job(Job::Remove {
                target,
                title,
                mode: RemoveMode::Safe,
            });
        }
        let prompt = format!(
            "boo: session '{title}' has {} unaccepted and {} uncommitted file(s). Delete it?",
            risk.unaccepted.len(),
            risk.uncommitted.len()
        );
        let items = vec![
            Choice::new(
                "stash and delete (keeps the work on a branch)",
                ChoiceValue::Name("stash"),
            ),
            Choice::new(
                "delete anyway (the work is lost)",
                ChoiceValue::Name("force"),
            ),
            Choice::new("cancel", ChoiceValue::Name("cancel")),
        ];
        self.ui.select(
            &prompt,
            items,
            "session_delete",
            json!({"session": target.session}),
            "choice",
        );
    }

    pub(super) async fn removed_done(
        &mut self,
        target: Target,
        title: String,
        result: Result<worktree::RemoveOutcome, String>,
    ) {
        let outcome = match result {
            Ok(o) => o,
            Err(e) => {
                return self.ui.notify(
                    format!(
                        "boo: session '{title}' not deleted: {}",
                        e.lines().next().unwrap_or_default()
                    ),
                    ERROR,
                )
            }
        };
        let store = self.store().await;
        if let Some(wt) = target.worktree_id {
            if let Err(e) = store.mark_worktree_removed(wt).await {
                tracing::warn!("worktree removal not recorded: {e}");
            }
        }
        let kept = match (&outcome.stash, outcome.branch_kept) {
            (Some(s), _) => Some(format!(
                "its work is kept on branch {} (commit {})",
                s.branch,
                &s.commit[..s.commit.len().min(12)]
            )),
            (None, true) if target.dir.exists() => None,
            (None, true) => Some("its branch was kept".to_string()),
            (None, false) => None,
        };
        self.forget_session(target.session, &title, kept).await;
    }

    /// Deletes a session from the store and from the workspace (its panes close).
    pub(super) async fn forget_session(
        &mut self,
        id: SessionId,
        title: &str,
        note: Option<String>,
    ) {
        let store = self.store().await;
        if let Err(e) = store.delete_session(id).await {
            return self
                .ui
                .notify(format!("boo: session '{title}' not deleted: {e}"), ERROR);
        }
        let panes: Vec<PaneId> = self
            .ws
            .panes
            .values()
            .filter(|p| p.session == id)
            .map(|p| p.id)
            .collect();
        for p in panes {
            self.ws.panes.remove(&p);
            self.ui.close_pane(p);
            if self.ws.current_pane == Some(p) {
                self.ws.current_pane = None;
            }
        }
        let chats: Vec<ChatId> = self
            .ws
            .sessions
            .remove(&id)
            .map(|s| s.chats)
            .unwrap_or_default();
        for c in chats {
            self.ws.chats.remove(&c);
            self.ui.remove_chat(c);
            self.transcripts.remove(c);
            self.usage_changed(c);
            self.agent_options.remove(&c);
            self.agents.close_chat(c);
        }
        self.waiting.remove(&id);
        if self.ws.current_session == Some(id) {
            self.ws.current_session = None;
        }
        if self.review.has_view(id) {
            self.ui.review_close(id);
        }
        self.review.forget(id);
        let msg = match note {
            Some(n) => format!("boo: session '{title}' deleted; {n}"),
            None => format!("boo: session '{title}' deleted"),
        };
        self.ui.notify(msg, INFO);
    }
}
