//! `boocoder task`: one turn without Neovim. The same `App` runs it (a new session and
//! worktree, the same store file Neovim's boo would open, the normal dispatcher), with a
//! frontend that draws nothing and only watches for the turn's end and its pending diff.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value as Json;
use tokio::sync::mpsc;

use super::tasks::{Place, TaskSpec};
use super::{sleep_until, App};
use crate::config::Config;
use crate::error::AppError;
use crate::model::{ChatId, SessionId};
use crate::ui::{Batch, Frontend, Op};

/// How long the pending diff may take after the turn ended.
const PENDING_WAIT: Duration = Duration::from_secs(30);

/// What `boocoder task` was asked.
#[derive(Clone, Debug, Default)]
pub struct TaskOptions {
    pub repo: PathBuf,
    pub prompt: String,
    pub agent: Option<String>,
    pub model: Option<String>,
}

/// The result, printed as text or as one JSON object.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub session: SessionId,
    pub chat: ChatId,
    pub branch: String,
    pub worktree: String,
    /// done | failed | aborted
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The session's pending paths after the turn.
    pub files: Vec<String>,
}

impl Summary {
    pub fn ok(&self) -> bool {
        self.outcome == "done"
    }

    pub fn text(&self) -> String {
        let mut s = format!(
            "boo task: {} (session {}, chat {}, branch {})\n",
            self.outcome, self.session, self.chat, self.branch
        );
        if let Some(e) = &self.error {
            s.push_str(&format!("error: {e}\n"));
        }
        if self.files.is_empty() {
            s.push_str("no changed files\n");
        } else {
            s.push_str(&format!("{} changed file(s):\n", self.files.len()));
            for f in &self.files {
                s.push_str(&format!("  {f}\n"));
            }
        }
        s.push_str("review with :Boo diff in the repository\n");
        s
    }
}

/// What the headless frontend sees in the batches: the autocmds and the lines for the user.
enum Seen {
    Autocmd(String, Json),
    Notice(String),
}

struct Headless(mpsc::UnboundedSender<Seen>);

#[async_trait::async_trait]
impl Frontend for Headless {
    async fn apply(&self, batch: Batch) -> Result<(), String> {
        for op in batch.ops {
            let seen = match op {
                Op::Autocmd { pattern, data } => Seen::Autocmd(pattern, data),
                Op::Notify { msg, .. } => Seen::Notice(msg),
                _ => continue,
            };
            let _ = self.0.send(seen);
        }
        Ok(())
    }
}

/// Neovim's `stdpath('data')` as boo's Lua side would see it, so the store and the worktrees
/// are the ones the next `:Boo` opens.
pub fn nvim_data_dir() -> Option<PathBuf> {
    let app = std::env::var("NVIM_APPNAME")
        .ok()
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| "nvim".into());
    let abs = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    abs("XDG_DATA_HOME")
        .or_else(|| abs("HOME").map(|h| h.join(".local/share")))
        .map(|d| d.join(app))
}

