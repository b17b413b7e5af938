//! End-to-end recovery: the real Neovim with the plugin, the real boocoder (killed with
//! SIGKILL here), the real `opencode serve`, and the scripted model (the only fake).

use std::path::PathBuf;
use std::time::Duration;

use boo_testkit::world::{stored_texts, World};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

/// What the floating chat window shows right now, with its winbar ("" when no float is open).
const FLOAT: &str = "(function()
  for _, w in ipairs(vim.api.nvim_list_wins()) do
    local b = vim.api.nvim_win_get_buf(w)
    if vim.bo[b].filetype == 'boo' and vim.api.nvim_win_get_config(w).relative ~= '' then
      return { text = table.concat(vim.api.nvim_buf_get_lines(b, 0, -1, false), '\\n'), winbar = vim.wo[w].winbar, win = w }
    end
  end
  return { text = '', winbar = '' }
end)()";

#[tokio::test]
async fn after_kill_9_a_send_restarts_the_backend_and_the_open_float_shows_the_answer() {
    let w = World::start().await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    w.nvim.cmd("Boo send first turn").await.expect("send");
    w.nvim
        .wait_transcript("the first answer", "Echo: first turn", WAIT)
        .await;
    w.nvim
        .wait_for("idle", "not require('boo').status().busy", WAIT)
        .await;
    // Two tabs; the first (with the earlier turn) active.
    w.nvim.cmd("Boo new").await.expect("new tab");
    w.nvim.cmd("Boo prev").await.expect("back to tab 1");
    w.nvim
        .wait_for(
            "tab 1 shown with two tabs",
            &format!("(function() local f = {FLOAT}; return f.text:find('Echo: first turn', 1, true) and f.winbar:find('2 chat 2', 1, true) end)()"),
            WAIT,
        )
        .await;
    let before = w.nvim.lua(&format!("return {FLOAT}")).await;
    // What is drawn reaches the store within ~100 ms; a loaded machine can kill faster than
    // that, and this test is about the view coming back, not about that window.
    let t0 = std::time::Instant::now();
    while !stored_texts(&w.db())
        .iter()
        .any(|t| t.contains("Echo: first turn"))
    {
        assert!(
            t0.elapsed() < WAIT,
            "the first answer never reached the store"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let old_pid = w.kill_backend().await;

    // No :Boo first: the send itself restarts the backend, which takes over the open float.
    w.nvim
        .cmd("Boo send hello")
        .await
        .expect("send after crash");
    w.nvim
        .wait_for(
            "the answer in the float",
            &format!("(function() local f = {FLOAT}; return f.text:find('Echo: hello', 1, true) and f end)()"),
            WAIT,
        )
        .await;
    w.nvim
        .wait_for("idle", "not require('boo').status().busy", WAIT)
        .await;
    let shown = w.nvim.lua(&format!("return {FLOAT}")).await;
    let text = shown["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("Echo: first turn") && text.contains("> first turn"),
        "the earlier turn is shown with the answer:\n{text}"
    );
    assert_eq!(
        text.matches("> hello").count(),
        1,
        "the triggering prompt is delivered once:\n{text}"
    );
    // The tabs (left of `%=`) are the same; the usage totals on the right grew by the turn.
    let tabs = |v: &serde_json::Value| {
        let bar = v["winbar"].as_str().unwrap_or_default().to_string();
        let (tabs, info) = bar.split_once("%=").unwrap_or((&bar, ""));
        (tabs.to_string(), info.to_string())
    };
    let ((tabs_now, info_now), (tabs_before, info_before)) = (tabs(&shown), tabs(&before));
    assert_eq!(tabs_now, tabs_before, "same tabs, same active one");
    assert!(
        info_before.contains("1.5k tok") && info_now.contains("3.1k tok"),
        "{info_before} -> {info_now}"
    );
    assert_eq!(shown["win"], before["win"], "the float stayed open");
    assert_ne!(w.backend_pid().await, old_pid, "a new backend");
    // One float, and the crash was announced once.
    let floats = w
        .nvim
        .lua("local n = 0; for _, w in ipairs(vim.api.nvim_list_wins()) do if vim.api.nvim_win_get_config(w).relative ~= '' then n = n + 1 end end; return n")
        .await;
    assert_eq!(floats, json!(2), "transcript and input floats only");
    let msgs = w.nvim.messages().await;
    assert_eq!(msgs.matches("backend exited").count(), 1, "{msgs}");

    // Again, and this time a chat key is the next action: `]t` in the float's input.
    w.kill_backend().await;
    w.nvim
        .lua(&format!(
            "local f = {FLOAT}; vim.api.nvim_set_current_win(f.win); vim.cmd('stopinsert')"
        ))
        .await;
    w.nvim
        .lua("vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(']t', true, false, true), 'x', false)")
        .await;
    let moved = w
        .nvim
        .wait_for(
            "the key's tab switch",
            &format!("(function() local f = {FLOAT}; return not f.text:find('first turn', 1, true) and f.winbar:find('BooTabActive# 2 ', 1, true) and f end)()"),
            WAIT,
        )
        .await;
    assert!(
        moved["winbar"].as_str().unwrap_or_default().contains(" 1 "),
        "{moved}"
    );
    let _ = &w.dir;
    w.nvim.quit().await;
}

/// The pid (= process group) of the `opencode serve` the backend started.
fn opencode_server_of(backend: i32) -> Option<i32> {
    let parent = |pid: &str| -> Option<i32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // `pid (comm) state ppid ...`: comm may hold spaces, so split after the last ')'.
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid: i32 = name.parse().ok()?;
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        (parent(&name) == Some(backend) && String::from_utf8_lossy(&cmd).contains("serve"))
            .then_some(pid)
    })
}

