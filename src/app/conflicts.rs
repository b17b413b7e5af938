//! Cross-session conflicts, the app's side. After a session's pending diff is refreshed (after
//! every turn, accept or reject), the pending patches of every live session of its repository
//! are read from the store (each editor keeps its sessions' rows fresh) and compared by
//! `worktree::conflicts` off the loop. The marks reach the review view (a line under each
//! marked hunk; accepting one shows the 3-way result first) and the winbar.

use std::path::PathBuf;

use serde_json::json;

use super::{App, Event};
use crate::model::SessionId;
use crate::ui::Choice;
use crate::ui::ChoiceValue;
use crate::worktree::conflicts::{self, Mark, SessionPatches};
use crate::worktree::Preview;

/// `vim.log.levels.WARN`.
const WARN: u8 = 3;

/// What a comparison found for one repository.
#[derive(Debug)]
pub struct Found {
    pub repo_root: PathBuf,
    pub marks: Result<std::collections::HashMap<SessionId, Vec<Mark>>, String>,
}

impl App {
    /// Compares the live sessions of `repo_root` in the background (`Event::Conflicts`).
    pub(super) async fn check_conflicts(&mut self, repo_root: PathBuf) {
        let store = self.store().await;
        let events = self.events.clone();
        tokio::spawn(async move {
            let root = repo_root.display().to_string();
            let mut sessions = Vec::new();
            for s in store.list_sessions(&root).await.unwrap_or_default() {
                let Ok(Some(wt)) = store.session_worktree(s.id).await else {
                    continue;
                };
                if wt.removed_at.is_some() {
                    continue;
                }
                let Ok(rows) = store.list_pending_changes(s.id).await else {
                    continue;
                };
                if rows.is_empty() {
                    continue;
                }
                sessions.push(SessionPatches {
                    session: s.id,
                    title: s.title,
                    review_base: wt.review_base,
                    files: rows
                        .into_iter()
                        .map(|r| (r.change.path, r.change.patch))
                        .collect(),
                });
            }
            let root_path = repo_root.clone();
            let marks = tokio::task::spawn_blocking(move || {
                conflicts::find(&root_path, &sessions).map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
            let _ = events.send(Event::Conflicts(Found { repo_root, marks }));
        });
    }

    /// New marks: sessions whose marks changed get their open review redrawn and their tabs.
    pub(super) fn conflicts_found(&mut self, found: Found) {
        let marks = match found.marks {
            Ok(m) => m,
            Err(e) => return tracing::warn!("cross-session conflicts not checked: {e}"),
        };
        let here: Vec<SessionId> = self
            .ws
            .sessions
            .values()
            .filter(|s| s.repo_root == found.repo_root)
            .map(|s| s.id)
            .collect();
        for session in here {
            let new = marks.get(&session).cloned().unwrap_or_default();
            let old = self
                .review
                .conflicts
                .get(&session)
                .cloned()
                .unwrap_or_default();
            if new == old {
                continue;
            }
            tracing::info!(session, hunks = new.len(), "cross-session conflict marks");
            if new.is_empty() {
                self.review.conflicts.remove(&session);
            } else {
                self.review.conflicts.insert(session, new);
            }
            if self.review_open(session) {
                // Redrawn with the marks (the scan is in proportion to what changed); the
                // marks are the same next time, so this does not come round again.
                if let Some(t) = self.target_of(session) {
                    self.refresh_pending(session, &t.agent);
                }
            }
            let chats = self
                .ws
                .sessions
                .get(&session)
                .map(|s| s.chats.clone())
                .unwrap_or_default();
            for c in chats {
                self.refresh_tabs(c);
            }
        }
    }

    /// The winbar's badge for a session's marked hunks.
    pub(super) fn conflict_badge(&self, session: SessionId) -> Option<String> {
        let n = self.review.conflicts.get(&session).map_or(0, Vec::len);
        (n > 0).then(|| {
            format!(
                "⚠ {n} hunk{} also changed elsewhere",
                if n == 1 { "" } else { "s" }
            )
        })
    }

    /// A preview of an accept came back: shown, and the user asked whether to go on.
    pub(super) fn preview_done(
        &mut self,
        session: SessionId,
        path: Option<String>,
        hunks: Option<Vec<String>>,
        preview: Preview,
    ) {
        let name = format!("boo://accept-preview/{session}");
        let lines: Vec<String> = preview.text().lines().map(str::to_string).collect();
        self.ui.report_as(&name, lines, Some("diff"));
        if let Preview::Conflict(_) = preview {
            return self.ui.notify(
                "boo: accepting this would conflict with your checkout; nothing was accepted (the merge is shown)",
                WARN,
            );
        }
        let what = match (&path, &hunks) {
            (Some(p), Some(_)) => format!("the hunk of {p}"),
            (Some(p), None) => p.clone(),
            _ => "the changes".into(),
        };
        self.ui.select(
            &format!("Also changed elsewhere: accept {what} as shown?"),
            vec![Choice::new(
                "Accept (the result is shown)",
                ChoiceValue::Name("yes"),
            )],
            "accept",
            json!({"session": session, "path": path, "hunks": hunks}),
            "confirmed",
        );
    }
}
