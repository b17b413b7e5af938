//! Composing prompts end to end (real Neovim, boocoder, `opencode serve`; scripted model):
//! `@` file mentions completed and sent as file parts, `#` editor context, bad mentions.

use std::sync::Arc;
use std::time::Duration;

use boo_testkit::dir::TestDir;
use boo_testkit::repo;
use boo_testkit::world::{World, WorldOptions};

const WAIT: Duration = Duration::from_secs(60);

/// `src/app.py` has one distinct line per number (`alpha7 = 7`), so a range is checkable.
fn project(tmp: &TestDir) {
    let app: String = (1..=30).map(|i| format!("alpha{i} = {i}\n")).collect();
    let dir = repo::init(
        &tmp.path().join("project"),
        &[
            ("README.md", "# sample\n\nA tiny project for boo.nvim.\n"),
            ("src/app.py", &app),
            (
                "src/main.py",
                "def greet(name):\n    return 'hello ' + name\n",
            ),
            ("blob.bin", "ab\0cd"),
            // With its `$schema`: opencode writes one into a project config that lacks it when
            // it loads the directory, which would be a pending change of the session.
            (
                "opencode.json",
                r#"{"$schema": "https://opencode.ai/config.json", "command": {"greet-cmd": {"description": "greets someone", "template": "Say hello to $ARGUMENTS politely"}}}"#,
            ),
        ],
    );
    // A real 1x1 PNG (not text: it must go as an image, not be refused as binary).
    std::fs::write(dir.join("logo.png"), PNG).expect("write png");
    repo::git(&dir, &["add", "logo.png"]);
    repo::git(&dir, &["commit", "-q", "-m", "logo"]);
}

const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

async fn world() -> World {
    let tmp = Arc::new(TestDir::new("boo-compose-"));
    project(&tmp);
    let w = World::start_with(WorldOptions {
        tmp: Some(tmp),
        ..Default::default()
    })
    .await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    w.nvim
        .wait_for(
            "the session's worktree",
            "require('boo').status().dir ~= nil",
            WAIT,
        )
        .await;
    w
}

/// Puts `text` in the current chat's input and sends it as <CR> would.
async fn send_input(w: &World, text: &str) {
    w.nvim
        .lua_with(
            "local chat = require('boo').status().chat
             local view = require('boo.ui.chat').chats[chat]
             vim.api.nvim_buf_set_lines(view.input, 0, -1, false, vim.split(..., '\\n'))
             require('boo').send_input(chat)",
            vec![text.into()],
        )
        .await;
}

fn input_expr() -> &'static str {
    "table.concat(vim.api.nvim_buf_get_lines(require('boo.ui.chat').chats[require('boo').status().chat].input, 0, -1, false), '\\n')"
}

