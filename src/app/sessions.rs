//! Sessions: finding the cwd's repository, reopening its last active session (with chats and
//! panes) or creating one with its own worktree. Worktree creation runs off the loop; prompts
//! sent before it is ready wait for it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::workspace::{ChatState, PaneKind, SessionState};
use super::{App, Event};
use crate::model::{ChatId, ItemKind, SessionId};
use crate::store::{NewChat, NewWorktree, Pane as StoredPane, PaneKind as StoredPaneKind};
use crate::worktree;

const WARN: u8 = 3;

/// Result of making a session's worktree.
#[derive(Debug)]
pub struct Ready {
    pub session: SessionId,
    pub result: Result<worktree::SessionWorktree, String>,
}

/// A prompt waiting for its session's worktree.
#[derive(Debug)]
pub struct WaitingSend {
    pub chat: ChatId,
    pub text: String,
    pub creator: String,
    pub seq: usize,
    pub extras: crate::agent::Extras,
}

pub type Waiting = HashMap<SessionId, Vec<WaitingSend>>;

pub const DEFAULT_AGENT: &str = "opencode";

/// How often the checkout's progress is reported to the loop.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(150);
/// A spare worktree for the next session is made this long after a session's is ready.
const SPARE_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

/// The next session's checkout, made (or the one at HEAD kept) once this session's first turn
/// had the CPU; then the agent warms its directory (`Event::SpareMade`), so a prompt sent the
/// moment a session adopts it answers as fast as a second prompt.
/// Not once boocoder is exiting (`exiting`): a checkout begun then would outlive it.
fn spare_ahead(
    repo_root: PathBuf,
    parent: PathBuf,
    events: mpsc::UnboundedSender<Event>,
    exiting: Arc<AtomicBool>,
) {
    tokio::spawn(async move {
        tokio::time::sleep(SPARE_AFTER).await;
        if exiting.load(Ordering::SeqCst) {
            return;
        }
        let made = tokio::task::spawn_blocking(move || {
            if exiting.load(Ordering::SeqCst) {
                return Ok(None);
            }
            worktree::ensure_spare(&repo_root, &parent)?;
            worktree::fresh_spare(&repo_root)
        })
        .await;
        match made {
            Ok(Ok(Some(spare))) => {
                let _ = events.send(Event::SpareMade(spare.path));
            }
            Ok(Err(e)) => tracing::info!("no spare worktree: {e}"),
            _ => {}
        }
    });
}

/// 12345 -> "12,345".
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn slugify(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        "session".into()
    } else {
        out.chars().take(32).collect()
    }
}

