//! `:Boo arena` end to end: the real Neovim, the real opencode, the scripted model answering by
//! model name (`[fake:modelwrite]`: model `ok` writes `ok.txt`), real git worktrees and the
//! real check command.

use std::time::{Duration, Instant};

use boo_testkit::opencode::SandboxOptions;
use boo_testkit::repo::git;
use boo_testkit::world::{World, WorldOptions};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(90);

fn task_creators(db: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).expect("db");
    let mut st = conn
        .prepare("SELECT creator FROM tasks ORDER BY id")
        .expect("sql");
    st.query_map([], |r| r.get(0))
        .expect("rows")
        .filter_map(Result::ok)
        .collect()
}

async fn arena_lines(w: &World) -> Vec<String> {
    let v = w
        .nvim
        .lua(
            "local b = vim.fn.bufnr('boo://arena/1')
             if b == -1 then return {} end
             return vim.api.nvim_buf_get_lines(b, 0, -1, false)",
        )
        .await;
    serde_json::from_value(v).unwrap_or_default()
}

/// The repository's worktrees but the spare one boo keeps ready for the next session.
fn worktrees(repo: &std::path::Path) -> Vec<String> {
    git(repo, &["worktree", "list", "--porcelain"])
        .lines()
        .filter_map(|l| l.strip_prefix("worktree "))
        .filter(|p| {
            !p.rsplit('/')
                .next()
                .unwrap_or_default()
                .starts_with("spare-")
        })
        .map(str::to_string)
        .collect()
}

fn branches(repo: &std::path::Path) -> Vec<String> {
    git(
        repo,
        &["branch", "--list", "boo/*", "--format=%(refname:short)"],
    )
    .lines()
    .filter(|b| !b.starts_with("boo/spare-"))
    .map(str::to_string)
    .collect()
}

