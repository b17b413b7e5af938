//! Rendering with a UI attached (this client is a 200x50 `ext_linegrid` UI, so Neovim redraws
//! as on a screen): markdown of a streamed answer, its fenced `lua` block highlighted by the lua
//! parser, reasoning folds after streaming and after a restart, and a scrolled-up window keeping
//! its view while the stream goes on. Real Neovim, boocoder, opencode; only the model is fake.

use std::path::{Path, PathBuf};
use std::time::Duration;

use boo_testkit::fake_model::FakeModel;
use boo_testkit::nvim::{Nvim, NvimOptions};
use boo_testkit::opencode::{OpencodeEnv, SandboxOptions};
use boo_testkit::repo;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

async fn start(dir: &Path, env: &OpencodeEnv) -> Nvim {
    let project = dir.join("project");
    if !project.exists() {
        repo::sample(&project);
    }
    let nvim = Nvim::start_with(NvimOptions {
        cwd: Some(project),
        env: env.vars().to_vec(),
        config: json!({
            "store": { "path": dir.join("boo.db").display().to_string() },
            "worktree": { "dir": dir.join("worktrees").display().to_string() },
        }),
    })
    .await;
    nvim.ui_attach(200, 50).await;
    nvim.cmd("Boo").await.expect(":Boo");
    nvim.wait_for(
        "the chat's window",
        &format!("(function() {WIN} return win ~= nil end)()"),
        WAIT,
    )
    .await;
    nvim
}

/// Lua returning the transcript window and buffer (`local win, buf = ...`).
const WIN: &str = "local win, buf
  for _, w in ipairs(vim.api.nvim_list_wins()) do
    local b = vim.api.nvim_win_get_buf(w)
    if vim.bo[b].filetype == 'boo' then win, buf = w, b end
  end";

/// The 0-based row of the last transcript line starting with `prefix`, or -1. (The reasoning
/// echoes the prompt too; the answer comes after it.)
async fn row(nvim: &Nvim, prefix: &str) -> i64 {
    nvim.lua_with(
        &format!(
            "{WIN}
             local found = -1
             for i, l in ipairs(vim.api.nvim_buf_get_lines(buf, 0, -1, false)) do
               if vim.startswith(l, ...) then found = i - 1 end
             end
             return found"
        ),
        vec![json!(prefix)],
    )
    .await
    .as_i64()
    .unwrap_or(-1)
}

/// Highlight groups the decoration provider draws on a row.
async fn groups(nvim: &Nvim, r: i64) -> Vec<String> {
    let v = nvim
        .lua_with(
            &format!(
                "{WIN}
                 local chat = require('boo.ui.chat')
                 local out = {{}}
                 for _, m in ipairs(chat.row_marks(chat.chats[chat.by_buf[buf]], buf, ...)) do
                   table.insert(out, m[3])
                 end
                 return out"
            ),
            vec![json!(r)],
        )
        .await;
    serde_json::from_value(v).unwrap_or_default()
}

