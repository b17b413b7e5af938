//! `:Boo arena`: one prompt raced by several contestants (agent + model), each in a new session
//! with its own worktree made at the start (so all from the user's HEAD of that moment), at most
//! `arena.limit` turns running at once (the rest queued). Turns go through `create_task`
//! (creator `arena`). When a contestant's turn ends its check runs (`arena_check.rs`); the
//! winner's diff opens in the normal review and the losers are removed or kept.

use std::time::Instant;

use serde_json::json;

use super::agents::known_agent;
use super::arena_check::{CheckDone, Output};
use super::review::Job;
use super::tasks::{Place, TaskSpec};
use super::App;
use crate::model::{ChatId, SessionId};
use crate::rpc::{ArenaActionArgs, ArenaArgs, ReviewArgs};
use crate::ui::arena::{self as view, Check, Status};
use crate::ui::{Choice, ChoiceValue};
use crate::worktree::{FileChange, RemoveMode};

const INFO: u8 = 2;
const WARN: u8 = 3;
const ERROR: u8 = 4;

/// A contestant as configured: `agent`, or `agent:provider/model` (the model is what follows
/// the last `:` before the first `/`, so `opencode:build:p/m` is agent `opencode:build`).
pub fn parse(s: &str) -> Result<(String, Option<String>), String> {
    let s = s.trim();
    let cut = match s.find('/') {
        Some(slash) => s[..slash].rfind(':'),
        None => None,
    };
    let (agent, model) = match cut {
        Some(i) => (&s[..i], Some(s[i + 1..].to_string())),
        None => (s, None),
    };
    if agent.is_empty() || model.as_deref().is_some_and(str::is_empty) {
        return Err(format!(
            "bad contestant '{s}': expected 'agent' or 'agent:provider/model'"
        ));
    }
    Ok((agent.to_string(), model))
}

#[derive(Debug)]
pub(super) struct Entry {
    agent: String,
    model: Option<String>,
    label: String,
    session: SessionId,
    title: String,
    chat: Option<ChatId>,
    status: Status,
    started: Option<Instant>,
    ended: Option<Instant>,
    diff: Option<(usize, usize, usize)>,
    check: Option<Check>,
    /// The last check's whole output (the report buffer).
    output: Vec<String>,
    /// Counts check runs: only the latest one's result is kept.
    check_run: u32,
    removed: bool,
}

#[derive(Debug)]
pub(super) struct Arena {
    id: u32,
    prompt: String,
    cwd: Option<String>,
    check: Vec<String>,
    check_timeout: u64,
    limit: usize,
    entries: Vec<Entry>,
    winner: Option<usize>,
    /// A redraw is due in a second (elapsed times move while turns run).
    ticking: bool,
}

#[derive(Debug, Default)]
pub(super) struct Arenas {
    next: u32,
    list: Vec<Arena>,
}

impl Arenas {
    fn get(&mut self, id: u32) -> Option<&mut Arena> {
        self.list.iter_mut().find(|a| a.id == id)
    }

    /// The arena and entry of a chat's running turn.
    fn by_chat(&self, chat: ChatId) -> Option<(u32, usize)> {
        self.list.iter().find_map(|a| {
            a.entries
                .iter()
                .position(|e| e.chat == Some(chat) && e.status == Status::Running)
                .map(|i| (a.id, i))
        })
    }
}

