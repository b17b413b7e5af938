//! Cross-session conflicts end to end: three sessions of one repository, each with its own
//! worktree, whose agents (the real opencode and the scripted model) edit one file. The two
//! that change the same line get the hunk marked in their reviews, the one that changes a line
//! far away does not; accepting a marked hunk shows the 3-way result and asks first.

use std::sync::Arc;
use std::time::Duration;

use boo_testkit::dir::TestDir;
use boo_testkit::nvim::Nvim;
use boo_testkit::repo;
use boo_testkit::world::{World, WorldOptions};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(90);

fn numbered(edit: Option<(usize, &str)>) -> String {
    (1..=12)
        .map(|i| match edit {
            Some((n, text)) if n == i => format!("{text}\\n"),
            _ => format!("line {i}\\n"),
        })
        .collect()
}

async fn info(nvim: &Nvim) -> Value {
    nvim.lua("return require('boo.rpc').request('review_info', { cwd = vim.fn.getcwd() })")
        .await
}

/// The current session once it has its worktree (and is not `not`).
async fn ready_session(nvim: &Nvim, not: &[i64]) -> i64 {
    let t = std::time::Instant::now();
    loop {
        let i = info(nvim).await;
        if let (Some(s), true) = (i["session"].as_i64(), i["worktree"].is_string()) {
            if !not.contains(&s) {
                return s;
            }
        }
        assert!(
            t.elapsed() < WAIT,
            "no new session worktree:\n{}",
            nvim.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The agent of the current session rewrites `f.txt` with `edit`; waits for it to be pending.
async fn agent_edits(nvim: &Nvim, edit: (usize, &str)) {
    let prompt = format!(
        "[fake:tool write {{\"filePath\":\"f.txt\",\"content\":\"{}\"}}]",
        numbered(Some(edit))
    );
    nvim.lua_with("require('boo').send(...)", vec![json!(prompt)])
        .await;
    nvim.wait_for(
        "the agent's edit pending",
        "require('boo').status().pending_changes == 1 and not require('boo').status().busy",
        WAIT,
    )
    .await;
}

/// The lines of session `s`'s review once it shows `needle` (opened with `diff`).
async fn review_with(nvim: &Nvim, s: i64, needle: &str) -> Vec<String> {
    nvim.lua_with(
        "require('boo.rpc').notify('diff', { session = ... })",
        vec![json!(s)],
    )
    .await;
    let t = std::time::Instant::now();
    loop {
        let lines = nvim
            .lua_with(
                "local b = vim.fn.bufnr('^boo://review/' .. ... .. '$')
                 if b < 0 then return {} end
                 return vim.api.nvim_buf_get_lines(b, 0, -1, false)",
                vec![json!(s)],
            )
            .await;
        let lines: Vec<String> = lines
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|l| l.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if lines.iter().any(|l| l.contains(needle)) {
            return lines;
        }
        assert!(
            t.elapsed() < WAIT,
            "review of session {s} never showed {needle:?}: {lines:#?}\n{}",
            nvim.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn two_sessions_changing_one_line_are_marked_and_a_distant_edit_is_not() {
    let tmp = Arc::new(TestDir::new("boo-e2e-"));
    let project = tmp.path().join("project");
    repo::init(&project, &[("f.txt", &numbered(None).replace("\\n", "\n"))]);
    let w = World::start_with(WorldOptions {
        tmp: Some(tmp),
        ..Default::default()
    })
    .await;
    let nvim = &w.nvim;
    nvim.cmd("Boo").await.expect(":Boo");
    let one = ready_session(nvim, &[]).await;
    agent_edits(nvim, (2, "ONE")).await;
    nvim.cmd("Boo session new two").await.expect("new");
    let two = ready_session(nvim, &[one]).await;
    agent_edits(nvim, (2, "TWO")).await;
    nvim.cmd("Boo session new three").await.expect("new");
    let three = ready_session(nvim, &[one, two]).await;
    agent_edits(nvim, (11, "THREE")).await;

    // Both sessions that changed line 2 see the other's name under the hunk.
    let r2 = review_with(nvim, two, "+TWO").await;
    let r2 = if r2.iter().any(|l| l.contains("⚠")) {
        r2
    } else {
        review_with(nvim, two, "⚠ also changed by").await
    };
    assert!(
        r2.iter()
            .any(|l| l.contains("⚠ also changed by session project")),
        "{r2:#?}"
    );
    let r1 = review_with(nvim, one, "⚠ also changed by").await;
    assert!(
        r1.iter().any(|l| l.contains("session two")) && !r1.iter().any(|l| l.contains("three")),
        "{r1:#?}"
    );
    // Line 11 is far from line 2: not a conflict with either.
    let r3 = review_with(nvim, three, "+THREE").await;
    assert!(!r3.iter().any(|l| l.contains('⚠')), "{r3:#?}");
    let badge = nvim
        .lua("return vim.fn.join(vim.tbl_map(function(w) return vim.wo[w].winbar end, vim.api.nvim_list_wins()), '|')")
        .await;
    assert!(
        !badge.as_str().unwrap_or_default().contains("also changed"),
        "session three has no conflict: {badge}"
    );

    // Accepting the marked hunk of session two: the result is shown, then the question; the
    // checkout changes only once it is answered.
    nvim.lua(
        "_G.asked = {}
         vim.ui.select = function(items, opts, cb)
           table.insert(_G.asked, { prompt = opts.prompt, file = vim.fn.readfile('f.txt')[2] })
           cb(items[1], 1)
         end",
    )
    .await;
    review_with(nvim, two, "⚠ also changed by").await;
    nvim.lua_with(
        "local s = ...
         local b = vim.fn.bufnr('^boo://review/' .. s .. '$')
         for _, w in ipairs(vim.fn.win_findbuf(b)) do vim.api.nvim_set_current_win(w) end
         for i, l in ipairs(vim.api.nvim_buf_get_lines(b, 0, -1, false)) do
           if l == '+TWO' then vim.api.nvim_win_set_cursor(0, { i, 0 }) break end
         end
         vim.api.nvim_feedkeys('ga', 'mx', false)",
        vec![json!(two)],
    )
    .await;
    let asked = nvim
        .wait_for(
            "the question after the preview",
            "#_G.asked > 0 and _G.asked",
            WAIT,
        )
        .await;
    assert!(
        asked[0]["prompt"]
            .as_str()
            .unwrap_or_default()
            .contains("accept"),
        "{asked}"
    );
    assert_eq!(
        asked[0]["file"], "line 2",
        "nothing accepted before the answer"
    );
    let preview = nvim
        .lua_with(
            "local b = vim.fn.bufnr('^boo://accept-preview/' .. ... .. '$')
             return b >= 0 and vim.api.nvim_buf_get_lines(b, 0, -1, false) or {}",
            vec![json!(two)],
        )
        .await;
    let preview = preview.to_string();
    assert!(
        preview.contains("-line 2") && preview.contains("+TWO"),
        "{preview}"
    );
    let t = std::time::Instant::now();
    while std::fs::read_to_string(w.dir.join("project/f.txt"))
        .unwrap_or_default()
        .lines()
        .nth(1)
        != Some("TWO")
    {
        assert!(
            t.elapsed() < WAIT,
            "not accepted after the answer:\n{}",
            nvim.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    w.nvim.quit().await;
}