/// Counts the permission prompts; the first is left open (its callback kept), later ones are
/// answered "once"; the `:Boo permissions` list picks its first entry.
const PICKER: &str = "_G.boo_perm = { prompts = 0 }
vim.ui.select = function(items, opts, cb)
  if opts.kind == 'boo.permission' then
    _G.boo_perm.prompts = _G.boo_perm.prompts + 1
    if _G.boo_perm.prompts == 1 then _G.boo_perm.first = cb else vim.schedule(function() cb('once') end) end
  else
    vim.schedule(function() cb(items[1]) end)
  end
end";

#[tokio::test]
async fn a_failed_permission_reply_keeps_the_request_listed_and_answerable() {
    let w = World::start().await;
    w.nvim.lua(PICKER).await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    w.nvim
        .cmd("Boo send run it [fake:bash echo boo-was-here]")
        .await
        .expect("send");
    w.nvim
        .wait_for("the permission prompt", "_G.boo_perm.prompts == 1", WAIT)
        .await;
    let pending =
        "(function() local l = require('boo.rpc').request('permissions'); return l and #l end)()";
    assert_eq!(w.nvim.lua(&format!("return {pending}")).await, json!(1));
    // The server hangs: the reply cannot be delivered (it times out).
    let backend = w.backend_pid().await;
    let server = opencode_server_of(backend).expect("opencode serve is a child of the backend");
    // SAFETY: kill(2) has no memory effects; the group is the server the backend started.
    unsafe { libc::kill(-server, libc::SIGSTOP) };
    w.nvim.lua("_G.boo_perm.first('once')").await;
    let failed = w
        .nvim
        .wait_for(
            "the failure message",
            "(function() local m = vim.api.nvim_exec2('messages', { output = true }).output; return m:find('permission reply', 1, true) and m end)()",
            Duration::from_secs(40),
        )
        .await;
    // SAFETY: as above; the server runs on.
    unsafe { libc::kill(-server, libc::SIGCONT) };
    assert!(failed.to_string().contains(":Boo permissions"), "{failed}");
    // Still listed, still waited for, and counted in the status.
    assert_eq!(w.nvim.lua(&format!("return {pending}")).await, json!(1));
    assert_eq!(
        w.nvim
            .lua("return require('boo').status().permissions")
            .await,
        json!(1)
    );
    assert_eq!(
        w.nvim.lua("return require('boo').status().busy").await,
        json!(true)
    );
    // Answered again from the list, the tool runs and the turn completes.
    w.nvim
        .cmd("Boo permissions")
        .await
        .expect(":Boo permissions");
    let text = w
        .nvim
        .wait_transcript(
            "the tool's output",
            "⚙ bash: echo boo-was-here (completed)",
            WAIT,
        )
        .await;
    assert!(text.contains("boo-was-here"), "{text}");
    w.nvim
        .wait_for("idle", "not require('boo').status().busy", WAIT)
        .await;
    assert_eq!(w.nvim.lua(&format!("return {pending}")).await, json!(0));
    assert_eq!(w.nvim.lua("return _G.boo_perm.prompts").await, json!(2));
    w.nvim.quit().await;
}

