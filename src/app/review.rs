//! The review of a session's pending changes: computing the diff, the review view's data,
//! accept/reject of files and hunks, and reloading the user's buffers afterwards.
//!
//! All git work runs in `spawn_blocking`, one job at a time (`ReviewState::jobs`), and comes back
//! as `Event::Review`. Serial jobs keep hunk references honest: the view names hunks by a
//! content fingerprint (`hunk_id`), and each job maps them to the engine's indices against a
//! freshly computed diff, so a stale view can never accept the wrong hunk.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;

use serde_json::{json, Value as Json};

use super::{App, Event};
use crate::model::{SessionId, WorktreeId};
use crate::rpc::{ReviewActionArgs, ReviewArgs};
use crate::store::PendingChange;
use crate::ui::review as ui_review;
use crate::worktree::review;
use crate::worktree::{self, FileChange, SessionWorktree};

/// `vim.log.levels`
const INFO: u8 = 2;
const WARN: u8 = 3;
const ERROR: u8 = 4;

/// Where a job works: a session's worktree and the user's checkout.
#[derive(Clone, Debug)]
pub struct Target {
    pub session: SessionId,
    pub repo_root: PathBuf,
    pub dir: PathBuf,
    pub worktree_id: Option<WorktreeId>,
    /// Who the pending changes are stamped with in the store.
    pub agent: String,
    /// The session's scanner (scans in time proportional to what changed).
    pub scanner: Option<std::sync::Arc<worktree::PendingScanner>>,
}

impl Target {
    pub(super) fn open(&self) -> Result<SessionWorktree, String> {
        worktree::open_at(&self.repo_root, &self.dir).map_err(|e| e.to_string())
    }

    fn pending(&self, wt: &worktree::SessionWorktree) -> Result<Vec<worktree::FileChange>, String> {
        match &self.scanner {
            Some(s) => s.pending(wt),
            None => worktree::pending(wt),
        }
        .map_err(|e| e.to_string())
    }
}

pub use crate::worktree::review::ActKind;

/// Git work for the review and the session commands, run off the loop one at a time.
#[derive(Debug)]
pub enum Job {
    Pending {
        target: Target,
        open: bool,
    },
    /// The hunks of one file, for a lazy view.
    File {
        target: Target,
        path: String,
    },
    Act {
        target: Target,
        kind: ActKind,
        path: Option<String>,
        hunks: Option<Vec<String>>,
        modified: Vec<String>,
    },
    /// What deleting a session would lose.
    Risk {
        target: Target,
        title: String,
    },
    /// Removes a session's worktree (`mode` decides about work at risk).
    Remove {
        target: Target,
        title: String,
        mode: worktree::RemoveMode,
    },
}

/// Results of jobs.
#[derive(Debug)]
pub enum ReviewEvent {
    Pending {
        target: Target,
        open: bool,
        /// Lines for the user (accept/reject reports), with their levels.
        messages: Vec<(String, u8)>,
        /// Absolute paths of files written, whose clean buffers reload.
        reload: Vec<String>,
        /// The review base after accepts, for the store.
        review_base: Option<String>,
        result: Result<Vec<FileChange>, String>,
    },
    File {
        target: Target,
        path: String,
        result: Result<Option<FileChange>, String>,
    },
    Risk {
        target: Target,
        title: String,
        result: Result<worktree::Risk, String>,
    },
    /// What accepting would write, to show before asking.
    Preview {
        session: SessionId,
        path: Option<String>,
        hunks: Option<Vec<String>>,
        preview: worktree::Preview,
    },
    Removed {
        target: Target,
        title: String,
        result: Result<worktree::RemoveOutcome, String>,
    },
}