impl App {
    /// `:Boo arena`: makes the sessions, starts the first `limit` turns, shows the view.
    pub(super) async fn arena_start(&mut self, a: ArenaArgs) {
        let prompt = a.prompt.trim().to_string();
        if prompt.is_empty() {
            return self
                .ui
                .notify("boo: arena without a prompt: :Boo arena {prompt}", WARN);
        }
        let names = a
            .contestants
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| self.config.arena.contestants.clone());
        if names.is_empty() {
            return self.ui.notify(
                "boo: no contestants: pick them in :Boo arena or set arena.contestants",
                WARN,
            );
        }
        let mut parsed = Vec::new();
        for n in &names {
            match parse(n) {
                Ok((agent, _)) if !known_agent(&agent) && !self.agents.is_acp(&agent) => {
                    return self
                        .ui
                        .notify(format!("boo: arena: unknown agent '{agent}'"), ERROR)
                }
                Ok(p) => parsed.push(p),
                Err(e) => return self.ui.notify(format!("boo: arena: {e}"), ERROR),
            }
        }
        let repo = match self.repo_of(a.cwd.as_deref()).await {
            Ok(r) => r,
            Err(e) => return self.ui.notify(format!("boo: {e}"), ERROR),
        };
        self.arenas.next += 1;
        let id = self.arenas.next;
        let store = self.store().await;
        let mut entries = Vec::new();
        for (i, (agent, model)) in parsed.into_iter().enumerate() {
            let label = match &model {
                Some(m) => format!("{agent}/{m}"),
                None => agent.clone(),
            };
            let title = format!("arena-{} {label}", i + 1);
            let s = match store
                .create_session(&repo.display().to_string(), &title)
                .await
            {
                Ok(s) => s,
                Err(e) => return self.ui.notify(format!("boo: arena: {e}"), ERROR),
            };
            self.ws
                .sessions
                .insert(s.id, super::sessions::new_state(s.id, &repo, &s.title));
            // All worktrees now, from the same HEAD; the turns may wait for their slot.
            self.create_worktree(s.id, &repo, &s.title);
            entries.push(Entry {
                agent,
                model,
                label,
                session: s.id,
                title: s.title,
                chat: None,
                status: Status::Queued,
                started: None,
                ended: None,
                diff: None,
                check: None,
                output: Vec::new(),
                check_run: 0,
                removed: false,
            });
        }
        let n = entries.len();
        self.arenas.list.push(Arena {
            id,
            prompt,
            cwd: a.cwd,
            check: self.config.arena.check.clone(),
            check_timeout: self.config.arena.check_timeout,
            limit: self.config.arena.limit.max(1) as usize,
            entries,
            winner: None,
            ticking: false,
        });
        self.ui.notify(
            format!("boo: arena {id}: {n} contestants, in {n} new sessions"),
            INFO,
        );
        self.arena_pump(id).await;
        self.arena_render(id, true);
    }

    /// Starts queued contestants while fewer than `limit` run.
    async fn arena_pump(&mut self, id: u32) {
        loop {
            let Some(a) = self.arenas.get(id) else { return };
            let running = a
                .entries
                .iter()
                .filter(|e| e.status == Status::Running)
                .count();
            if running >= a.limit {
                return;
            }
            let Some(i) = a.entries.iter().position(|e| e.status == Status::Queued) else {
                return;
            };
            let e = &a.entries[i];
            let spec = TaskSpec {
                prompt: a.prompt.clone(),
                agent: Some(e.agent.clone()),
                model: e.model.clone(),
                place: Place::Session(e.session),
                chat: None,
                creator: "arena".into(),
                cwd: a.cwd.clone(),
                depth: 0,
            };
            let r = self.create_task(spec).await;
            let Some(e) = self.arenas.get(id).and_then(|a| a.entries.get_mut(i)) else {
                return;
            };
            e.started = Some(Instant::now());
            match r {
                Ok(c) => {
                    e.chat = Some(c.chat);
                    e.status = Status::Running;
                }
                Err(m) => {
                    e.ended = e.started;
                    e.status = Status::Failed;
                    let label = e.label.clone();
                    self.ui
                        .notify(format!("boo: arena: {label} not started: {m}"), ERROR);
                }
            }
        }
    }

    /// A turn ended: a contestant's status, its check, the next one queued.
    pub(super) async fn arena_turn_done(&mut self, chat: ChatId, ok: bool) {
        let Some((id, i)) = self.arenas.by_chat(chat) else {
            return;
        };
        if let Some(e) = self.arenas.get(id).and_then(|a| a.entries.get_mut(i)) {
            e.status = if ok { Status::Done } else { Status::Failed };
            e.ended = Some(Instant::now());
        }
        if ok {
            self.arena_check(id, i);
        }
        self.arena_pump(id).await;
        self.arena_render(id, false);
    }

    /// A session's pending diff was computed: the diffstat of its contestant.
    pub(super) fn arena_pending(&mut self, session: SessionId, files: &[FileChange]) {
        let stat = (
            files.len(),
            files.iter().map(|f| f.additions).sum(),
            files.iter().map(|f| f.deletions).sum(),
        );
        let hit = self.arenas.list.iter_mut().find_map(|a| {
            let e = a.entries.iter_mut().find(|e| e.session == session)?;
            (e.diff != Some(stat)).then(|| {
                e.diff = Some(stat);
                a.id
            })
        });
        if let Some(id) = hit {
            self.arena_render(id, false);
        }
    }

    /// Runs the check in a contestant's worktree, off the loop.
    fn arena_check(&mut self, id: u32, i: usize) {
        let dir = {
            let Some(a) = self.arenas.get(id) else { return };
            let Some(e) = a.entries.get(i) else { return };
            self.ws.sessions.get(&e.session).and_then(|s| s.dir.clone())
        };
        let Some(a) = self.arenas.get(id) else { return };
        if a.check.is_empty() {
            return;
        }
        let (argv, timeout) = (a.check.clone(), a.check_timeout);
        let Some(e) = a.entries.get_mut(i) else {
            return;
        };
        let Some(dir) = dir.filter(|_| !e.removed) else {
            e.check = Some(Check::Ended {
                passed: false,
                took: Default::default(),
                tail: Vec::new(),
                note: Some("no worktree".into()),
            });
            return;
        };
        e.check_run += 1;
        e.check = Some(Check::Running);
        let run = e.check_run;
        let events = self.events.clone();
        tokio::spawn(async move {
            let output = super::arena_check::run(&argv, &dir, timeout).await;
            let _ = events.send(super::Event::ArenaCheck(CheckDone {
                arena: id,
                index: i,
                run,
                output,
            }));
        });
    }

    pub(super) fn arena_check_done(&mut self, d: CheckDone) {
        let Some(e) = self
            .arenas
            .get(d.arena)
            .and_then(|a| a.entries.get_mut(d.index))
        else {
            return;
        };
        if e.check_run != d.run {
            return; // a newer run is under way
        }
        let Output {
            passed,
            took,
            lines,
            note,
        } = d.output;
        e.check = Some(Check::Ended {
            passed,
            took,
            tail: lines.iter().rev().take(view::TAIL).rev().cloned().collect(),
            note,
        });
        e.output = lines;
        self.ui.autocmd(
            "BooArenaCheck",
            json!({"arena": d.arena, "index": d.index + 1, "passed": passed, "session": e.session}),
        );
        self.arena_render(d.arena, false);
    }

    /// Sends the view; `open` shows it, else only a view already open is redrawn.
    fn arena_render(&mut self, id: u32, open: bool) {
        let Some(a) = self.arenas.list.iter().find(|a| a.id == id) else {
            return;
        };
        let now = Instant::now();
        let rows: Vec<view::Contestant> = a
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let u = self.session_usage(e.session);
                view::Contestant {
                    label: if e.removed {
                        format!("{} (removed)", e.label)
                    } else {
                        e.label.clone()
                    },
                    status: e.status,
                    elapsed: e.started.map(|s| e.ended.unwrap_or(now) - s),
                    tokens: u.tokens(),
                    cost: u.cost,
                    diff: e.diff,
                    check: e.check.clone(),
                    session: Some(e.session),
                    chat: e.chat,
                    winner: a.winner == Some(i),
                }
            })
            .collect();
        let mut v = view::view(a.id, &a.prompt, Some(&a.check), &rows);
        v.open = open;
        self.ui.arena(v);
        self.arena_tick_later(id);
    }

    /// While a contestant runs, the view is redrawn every second (its elapsed time).
    fn arena_tick_later(&mut self, id: u32) {
        let Some(a) = self.arenas.get(id) else { return };
        if a.ticking || !a.entries.iter().any(|e| e.status == Status::Running) {
            return;
        }
        a.ticking = true;
        let events = self.events.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            let _ = events.send(super::Event::ArenaTick(id));
        });
    }

    pub(super) fn arena_tick(&mut self, id: u32) {
        if let Some(a) = self.arenas.get(id) {
            a.ticking = false;
        }
        self.arena_render(id, false);
    }

    /// A key of the arena view.
    pub(super) async fn arena_action(&mut self, a: ArenaActionArgs) {
        let id = a.arena;
        let Some(arena) = self.arenas.get(id) else {
            return self.ui.notify(format!("boo: no arena {id}"), WARN);
        };
        if a.action == "refresh" {
            return self.arena_render(id, true);
        }
        let i = a.index.saturating_sub(1);
        let Some(e) = arena.entries.get(i) else {
            return self.ui.notify("boo: put the cursor on a contestant", WARN);
        };
        let (session, chat, removed) = (e.session, e.chat, e.removed);
        if removed && a.action != "output" {
            return self
                .ui
                .notify("boo: that contestant's session was removed", WARN);
        }
        match a.action.as_str() {
            "open" => {
                let Some(chat) = chat else {
                    return self.ui.notify("boo: that contestant has not started", INFO);
                };
                self.ws.current_session = Some(session);
                if let Some(s) = self.ws.sessions.get_mut(&session) {
                    s.last_chat = Some(chat);
                }
                if let Some(p) = self
                    .ws
                    .float_of(session)
                    .and_then(|p| self.ws.panes.get_mut(&p))
                {
                    if !p.tabs.contains(&chat) {
                        p.add_tab(chat);
                    }
                    p.active = Some(chat);
                }
                self.show(a.cwd.as_deref()).await;
            }
            "diff" => {
                self.diff(ReviewArgs {
                    session: Some(session),
                    ..Default::default()
                })
                .await
            }
            "check" => {
                if arena.check.is_empty() {
                    return self.ui.notify(
                        "boo: no check command: set arena.check, e.g. { 'make', 'test' }",
                        WARN,
                    );
                }
                self.arena_check(id, i);
                self.arena_render(id, false);
            }
            "output" => {
                let lines = match (&e.check, e.output.is_empty()) {
                    (None, _) => vec!["(the check has not run)".to_string()],
                    (Some(Check::Running), _) => vec!["(the check is running)".to_string()],
                    (_, true) => vec!["(no output)".to_string()],
                    _ => e.output.clone(),
                };
                let name = format!("boo://arena-check/{id}/{}", i + 1);
                self.ui.report_as(&name, lines, Some("boo-arena-check"));
            }
            "win" => self.arena_win(id, i, a.choice.as_deref()).await,
            other => self
                .ui
                .notify(format!("boo: unknown arena action '{other}'"), ERROR),
        }
    }

    /// `w`: asks once what happens to the losers, then makes the winner current and opens its
    /// review; removed losers go like `:Boo session delete` would, branch included.
    async fn arena_win(&mut self, id: u32, i: usize, choice: Option<&str>) {
        let Some(a) = self.arenas.get(id) else { return };
        let busy = a
            .entries
            .iter()
            .filter(|e| matches!(e.status, Status::Queued | Status::Running))
            .count();
        if busy > 0 {
            return self.ui.notify(
                format!("boo: arena {id} still has {busy} contestant(s) queued or running; wait, or :Boo abort them"),
                WARN,
            );
        }
        let Some((winner, label)) = a.entries.get(i).map(|e| (e.session, e.label.clone())) else {
            return;
        };
        let losers: Vec<(SessionId, String)> = a
            .entries
            .iter()
            .enumerate()
            .filter(|(j, e)| *j != i && !e.removed)
            .map(|(_, e)| (e.session, e.title.clone()))
            .filter(|(s, _)| self.ws.sessions.contains_key(s))
            .collect();
        let remove = match choice {
            None if !losers.is_empty() => {
                let items = vec![
                    Choice::new(
                        format!(
                            "remove the {} losing session(s) (their work is lost)",
                            losers.len()
                        ),
                        ChoiceValue::Name("remove"),
                    ),
                    Choice::new("keep them as sessions", ChoiceValue::Name("keep")),
                    Choice::new("cancel", ChoiceValue::Name("cancel")),
                ];
                return self.ui.select(
                    &format!("boo: arena {id}: {label} wins. The others?"),
                    items,
                    "arena_action",
                    json!({"arena": id, "index": i + 1, "action": "win"}),
                    "choice",
                );
            }
            None | Some("keep") => false,
            Some("remove") => true,
            Some("cancel") => return self.ui.notify("boo: no winner picked", INFO),
            Some(other) => {
                return self
                    .ui
                    .notify(format!("boo: unknown choice '{other}'"), ERROR)
            }
        };
        if let Some(a) = self.arenas.get(id) {
            a.winner = Some(i);
            if remove {
                for e in a.entries.iter_mut().filter(|e| e.session != winner) {
                    e.removed = true;
                }
            }
        }
        self.ws.current_session = Some(winner);
        if remove {
            for (s, title) in losers {
                match self.target_of(s) {
                    Some(target) => self.review_job(Job::Remove {
                        target,
                        title,
                        mode: RemoveMode::Discard,
                    }),
                    None => self.forget_session(s, &title, None).await,
                }
            }
        }
        self.ui
            .notify(format!("boo: arena {id}: {label} is the winner"), INFO);
        self.diff(ReviewArgs {
            session: Some(winner),
            ..Default::default()
        })
        .await;
        self.arena_render(id, false);
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn arena_contestants_parse() {
        assert_eq!(
            parse("opencode:fake/a").ok(),
            Some(("opencode".into(), Some("fake/a".into())))
        );
        assert_eq!(parse(" qwen ").ok(), Some(("qwen".into(), None)));
        assert_eq!(parse("qwen:plan").ok(), Some(("qwen:plan".into(), None)));
        assert_eq!(
            parse("opencode:build:p/m:x").ok(),
            Some(("opencode:build".into(), Some("p/m:x".into())))
        );
        assert!(parse(":p/m").is_err());
        assert!(parse("").is_err());
    }
}