/// Makes files immutable (`chattr +i`: even root cannot write them) until dropped, so a
/// failing test never leaves them so.
struct Immutable(Vec<PathBuf>);

impl Immutable {
    fn set(paths: Vec<PathBuf>) -> Immutable {
        let st = std::process::Command::new("chattr")
            .arg("+i")
            .args(&paths)
            .status()
            .expect("chattr");
        assert!(st.success(), "chattr +i failed (needs root on ext4/xfs)");
        Immutable(paths)
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .args(&self.0)
            .status();
    }
}

/// The stored texts of all chats, read by a second connection while the backend runs.

#[tokio::test]
async fn a_database_made_read_only_mid_stream_warns_once_and_gets_everything_once_writable() {
    let w = World::start().await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    w.nvim
        .cmd("Boo send [fake:long 150 20] read-only")
        .await
        .expect("send");
    let db = w.dir.join("boo.db");
    let deadline = std::time::Instant::now() + WAIT;
    while !stored_texts(&db).iter().any(|t| t.contains("chunk-20 ")) {
        assert!(
            std::time::Instant::now() < deadline,
            "the answer never reached the store"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wal = w.dir.join("boo.db-wal");
    let guard = Immutable::set(vec![db.clone(), wal, w.dir.clone()]);
    w.nvim
        .wait_for(
            "the warning",
            "vim.api.nvim_exec2('messages', { output = true }).output:find('history is not being saved', 1, true)",
            WAIT,
        )
        .await;
    // The rest of the answer streams while nothing can be written.
    w.nvim
        .wait_transcript("the whole answer on screen", "chunk-149", WAIT)
        .await;
    w.nvim
        .wait_for("idle", "not require('boo').status().busy", WAIT)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !stored_texts(&db).iter().any(|t| t.contains("chunk-149")),
        "the end of the answer must have been written while read-only, not before"
    );
    drop(guard);
    // Writable again: the buffered items land (the store retries with a backoff <= 5 s).
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let answer = loop {
        let texts = stored_texts(&db);
        if let Some(t) = texts.iter().find(|t| t.contains("chunk-149")) {
            break t.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the answer never reached the store once writable: {texts:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let words: std::collections::HashSet<&str> = answer.split_whitespace().collect();
    for i in 0..150 {
        assert!(
            words.contains(format!("chunk-{i}").as_str()),
            "chunk-{i} missing: {answer}"
        );
    }
    let shown = w.nvim.transcript().await;
    assert!(
        shown.contains(answer.trim()),
        "stored = shown:\n{answer}\n---\n{shown}"
    );
    // The turn ended while nothing could be written: its task row says so all the same (else
    // the next start would call it interrupted).
    let status = rusqlite::Connection::open(&db)
        .and_then(|c| {
            c.query_row("SELECT group_concat(status) FROM tasks", [], |r| {
                r.get::<_, String>(0)
            })
        })
        .unwrap_or_default();
    assert_eq!(status, "done", "the task row");
    let msgs = w.nvim.messages().await;
    assert_eq!(
        msgs.matches("history is not being saved").count(),
        1,
        "one warning: {msgs}"
    );
    w.nvim.quit().await;
}
