//! Turn checkpoints end to end: the real Neovim, boocoder, `opencode serve` and git, with the
//! scripted model's write tool. `:Boo undo` / `:Boo redo` move the worktree between the turns'
//! snapshots and rewind opencode's own session (checked through a second `opencode serve` on
//! the same storage), and never lose an edit made in the worktree after the turn.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use boo_testkit::world::World;
use boocoder::worktree;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

/// A second `opencode serve` on the world's storage, to read sessions as opencode has them.
struct Peek {
    child: Child,
    url: String,
    password: String,
    http: reqwest::Client,
}

impl Peek {
    fn start(w: &World) -> Peek {
        let password = boo_testkit::opencode::random_password();
        let mut cmd = Command::new(boo_testkit::tools::opencode());
        cmd.args(["serve", "--hostname", "127.0.0.1", "--port", "0"])
            .current_dir(&w.dir)
            .env("OPENCODE_SERVER_PASSWORD", &password)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0);
        for (k, v) in w.env.vars() {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn opencode serve");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(u) = line.trim().strip_prefix("opencode server listening on ") {
                    let _ = tx.send(u.trim().trim_end_matches('/').to_string());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("second opencode serve reports its URL");
        Peek {
            child,
            url,
            password,
            http: reqwest::Client::new(),
        }
    }

    async fn get(&self, path: &str, dir: &Path) -> Value {
        self.http
            .get(format!("{}{path}", self.url))
            .query(&[("directory", dir.display().to_string())])
            .basic_auth("opencode", Some(&self.password))
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("json")
    }

    /// The user texts of the session as opencode will give them to the model: the messages
    /// before its revert point (reverted ones stay listed until the next prompt removes them).
    async fn remembered(&self, session: &str, dir: &Path) -> (Vec<String>, Option<String>) {
        let info = self.get(&format!("/session/{session}"), dir).await;
        let revert = info
            .pointer("/revert/messageID")
            .and_then(Value::as_str)
            .map(str::to_string);
        let msgs = self.get(&format!("/session/{session}/message"), dir).await;
        let mut texts = Vec::new();
        for m in msgs.as_array().cloned().unwrap_or_default() {
            let id = m.pointer("/info/id").and_then(Value::as_str);
            if id.is_some() && id == revert.as_deref() {
                break;
            }
            if m.pointer("/info/role").and_then(Value::as_str) != Some("user") {
                continue;
            }
            for p in m["parts"].as_array().cloned().unwrap_or_default() {
                if let Some(t) = p.get("text").and_then(Value::as_str) {
                    texts.push(t.to_string());
                }
            }
        }
        (texts, revert)
    }
}