impl App {
    /// The session for `cwd`: the one in use, else the repository's last active, else a new one.
    pub(super) async fn ensure_session(&mut self, cwd: Option<&str>) -> Result<SessionId, String> {
        let cwd = match cwd {
            Some(c) => PathBuf::from(c),
            None => std::env::current_dir().map_err(|e| format!("no working directory: {e}"))?,
        };
        let repo_root = tokio::task::spawn_blocking(move || worktree::discover(&cwd))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        if let Some(id) = self.ws.session_by_repo(&repo_root) {
            self.ws.current_session = Some(id);
            return Ok(id);
        }
        let store = self.store().await;
        let root = repo_root.display().to_string();
        // One owner per session: the most recently active session no other live editor
        // drives; when all are taken, a new one. The user hears which, once.
        let mut taken: Option<(String, i64)> = None;
        let sessions = store
            .list_sessions(&root)
            .await
            .map_err(|e| e.to_string())?;
        for s in sessions {
            match store.claim_session(s.id).await.map_err(|e| e.to_string())? {
                Some(pid) => {
                    taken.get_or_insert((s.title.clone(), pid));
                }
                None => {
                    self.load_session(s.id, &repo_root, &s.title).await?;
                    self.say_taken(taken, &s.title);
                    return Ok(s.id);
                }
            }
        }
        let title = repo_root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "session".into());
        let s = store
            .create_session(&root, &title)
            .await
            .map_err(|e| e.to_string())?;
        self.ws
            .sessions
            .insert(s.id, new_state(s.id, &repo_root, &s.title));
        self.ws.current_session = Some(s.id);
        self.create_worktree(s.id, &repo_root, &s.title);
        self.say_taken(taken, &format!("{} (new)", s.title));
        Ok(s.id)
    }

    /// Tells the user that the session they would have got is driven by another editor.
    fn say_taken(&mut self, taken: Option<(String, i64)>, instead: &str) {
        if let Some((title, pid)) = taken {
            self.ui.notify(
                format!(
                    "boo: session '{title}' is in use by another Neovim (boocoder pid {pid}); this one works in session '{instead}'"
                ),
                WARN,
            );
        }
    }

    pub(super) async fn load_session(
        &mut self,
        id: SessionId,
        repo_root: &Path,
        title: &str,
    ) -> Result<(), String> {
        let store = self.store().await;
        // Two backends never drive one session: its rows would be written by both.
        if let Some(pid) = store.claim_session(id).await.map_err(|e| e.to_string())? {
            return Err(format!(
                "session '{title}' is in use by another Neovim (boocoder pid {pid})"
            ));
        }
        let chats = store.list_chats(id).await.map_err(|e| e.to_string())?;
        let wt = store
            .session_worktree(id)
            .await
            .map_err(|e| e.to_string())?;
        let mut state = new_state(id, repo_root, title);
        match wt {
            Some(w) if w.removed_at.is_none() && Path::new(&w.path).is_dir() => {
                state.dir = Some(PathBuf::from(&w.path));
                state.worktree_id = Some(w.id);
            }
            _ => {}
        }
        let missing_worktree = state.dir.is_none();
        for c in &chats {
            state.chats.push(c.id);
            self.ws.chats.insert(
                c.id,
                ChatState {
                    id: c.id,
                    session: id,
                    title: c.title.clone(),
                    agent: c.agent.clone(),
                    model: c.model.clone(),
                    running: None,
                    queued: 0,
                },
            );
        }
        state.last_chat = chats.last().map(|c| c.id);
        self.ws.sessions.insert(id, state);
        self.ws.current_session = Some(id);
        self.write_later("session not touched", move |s| async move {
            s.touch_session(id).await
        })
        .await;
        if missing_worktree {
            // The worktree was deleted by hand (or never made): make a fresh one.
            self.create_worktree(id, repo_root, title);
        } else {
            self.spare_for_next(repo_root);
        }
        // Reopen the panes the session had open, hidden until shown.
        if let Ok(panes) = store.load_panes(id).await {
            for p in panes {
                let tabs: Vec<ChatId> = p
                    .chat_ids
                    .into_iter()
                    .filter(|c| self.ws.chats.contains_key(c))
                    .collect();
                if tabs.is_empty() {
                    continue;
                }
                let kind = match p.kind {
                    StoredPaneKind::Float => PaneKind::Float,
                    _ => PaneKind::Chat,
                };
                let mods = match p.kind {
                    StoredPaneKind::Vsplit => Some("vertical".to_string()),
                    StoredPaneKind::Tab => Some("tab".to_string()),
                    _ => None,
                };
                let pane = self.ws.new_pane(id, kind, tabs, mods);
                if let Some(pane) = self.ws.panes.get_mut(&pane) {
                    pane.active = p
                        .active_chat
                        .filter(|a| pane.tabs.contains(a))
                        .or(pane.active);
                    // Only the float comes back by itself; splits wait for :Boo reopen.
                    pane.visible = false;
                }
            }
        }
        Ok(())
    }

    pub(super) fn create_worktree(&mut self, session: SessionId, repo_root: &Path, title: &str) {
        let slug = format!("{}-{session}", slugify(title));
        let parent = self.worktree_parent(repo_root);
        let repo_root = repo_root.to_path_buf();
        let opts = worktree::CreateOptions {
            copy_files: self.config.copy_ignored.clone(),
        };
        let events = self.events.clone();
        let exiting = self.exiting.clone();
        // A forked session starts from a turn's snapshot, not the user's HEAD.
        let seed = self.seeds.remove(&session);
        let spare = self.config.worktree_spare && seed.is_none();
        let runtime = tokio::runtime::Handle::current();
        if let Some(s) = self.ws.sessions.get_mut(&session) {
            s.preparing = Some((0, 0));
        }
        tokio::task::spawn_blocking(move || {
            let _rt = runtime.enter();
            // git redraws its progress for every file or so: a few lines a second are enough.
            let mut last: Option<std::time::Instant> = None;
            let mut report = |progress: worktree::Progress| {
                let due = last.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY);
                if due || progress.done == progress.total {
                    last = Some(std::time::Instant::now());
                    let _ = events.send(Event::WorktreeProgress { session, progress });
                }
            };
            let adopted = if spare {
                match worktree::adopt_spare(&repo_root, &slug, &opts) {
                    Ok(wt) => wt,
                    Err(e) => {
                        tracing::info!("spare worktree not used: {e}");
                        None
                    }
                }
            } else {
                None
            };
            // Session ids are never reused (the store's AUTOINCREMENT), so the name is free
            // unless something outside boo took it: then the error says which.
            let result = match adopted {
                Some(wt) => Ok(wt),
                None => worktree::create_with_progress(
                    &repo_root,
                    &parent.join(&slug),
                    &slug,
                    &opts,
                    &mut report,
                )
                .map_err(|e| e.to_string()),
            };
            if let (Ok(wt), Some(commit)) = (&result, &seed) {
                if let Err(e) = worktree::restore(wt, commit, None) {
                    let _ = events.send(Event::Notice {
                        msg: format!("boo: the fork's files could not be restored: {e}"),
                        level: 4,
                    });
                }
            }
            let ready = result.is_ok();
            let _ = events.send(Event::SessionReady(Ready { session, result }));
            if spare && ready {
                spare_ahead(repo_root, parent, events, exiting);
            }
        });
    }

    /// Where a repository's session worktrees go. Lua always sends a folder; without one, a
    /// per-user folder (never a shared /tmp name).
    fn worktree_parent(&self, repo_root: &Path) -> PathBuf {
        let root = self
            .config
            .worktree_dir
            .clone()
            .or_else(|| crate::config::user_data_dir().map(|d| d.join("worktrees")))
            .unwrap_or_else(|| repo_root.join(".git").join("boo-worktrees"));
        root.join(worktree::repo_dir_name(repo_root))
    }

    /// A loaded session's next one gets a spare too (one at HEAD is kept or made, then warmed).
    fn spare_for_next(&self, repo_root: &Path) {
        if self.config.worktree_spare {
            spare_ahead(
                repo_root.to_path_buf(),
                self.worktree_parent(repo_root),
                self.events.clone(),
                self.exiting.clone(),
            );
        }
    }

    /// The one-line status of a prompt waiting for its session's worktree.
    pub(super) fn preparing_text(&self, session: SessionId) -> String {
        match self.ws.sessions.get(&session).and_then(|s| s.preparing) {
            Some((done, total)) if total > 0 => format!(
                "preparing worktree… {}/{} files",
                thousands(done),
                thousands(total)
            ),
            _ => "preparing worktree…".to_string(),
        }
    }

    /// Shows the checkout's progress on the prompts waiting for it.
    pub(super) fn worktree_progress(&mut self, session: SessionId, p: worktree::Progress) {
        let Some(s) = self.ws.sessions.get_mut(&session) else {
            return;
        };
        if s.dir.is_some() {
            return; // a late report
        }
        s.preparing = Some((p.done, p.total));
        let text = self.preparing_text(session);
        let items: Vec<(ChatId, usize)> = self
            .waiting
            .get(&session)
            .map(|w| w.iter().map(|w| (w.chat, w.seq)).collect())
            .unwrap_or_default();
        for (chat, seq) in items {
            self.tx_set_meta(chat, seq, json!({ "status": text }));
        }
    }

    /// Readies the agent of the session's current chat for its first prompt (see
    /// `Agents::prepare`): at chat open without the worktree, again once it is there.
    pub(super) fn prepare_agent(&mut self, session: SessionId) {
        let Some(s) = self.ws.sessions.get(&session) else {
            return;
        };
        let dir = s.dir.clone();
        let chat = s.last_chat.or_else(|| s.chats.last().copied());
        let agent = chat
            .and_then(|c| self.ws.chats.get(&c))
            .map_or(DEFAULT_AGENT.to_string(), |c| c.agent.clone());
        self.agents.prepare(&agent, dir);
    }

    pub(super) async fn session_ready(&mut self, ready: Ready) {
        let waiting = self.waiting.remove(&ready.session).unwrap_or_default();
        if let Some(s) = self.ws.sessions.get_mut(&ready.session) {
            s.preparing = None;
        }
        match ready.result {
            Ok(wt) => {
                let store = self.store().await;
                let rec = store
                    .insert_worktree(NewWorktree {
                        session_id: ready.session,
                        repo_root: wt.repo_root.display().to_string(),
                        path: wt.path.display().to_string(),
                        branch: wt.branch.clone(),
                        base_commit: wt.base_commit.clone(),
                    })
                    .await;
                if let Some(s) = self.ws.sessions.get_mut(&ready.session) {
                    s.dir = Some(wt.path.clone());
                    s.worktree_id = rec.as_ref().ok().map(|r| r.id);
                }
                if let Err(e) = rec {
                    tracing::warn!("worktree record not saved: {e}");
                }
                self.prepare_agent(ready.session);
                for w in waiting {
                    // Cleared as for any prompt sent to a ready session.
                    self.tx_set_meta(w.chat, w.seq, json!({}));
                    self.start_turn(w.chat, w.text, w.creator, Some(w.seq), w.extras)
                        .await;
                }
                self.review_session_ready(ready.session, true);
            }
            Err(e) => {
                self.review_session_ready(ready.session, false);
                let msg = format!("cannot create the session's worktree: {e}");
                self.ui.notify(format!("boo: {msg}"), 4);
                for w in waiting {
                    self.tx_set(w.chat, w.seq, w.text.clone(), json!({"status": "failed"}));
                    self.tx_push(w.chat, ItemKind::Error, None, msg.clone(), json!({}));
                    // The turn ended before it started: whoever waits for it (a task) hears so.
                    self.ui.autocmd(
                        "BooTurnDone",
                        json!({"chat": w.chat, "ok": false, "error": msg, "started": false}),
                    );
                }
            }
        }
    }

    /// A new chat (tab) in a session; returns its id.
    pub(super) async fn new_chat(&mut self, session: SessionId) -> Result<ChatId, String> {
        let store = self.store().await;
        let n = self.ws.sessions.get(&session).map_or(0, |s| s.chats.len());
        let chat = store
            .create_chat(NewChat {
                session_id: session,
                title: format!("chat {}", n + 1),
                agent: DEFAULT_AGENT.into(),
                model: None,
                position: n as i64,
            })
            .await
            .map_err(|e| e.to_string())?;
        self.ws.chats.insert(
            chat.id,
            ChatState {
                id: chat.id,
                session,
                title: chat.title.clone(),
                agent: chat.agent.clone(),
                model: chat.model.clone(),
                running: None,
                queued: 0,
            },
        );
        if let Some(s) = self.ws.sessions.get_mut(&session) {
            s.chats.push(chat.id);
            s.last_chat = Some(chat.id);
        }
        self.register_chat(chat.id).await;
        Ok(chat.id)
    }

    /// Makes a chat known to the UI with its stored transcript.
    pub(super) async fn register_chat(&mut self, chat: ChatId) {
        if self.ui.has_chat(chat) {
            return;
        }
        let Some(c) = self.ws.chats.get(&chat).cloned() else {
            return;
        };
        let store = self.store().await;
        let started = std::time::Instant::now();
        use crate::model::transcript::Transcript;
        // Loading never destroys: unreadable rows are placeholders that are not written back,
        // and a chat that could not be read at all gets its new items after the stored ones.
        let t = match store.load_transcript_lenient(chat).await {
            Ok((items, bad)) => {
                if bad > 0 {
                    self.ui.notify(
                        format!("boo: {bad} unreadable item(s) in chat {chat}: kept as they are"),
                        WARN,
                    );
                }
                Transcript::from_items(chat, items)
            }
            Err(e) => {
                tracing::warn!("transcript of chat {chat} not loaded: {e}");
                self.ui
                    .notify(format!("boo: history of chat {chat} not loaded: {e}"), WARN);
                let floor = store.next_seq(chat).await.unwrap_or(i64::MAX / 2);
                Transcript::new(chat).with_floor_seq(floor)
            }
        };
        let loaded = started.elapsed();
        self.ui.add_chat(
            chat,
            format!("boo://{}/{}", c.session, chat),
            c.title.clone(),
            &t,
        );
        tracing::info!(
            chat,
            items = t.items().count(),
            load_ms = loaded.as_millis() as u64,
            layout_ms = (started.elapsed() - loaded).as_millis() as u64,
            "chat registered"
        );
        self.transcripts.insert(t);
        match store.load_prompts(chat).await {
            Ok(p) => {
                self.prompts.insert(chat, std::sync::Arc::new(p));
            }
            Err(e) => tracing::warn!(chat, "input history not loaded: {e}"),
        }
        self.usage_changed(chat);
    }

    /// Saves the session's open panes (so a restart reopens them).
    pub(super) async fn save_panes(&mut self, session: SessionId) {
        let panes: Vec<StoredPane> = self
            .ws
            .panes
            .values()
            .filter(|p| p.session == session && matches!(p.kind, PaneKind::Float | PaneKind::Chat))
            .filter(|p| p.visible || p.kind == PaneKind::Float)
            .map(|p| StoredPane {
                kind: stored_kind(p.kind, p.mods.as_deref()),
                chat_ids: p.tabs.clone(),
                active_chat: p.active,
            })
            .collect();
        self.write_later("panes not saved", move |s| async move {
            s.save_panes(session, panes).await
        })
        .await;
    }
}

pub(super) fn stored_kind(kind: PaneKind, mods: Option<&str>) -> StoredPaneKind {
    match (kind, mods.unwrap_or_default()) {
        (PaneKind::Float, _) => StoredPaneKind::Float,
        (_, m) if m.contains("vert") => StoredPaneKind::Vsplit,
        (_, m) if m.contains("tab") => StoredPaneKind::Tab,
        _ => StoredPaneKind::Split,
    }
}

pub(super) fn new_state(id: SessionId, repo_root: &Path, title: &str) -> SessionState {
    SessionState {
        id,
        repo_root: repo_root.to_path_buf(),
        title: title.to_string(),
        dir: None,
        worktree_id: None,
        preparing: None,
        chats: Vec::new(),
        last_chat: None,
    }
}

#[cfg(test)]
mod tests {
    use super::{slugify, thousands};

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(12000), "12,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn slugs_are_safe_branch_names() {
        assert_eq!(slugify("My Repo!"), "my-repo");
        assert_eq!(slugify("ünï cødé"), "n-c-d");
        assert_eq!(slugify("///"), "session");
    }
}