/// What the screen shows for a 0-based buffer row of the transcript window (after a redraw),
/// trailing blanks trimmed.
async fn screen_row(nvim: &Nvim, r: i64) -> String {
    let v = nvim
        .lua_with(
            &format!(
                "{WIN}
                 local top_row = ... + 1
                 vim.api.nvim_win_call(win, function() vim.fn.winrestview({{ topline = top_row }}) end)
                 vim.cmd('redraw')
                 local at = vim.fn.screenpos(win, top_row, 1)
                 local cells = {{}}
                 for c = 0, vim.api.nvim_win_get_width(win) - 1 do
                   cells[#cells + 1] = vim.fn.screenstring(at.row, at.col + c)
                 end
                 return vim.trim(table.concat(cells))"
            ),
            vec![json!(r)],
        )
        .await;
    v.as_str().unwrap_or_default().to_string()
}

/// (foldclosed, foldclosedend) of a 0-based row in the transcript window, 1-based as Vim says.
async fn fold(nvim: &Nvim, r: i64) -> (i64, i64) {
    let v = nvim
        .lua_with(
            &format!(
                "{WIN}
                 local l = ... + 1
                 return vim.api.nvim_win_call(win, function()
                   return {{ vim.fn.foldclosed(l), vim.fn.foldclosedend(l) }}
                 end)"
            ),
            vec![json!(r)],
        )
        .await;
    (v[0].as_i64().unwrap_or(-2), v[1].as_i64().unwrap_or(-2))
}

const PROMPT: &str =
    "Here is code:\n```lua\nlocal answer = 42\n```\n- item `one` and **two**\n## Done";

async fn check_answer(nvim: &Nvim, what: &str) {
    let code = row(nvim, "local answer = 42").await;
    assert!(
        code > 0,
        "{what}: no code line\n{}",
        nvim.transcript().await
    );
    let g = groups(nvim, code).await;
    assert!(
        g.iter().any(|h| h == "@keyword.lua"),
        "{what}: lua highlights of the block: {g:?}"
    );
    let item = row(nvim, "- item").await;
    let g = groups(nvim, item).await;
    assert!(
        g.contains(&"BooMdList".to_string()) && g.contains(&"BooMdCodeSpan".to_string()),
        "{what}: {g:?}"
    );
    // On screen, the code span's backticks and the stars are concealed (the row is not the
    // cursor's).
    let shown = screen_row(nvim, item).await;
    assert_eq!(
        shown, "- item one and two",
        "{what}: concealed markup on screen"
    );
    // The reasoning block: its header starts a closed fold that ends at its last body line.
    // Its body is the 6 lines of "Thinking about: <prompt>".
    let header = row(nvim, "▸ Reasoning").await;
    assert!(header >= 0, "{what}: no reasoning header");
    assert_eq!(
        fold(nvim, header).await,
        (header + 1, header + 7),
        "{what}: the reasoning fold\n{}",
        nvim.transcript().await
    );
}

#[tokio::test]
async fn streamed_markdown_folds_and_view_with_a_ui_attached() {
    let model = FakeModel::start();
    let env = OpencodeEnv::new(&model, &SandboxOptions::default());
    let tmp = tempfile::Builder::new()
        .prefix("boo-render-")
        .tempdir()
        .expect("tmp");
    let dir: PathBuf = tmp.path().to_path_buf();
    let nvim = start(&dir, &env).await;
    nvim.lua_with(
        "local chat_ui = require('boo.ui.chat')
         local chat = next(chat_ui.chats)
         vim.api.nvim_buf_set_lines(chat_ui.chats[chat].input, 0, -1, false, vim.split(..., '\\n'))
         require('boo').send_input(chat)",
        vec![json!(PROMPT)],
    )
    .await;
    nvim.wait_for(
        "the echoed answer with its last line",
        &format!("(function() {WIN} local n = 0 for _, l in ipairs(vim.api.nvim_buf_get_lines(buf, 0, -1, false)) do if l == '## Done' then n = n + 1 end end return n == 2 end)()"),
        WAIT,
    )
    .await;
    check_answer(&nvim, "after streaming").await;

    // Scrolled up: the view stays while another answer streams.
    let before = nvim
        .lua(&format!(
            "{WIN} vim.api.nvim_win_set_cursor(win, {{ 1, 0 }})
             return vim.api.nvim_win_call(win, vim.fn.winsaveview)"
        ))
        .await;
    nvim.cmd("Boo send more [fake:long 400 2]")
        .await
        .expect("send");
    nvim.wait_transcript("the long answer", "chunk-399", WAIT)
        .await;
    let after = nvim
        .lua(&format!(
            "{WIN} return vim.api.nvim_win_call(win, vim.fn.winsaveview)"
        ))
        .await;
    assert_eq!(
        (&before["lnum"], &before["topline"]),
        (&after["lnum"], &after["topline"]),
        "the scrolled-up window kept its view"
    );
    check_answer(&nvim, "after a later stream").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    nvim.quit().await;

    let nvim = start(&dir, &env).await;
    nvim.wait_transcript("the restored transcript", "chunk-399", WAIT)
        .await;
    check_answer(&nvim, "after a restart").await;
    nvim.quit().await;
}

/// A restored transcript of some 12,000 lines: the open sends the markdown of its end with the
/// lines (the window shows the end) and the rest in later frames, so the top is highlighted
/// (and concealed) a little later, once on screen.
#[tokio::test]
async fn a_long_restored_transcript_gets_its_markdown_from_the_end_then_the_rest() {
    use boocoder::model::{ItemKind, TranscriptItem};
    use boocoder::store::Store;
    let model = FakeModel::start();
    let env = OpencodeEnv::new(&model, &SandboxOptions::default());
    let tmp = tempfile::Builder::new()
        .prefix("boo-render-long-")
        .tempdir()
        .expect("tmp");
    let dir: PathBuf = tmp.path().to_path_buf();
    let nvim = start(&dir, &env).await;
    let chat = nvim
        .lua("return next(require('boo.ui.chat').chats)")
        .await
        .as_i64()
        .expect("chat id");
    nvim.quit().await;
    let store = Store::open(dir.join("boo.db")).await.expect("store");
    let mut seq = store.next_seq(chat).await.expect("seq");
    let answer: String = (0..1000)
        .map(|l| format!("- line {l} with `code` and **bold**\n"))
        .collect();
    for _ in 0..12 {
        store
            .put_item(TranscriptItem {
                chat_id: chat,
                seq,
                kind: ItemKind::Text,
                part_id: None,
                content: answer.clone(),
                meta: json!({}),
            })
            .expect("put");
        seq += 1;
    }
    store.flush().await.expect("flush");
    store.close().await.expect("close");

    let nvim = start(&dir, &env).await;
    nvim.wait_for(
        "the restored lines",
        &format!("(function() {WIN} return vim.api.nvim_buf_line_count(buf) > 12000 end)()"),
        WAIT,
    )
    .await;
    let first = row(&nvim, "- line 0 ").await;
    let last = row(&nvim, "- line 999 ").await;
    assert!(first >= 0 && last > 11_000, "rows {first} {last}");
    assert!(
        groups(&nvim, last)
            .await
            .contains(&"BooMdStrong".to_string()),
        "the end is highlighted with the lines"
    );
    // The first item's markdown follows within a few frames; then the top shows concealed.
    nvim.wait_for(
        "the top's markdown",
        &format!(
            "(function() {WIN} local chat = require('boo.ui.chat')
               for _, m in ipairs(chat.row_marks(chat.chats[chat.by_buf[buf]], buf, {first})) do
                 if m[3] == 'BooMdStrong' then return true end
               end
               return false end)()"
        ),
        WAIT,
    )
    .await;
    assert_eq!(
        screen_row(&nvim, first).await,
        "- line 0 with code and bold"
    );
    nvim.quit().await;
}