/// Runs the task's turn to its end; the agents are stopped and the store flushed before it
/// returns.
pub async fn run(opts: TaskOptions) -> Result<Summary, AppError> {
    let data = nvim_data_dir().ok_or_else(|| {
        AppError::Usage("no XDG_DATA_HOME or HOME: cannot find boo's database".into())
    })?;
    let config = Config {
        store_path: Some(crate::store::default_path(&data)),
        worktree_dir: Some(data.join("boo").join("worktrees")),
        // A spare made after the turn would be cut off by our exit.
        worktree_spare: false,
        ..Config::default()
    };
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let mut app = App::new(Arc::new(Headless(seen_tx)), events_tx);
    app.config = config;
    app.agents.configure(&app.config);
    let store = app.store().await;
    if !store.is_persistent() {
        // A turn nobody can find afterwards is no use.
        return Err(AppError::Usage(
            "boo's database cannot be opened (see the line above)".into(),
        ));
    }
    let spec = TaskSpec {
        prompt: opts.prompt,
        agent: opts.agent,
        model: opts.model,
        place: Place::New,
        chat: None,
        creator: "cli".into(),
        cwd: Some(opts.repo.display().to_string()),
        depth: 0,
    };
    let created = match app.create_task(spec.clone()).await {
        Ok(c) => c,
        Err(e) => {
            app.shutdown().await;
            return Err(AppError::Usage(e));
        }
    };
    let mut outcome: Option<(String, Option<String>)> = None;
    let mut files: Option<Vec<String>> = None;
    let mut pending_by: Option<tokio::time::Instant> = None;
    let (mut started, mut retried) = (false, false);
    loop {
        app.schedule_frame();
        let due = app.frame_due.filter(|_| !app.frame_in_flight);
        tokio::select! {
            biased;
            Some(s) = seen.recv() => match s {
                Seen::Notice(m) => eprintln!("{m}"),
                Seen::Autocmd(p, d) if p == "BooTurnDone" && d["chat"] == created.chat && !d["started"].as_bool().unwrap_or(true) => {
                    // Never started (no worktree): there is no diff to wait for.
                    outcome = Some(("failed".into(), d["error"].as_str().map(str::to_string)));
                    files = Some(Vec::new());
                }
                Seen::Autocmd(p, d) if p == "BooTurnStart" && d["chat"] == created.chat => started = true,
                Seen::Autocmd(p, d) if p == "BooTurnDone" && d["chat"] == created.chat => {
                    let ok = d["ok"].as_bool().unwrap_or(false);
                    let error = d["error"].as_str().map(str::to_string);
                    // A cold opencode on a loaded machine can miss the turn's start; nothing
                    // reached the agent, so it is sent once more.
                    let unreachable = error.as_deref().is_some_and(|e| e.contains("unreachable"));
                    if !ok && !started && !retried && unreachable {
                        retried = true;
                        eprintln!("boo: the agent did not start ({}); trying once more", error.unwrap_or_default());
                        let again = TaskSpec {
                            chat: Some(created.chat),
                            place: Place::Session(created.session),
                            ..spec.clone()
                        };
                        if let Err(e) = app.create_task(again).await {
                            outcome = Some(("failed".into(), Some(e)));
                            files = Some(Vec::new());
                        }
                        continue;
                    }
                    let word = match (ok, &error) {
                        (true, _) => "done",
                        (false, Some(_)) => "failed",
                        (false, None) => "aborted",
                    };
                    outcome = Some((word.to_string(), error));
                    pending_by = Some(tokio::time::Instant::now() + PENDING_WAIT);
                }
                Seen::Autocmd(p, d)
                    if p == "BooChangesPending" && outcome.is_some() && d["session"] == created.session =>
                {
                    files = Some(
                        d["files"]
                            .as_array()
                            .map(|a| a.iter().filter_map(|f| f.as_str().map(str::to_string)).collect())
                            .unwrap_or_default(),
                    );
                }
                Seen::Autocmd(..) => {}
            },
            Some(ev) = events.recv() => app.handle_guarded(ev).await,
            _ = sleep_until(due) => app.frame(),
            _ = sleep_until(app.save_due) => app.save_transcripts(),
            _ = sleep_until(pending_by) => {
                tracing::warn!("no pending diff within {PENDING_WAIT:?} after the turn");
                break;
            }
            _ = tokio::signal::ctrl_c() => {
                app.agents.abort(created.chat);
                outcome.get_or_insert(("aborted".into(), Some("interrupted".into())));
                break;
            }
        }
        if outcome.is_some() && files.is_some() {
            break;
        }
    }
    // The snapshot after the turn and the task's last status are store jobs: let them land.
    tokio::time::sleep(Duration::from_millis(200)).await;
    while let Ok(ev) = events.try_recv() {
        app.handle_guarded(ev).await;
    }
    let wt = store.session_worktree(created.session).await.ok().flatten();
    app.shutdown().await;
    let (outcome, error) = outcome.unwrap_or_else(|| ("failed".into(), None));
    Ok(Summary {
        session: created.session,
        chat: created.chat,
        branch: wt.as_ref().map(|w| w.branch.clone()).unwrap_or_default(),
        worktree: wt.map(|w| w.path).unwrap_or_default(),
        outcome,
        error,
        files: files.unwrap_or_default(),
    })
}
