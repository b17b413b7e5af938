//! Markdown renderers on transcripts: render-markdown.nvim (here a stand-in module with its
//! public API, since the plugin is not installable from the registries the tests reach; the
//! real one is measured by `cargo bench --bench ui_stream` with `BOO_BENCH_RTP`) is paused on a
//! chat's buffer while its answer streams and resumed when the turn ends; a transcript past
//! `ui.renderers_max_lines` is left to boo's highlighting.

use std::time::Duration;

use boo_testkit::world::World;

const WAIT: Duration = Duration::from_secs(60);

/// Installs the stand-in: every `buf_disable` / `buf_enable` is recorded in `_G.calls` with
/// its buffer and whether the answer's last chunk was there yet.
async fn stand_in(nvim: &boo_testkit::nvim::Nvim) {
    nvim.lua(
        "_G.calls = {}
         local function text(buf)
           return table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), '\\n')
         end
         package.loaded['render-markdown'] = {
           buf_disable = function()
             local b = vim.api.nvim_get_current_buf()
             table.insert(_G.calls, { 'off', b, text(b):find('chunk%-299') ~= nil })
           end,
           buf_enable = function()
             local b = vim.api.nvim_get_current_buf()
             table.insert(_G.calls, { 'on', b, text(b):find('chunk%-299') ~= nil })
           end,
         }",
    )
    .await;
}

/// Opens the chat and streams a 300-chunk answer into it.
async fn first_answer(nvim: &boo_testkit::nvim::Nvim) {
    nvim.cmd("Boo").await.expect(":Boo");
    nvim.cmd("Boo send go [fake:long 300 5]")
        .await
        .expect("send");
    nvim.wait_transcript("the whole answer", "chunk-299", WAIT)
        .await;
}

async fn chat_buf(nvim: &boo_testkit::nvim::Nvim) -> serde_json::Value {
    nvim.lua("for _, v in pairs(require('boo.ui.chat').chats) do return v.buf end")
        .await
}

async fn idle(nvim: &boo_testkit::nvim::Nvim) {
    nvim.wait_for("idle", "not require('boo').status().busy", WAIT)
        .await;
}

/// Call `i` of the stand-in was `what` ("off"/"on") on `buf`, with the answer there or not.
fn assert_call(
    calls: &serde_json::Value,
    i: usize,
    what: &str,
    buf: &serde_json::Value,
    answer_there: bool,
    why: &str,
) {
    assert_eq!(calls[i][0], what, "{calls}");
    assert_eq!(calls[i][1], *buf, "on the chat's buffer: {calls}");
    assert_eq!(calls[i][2], answer_there, "{why}: {calls}");
}

#[tokio::test]
async fn a_renderer_is_paused_while_the_answer_streams_and_resumed_after() {
    let w = World::start().await;
    let nvim = &w.nvim;
    stand_in(nvim).await;
    first_answer(nvim).await;
    let calls = nvim
        .wait_for("the renderer resumed", "#_G.calls >= 2 and _G.calls", WAIT)
        .await;
    let chat_buf = chat_buf(nvim).await;
    assert_call(
        &calls,
        0,
        "off",
        &chat_buf,
        false,
        "paused before the answer came",
    );
    assert_call(
        &calls,
        1,
        "on",
        &chat_buf,
        true,
        "resumed once the answer was there",
    );
    // Turned off by the option: nothing is paused.
    nvim.lua("_G.calls = {} require('boo').setup({ ui = { pause_renderers = false } })")
        .await;
    nvim.cmd("Boo send again [fake:long 50 5]")
        .await
        .expect("send");
    nvim.wait_transcript("the second answer", "chunk-49", WAIT)
        .await;
    idle(nvim).await;
    assert_eq!(nvim.lua("return #_G.calls").await, 0);
    w.nvim.quit().await;
}

#[tokio::test]
async fn a_transcript_past_the_line_limit_is_left_to_boos_highlighting() {
    let w = World::start().await;
    let nvim = &w.nvim;
    stand_in(nvim).await;
    // Not paused for the stream: only the length turns the renderer off.
    nvim.lua(
        "require('boo').setup({ ui = { pause_renderers = false, renderers_max_lines = 20 } })",
    )
    .await;
    first_answer(nvim).await;
    idle(nvim).await;
    let calls = nvim.lua("return _G.calls").await;
    let chat_buf = chat_buf(nvim).await;
    assert_eq!(calls.as_array().map(Vec::len), Some(1), "{calls}");
    assert_call(
        &calls,
        0,
        "off",
        &chat_buf,
        false,
        "turned off before the long lines arrived",
    );
    // The next turn's end does not turn it back on either.
    nvim.cmd("Boo send again [fake:long 20 5]")
        .await
        .expect("send");
    // Its last chunk, chunk-19, is in the transcript twice once it is there.
    nvim.wait_for(
        "the second answer",
        "(function() for _, v in pairs(require('boo.ui.chat').chats) do
           local t = table.concat(vim.api.nvim_buf_get_lines(v.buf, 0, -1, false), '\\n')
           return select(2, t:gsub('chunk%-19\\n', '')) >= 2 end end)()",
        WAIT,
    )
    .await;
    idle(nvim).await;
    assert_eq!(nvim.lua("return #_G.calls").await, 1);
    w.nvim.quit().await;
}