/// The text of the first chat request whose last user message contains `needle`.
async fn request_with(w: &World, needle: &str) -> String {
    let start = std::time::Instant::now();
    while start.elapsed() < WAIT {
        if let Some(t) = w
            .model
            .chat_requests()
            .into_iter()
            .filter_map(|r| r.last_user_text)
            .find(|t| t.contains(needle))
        {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "no request with {needle:?}: {:?}\n{}",
        w.model.chat_requests(),
        w.nvim.log()
    );
}

#[tokio::test]
async fn file_mentions_are_completed_and_sent_as_file_parts() {
    let w = world().await;
    // The input has the cursor; entering insert mode lists the worktree's files.
    w.nvim.cmd("startinsert").await.expect("insert");
    w.nvim
        .wait_for(
            "the file list",
            "#require('boo.compose.complete').files(require('boo').status().chat) > 0",
            WAIT,
        )
        .await;
    w.nvim
        .lua("vim.api.nvim_feedkeys('@src/a' .. vim.keycode('<C-x><C-o>'), 'nt', false)")
        .await;
    let words = w
        .nvim
        .wait_for(
            "the completion menu",
            "(function() local i = vim.fn.complete_info({ 'items' }).items
               if #i == 0 then return nil end
               return vim.tbl_map(function(x) return x.word end, i) end)()",
            WAIT,
        )
        .await;
    assert_eq!(words[0], "@src/app.py", "{words}");
    // The nvim-cmp and blink.cmp sources give the same items, replacing the typed word.
    let cmp = w
        .nvim
        .lua(
            "local chat = require('boo').status().chat
             local got
             require('boo.compose.blink').new():get_completions(
               { line = 'see @src/a', cursor = { 1, 10 }, bufnr = vim.api.nvim_get_current_buf() },
               function(r) got = r.items end)
             local a = require('boo.compose.cmp').lsp_items('see @src/a', 10, 1, chat)[1]
             return { a.label, a.textEdit.range.start.character, got[1].label }",
        )
        .await;
    assert_eq!(cmp, serde_json::json!(["@src/app.py", 4, "@src/app.py"]));
    // `#` offers the context sources.
    w.nvim
        .lua("vim.api.nvim_feedkeys(vim.keycode('<C-e><C-u>') .. '#dia' .. vim.keycode('<C-x><C-o>'), 'nt', false)")
        .await;
    let words = w
        .nvim
        .wait_for(
            "the # menu",
            "(function() local i = vim.fn.complete_info({ 'items' }).items
               if #i == 0 or i[1].word:sub(1, 1) ~= '#' then return nil end
               return vim.tbl_map(function(x) return x.word end, i) end)()",
            WAIT,
        )
        .await;
    assert!(
        words
            .as_array()
            .is_some_and(|a| a.contains(&"#diagnostics".into())),
        "{words}"
    );
    w.nvim.cmd("stopinsert").await.expect("stopinsert");

    // A range is cut to its lines; a whole file is attached whole.
    send_input(&w, "explain @src/app.py:3-5 and @README.md").await;
    let asked = request_with(&w, "explain").await;
    assert!(
        asked.contains("alpha3 = 3") && asked.contains("alpha5 = 5"),
        "{asked}"
    );
    assert!(
        !asked.contains("alpha2 =") && !asked.contains("alpha6 ="),
        "{asked}"
    );
    assert!(asked.contains("A tiny project for boo.nvim."), "{asked}");
    // The transcript shows each mention compactly, its content folded under it.
    let text = w
        .wait_transcript("the mention blocks", "@src/app.py:3-5")
        .await;
    assert!(text.contains("@README.md (attached)"), "{text}");
    w.nvim
        .wait_for(
            "the input cleared",
            &format!("{} == ''", input_expr()),
            WAIT,
        )
        .await;

    // Bad mentions: one line each, the prompt stays in the input, nothing is sent.
    let before = w.model.chat_requests().len();
    for (prompt, says) in [
        ("look at @nope.py", "@nope.py: no such file"),
        ("look at @src", "@src: is a directory"),
        ("look at @blob.bin", "@blob.bin: binary file"),
        ("look at @../outside.txt", "no such file"),
        (
            "look at @src/app.py:40-50",
            "no such lines (the file has 30)",
        ),
    ] {
        send_input(&w, prompt).await;
        w.nvim
            .wait_for(
                &format!("the line for {prompt:?}"),
                &format!(
                    "vim.api.nvim_exec2('messages', {{ output = true }}).output:find({says:?}, 1, true) ~= nil"
                ),
                WAIT,
            )
            .await;
        assert_eq!(
            w.nvim.lua(&format!("return {}", input_expr())).await,
            prompt
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(w.model.chat_requests().len(), before);
    w.nvim.quit().await;
}

#[tokio::test]
async fn buffer_and_diagnostics_context_carry_unsaved_text_and_diagnostics() {
    let w = world().await;
    // A file window with unsaved edits and a diagnostic set by the test.
    w.nvim
        .lua(
            "vim.cmd('botright split src/main.py')
             vim.api.nvim_buf_set_lines(0, 0, 0, false, { 'UNSAVED_EDIT = 1' })
             local ns = vim.api.nvim_create_namespace('boo-test')
             vim.diagnostic.set(ns, 0, { { lnum = 1, col = 4, message = 'DIAG_MARK undefined name', severity = vim.diagnostic.severity.ERROR, source = 'pyright' } })",
        )
        .await;
    // An uncommitted change of the user's checkout, for `#gitdiff`.
    std::fs::write(
        w.dir.join("project/README.md"),
        "# sample\n\nA tiny project for boo.nvim.\nGITDIFF_LINE\n",
    )
    .expect("write");
    w.nvim
        .cmd("Boo send check #buffer and #diagnostics, #gitdiff #diff")
        .await
        .expect("send");
    let asked = request_with(&w, "check").await;
    assert!(asked.contains("+GITDIFF_LINE"), "{asked}");
    // The session has no pending changes yet.
    assert!(
        asked.contains("#diff: the session's pending changes\">\n(no changes)"),
        "{asked}"
    );
    assert!(asked.contains("UNSAVED_EDIT = 1"), "{asked}");
    assert!(asked.contains("unsaved changes included"), "{asked}");
    assert!(
        asked.contains("src/main.py:2:5: ERROR: DIAG_MARK undefined name [pyright]"),
        "{asked}"
    );
    // The float is still shown (the file window is a split under it).
    let text = w
        .wait_transcript("the context blocks", "#diagnostics (1)")
        .await;
    assert!(text.contains("#buffer src/main.py"), "{text}");
    w.nvim.quit().await;
}

#[tokio::test]
async fn slash_offers_boo_and_opencode_commands_and_runs_opencode_ones_through_it() {
    let w = world().await;
    w.nvim.cmd("startinsert").await.expect("insert");
    // Entering the input lists the agent's commands too.
    w.nvim
        .wait_for(
            "opencode's commands",
            "require('boo.compose.commands').agent(require('boo').status().chat)['greet-cmd'] ~= nil",
            WAIT,
        )
        .await;
    w.nvim
        .lua("vim.api.nvim_feedkeys('/' .. vim.keycode('<C-x><C-o>'), 'nt', false)")
        .await;
    let words = w
        .nvim
        .wait_for(
            "the / menu",
            "(function() local i = vim.fn.complete_info({ 'items' }).items
               if #i == 0 then return nil end
               return vim.tbl_map(function(x) return x.word end, i) end)()",
            WAIT,
        )
        .await;
    let words = words.as_array().cloned().unwrap_or_default();
    for want in ["/new", "/model", "/agent", "/abort", "/diff", "/greet-cmd"] {
        assert!(words.contains(&want.into()), "{want} not in {words:?}");
    }
    w.nvim.cmd("stopinsert").await.expect("stopinsert");
    // An opencode command runs through opencode (its template expanded there).
    send_input(&w, "/greet-cmd Bob").await;
    let asked = request_with(&w, "Say hello to Bob politely").await;
    assert!(!asked.contains("/greet-cmd"), "{asked}");
    w.wait_transcript("the command's answer", "Echo: Say hello to Bob")
        .await;
    // A boo command runs in the editor: `/new` opens a new tab, nothing is sent.
    let chat = w.nvim.lua("return require('boo').status().chat").await;
    let before = w.model.chat_requests().len();
    send_input(&w, "/new").await;
    w.nvim
        .wait_for(
            "a new chat",
            &format!("require('boo').status().chat ~= {chat}"),
            WAIT,
        )
        .await;
    assert_eq!(w.model.chat_requests().len(), before);
    w.nvim.quit().await;
}

