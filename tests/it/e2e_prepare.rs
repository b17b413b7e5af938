//! A new session is prepared while the user types: the real Neovim, boocoder, `opencode serve`
//! and git, the scripted model. In a generated repository large enough that checking out its
//! worktree takes a while, a prompt sent right after `:Boo` shows the checkout's progress and is
//! delivered once the worktree is there, exactly once.

use std::time::Duration;

use boo_testkit::dir::TestDir;
use boo_testkit::fake_model::FakeModel;
use boo_testkit::nvim::{Nvim, NvimOptions};
use boo_testkit::opencode::{OpencodeEnv, SandboxOptions};
use boo_testkit::repo;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);
/// Enough files that the checkout outlasts sending the prompt by far. opencode's own snapshot of
/// the directory is switched off: it would only add time (seconds for each thousand files).
const FILES: usize = 8_000;

/// Records, every 5 ms inside Neovim, the end-of-line statuses shown on prompts (the status of a
/// waiting prompt is drawn as virtual text) into `_G.seen_status`.
const WATCH_STATUS: &str = "_G.seen_status = {}
  local ns = require('boo.ui.chat').ns
  _G.status_timer = vim.uv.new_timer()
  _G.status_timer:start(0, 5, vim.schedule_wrap(function()
    for _, b in ipairs(vim.api.nvim_list_bufs()) do
      if vim.api.nvim_buf_is_loaded(b) and vim.bo[b].filetype == 'boo' then
        for _, m in ipairs(vim.api.nvim_buf_get_extmarks(b, ns, 0, -1, { details = true })) do
          for _, chunk in ipairs(m[4].virt_text or {}) do
            local t = vim.trim(chunk[1])
            if _G.seen_status[#_G.seen_status] ~= t then table.insert(_G.seen_status, t) end
          end
        end
      end
    end
  end))";

#[tokio::test]
async fn a_prompt_sent_while_the_worktree_is_prepared_shows_progress_and_is_delivered_once() {
    let model = FakeModel::start();
    let env = OpencodeEnv::new(
        &model,
        &SandboxOptions {
            extra_config: Some(json!({"snapshot": false})),
            ..Default::default()
        },
    );
    let tmp = TestDir::new("boo-prepare-");
    let project = repo::generate(&tmp.path().join("project"), FILES);
    let nvim = Nvim::start_with(NvimOptions {
        cwd: Some(project),
        env: env.vars().to_vec(),
        config: json!({
            "store": { "path": tmp.path().join("boo.db").display().to_string() },
            "worktree": { "dir": tmp.path().join("worktrees").display().to_string() },
        }),
    })
    .await;
    nvim.lua(WATCH_STATUS).await;
    nvim.cmd("Boo").await.expect(":Boo");
    nvim.cmd("Boo send hello there").await.expect("send");
    let info = nvim
        .lua("return require('boo.rpc').request('review_info', { cwd = vim.fn.getcwd() })")
        .await;
    assert!(
        !info["worktree"].is_string(),
        "the worktree was ready before the prompt: make FILES larger ({info})"
    );

    let text = nvim
        .wait_transcript("the answer", "Echo: hello there", WAIT)
        .await;
    nvim.wait_for("idle", "not require('boo').status().busy", WAIT)
        .await;
    let text = if text.contains("(running)") {
        nvim.transcript().await
    } else {
        text
    };
    assert_eq!(text.matches("> hello there").count(), 1, "{text}");
    assert_eq!(text.matches("Echo: hello there").count(), 1, "{text}");
    let asked = model
        .chat_requests()
        .iter()
        .filter(|r| !r.is_title && r.last_user_text.as_deref() == Some("hello there"))
        .count();
    assert_eq!(asked, 1, "the model got the prompt once");

    nvim.lua("_G.status_timer:stop()").await;
    let seen: Vec<String> =
        serde_json::from_value(nvim.lua("return _G.seen_status").await).expect("statuses");
    let counts: Vec<(usize, usize)> = seen
        .iter()
        .filter_map(|s| s.strip_prefix("preparing worktree… "))
        .filter_map(|s| s.strip_suffix(" files"))
        .filter_map(|s| s.split_once('/'))
        .filter_map(|(a, b)| {
            Some((
                a.replace(',', "").parse().ok()?,
                b.replace(',', "").parse().ok()?,
            ))
        })
        .collect();
    assert!(!counts.is_empty(), "no progress line shown: {seen:?}");
    assert!(
        counts
            .iter()
            .all(|(done, total)| *total == FILES && done <= total),
        "{seen:?}"
    );
    assert!(
        counts.windows(2).all(|w| w[0].0 <= w[1].0),
        "progress only grows: {seen:?}"
    );
    // Once delivered, the prompt carries no status any more.
    let last = nvim
        .lua(
            "local ns = require('boo.ui.chat').ns
         for _, b in ipairs(vim.api.nvim_list_bufs()) do
           if vim.bo[b].filetype == 'boo' then
             for _, m in ipairs(vim.api.nvim_buf_get_extmarks(b, ns, 0, -1, { details = true })) do
               if m[4].virt_text then return m[4].virt_text[1][1] end
             end
           end
         end
         return ''",
        )
        .await;
    assert_eq!(last, "", "statuses seen: {seen:?}");
    nvim.quit().await;
}

/// Opens a chat, waits (as a user typing) until the opencode server is ready for the
/// worktree, checking nothing was prompted meanwhile, then times two answers.
async fn first_and_second_answer() -> (Duration, Duration) {
    let w = boo_testkit::world::World::start().await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    let deadline = std::time::Instant::now() + WAIT;
    while !w.nvim.log().contains("opencode ready for the directory") {
        assert!(
            std::time::Instant::now() < deadline,
            "opencode was not started at chat open:\n{}",
            w.nvim.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        w.model.chat_requests().is_empty(),
        "nothing was prompted yet (the warm-up's model is not this one)"
    );
    let log = w.nvim.log();
    let ready = log
        .lines()
        .find(|l| l.contains("opencode ready for the directory"))
        .unwrap_or_default();
    assert!(ready.contains("warmed"), "no warm-up: {ready}");
    let mut took = Vec::new();
    for (prompt, answer) in [("first", "Echo: first"), ("second", "Echo: second")] {
        let t = std::time::Instant::now();
        w.nvim
            .cmd(&format!("Boo send {prompt}"))
            .await
            .expect("send");
        w.nvim.wait_transcript("the answer", answer, WAIT).await;
        took.push(t.elapsed());
        w.nvim
            .wait_for("idle", "not require('boo').status().busy", WAIT)
            .await;
    }
    // The warm-up's scratch session left nothing in the chat.
    let users = w
        .nvim
        .lua(
            "local n = 0
             for _, b in ipairs(vim.api.nvim_list_bufs()) do
               if vim.bo[b].filetype == 'boo' then
                 for _, l in ipairs(vim.api.nvim_buf_get_lines(b, 0, -1, false)) do
                   if l:find('warm%-up') then n = n + 1 end
                 end
               end
             end
             return n",
        )
        .await;
    assert_eq!(users, serde_json::json!(0), "the warm-up showed in a chat");
    eprintln!("first answer {:?}, second {:?}", took[0], took[1]);
    (took[0], took[1])
}

/// The opencode server starts, and loads the worktree's instance, when the chat opens: before
/// the first prompt is sent.
#[tokio::test]
async fn the_server_is_ready_for_the_worktree_before_the_first_prompt() {
    let (first, second) = first_and_second_answer().await;
    assert!(first > Duration::ZERO && second > Duration::ZERO);
}

/// A timed check, so not run by default (the bench `session_new` prints the figure): with the
/// warm-up prompt (`agent::opencode::warm`) the first answer is about 0.7-1.0 s, the second
/// 0.3-0.5 s; without it the first was 1.8-2.7 s. Run it after an opencode upgrade.
#[tokio::test]
#[ignore]
async fn the_first_answer_after_boo_is_no_slower_than_the_second() {
    let (first, second) = first_and_second_answer().await;
    assert!(
        first <= second + Duration::from_secs(1),
        "first answer {first:?}, second {second:?}"
    );
}