impl Drop for Peek {
    fn drop(&mut self) {
        // SAFETY: kill(2) of the process group this test started; no memory is touched.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

fn db_rows(db: &Path, sql: &str) -> Vec<Vec<Option<String>>> {
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return Vec::new();
    };
    let Ok(mut st) = conn.prepare(sql) else {
        return Vec::new();
    };
    let n = st.column_count();
    st.query_map([], |r| {
        (0..n)
            .map(|i| r.get::<_, Option<String>>(i))
            .collect::<Result<Vec<_>, _>>()
    })
    .map(|rows| rows.filter_map(Result::ok).collect())
    .unwrap_or_default()
}

/// `(before, after, message_id, state)` of each turn of the chat, once the last has both
/// snapshots and its message id.
async fn checkpoints(w: &World, turns: usize) -> Vec<[String; 4]> {
    let start = std::time::Instant::now();
    loop {
        let rows = db_rows(
            &w.db(),
            "SELECT before_commit, after_commit, message_id, state FROM checkpoints ORDER BY turn",
        );
        let complete = rows.len() == turns && rows.iter().all(|r| r.iter().all(Option::is_some));
        if complete {
            return rows
                .into_iter()
                .map(|r| {
                    let r: Vec<String> = r.into_iter().map(Option::unwrap_or_default).collect();
                    [r[0].clone(), r[1].clone(), r[2].clone(), r[3].clone()]
                })
                .collect();
        }
        assert!(
            start.elapsed() < WAIT,
            "checkpoints never complete: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends turn number `n` and waits until it is over and checkpointed.
async fn turn(w: &World, prompt: &str, n: usize) {
    w.nvim
        .cmd(&format!("Boo send {prompt}"))
        .await
        .expect("send");
    checkpoints(w, n).await;
    w.nvim
        .wait_for("idle", "not require('boo').status().busy", WAIT)
        .await;
}

/// Runs `:Boo {cmd}` and waits for its line (`needle`) in the messages.
async fn command(w: &World, cmd: &str, needle: &str) {
    w.nvim.lua("vim.cmd('messages clear')").await;
    w.nvim.cmd(&format!("Boo {cmd}")).await.expect(cmd);
    let expr = format!(
        "vim.api.nvim_exec2('messages', {{ output = true }}).output:find({}, 1, true)",
        Value::from(needle)
    );
    w.nvim.wait_for(needle, &expr, WAIT).await;
}

fn session_worktree(w: &World, dir: &Path) -> worktree::SessionWorktree {
    let slug = dir
        .file_name()
        .expect("slug")
        .to_string_lossy()
        .into_owned();
    worktree::open(&w.dir.join("project"), &slug).expect("open the session worktree")
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

/// Undo marks (dimmed, folded) on screen: how many items of the shown chat carry one.
async fn undone_on_screen(w: &World) -> i64 {
    w.nvim
        .lua(
            "local n = 0
             for _, view in pairs(require('boo.ui.chat').chats) do
               for _, it in pairs(view.items) do if it.undone then n = n + 1 end end
             end
             return n",
        )
        .await
        .as_i64()
        .unwrap_or(-1)
}

fn stored_undone(w: &World, needle: &str) -> bool {
    db_rows(&w.db(), "SELECT content, meta FROM transcript ORDER BY seq")
        .iter()
        .any(|r| {
            r[0].as_deref().is_some_and(|c| c.contains(needle))
                && r[1]
                    .as_deref()
                    .is_some_and(|m| m.contains("\"undone\":true"))
        })
}

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !f() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn undo_and_redo_move_files_and_opencodes_context_together() {
    let w = World::start().await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    turn(&w, "first turn [fake:write notes.txt one]", 1).await;
    turn(&w, "second turn [fake:write notes.txt two]", 2).await;
    let dir = PathBuf::from(
        w.nvim
            .lua("return require('boo').status().dir")
            .await
            .as_str()
            .expect("session dir"),
    );
    let notes = dir.join("notes.txt");
    assert_eq!(read(&notes).as_deref(), Some("two"));
    let cps = checkpoints(&w, 2).await;
    let wt = session_worktree(&w, &dir);
    // The agent session is found under the chat's agent name, as turns look it up.
    let ses = db_rows(
        &w.db(),
        "SELECT external_id FROM agent_sessions WHERE agent = 'opencode'",
    );
    let ses = ses[0][0].clone().expect("opencode session id");
    let peek = Peek::start(&w);
    let (texts, _) = peek.remembered(&ses, &dir).await;
    assert_eq!(texts.len(), 2, "{texts:?}");

    // A loaded buffer of the file follows the undo.
    let buf = w
        .nvim
        .lua_with(
            "local b = vim.fn.bufadd(...); vim.fn.bufload(b); return b",
            vec![Value::from(notes.display().to_string())],
        )
        .await;
    command(&w, "undo", "undid turn 2").await;
    assert_eq!(read(&notes).as_deref(), Some("one"));
    w.nvim
        .wait_for(
            "the buffer reloaded",
            &format!("vim.api.nvim_buf_get_lines({buf}, 0, -1, false)[1] == 'one'"),
            WAIT,
        )
        .await;
    assert!(
        worktree::changed_since(&wt, &cps[1][0]).unwrap().is_empty(),
        "the worktree is not the snapshot before turn 2"
    );
    let (texts, revert) = peek.remembered(&ses, &dir).await;
    assert_eq!(texts, vec!["first turn [fake:write notes.txt one]"]);
    assert_eq!(revert.as_deref(), Some(cps[1][2].as_str()));
    wait_until("turn 2 stored as undone", || {
        stored_undone(&w, "second turn")
    })
    .await;
    assert!(!stored_undone(&w, "first turn"), "turn 1 marked undone");
    assert!(undone_on_screen(&w).await > 0, "no undone item on screen");

    command(&w, "redo", "redid turn 2").await;
    assert_eq!(read(&notes).as_deref(), Some("two"));
    assert!(worktree::changed_since(&wt, &cps[1][1]).unwrap().is_empty());
    let (texts, revert) = peek.remembered(&ses, &dir).await;
    assert_eq!((texts.len(), revert), (2, None), "{texts:?}");
    wait_until("turn 2 no longer undone", || {
        !stored_undone(&w, "second turn")
    })
    .await;
    assert_eq!(undone_on_screen(&w).await, 0);

    // Undo twice goes back before turn 1; redo after that brings turn 1 only.
    command(&w, "undo", "undid turn 2").await;
    command(&w, "undo", "undid turn 1").await;
    assert_eq!(read(&notes), None, "notes.txt is still there before turn 1");
    assert!(worktree::changed_since(&wt, &cps[0][0]).unwrap().is_empty());
    let (texts, revert) = peek.remembered(&ses, &dir).await;
    assert!(texts.is_empty(), "{texts:?}");
    assert_eq!(revert.as_deref(), Some(cps[0][2].as_str()));
    command(&w, "redo", "redid turn 1").await;
    assert_eq!(read(&notes).as_deref(), Some("one"));
    let (texts, revert) = peek.remembered(&ses, &dir).await;
    assert_eq!(texts, vec!["first turn [fake:write notes.txt one]"]);
    assert_eq!(revert.as_deref(), Some(cps[1][2].as_str()));
    command(&w, "redo", "redid turn 2").await;
    assert_eq!(read(&notes).as_deref(), Some("two"));
    command(&w, "redo", "nothing to redo").await;
    w.nvim.quit().await;
}

#[tokio::test]
async fn undo_refuses_when_the_worktree_was_edited_after_the_turn() {
    let w = World::start().await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    turn(&w, "write it [fake:write notes.txt from the agent]", 1).await;
    let dir = PathBuf::from(
        w.nvim
            .lua("return require('boo').status().dir")
            .await
            .as_str()
            .expect("session dir"),
    );
    std::fs::write(dir.join("notes.txt"), "the user's own edit\n").unwrap();
    std::fs::write(dir.join("mine.txt"), "mine\n").unwrap();
    command(&w, "undo", "changed since turn 1").await;
    assert_eq!(
        read(&dir.join("notes.txt")).as_deref(),
        Some("the user's own edit\n")
    );
    assert_eq!(read(&dir.join("mine.txt")).as_deref(), Some("mine\n"));
    assert!(!stored_undone(&w, "write it"));
    w.nvim.quit().await;
}

#[tokio::test]
async fn fork_at_turn_1_gives_a_chat_with_turn_1s_context_and_files() {
    let w = World::start().await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    turn(&w, "first turn [fake:write notes.txt one]", 1).await;
    turn(&w, "second turn [fake:write notes.txt two]", 2).await;
    let dir = PathBuf::from(
        w.nvim
            .lua("return require('boo').status().dir")
            .await
            .as_str()
            .expect("session dir"),
    );
    let old_chat = w.nvim.lua("return require('boo').status().chat").await;
    // The cursor on turn 1's prompt in the transcript.
    w.nvim
        .lua(
            "for _, win in ipairs(vim.api.nvim_list_wins()) do
               local b = vim.api.nvim_win_get_buf(win)
               if vim.bo[b].filetype == 'boo' then
                 for i, l in ipairs(vim.api.nvim_buf_get_lines(b, 0, -1, false)) do
                   if l:find('first turn', 1, true) then
                     vim.api.nvim_set_current_win(win)
                     vim.api.nvim_win_set_cursor(win, { i, 0 })
                     return
                   end
                 end
               end
             end",
        )
        .await;
    command(&w, "fork", "forked").await;
    assert_eq!(read(&dir.join("notes.txt")).as_deref(), Some("one"));
    let new_chat = w.nvim.lua("return require('boo').status().chat").await;
    assert_ne!(new_chat, old_chat, "the fork is not the active chat");
    w.nvim
        .cmd("Boo send third turn in the fork")
        .await
        .expect("send");
    wait_until("the fork's turn reaches the model", || {
        w.model.chat_requests().iter().any(|r| {
            r.last_user_text
                .as_deref()
                .is_some_and(|t| t.contains("third turn"))
        })
    })
    .await;
    let req = w
        .model
        .chat_requests()
        .into_iter()
        .rfind(|r| {
            r.last_user_text
                .as_deref()
                .is_some_and(|t| t.contains("third turn"))
        })
        .expect("the fork's request");
    let texts = req.user_texts.join(" | ");
    assert!(texts.contains("first turn"), "{texts}");
    assert!(
        !texts.contains("second turn"),
        "turn 2 leaked into the fork: {texts}"
    );
    w.nvim
        .wait_for("idle", "not require('boo').status().busy", WAIT)
        .await;
    w.nvim.quit().await;
}

/// Feeds `keys` on the timeline buffer's line showing turn `turn`.
async fn timeline_key(w: &World, turn: u32, keys: &str) {
    let code = format!(
        "for _, win in ipairs(vim.api.nvim_list_wins()) do
           local b = vim.api.nvim_win_get_buf(win)
           if vim.api.nvim_buf_get_name(b):find('boo://timeline/', 1, true) then
             for i, t in ipairs(vim.b[b].boo_turns or {{}}) do
               if t == {turn} then
                 vim.api.nvim_set_current_win(win)
                 vim.api.nvim_win_set_cursor(win, {{ i, 0 }})
                 vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes({keys:?}, true, false, true), 'mx', false)
                 return true
               end
             end
           end
         end"
    );
    assert_eq!(
        w.nvim.lua(&code).await,
        Value::Bool(true),
        "no timeline line for turn {turn}"
    );
}

/// The lines of the first buffer whose name contains `name`, once it has one containing `needle`.
async fn wait_buffer(w: &World, name: &str, needle: &str) -> String {
    let expr = format!(
        "(function() for _, b in ipairs(vim.api.nvim_list_bufs()) do
           if vim.api.nvim_buf_get_name(b):find({name:?}, 1, true) then
             local t = table.concat(vim.api.nvim_buf_get_lines(b, 0, -1, false), '\\n')
             if t:find({needle:?}, 1, true) then return t end
           end
         end end)()"
    );
    w.nvim
        .wait_for(&format!("{name} showing {needle}"), &expr, WAIT)
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn timeline_lists_turns_shows_a_turns_diff_and_undoes_back_to_one() {
    let w = World::start().await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    turn(&w, "first turn [fake:write notes.txt one]", 1).await;
    turn(&w, "second turn [fake:write notes.txt two]", 2).await;
    let dir = PathBuf::from(
        w.nvim
            .lua("return require('boo').status().dir")
            .await
            .as_str()
            .expect("session dir"),
    );
    w.nvim.cmd("Boo timeline").await.expect(":Boo timeline");
    let text = wait_buffer(&w, "boo://timeline/", "#2").await;
    assert!(text.contains("#1") && text.contains("first turn"), "{text}");
    assert!(
        text.contains("1 file(s) +1 -1"),
        "turn 2's diffstat: {text}"
    );

    timeline_key(&w, 2, "<CR>").await;
    let diff = wait_buffer(&w, "boo://turn/", "+two").await;
    assert!(diff.contains("-one"), "{diff}");

    timeline_key(&w, 1, "u").await;
    wait_until("notes.txt gone with turn 1", || {
        !dir.join("notes.txt").exists()
    })
    .await;
    let text = wait_buffer(&w, "boo://timeline/", "(undone)").await;
    assert_eq!(text.matches("(undone)").count(), 2, "{text}");
    w.nvim.quit().await;
}

#[tokio::test]
async fn fork_session_makes_a_new_worktree_from_the_turns_files() {
    let w = World::start().await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    turn(&w, "first turn [fake:write notes.txt one]", 1).await;
    turn(&w, "second turn [fake:write notes.txt two]", 2).await;
    let old_dir = w.nvim.lua("return require('boo').status().dir").await;
    let old_session = w.nvim.lua("return require('boo').status().session").await;
    w.nvim
        .lua("require('boo')._action('fork', { turn = 1, session = true })")
        .await;
    let expr = format!(
        "(function() local s = require('boo').status()
           if s.session ~= {old_session} and s.dir then return s.dir end end)()"
    );
    let new_dir = w.nvim.wait_for("the fork's session", &expr, WAIT).await;
    assert_ne!(new_dir, old_dir);
    let new_dir = PathBuf::from(new_dir.as_str().expect("dir"));
    wait_until("turn 1's files in the new worktree", || {
        read(&new_dir.join("notes.txt")).as_deref() == Some("one")
    })
    .await;
    let old_dir = PathBuf::from(old_dir.as_str().expect("dir"));
    assert_eq!(read(&old_dir.join("notes.txt")).as_deref(), Some("two"));
    w.nvim.quit().await;
}

#[tokio::test]
async fn undo_after_a_restart_still_rewinds_the_conversation() {
    let w = World::start().await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    turn(&w, "first turn [fake:write notes.txt one]", 1).await;
    turn(&w, "second turn [fake:write notes.txt two]", 2).await;
    let cps = checkpoints(&w, 2).await;
    let w = w.restart_keeping_agent().await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    let dir = PathBuf::from(
        w.nvim
            .wait_for("the session", "require('boo').status().dir", WAIT)
            .await
            .as_str()
            .expect("dir"),
    );
    command(&w, "undo", "undid turn 2").await;
    let ses = db_rows(
        &w.db(),
        "SELECT external_id FROM agent_sessions WHERE agent = 'opencode'",
    );
    let ses = ses[0][0].clone().expect("opencode session id");
    let peek = Peek::start(&w);
    let (texts, revert) = peek.remembered(&ses, &dir).await;
    assert_eq!(texts, vec!["first turn [fake:write notes.txt one]"]);
    assert_eq!(revert.as_deref(), Some(cps[1][2].as_str()));
    // The next turn goes on in the same conversation, without turn 2.
    w.nvim.cmd("Boo send third turn").await.expect("send");
    wait_until("the third turn reaches the model", || {
        w.model.chat_requests().iter().any(|r| {
            r.last_user_text
                .as_deref()
                .is_some_and(|t| t.contains("third turn"))
        })
    })
    .await;
    let req = w
        .model
        .chat_requests()
        .into_iter()
        .rfind(|r| {
            r.last_user_text
                .as_deref()
                .is_some_and(|t| t.contains("third turn"))
        })
        .expect("request");
    let texts = req.user_texts.join(" | ");
    assert!(
        texts.contains("first turn") && !texts.contains("second turn"),
        "{texts}"
    );
    w.nvim
        .wait_for("idle", "not require('boo').status().busy", WAIT)
        .await;
    w.nvim.quit().await;
}