#[tokio::test]
async fn history_and_drafts_survive_tab_switches_and_a_restart() {
    let w = world().await;
    for p in ["first prompt", "second prompt"] {
        send_input(&w, p).await;
        w.wait_transcript("the answer", &format!("Echo: {p}")).await;
        w.nvim
            .wait_for("idle", "not require('boo').status().busy", WAIT)
            .await;
    }
    // A draft, typed, survives switching tabs.
    w.nvim
        .lua("vim.api.nvim_feedkeys('idraft not sent' .. vim.keycode('<Esc>'), 'nt', false)")
        .await;
    let input = format!("return {}", input_expr());
    w.nvim
        .wait_for(
            "the draft typed",
            &format!("{} == 'draft not sent'", input_expr()),
            WAIT,
        )
        .await;
    let chat = w.nvim.lua("return require('boo').status().chat").await;
    w.nvim.cmd("Boo new").await.expect("new");
    w.nvim
        .wait_for(
            "the new tab",
            &format!("require('boo').status().chat ~= {chat}"),
            WAIT,
        )
        .await;
    w.nvim.cmd("Boo prev").await.expect("prev");
    w.nvim
        .wait_for(
            "back",
            &format!("require('boo').status().chat == {chat}"),
            WAIT,
        )
        .await;
    assert_eq!(w.nvim.lua(&input).await, "draft not sent");
    // Saved within a second; then a restart brings back the draft and the history.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let w = w.restart().await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    w.nvim
        .wait_for(
            "the chat",
            &format!("require('boo').status().chat == {chat}"),
            WAIT,
        )
        .await;
    w.nvim
        .wait_for(
            "the draft back",
            &format!("{} == 'draft not sent'", input_expr()),
            WAIT,
        )
        .await;
    let press = |keys: &'static str| {
        let nvim = &w.nvim;
        async move {
            nvim.lua(&format!(
                "vim.api.nvim_feedkeys(vim.keycode('{keys}'), 'mt', false)"
            ))
            .await;
        }
    };
    press("<Esc><Up>").await;
    w.nvim
        .wait_for(
            "the last prompt",
            &format!("{} == 'second prompt'", input_expr()),
            WAIT,
        )
        .await;
    press("<Up>").await;
    w.nvim
        .wait_for(
            "the one before",
            &format!("{} == 'first prompt'", input_expr()),
            WAIT,
        )
        .await;
    press("<Down><Down>").await;
    w.nvim
        .wait_for(
            "the draft again",
            &format!("{} == 'draft not sent'", input_expr()),
            WAIT,
        )
        .await;
    // Insert mode: <C-p>.
    press("A<C-p>").await;
    w.nvim
        .wait_for(
            "<C-p>",
            &format!("{} == 'second prompt'", input_expr()),
            WAIT,
        )
        .await;
    w.nvim.quit().await;
}