#[derive(Debug, Default)]
pub struct ReviewState {
    jobs: VecDeque<Job>,
    running: bool,
    /// Sessions whose review view is open in Neovim.
    views: HashSet<SessionId>,
    /// Pending paths per session, as last computed.
    pending: HashMap<SessionId, Vec<String>>,
    /// Sessions whose `:Boo diff` waits for the worktree to be created.
    after_ready: HashSet<SessionId>,
    /// Hunks other sessions or the user's checkout also change, per session (`app/conflicts.rs`).
    pub conflicts: HashMap<SessionId, Vec<worktree::conflicts::Mark>>,
    /// Files whose hunks a lazy view loaded (kept across refreshes).
    expanded: HashMap<SessionId, HashSet<String>>,
    /// Each session worktree's scanner (and its watch), kept while the session is.
    scanners: HashMap<SessionId, std::sync::Arc<worktree::PendingScanner>>,
}

impl ReviewState {
    pub fn pending_count(&self, session: SessionId) -> Option<usize> {
        self.pending.get(&session).map(Vec::len)
    }

    pub fn has_view(&self, session: SessionId) -> bool {
        self.views.contains(&session)
    }

    pub fn forget(&mut self, session: SessionId) {
        self.views.remove(&session);
        self.pending.remove(&session);
        self.after_ready.remove(&session);
        self.expanded.remove(&session);
        self.scanners.remove(&session);
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

impl Job {
    fn run(self) -> ReviewEvent {
        match self {
            Job::Pending { target, open } => {
                let result = target.open().and_then(|wt| target.pending(&wt));
                ReviewEvent::Pending {
                    target,
                    open,
                    messages: Vec::new(),
                    reload: Vec::new(),
                    review_base: None,
                    result,
                }
            }
            Job::File { target, path } => {
                let result = target
                    .open()
                    .and_then(|wt| worktree::pending_file(&wt, &path).map_err(|e| e.to_string()));
                ReviewEvent::File {
                    target,
                    path,
                    result,
                }
            }
            Job::Act {
                target,
                kind,
                path,
                hunks,
                modified,
            } => act(target, kind, path, hunks, modified),
            Job::Risk { target, title } => {
                let result = target.open().and_then(|wt| {
                    worktree::risk_with(&wt, target.scanner.as_deref()).map_err(|e| e.to_string())
                });
                ReviewEvent::Risk {
                    target,
                    title,
                    result,
                }
            }
            Job::Remove {
                target,
                title,
                mode,
            } => {
                let result = match target.open() {
                    Ok(wt) => worktree::remove(&wt, mode).map_err(|e| e.to_string()),
                    // Gone already (deleted by hand): nothing left to remove.
                    Err(_) if !target.dir.exists() => Ok(worktree::RemoveOutcome {
                        stash: None,
                        branch_kept: true,
                    }),
                    Err(e) => Err(e),
                };
                ReviewEvent::Removed {
                    target,
                    title,
                    result,
                }
            }
        }
    }
}

/// Accepts or rejects (one transaction, see `worktree::review::act`), then recomputes the
/// pending diff in the same job, so the view that follows matches what happened.
fn act(
    target: Target,
    kind: ActKind,
    path: Option<String>,
    hunks: Option<Vec<String>>,
    modified: Vec<String>,
) -> ReviewEvent {
    let wt = match target.open() {
        Ok(wt) => wt,
        Err(e) => {
            return ReviewEvent::Pending {
                target,
                open: false,
                messages: Vec::new(),
                reload: Vec::new(),
                review_base: None,
                result: Err(e),
            }
        }
    };
    let req = review::ActRequest {
        kind,
        path,
        hunks,
        modified,
    };
    let report = review::act(&wt, &req);
    if let Some(preview) = report.preview {
        return ReviewEvent::Preview {
            session: target.session,
            path: req.path,
            hunks: req.hunks,
            preview,
        };
    }
    let level = match report.message.1 {
        review::Level::Info => INFO,
        review::Level::Warn => WARN,
        review::Level::Error => ERROR,
    };
    let result = target.pending(&wt);
    ReviewEvent::Pending {
        target,
        open: false,
        messages: vec![(report.message.0, level)],
        reload: report.reload,
        review_base: report.review_base,
        result,
    }
}

impl App {
    /// Queues a job; it runs when the one before has finished.
    pub(super) fn review_job(&mut self, job: Job) {
        // A refresh already waiting for the same session covers this one (turns can end in
        // bursts).
        if let Job::Pending {
            target,
            open: false,
        } = &job
        {
            let queued = self.review.jobs.iter().any(
                |j| matches!(j, Job::Pending { target: t, .. } if t.session == target.session),
            );
            if queued {
                return;
            }
        }
        self.review.jobs.push_back(job);
        self.review_next();
    }

    fn review_next(&mut self) {
        if self.review.running {
            return;
        }
        let Some(job) = self.review.jobs.pop_front() else {
            return;
        };
        self.review.running = true;
        let events = self.events.clone();
        tokio::task::spawn_blocking(move || {
            let ev = job.run();
            let _ = events.send(Event::Review(ev));
        });
    }

    /// The session a review action is for, with its worktree; `Ok(None)` when its worktree is
    /// still being made (the caller is told when it is ready or failed).
    pub(super) async fn review_target(
        &mut self,
        session: Option<SessionId>,
        cwd: Option<&str>,
    ) -> Result<Option<Target>, String> {
        let id = match session.filter(|s| self.ws.sessions.contains_key(s)) {
            Some(s) => s,
            None => self.ensure_session(cwd).await?,
        };
        Ok(self.target_of(id))
    }

    pub(super) fn target_of(&mut self, session: SessionId) -> Option<Target> {
        let s = self.ws.sessions.get(&session)?;
        let dir = s.dir.clone()?;
        let agent = s
            .chats
            .iter()
            .filter_map(|c| self.ws.chats.get(c))
            .map(|c| c.agent.clone())
            .next()
            .unwrap_or_else(|| super::sessions::DEFAULT_AGENT.to_string());
        Some(Target {
            session,
            repo_root: s.repo_root.clone(),
            scanner: Some(
                self.review
                    .scanners
                    .entry(session)
                    .or_insert_with(|| std::sync::Arc::new(worktree::PendingScanner::new(&dir)))
                    .clone(),
            ),
            dir,
            worktree_id: s.worktree_id,
            agent,
        })
    }

    /// Whether a review view of the session is open.
    pub(super) fn review_open(&self, session: SessionId) -> bool {
        self.review.views.contains(&session)
    }

    /// Recomputes a session's pending diff (after every turn: diff-supersede); an open review
    /// view of the session refreshes.
    pub(super) fn refresh_pending(&mut self, session: SessionId, agent: &str) {
        let Some(mut target) = self.target_of(session) else {
            return;
        };
        target.agent = agent.to_string();
        self.review_job(Job::Pending {
            target,
            open: false,
        });
    }

    /// `:Boo diff`; with `path`, the hunks of that file for a lazy view.
    pub(super) async fn diff(&mut self, a: ReviewArgs) {
        match self.review_target(a.session, a.cwd.as_deref()).await {
            Ok(Some(target)) => match a.path {
                Some(path) => self.review_job(Job::File { target, path }),
                None => self.review_job(Job::Pending { target, open: true }),
            },
            Ok(None) => {
                if let Some(s) = self.ws.current_session {
                    self.review.after_ready.insert(s);
                }
            }
            Err(e) => self.ui.notify(format!("boo: {}", first_line(&e)), ERROR),
        }
    }

    /// A session's worktree is ready (or failed, which was reported): a waiting `:Boo diff` runs.
    pub(super) fn review_session_ready(&mut self, session: SessionId, ok: bool) {
        if self.review.after_ready.remove(&session) && ok {
            if let Some(target) = self.target_of(session) {
                self.review_job(Job::Pending { target, open: true });
            }
        }
    }

    /// `:Boo accept` / `:Boo reject` and the review view's keys.
    pub(super) async fn review_act(&mut self, kind: ActKind, a: ReviewActionArgs) {
        match self.review_target(a.session, a.cwd.as_deref()).await {
            Ok(Some(target)) => self.review_job(Job::Act {
                target,
                kind,
                path: a.path.filter(|p| !p.trim().is_empty()),
                hunks: a.hunks.filter(|h| !h.is_empty()),
                modified: a.modified,
            }),
            Ok(None) => self.ui.notify("boo: no pending changes", INFO),
            Err(e) => self.ui.notify(format!("boo: {}", first_line(&e)), ERROR),
        }
    }

    pub(super) fn review_closed(&mut self, a: ReviewArgs) {
        if let Some(s) = a.session {
            self.review.views.remove(&s);
        }
    }

    /// Fast query: the current session's worktree and pending paths, from memory.
    pub(super) fn review_info(&self) -> Json {
        let Some(s) = self
            .ws
            .current_session
            .and_then(|s| self.ws.sessions.get(&s))
        else {
            return json!({"files": []});
        };
        let info = ui_review::ReviewInfo {
            session: Some(s.id),
            title: Some(s.title.clone()),
            repo_root: Some(s.repo_root.display().to_string()),
            worktree: s.dir.as_ref().map(|d| d.display().to_string()),
            files: self.review.pending.get(&s.id).cloned().unwrap_or_default(),
        };
        serde_json::to_value(info).unwrap_or(Json::Null)
    }

    pub(super) async fn review_event(&mut self, ev: ReviewEvent) {
        self.review.running = false;
        match ev {
            ReviewEvent::Pending {
                target,
                open,
                messages,
                reload,
                review_base,
                result,
            } => {
                self.pending_done(target, open, review_base, result).await;
                for (m, level) in messages {
                    self.ui.notify(m, level);
                }
                self.ui.reload(reload);
            }
            ReviewEvent::File {
                target,
                path,
                result,
            } => match result {
                Ok(Some(f)) => {
                    self.review
                        .expanded
                        .entry(target.session)
                        .or_default()
                        .insert(path);
                    let marks = self.review.conflicts.get(&target.session);
                    let marks = marks.map(Vec::as_slice).unwrap_or_default();
                    self.ui
                        .review(ui_review::one_file(target.session, &f, marks));
                }
                Ok(None) => self
                    .ui
                    .notify(format!("boo: no pending change for {path}"), WARN),
                Err(e) => self.ui.notify(format!("boo: {}", first_line(&e)), ERROR),
            },
            ReviewEvent::Risk {
                target,
                title,
                result,
            } => self.delete_risk_done(target, title, result).await,
            ReviewEvent::Preview {
                session,
                path,
                hunks,
                preview,
            } => self.preview_done(session, path, hunks, preview),
            ReviewEvent::Removed {
                target,
                title,
                result,
            } => self.removed_done(target, title, result).await,
        }
        self.push_status();
        self.review_next();
    }

    async fn pending_done(
        &mut self,
        target: Target,
        open: bool,
        review_base: Option<String>,
        result: Result<Vec<FileChange>, String>,
    ) {
        let session = target.session;
        let store = self.store().await;
        if let (Some(rb), Some(id)) = (&review_base, target.worktree_id) {
            if let Err(e) = store.set_review_base(id, rb).await {
                tracing::warn!("review base not saved: {e}");
            }
        }
        let files = match result {
            Ok(f) => f,
            Err(e) => {
                return self.ui.notify(
                    format!(
                        "boo: cannot compute the pending changes: {}",
                        first_line(&e)
                    ),
                    ERROR,
                )
            }
        };
        if !self.ws.sessions.contains_key(&session) {
            return; // deleted meanwhile
        }
        let rows: Vec<PendingChange> = files
            .iter()
            .map(|f| PendingChange {
                path: f.path.clone(),
                status: serde_json::to_value(f.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                additions: f.additions as i64,
                deletions: f.deletions as i64,
                patch: f.patch.clone(),
            })
            .collect();
        if let Err(e) = store
            .replace_pending_changes(session, &target.agent, rows)
            .await
        {
            tracing::warn!("pending changes not saved: {e}");
        }
        let paths: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
        self.review.pending.insert(session, paths.clone());
        self.arena_pending(session, &files);
        self.check_conflicts(target.repo_root.clone()).await;
        self.ui.autocmd(
            "BooChangesPending",
            json!({"session": session, "files": paths}),
        );
        if open || self.review.views.contains(&session) {
            let title = self
                .ws
                .sessions
                .get(&session)
                .map(|s| s.title.clone())
                .unwrap_or_default();
            let expanded = self.review.expanded.get(&session);
            let marks = self.review.conflicts.get(&session).map(Vec::as_slice);
            let args = ui_review::ViewArgs {
                marks: marks.unwrap_or_default(),
                session,
                title: &title,
                repo_root: target.repo_root.display().to_string(),
                worktree: target.dir.display().to_string(),
                open,
                expanded,
            };
            self.ui.review(ui_review::view(args, &files));
            if open {
                self.review.views.insert(session);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    struct NoFrontend;

    #[async_trait::async_trait]
    impl crate::ui::Frontend for NoFrontend {
        async fn apply(&self, _batch: crate::ui::Batch) -> Result<(), String> {
            Ok(())
        }
    }

    fn git(dir: &Path, args: &[&str]) {
        let ok = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "git {args:?}");
    }

    /// The lead's turn-done handler calls `refresh_pending`: the diff is recomputed off the
    /// loop, saved, counted, announced, and an open review view is redrawn (not opened).
    #[tokio::test]
    async fn refresh_pending_saves_counts_announces_and_redraws_an_open_view() {
        let tmp = tempfile::tempdir().expect("tmp");
        let repo = tmp.path().join("repo");
        std::fs::create_dir_all(&repo).expect("mkdir");
        git(&repo, &["init", "-q"]);
        std::fs::write(repo.join("a.txt"), "one\n").expect("write");
        git(&repo, &["add", "."]);
        git(&repo, &["commit", "-qm", "init"]);
        let wt = worktree::create(
            &repo,
            &tmp.path().join("wts/s-1"),
            "s-1",
            &Default::default(),
        )
        .expect("worktree");
        std::fs::write(wt.path.join("a.txt"), "two\n").expect("write");

        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut app = App::new(std::sync::Arc::new(NoFrontend), tx);
        let store = app.store().await;
        let s = store
            .create_session(&wt.repo_root.display().to_string(), "t")
            .await
            .expect("session");
        app.ws.sessions.insert(
            s.id,
            super::super::workspace::SessionState {
                id: s.id,
                repo_root: wt.repo_root.clone(),
                title: "t".into(),
                dir: Some(wt.path.clone()),
                worktree_id: None,
                preparing: None,
                chats: Vec::new(),
                last_chat: None,
            },
        );
        app.review.views.insert(s.id);
        app.refresh_pending(s.id, "opencode");
        let ev = tokio::time::timeout(std::time::Duration::from_secs(20), rx.recv())
            .await
            .expect("in time")
            .expect("event");
        app.handle(ev).await;

        assert_eq!(app.review.pending_count(s.id), Some(1));
        let rows = store.list_pending_changes(s.id).await.expect("rows");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].agent, "opencode");
        assert_eq!(rows[0].change.path, "a.txt");
        assert_eq!(rows[0].change.status, "modified");
        let batch = app.ui.frame().expect("ops").to_json();
        let ops = batch["ops"].as_array().expect("ops");
        let view = ops.iter().find(|o| o["op"] == "review").expect("review op");
        assert_eq!(view["open"], false);
        assert_eq!(view["files"][0]["path"], "a.txt");
        assert_eq!(
            view["files"][0]["hunks"][0]["lines"],
            json!(["-one", "+two"])
        );
        assert!(ops
            .iter()
            .any(|o| o["op"] == "autocmd" && o["pattern"] == "BooChangesPending"));
    }
}
