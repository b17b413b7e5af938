//! Usage end to end: the scripted model reports known token counts ([`USAGE`]), opencode prices
//! them with the test config's costs, and boo shows them under the answer and in the winbar,
//! keeps them across a restart, and stops a session at its budget.

use std::time::Duration;

use boo_testkit::fake_model::{MODEL_ID, USAGE};
use boo_testkit::world::{World, WorldOptions};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

/// What one plain turn of the fake costs, as boo shows it: 1200 prompt tokens (200 of them
/// cached), 340 out, priced 1/2/0.5 dollars per million, in a 32k window.
const FOOTER: &str = "1.2k in · 340 out · $0.0018 · 5% ctx";

/// The winbar of the window showing the transcript, as drawn.
async fn winbar(w: &World) -> String {
    w.nvim
        .lua(
            "for _, win in ipairs(vim.api.nvim_list_wins()) do
               if vim.bo[vim.api.nvim_win_get_buf(win)].filetype == 'boo' then
                 return vim.api.nvim_eval_statusline(vim.wo[win].winbar, { winid = win, use_winbar = true, maxwidth = 400 }).str
               end
             end
             return ''",
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn answered(w: &World, prompt: &str) {
    w.nvim
        .cmd(&format!("Boo send {prompt}"))
        .await
        .expect("send");
    w.wait_transcript("the answer", &format!("Echo: {prompt}"))
        .await;
    w.nvim
        .wait_for("idle", "not require('boo').status().busy", WAIT)
        .await;
}

#[tokio::test]
async fn footer_and_winbar_show_the_models_usage_and_keep_it_after_a_restart() {
    assert_eq!(USAGE, (1200, 200, 340, 40), "FOOTER is computed from these");
    let w = World::start().await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    answered(&w, "count me").await;
    let text = w.wait_transcript("the usage footer", FOOTER).await;
    // The footer follows the answer.
    let answer = text.find("Echo: count me").expect("answer");
    assert!(text[answer..].contains(FOOTER), "{text}");
    let bar = w
        .nvim
        .wait_for(
            "the winbar's totals",
            "(function() for _, win in ipairs(vim.api.nvim_list_wins()) do if vim.wo[win].winbar:find('1.5k tok', 1, true) then return true end end end)()",
            WAIT,
        )
        .await;
    assert_eq!(bar, json!(true));
    let bar = winbar(&w).await;
    assert!(bar.contains("opencode"), "the agent: {bar}");
    assert!(bar.contains(MODEL_ID), "the model: {bar}");
    assert!(bar.contains("1.5k tok · $0.0018 · 5% ctx"), "{bar}");
    // A second turn adds up.
    answered(&w, "and me").await;
    w.nvim
        .wait_for(
            "the winbar's new totals",
            "(function() for _, win in ipairs(vim.api.nvim_list_wins()) do if vim.wo[win].winbar:find('3.1k tok · $0.0036', 1, true) then return true end end end)()",
            WAIT,
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let w = w.restart().await;
    w.nvim.cmd("Boo").await.expect(":Boo after restart");
    let text = w.wait_transcript("the restored footer", FOOTER).await;
    assert_eq!(text.matches(FOOTER).count(), 2, "{text}");
    let bar = winbar(&w).await;
    assert!(bar.contains("3.1k tok · $0.0036 · 5% ctx"), "{bar}");
    assert!(
        bar.contains(MODEL_ID),
        "the model, from the stored steps: {bar}"
    );
    // The report reads the store: both turns, today, by session, agent and model.
    w.nvim.cmd("Boo usage").await.expect(":Boo usage");
    w.nvim
        .wait_for(
            "the report",
            "vim.fn.bufnr('boo usage') ~= -1 and #vim.api.nvim_buf_get_lines(vim.fn.bufnr('boo usage'), 0, -1, false) > 3",
            WAIT,
        )
        .await;
    let report = w
        .nvim
        .lua("return table.concat(vim.api.nvim_buf_get_lines(vim.fn.bufnr('boo usage'), 0, -1, false), '\\n')")
        .await
        .as_str()
        .unwrap_or_default()
        .to_string();
    for want in [
        "Today: 3.1k tokens · $0.0036",
        "Last 7 days: 3.1k tokens · $0.0036",
        "All: 3.1k tokens · $0.0036",
        "  by session",
        "  by agent",
        "    opencode",
        &format!("    fake/{MODEL_ID}"),
        "2.4k in · 680 out · $0.0036 · 2 steps",
    ] {
        assert!(report.contains(want), "{want:?} in:\n{report}");
    }
    assert!(report.contains(&"█".repeat(24)), "a full bar: {report}");
    w.nvim.quit().await;
}

#[tokio::test]
async fn a_token_budget_stops_the_second_turn_with_one_line() {
    let w = World::start_with(WorldOptions {
        config: Some(json!({"budget": {"tokens": 10}})),
        ..Default::default()
    })
    .await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    answered(&w, "first").await;
    w.wait_transcript("the first footer", FOOTER).await;
    let asked = w.model.chat_requests().len();
    w.nvim.cmd("Boo send second").await.expect("send");
    let text = w
        .wait_transcript("the budget line", "session budget reached")
        .await;
    assert!(
        text.contains(
            "✗ session budget reached: 1.5k of 10 tokens (budget.tokens) used; turn not run"
        ),
        "{text}"
    );
    assert_eq!(
        text.matches("budget reached").count(),
        1,
        "one line: {text}"
    );
    let msgs = w.nvim.messages().await;
    assert_eq!(
        msgs.matches("budget reached").count(),
        1,
        "one message: {msgs}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        w.model.chat_requests().len(),
        asked,
        "the model was not asked again"
    );
    assert!(!text.contains("Echo: second"), "{text}");
    let bar = winbar(&w).await;
    assert!(bar.contains("⚠ budget"), "the winbar warns: {bar}");
    w.nvim.quit().await;
}

async fn statusline(w: &World) -> String {
    w.nvim
        .lua("return require('boo').statusline()")
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn statusline_spins_while_a_turn_runs_and_counts_a_waiting_permission() {
    let w = World::start().await;
    assert_eq!(statusline(&w).await, "", "nothing before a session");
    // Permission prompts are left unanswered (the user looks elsewhere).
    w.nvim.lua("vim.ui.select = function() end").await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    w.nvim
        .wait_for("a session", "require('boo').statusline() == 'boo'", WAIT)
        .await;
    w.nvim
        .cmd("Boo send [fake:slow 150] slowly")
        .await
        .expect("send");
    w.nvim
        .wait_for("busy", "require('boo').status().busy", WAIT)
        .await;
    // The spinner turns: several frames within half a second.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..12 {
        let s = statusline(&w).await;
        if require_busy(&w).await {
            seen.insert(s);
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    assert!(seen.len() >= 2, "the spinner turns: {seen:?}");
    assert!(seen.iter().all(|s| s.starts_with("boo ")), "{seen:?}");
    w.wait_transcript("the answer", "Echo: slowly").await;
    w.nvim
        .wait_for(
            "the cost",
            "require('boo').statusline() == 'boo $0.0018'",
            WAIT,
        )
        .await;
    w.nvim
        .cmd("Boo send [fake:bash echo hi]")
        .await
        .expect("send");
    w.nvim
        .wait_for(
            "the waiting permission",
            "require('boo').statusline():find('⚠1', 1, true) ~= nil",
            WAIT,
        )
        .await;
    w.nvim.quit().await;
}

async fn require_busy(w: &World) -> bool {
    w.nvim.lua("return require('boo').status().busy").await == json!(true)
}