#[tokio::test]
async fn an_image_mention_reaches_the_model_as_an_image_part() {
    let w = world().await;
    send_input(&w, "what is in @logo.png").await;
    let start = std::time::Instant::now();
    loop {
        let reqs = w.model.chat_requests();
        let r = reqs.iter().find(|r| {
            r.last_user_text
                .as_deref()
                .is_some_and(|t| t.contains("what is in"))
        });
        if let Some(r) = r {
            assert!(r.user_images >= 1, "{r:?}");
            break;
        }
        assert!(start.elapsed() < WAIT, "no request: {reqs:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = w
        .wait_transcript("the image block", "@logo.png (attached)")
        .await;
    assert!(text.contains("image, 1 KB"), "{text}");
    w.nvim
        .wait_for("idle", "not require('boo').status().busy", WAIT)
        .await;

    // A pasted image is kept beside the store and mentioned as `@paste:{name}` (the clipboard
    // tools need a display, which tests do not have: the file is put where a paste saves it).
    let dir = w
        .nvim
        .lua("return require('boo.compose.paste').dir()")
        .await;
    assert_eq!(dir, w.dir.join("pastes").display().to_string());
    std::fs::create_dir_all(w.dir.join("pastes")).expect("mkdir");
    std::fs::write(w.dir.join("pastes/paste-1.png"), PNG).expect("write");
    w.nvim
        .lua(
            "local chat = require('boo').status().chat
             local input = require('boo.ui.chat').chats[chat].input
             vim.api.nvim_buf_set_lines(input, 0, -1, false, { 'describe' }) -- the cursor is at its start
             require('boo.compose.paste').insert(chat, '@paste:paste-1.png ')
             require('boo').send_input(chat)",
        )
        .await;
    let start = std::time::Instant::now();
    while !w.model.chat_requests().iter().any(|r| {
        r.user_images >= 2
            && r.last_user_text
                .as_deref()
                .is_some_and(|t| t.contains("@paste:paste-1.png describe"))
    }) {
        assert!(
            start.elapsed() < WAIT,
            "no pasted image: {:?}",
            w.model.chat_requests()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Without a clipboard tool (or a display), one line says so.
    w.nvim
        .lua("vim.env.PATH = '/nonexistent'; require('boo.compose.paste').image(require('boo').status().chat)")
        .await;
    w.nvim
        .wait_for(
            "the clipboard line",
            "vim.api.nvim_exec2('messages', { output = true }).output:find('no clipboard tool found', 1, true) ~= nil",
            WAIT,
        )
        .await;
    w.nvim.quit().await;
}
