//! Usage as the app uses it: a chat's and a session's totals (summed from the transcripts'
//! step items), the winbar's line with the agent and model, and the session budget.

use serde_json::Value as Json;

use super::App;
use crate::model::usage::Usage;
use crate::model::{ChatId, ItemKind, SessionId};
use crate::ui::usage as fmt;

/// The winbar warns from this share of a budget on.
const WARN_AT: f64 = 0.8;

/// A stored step as the report counts it (None for a meta that does not parse).
fn step_of(r: &crate::store::StepRow) -> Option<fmt::Step> {
    let meta: Json = serde_json::from_str(&r.meta).ok()?;
    let usage = Usage::of_step(&meta)?;
    let text = |k: &str| meta.get(k).and_then(Json::as_str).map(String::from);
    Some(fmt::Step {
        session: r.session_title.clone(),
        agent: text("agent").unwrap_or_else(|| r.agent.clone()),
        model: text("model").unwrap_or_else(|| "unknown model".into()),
        at: meta.get("at").and_then(Json::as_u64),
        usage,
    })
}

impl App {
    pub(super) fn chat_usage(&self, chat: ChatId) -> Usage {
        if let Some(u) = self.usage_cache.lock().get(&chat) {
            return *u;
        }
        let Some(t) = self.transcripts.get(chat) else {
            return Usage::default();
        };
        let u = Usage::of_transcript(t);
        self.usage_cache.lock().insert(chat, u);
        u
    }

    /// The chat's transcript changed in a way its totals may see.
    pub(super) fn usage_changed(&self, chat: ChatId) {
        self.usage_cache.lock().remove(&chat);
    }

    /// The session's chats that are loaded (a chat never opened in this process has not run a
    /// turn in it either).
    pub(super) fn session_usage(&self, session: SessionId) -> Usage {
        let mut total = Usage::default();
        let chats = self.ws.sessions.get(&session).map(|s| s.chats.clone());
        for c in chats.unwrap_or_default() {
            total.add(&self.chat_usage(c));
        }
        total
    }

    /// The model a chat's last step used (`provider/model`), if any step said.
    fn last_model(&self, chat: ChatId) -> Option<String> {
        let t = self.transcripts.get(chat)?;
        let mut items: Vec<_> = t.items().filter(|i| i.kind == ItemKind::Info).collect();
        items.reverse();
        items
            .into_iter()
            .find_map(|i| i.meta.get("model").and_then(Json::as_str).map(String::from))
    }

    /// The used share of the session's budget (the larger of cost and tokens), if it has one.
    fn budget_share(&self, session: SessionId) -> Option<(f64, String)> {
        let b = &self.config.budget;
        let u = self.session_usage(session);
        let cost = b.cost.filter(|c| *c > 0.0).map(|c| {
            (
                u.cost / c,
                format!("{} of {} (budget.cost)", fmt::cost(u.cost), fmt::cost(c)),
            )
        });
        let tokens = b.tokens.filter(|t| *t > 0).map(|t| {
            (
                u.tokens() as f64 / t as f64,
                format!(
                    "{} of {} tokens (budget.tokens)",
                    fmt::tokens(u.tokens()),
                    fmt::tokens(t)
                ),
            )
        });
        [cost, tokens]
            .into_iter()
            .flatten()
            .max_by(|a, b| a.0.total_cmp(&b.0))
    }

    /// The winbar's line of the active chat: agent, model, totals, a budget warning.
    pub(super) fn tab_info(&self, chat: ChatId) -> String {
        let Some(c) = self.ws.chats.get(&chat) else {
            return String::new();
        };
        let model = c
            .model
            .clone()
            .or_else(|| self.last_model(chat))
            .unwrap_or_else(|| "default model".into());
        let mut parts = vec![c.agent.clone(), model];
        let totals = fmt::totals(&self.chat_usage(chat));
        if !totals.is_empty() {
            parts.push(totals);
        }
        if let Some((share, _)) = self.budget_share(c.session).filter(|(s, _)| *s >= WARN_AT) {
            parts.push(format!("⚠ budget {:.0}%", share * 100.0));
        }
        if let Some(badge) = self.conflict_badge(c.session) {
            parts.push(badge);
        }
        parts.join(" · ")
    }

    /// The line a prompt gets when the session's budget is spent, or None.
    pub(super) fn over_budget(&self, chat: ChatId) -> Option<String> {
        let session = self.ws.chats.get(&chat)?.session;
        let (share, what) = self.budget_share(session)?;
        (share >= 1.0).then(|| format!("boo: session budget reached: {what} used; turn not run"))
    }

    /// `:Boo usage`: reads every stored step off the loop and opens the report.
    pub(super) async fn usage_report(&mut self, today: Option<u64>) {
        // What streamed in the last 50 ms is in the report too.
        self.save_transcripts();
        let store = self.store().await;
        let events = self.events.clone();
        tokio::spawn(async move {
            let r = async {
                store.flush().await?;
                store.usage_steps().await
            }
            .await;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let r = r.map_err(|e| e.to_string()).map(|rows| {
                let steps: Vec<fmt::Step> = rows.iter().filter_map(step_of).collect();
                fmt::report(&steps, now, today.unwrap_or(now - now % 86_400))
            });
            let _ = events.send(super::Event::UsageReport(r));
        });
    }

    /// `:checkhealth boo`: the live worktrees and whether their session exists, off the loop.
    pub(super) async fn health_report(&mut self) {
        let store = self.store().await;
        let events = self.events.clone();
        tokio::spawn(async move {
            let mut data = match store.live_worktrees().await {
                Ok(w) => serde_json::json!({
                    "worktrees": w.iter().map(|w| serde_json::json!({
                        "path": w.path,
                        "session": w.session_id,
                    })).collect::<Vec<_>>(),
                }),
                Err(e) => serde_json::json!({ "error": e.to_string() }),
            };
            // What opencode sent this run that its pinned schema does not define.
            data["opencode_drift"] = crate::agent::opencode::drift::report();
            let _ = events.send(super::Event::Health(data));
        });
    }

    /// A step's meta with what the agent does not know: which agent ran it, and when (unix
    /// seconds), for the usage report.
    pub(super) fn stamp_step(&self, chat: ChatId, mut meta: Json) -> Json {
        if let (Some(c), Some(m)) = (self.ws.chats.get(&chat), meta.as_object_mut()) {
            m.entry("agent").or_insert_with(|| c.agent.clone().into());
            if m.get("model").is_none_or(Json::is_null) {
                if let Some(model) = &c.model {
                    m.insert("model".into(), model.clone().into());
                }
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            m.entry("at").or_insert_with(|| now.into());
        }
        meta
    }

    /// A step of `chat` finished: the winbar's totals change, and a turn that goes on (it
    /// called tools) past the budget is aborted.
    pub(super) fn step_finished(&mut self, chat: ChatId, meta: &Json) {
        self.usage_changed(chat);
        self.refresh_tabs(chat);
        let more = meta.get("reason").and_then(Json::as_str) == Some("tool-calls");
        if !more {
            return;
        }
        if let Some(line) = self.over_budget(chat) {
            let line = line.replace("turn not run", "turn aborted");
            let shown = line.trim_start_matches("boo: ").to_string();
            self.tx_push(chat, ItemKind::Error, None, shown, Json::Null);
            self.ui.notify(line, 3);
            self.agents.abort(chat);
        }
    }
}
