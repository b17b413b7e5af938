//! Task creators end to end: `require('boo').task()` in the real Neovim, the real opencode and
//! the scripted model; the task's chat is a new tab of the session, recorded as creator `api`.

use std::time::Duration;

use boo_testkit::world::{stored_texts, World};

const WAIT: Duration = Duration::from_secs(60);

async fn record_tasks(w: &World) {
    w.nvim
        .lua(
            "_G.boo_tasks = {}
             vim.api.nvim_create_autocmd('User', { pattern = 'BooTask',
               callback = function(ev) table.insert(_G.boo_tasks, ev.data) end })",
        )
        .await;
}

fn creators(db: &std::path::Path) -> Vec<(i64, String)> {
    let conn = rusqlite::Connection::open(db).expect("db");
    let mut st = conn
        .prepare("SELECT chat_id, creator FROM tasks ORDER BY id")
        .expect("sql");
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("rows")
        .filter_map(Result::ok)
        .collect()
}

#[tokio::test]
async fn task_makes_a_new_chat_that_shows_the_answer() {
    let w = World::start().await;
    record_tasks(&w).await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    let first = w
        .nvim
        .wait_for("the first chat", "require('boo').status().chat", WAIT)
        .await;
    w.nvim
        .lua("require('boo').task({ prompt = 'count the files' })")
        .await;
    let chat = w
        .nvim
        .wait_for(
            "the BooTask event",
            "_G.boo_tasks[1] and _G.boo_tasks[1].chat",
            WAIT,
        )
        .await;
    assert_ne!(chat, first, "a new chat, not the active one");
    // The user's tab stays active while the task runs.
    assert_eq!(
        w.nvim.lua("return require('boo').status().chat").await,
        first
    );
    let deadline = std::time::Instant::now() + WAIT;
    while !stored_texts(&w.db())
        .iter()
        .any(|t| t.contains("Echo: count the files"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no stored answer; log:\n{}",
            w.nvim.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Its tab is in the float: selecting it shows the answer.
    w.nvim
        .lua_with(
            "require('boo')._action('select_chat', { chat = ..., pane = require('boo.ui.pane').current() })",
            vec![chat.clone()],
        )
        .await;
    w.wait_transcript("the task's answer", "Echo: count the files")
        .await;
    let rows = creators(&w.db());
    assert!(
        rows.iter()
            .any(|(c, k)| Some(*c) == chat.as_i64() && k == "api"),
        "{rows:?}"
    );
    // With `chat`, the task runs there; with `session`, in a new chat of that session.
    let session = w.nvim.lua("return require('boo').status().session").await;
    w.nvim
        .lua_with(
            "local chat, session = ...
             require('boo').task({ prompt = 'once more here', chat = chat })
             require('boo').task({ prompt = 'in that session', session = session })",
            vec![chat.clone(), session.clone()],
        )
        .await;
    w.wait_transcript(
        "the second answer in the task's chat",
        "Echo: once more here",
    )
    .await;
    let third = w
        .nvim
        .wait_for(
            "the third BooTask",
            "_G.boo_tasks[3] and _G.boo_tasks[3].chat",
            WAIT,
        )
        .await;
    let second = w.nvim.lua("return _G.boo_tasks[2]").await;
    assert_eq!(second["chat"], chat, "{second}");
    assert_ne!(third, chat);
    assert_eq!(w.nvim.lua("return _G.boo_tasks[3].session").await, session);
    // Waits for boocoder to end: its background work must not outlive the test's folder.
    w.nvim.quit().await;
}

#[tokio::test]
async fn a_task_with_an_unknown_agent_is_one_line() {
    let w = World::start().await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    w.nvim
        .lua("require('boo').task({ prompt = 'x', agent = 'nope' })")
        .await;
    w.nvim
        .wait_for(
            "the error line",
            "vim.api.nvim_exec2('messages', { output = true }).output:find('task not created: unknown agent', 1, true)",
            WAIT,
        )
        .await;
    w.nvim.quit().await;
}

/// Stored transcript texts containing `needle`, waited for.
async fn wait_stored(w: &World, what: &str, needle: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    while !stored_texts(&w.db()).iter().any(|t| t.contains(needle)) {
        assert!(
            std::time::Instant::now() < deadline,
            "no stored {what} ({needle:?}); stored: {:?}\nmessages:\n{}\nlog:\n{}",
            stored_texts(&w.db()),
            w.nvim.messages().await,
            w.nvim.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_agent_hands_a_sub_task_to_a_new_chat_over_mcp() {
    let w = World::start().await;
    record_tasks(&w).await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    w.nvim
        .lua(r#"require('boo').send('delegate [fake:tool boo_boo_new_task {"prompt":"hello sub","where":"chat"}]')"#)
        .await;
    let chat = w
        .nvim
        .wait_for(
            "the BooTask event",
            "_G.boo_tasks[1] and _G.boo_tasks[1].creator == 'mcp' and _G.boo_tasks[1].chat",
            WAIT,
        )
        .await;
    wait_stored(&w, "the sub-task's answer", "Echo: hello sub").await;
    // The caller read what the tool said.
    w.wait_transcript("the tool's answer in the caller", "Started task")
        .await;
    let rows = creators(&w.db());
    assert!(
        rows.iter()
            .any(|(c, k)| Some(*c) == chat.as_i64() && k == "mcp"),
        "{rows:?}"
    );
    // The caller follows the task by its id (the task's chat).
    let status = format!(
        r#"require('boo').send('follow [fake:tool boo_boo_task_status {{"task":{chat}}}]')"#
    );
    w.nvim.lua(&status).await;
    w.wait_transcript("the task's status", &format!("Task {chat}: done."))
        .await;
    // Same session: the new chat is a second tab of the float (once nothing is busy).
    w.nvim
        .wait_for(
            "two tabs in the winbar",
            "(function() for _, wi in ipairs(vim.api.nvim_list_wins()) do local wb = vim.wo[wi].winbar
               if not wb:find('BooTabBusy', 1, true) and select(2, wb:gsub('BooTab#', '')) + select(2, wb:gsub('BooTabActive#', '')) == 2 then return true end end end)()",
            WAIT,
        )
        .await;
    w.nvim.quit().await;
}

#[tokio::test]
async fn a_runaway_chain_of_tasks_is_refused_at_the_depth_limit() {
    let w = World::start().await;
    record_tasks(&w).await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    w.nvim
        .lua("require('boo').send('go [fake:chain boo_boo_new_task]')")
        .await;
    w.nvim
        .wait_for(
            "the refusal line",
            "vim.api.nvim_exec2('messages', { output = true }).output:find('task refused: it would be 3 tasks deep, and mcp.max_depth is 2', 1, true)",
            WAIT,
        )
        .await;
    wait_stored(&w, "the refusal in the deepest chat", "task refused").await;
    // Two tasks made (depth 1 and 2), none beyond.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let n = w.nvim.lua("return #_G.boo_tasks").await;
    assert_eq!(n, 2, "{}", w.nvim.lua("return _G.boo_tasks").await);
    w.nvim.quit().await;
}

#[tokio::test]
async fn tasks_beyond_mcp_max_tasks_are_refused() {
    let w = World::start_with(boo_testkit::world::WorldOptions {
        config: Some(serde_json::json!({ "mcp": { "max_tasks": 1, "max_depth": 5 } })),
        ..Default::default()
    })
    .await;
    record_tasks(&w).await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    // The first task, still running, asks for a second one: one too many.
    w.nvim
        .lua("require('boo').send('go [fake:chain boo_boo_new_task]')")
        .await;
    w.nvim
        .wait_for(
            "the refusal line",
            "vim.api.nvim_exec2('messages', { output = true }).output:find('task refused: 1 tasks started by agents are still running (mcp.max_tasks is 1)', 1, true)",
            WAIT,
        )
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(w.nvim.lua("return #_G.boo_tasks").await, 1);
    w.nvim.quit().await;
}

#[tokio::test]
async fn a_task_in_a_new_session_gets_its_own_worktree() {
    let w = World::start().await;
    record_tasks(&w).await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    let first = w
        .nvim
        .wait_for("the session", "require('boo').status().session", WAIT)
        .await;
    w.nvim
        .lua(r#"require('boo').send('split off [fake:tool boo_boo_new_task {"prompt":"hello elsewhere","where":"session"}]')"#)
        .await;
    let session = w
        .nvim
        .wait_for(
            "the BooTask event",
            "_G.boo_tasks[1] and _G.boo_tasks[1].session",
            WAIT,
        )
        .await;
    assert_ne!(session, first);
    wait_stored(&w, "the answer in the new session", "Echo: hello elsewhere").await;
    let conn = rusqlite::Connection::open(w.db()).expect("db");
    let paths: Vec<(i64, String)> = conn
        .prepare("SELECT session_id, path FROM worktrees ORDER BY id")
        .expect("sql")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("rows")
        .filter_map(Result::ok)
        .collect();
    assert_eq!(paths.len(), 2, "{paths:?}");
    assert_ne!(paths[0].1, paths[1].1);
    assert!(paths.iter().any(|(s, _)| Some(*s) == session.as_i64()));
    // The user's session stays the current one.
    assert_eq!(
        w.nvim.lua("return require('boo').status().session").await,
        first
    );
    w.nvim.quit().await;
}

#[tokio::test]
async fn without_mcp_the_agent_has_no_boo_tools() {
    let w = World::start_with(boo_testkit::world::WorldOptions {
        config: Some(serde_json::json!({ "mcp": { "enabled": false } })),
        ..Default::default()
    })
    .await;
    record_tasks(&w).await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    w.nvim
        .lua(r#"require('boo').send('delegate [fake:tool boo_boo_new_task {"prompt":"hello sub"}]')"#)
        .await;
    w.wait_transcript("the turn's end", "Tool finished").await;
    w.nvim
        .wait_for("idle", "not require('boo').status().busy", WAIT)
        .await;
    assert_eq!(w.nvim.lua("return #_G.boo_tasks").await, 0);
    assert!(!stored_texts(&w.db())
        .iter()
        .any(|t| t.contains("Echo: hello sub")));
    w.nvim.quit().await;
}