#[tokio::test]
async fn an_arena_races_three_contestants_checks_them_and_keeps_only_the_winner() {
    let w = World::start_with(WorldOptions {
        sandbox: Some(SandboxOptions {
            models: vec!["ok".into(), "bad".into(), "meh".into()],
            ..Default::default()
        }),
        config: Some(json!({"arena": {
            "contestants": ["opencode:fake/ok", "opencode:fake/bad", "opencode:fake/meh"],
            "check": ["sh", "-c", "test -f ok.txt && echo found ok.txt"],
            "check_timeout": 60,
        }})),
        ..Default::default()
    })
    .await;
    let project = w.dir.join("project");
    w.nvim
        .lua(
            "_G.boo_checks = {}
             vim.api.nvim_create_autocmd('User', { pattern = 'BooArenaCheck',
               callback = function(ev) table.insert(_G.boo_checks, ev.data) end })",
        )
        .await;
    let started = Instant::now();
    w.nvim
        .cmd("Boo arena write your file [fake:modelwrite]")
        .await
        .expect(":Boo arena");
    w.nvim
        .wait_for(
            "the arena view",
            "vim.fn.bufnr('boo://arena/1') ~= -1",
            WAIT,
        )
        .await;
    // With the default limit (3) all three start at once: none waits in the queue.
    let lines = arena_lines(&w).await;
    assert_eq!(
        lines.iter().filter(|l| l.contains(" running ")).count(),
        3,
        "{lines:#?}"
    );
    assert!(lines[3].contains("opencode/fake/ok"), "{lines:#?}");
    w.nvim
        .wait_for("three checks", "#_G.boo_checks == 3", WAIT)
        .await;
    let elapsed = started.elapsed();
    let checks = w.nvim.lua("return _G.boo_checks").await;
    let passed = |i: i64| {
        checks
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["index"] == i)
            .map(|c| c["passed"].clone())
    };
    assert_eq!(passed(1), Some(json!(true)), "{checks}");
    assert_eq!(passed(2), Some(json!(false)), "{checks}");
    assert_eq!(passed(3), Some(json!(false)), "{checks}");
    // Three worktrees besides the user's checkout, each with its own contestant's file.
    let trees = worktrees(&project);
    assert_eq!(trees.len(), 4, "{trees:?}");
    for m in ["ok", "bad", "meh"] {
        let holders: Vec<_> = trees
            .iter()
            .filter(|t| std::path::Path::new(t).join(format!("{m}.txt")).exists())
            .collect();
        assert_eq!(holders.len(), 1, "{m}.txt in {holders:?}");
    }
    assert!(
        !project.join("ok.txt").exists(),
        "the user's checkout untouched"
    );
    let creators = task_creators(&w.db());
    assert_eq!(
        creators.iter().filter(|c| *c == "arena").count(),
        3,
        "{creators:?}"
    );
    // The view shows the outcome and the diffstat.
    let deadline = Instant::now() + WAIT;
    loop {
        let lines = arena_lines(&w).await;
        let ok = lines.iter().any(|l| {
            l.contains("opencode/fake/ok")
                && l.contains("check pass")
                && l.contains("1 file(s) +1 -0")
        }) && lines.iter().filter(|l| l.contains("check fail")).count() == 2;
        if ok {
            break;
        }
        assert!(Instant::now() < deadline, "{lines:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lines = arena_lines(&w).await;
    assert!(!lines[3].contains(" 0 tok"), "usage counted: {lines:#?}");
    // `o`: the check's whole output.
    w.nvim
        .lua("require('boo')._action('arena_action', { arena = 1, index = 1, action = 'output' })")
        .await;
    w.nvim
        .wait_for(
            "the check's output",
            "(function() local b = vim.fn.bufnr('boo://arena-check/1/1')
               return b ~= -1 and vim.api.nvim_buf_get_lines(b, 0, -1, false)[1] == 'found ok.txt' end)()",
            WAIT,
        )
        .await;
    // `w` on the first contestant; the question is answered "remove".
    w.nvim
        .lua(
            "vim.ui.select = function(items, opts, cb)
               _G.boo_asked = opts.prompt
               for _, it in ipairs(items) do
                 if it.value == 'remove' then return cb(it) end
               end
             end
             local win = vim.fn.bufwinid('boo://arena/1')
             vim.api.nvim_set_current_win(win)
             vim.api.nvim_win_set_cursor(win, { 4, 0 })
             vim.cmd('normal w')",
        )
        .await;
    let asked = w.nvim.wait_for("the question", "_G.boo_asked", WAIT).await;
    assert!(
        asked.as_str().is_some_and(|a| a.contains("wins")),
        "{asked}"
    );
    let review = w
        .nvim
        .wait_for(
            "the winner's review",
            "(function()
               for _, b in ipairs(vim.api.nvim_list_bufs()) do
                 if vim.api.nvim_buf_get_name(b):find('^boo://review/') then
                   local text = table.concat(vim.api.nvim_buf_get_lines(b, 0, -1, false), '\\n')
                   if text:find('ok.txt', 1, true) then return text end
                 end
               end
             end)()",
            WAIT,
        )
        .await;
    let review = review.as_str().unwrap_or_default().to_string();
    assert!(
        !review.contains("bad.txt") && !review.contains("meh.txt"),
        "{review}"
    );
    // The losers leave no worktree and no branch.
    let deadline = Instant::now() + WAIT;
    while worktrees(&project).len() != 2 || branches(&project).len() != 1 {
        assert!(
            Instant::now() < deadline,
            "{:?} {:?}\n{}",
            worktrees(&project),
            branches(&project),
            w.nvim.messages().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let left = worktrees(&project);
    assert!(
        std::path::Path::new(&left[1]).join("ok.txt").exists(),
        "{left:?}"
    );
    let session = w.nvim.lua("return require('boo').status().session").await;
    assert!(session.is_number(), "the winner is current: {session}");
    eprintln!("arena of 3: started to 3 checks in {elapsed:?}");
    // Waits for boocoder to end: its background work must not outlive the test's folder.
    w.nvim.quit().await;
}

#[tokio::test]
async fn an_arena_without_contestants_or_with_a_bad_one_is_one_line() {
    let w = World::start_with(WorldOptions {
        config: Some(json!({"arena": {"contestants": ["nope:fake/x"]}})),
        ..Default::default()
    })
    .await;
    w.nvim.cmd("Boo arena hi").await.expect(":Boo arena");
    w.nvim
        .wait_for(
            "the error line",
            "vim.api.nvim_exec2('messages', { output = true }).output:find(\"arena: unknown agent 'nope'\", 1, true)",
            WAIT,
        )
        .await;
    w.nvim.quit().await;
}

#[tokio::test]
async fn an_arena_over_its_limit_queues_and_kept_losers_stay_sessions() {
    let w = World::start_with(WorldOptions {
        sandbox: Some(SandboxOptions {
            models: vec!["ok".into(), "bad".into()],
            ..Default::default()
        }),
        config: Some(json!({"arena": {"limit": 1}})),
        ..Default::default()
    })
    .await;
    let project = w.dir.join("project");
    // Contestants picked for this arena (not a saved set), through the Lua entry point.
    w.nvim
        .lua("require('boo.ui.arena').start('go [fake:modelwrite]', { 'opencode:fake/ok', 'opencode:fake/bad' })")
        .await;
    w.nvim
        .wait_for(
            "the arena view",
            "vim.fn.bufnr('boo://arena/1') ~= -1",
            WAIT,
        )
        .await;
    let lines = arena_lines(&w).await;
    assert!(
        lines[3].contains(" running ") && lines[4].contains(" queued "),
        "{lines:#?}"
    );
    // Without a check command both end as done, one after the other.
    let deadline = Instant::now() + WAIT;
    loop {
        let lines = arena_lines(&w).await;
        if lines.iter().filter(|l| l.contains(" done ")).count() == 2 {
            assert!(
                lines.iter().all(|l| !l.contains("check pass")),
                "{lines:#?}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{lines:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // <CR>: the contestant's transcript, its session current; d: its diff in the review.
    let before = w.nvim.lua("return require('boo').status().session").await;
    w.nvim
        .lua("require('boo')._action('arena_action', { arena = 1, index = 1, action = 'open' })")
        .await;
    w.wait_transcript("the first contestant's transcript", "go [fake:modelwrite]")
        .await;
    let now = w.nvim.lua("return require('boo').status().session").await;
    assert_ne!(now, before);
    w.nvim
        .lua("require('boo')._action('arena_action', { arena = 1, index = 1, action = 'diff' })")
        .await;
    w.nvim
        .wait_for(
            "the first contestant's review",
            "(function()
               for _, b in ipairs(vim.api.nvim_list_bufs()) do
                 if vim.api.nvim_buf_get_name(b):find('^boo://review/') then
                   local text = table.concat(vim.api.nvim_buf_get_lines(b, 0, -1, false), ' ')
                   if text:find('ok.txt', 1, true) then return true end
                 end
               end
             end)()",
            WAIT,
        )
        .await;
    w.nvim
        .lua(
            "vim.ui.select = function(items, opts, cb)
               for _, it in ipairs(items) do
                 if it.value == 'keep' then return cb(it) end
               end
             end
             require('boo')._action('arena_action', { arena = 1, index = 2, action = 'win' })",
        )
        .await;
    w.nvim
        .wait_for(
            "the winner line",
            "vim.api.nvim_exec2('messages', { output = true }).output:find('opencode/fake/bad is the winner', 1, true)",
            WAIT,
        )
        .await;
    // Kept: both worktrees and branches stay.
    assert_eq!(worktrees(&project).len(), 3, "{:?}", worktrees(&project));
    assert_eq!(branches(&project).len(), 2, "{:?}", branches(&project));
    w.nvim.quit().await;
}

#[tokio::test]
async fn without_a_saved_set_the_picker_offers_the_probed_models() {
    let w = World::start_with(WorldOptions {
        sandbox: Some(SandboxOptions {
            models: vec!["ok".into()],
            ..Default::default()
        }),
        ..Default::default()
    })
    .await;
    w.nvim
        .lua(
            "_G.boo_offered = nil
             local calls = 0
             vim.ui.select = function(items, opts, cb)
               calls = calls + 1
               if calls == 1 then
                 _G.boo_offered = items
                 for i, it in ipairs(items) do
                   if it == 'opencode:fake/ok' then return cb(it, i) end
                 end
                 return cb(nil)
               end
               cb(items[1], 1)
             end
             vim.ui.input = function(opts, cb) cb('picked [fake:modelwrite]') end",
        )
        .await;
    w.nvim.cmd("Boo arena").await.expect(":Boo arena");
    let deadline = Instant::now() + WAIT;
    loop {
        let lines = arena_lines(&w).await;
        if lines.len() > 3 && lines[3].contains("opencode/fake/ok") && lines[3].contains(" done ") {
            assert_eq!(lines.len(), 4, "one contestant: {lines:#?}");
            assert!(lines[0].contains("picked"), "{lines:#?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{lines:#?}\noffered: {}\n{}",
            w.nvim.lua("return _G.boo_offered").await,
            w.nvim.messages().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    w.nvim.quit().await;
}
