//! End-to-end turns: the real Neovim with the plugin, the real boocoder, the real
//! `opencode serve`, and the scripted model on 127.0.0.1 (the only fake).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use boo_testkit::dir::TestDir;
use boo_testkit::fake_model::FakeModel;
use boo_testkit::nvim::Nvim;
use boo_testkit::world::{stored_texts, World, WorldOptions};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

/// A world that records the User events the plugin fires.
async fn recorded(w: World) -> World {
    w.nvim
        .lua(
            "_G.boo_events = {}
             vim.api.nvim_create_autocmd('User', { pattern = { 'BooTurnStart', 'BooTurnDone', 'BooPermission' },
               callback = function(ev) table.insert(_G.boo_events, { name = ev.match, data = ev.data }) end })",
        )
        .await;
    w
}

async fn world_in(tmp: Option<Arc<TestDir>>, model: Option<FakeModel>) -> World {
    recorded(
        World::start_with(WorldOptions {
            tmp,
            model,
            ..Default::default()
        })
        .await,
    )
    .await
}

async fn world() -> World {
    world_in(None, None).await
}

/// Sends `prompt`, waits for `answer` on screen and the turn's end, and lets the store catch up.
async fn answered(w: &World, prompt: &str, answer: &str) {
    w.nvim
        .cmd(&format!("Boo send {prompt}"))
        .await
        .expect("send");
    wait_transcript(w, "the answer", answer).await;
    w.nvim
        .wait_for("idle", "not require('boo').status().busy", WAIT)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
}

async fn transcript(nvim: &Nvim) -> String {
    nvim.transcript().await
}

async fn wait_transcript(w: &World, what: &str, needle: &str) -> String {
    w.nvim.wait_transcript(what, needle, WAIT).await
}

async fn events(nvim: &Nvim) -> Vec<Value> {
    nvim.lua("return _G.boo_events")
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn send_streams_the_answer_with_folded_reasoning() {
    let w = world().await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    w.nvim.cmd("Boo send hello there").await.expect("send");
    w.nvim
        .wait_for("busy", "require('boo').status().busy", WAIT)
        .await;
    let text = wait_transcript(&w, "the answer", "Echo: hello there").await;
    w.nvim
        .wait_for("idle again", "not require('boo').status().busy", WAIT)
        .await;
    let text = if text.contains("(running)") {
        transcript(&w.nvim).await
    } else {
        text
    };
    assert_eq!(
        text.matches("Echo: hello there").count(),
        1,
        "answer once:\n{text}"
    );
    assert_eq!(
        text.matches("Thinking about: hello there").count(),
        1,
        "reasoning once:\n{text}"
    );
    assert_eq!(
        text.matches("> hello there").count(),
        1,
        "the prompt once:\n{text}"
    );
    // The reasoning is a closed fold whose text is in the buffer.
    let folded = w
        .nvim
        .lua(
            "for _, win in ipairs(vim.api.nvim_list_wins()) do
               local b = vim.api.nvim_win_get_buf(win)
               if vim.bo[b].filetype == 'boo' then
                 for i, l in ipairs(vim.api.nvim_buf_get_lines(b, 0, -1, false)) do
                   if l:find('Reasoning', 1, true) then
                     return vim.api.nvim_win_call(win, function() return vim.fn.foldclosed(i) end) == i
                   end
                 end
               end
             end
             return false",
        )
        .await;
    assert_eq!(folded, true, "reasoning folded:\n{text}");
    let evs = events(&w.nvim).await;
    let names: Vec<_> = evs
        .iter()
        .map(|e| e["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(names, vec!["BooTurnStart", "BooTurnDone"], "{evs:?}");
    assert_eq!(evs[1]["data"]["ok"], true);
    // The model saw the prompt.
    assert!(w.model.chat_requests().iter().any(|r| r
        .last_user_text
        .as_deref()
        .unwrap_or_default()
        .contains("hello there")));
    // Quitting Neovim ends boocoder, and boocoder ends the opencode server it started.
    let log = w.nvim.log();
    let pid: u32 = log
        .lines()
        .find(|l| l.contains("opencode serve started"))
        .and_then(|l| l.split("pid=").nth(1))
        .and_then(|p| p.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no server pid in the log:\n{log}"));
    assert!(boo_testkit::nvim::pid_alive(pid));
    w.nvim.quit().await;
    assert!(
        boo_testkit::nvim::wait_pid_gone(pid, Duration::from_secs(15)).await,
        "opencode serve {pid} left running after :qa"
    );
}

#[tokio::test]
async fn two_tabs_get_their_own_answers() {
    let w = world().await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    w.nvim.cmd("Boo send first question").await.expect("send 1");
    wait_transcript(&w, "first answer", "Echo: first question").await;
    w.nvim.cmd("Boo new").await.expect("new tab");
    w.nvim.wait_for("the second tab", "(function() for _, wi in ipairs(vim.api.nvim_list_wins()) do if vim.wo[wi].winbar:find('chat 2', 1, true) then return true end end end)()", WAIT).await;
    w.nvim
        .cmd("Boo send second question")
        .await
        .expect("send 2");
    let second = wait_transcript(&w, "second answer", "Echo: second question").await;
    assert!(
        !second.contains("first question"),
        "tab 2 shows only its own chat:\n{second}"
    );
    w.nvim.cmd("Boo prev").await.expect("prev");
    w.nvim.wait_for("tab 1 shown", "(function() for _, wi in ipairs(vim.api.nvim_list_wins()) do local b = vim.api.nvim_win_get_buf(wi) if vim.bo[b].filetype == 'boo' then return table.concat(vim.api.nvim_buf_get_lines(b, 0, -1, false)):find('first question', 1, true) ~= nil end end end)()", WAIT).await;
    let first = transcript(&w.nvim).await;
    assert!(!first.contains("second question"), "{first}");
    w.nvim.quit().await;
}

#[tokio::test]
async fn permission_is_answered_from_the_prompt_and_the_tool_completes() {
    let w = world().await;
    // Answer the vim.ui.select prompt with "once" as a picker would.
    w.nvim
        .lua(
            "_G.boo_prompts = {}
             vim.ui.select = function(items, opts, cb)
               table.insert(_G.boo_prompts, opts.prompt)
               if opts.kind == 'boo.permission' then vim.schedule(function() cb('once') end) else cb(nil) end
             end",
        )
        .await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    w.nvim
        .cmd("Boo send run it [fake:bash echo boo-was-here]")
        .await
        .expect("send");
    let text = wait_transcript(&w, "the tool's output", "Tool finished").await;
    w.nvim
        .wait_for("idle", "not require('boo').status().busy", WAIT)
        .await;
    let text = if text.contains("(running)") {
        transcript(&w.nvim).await
    } else {
        text
    };
    assert!(text.contains("⚙ bash"), "{text}");
    assert!(
        text.contains("⚙ bash: echo boo-was-here (completed)"),
        "tool completed:\n{text}"
    );
    assert!(
        text.contains("$ echo boo-was-here"),
        "tool input shown:\n{text}"
    );
    assert!(
        text.contains("⚠ Permission bash: echo boo-was-here (once)"),
        "permission answered:\n{text}"
    );
    assert!(text.contains("boo-was-here"), "output shown:\n{text}");
    let prompts = w.nvim.lua("return _G.boo_prompts").await;
    assert!(prompts.to_string().contains("bash"), "{prompts}");
    let evs = events(&w.nvim).await;
    assert!(evs.iter().any(|e| e["name"] == "BooPermission"), "{evs:?}");
    w.nvim.quit().await;
}

#[tokio::test]
async fn restart_restores_the_streamed_transcript() {
    let w = world().await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    answered(&w, "keep me", "Echo: keep me").await;
    let before = transcript(&w.nvim).await;
    let w = recorded(w.restart().await).await;
    w.nvim.cmd("Boo").await.expect(":Boo after restart");
    let after = wait_transcript(&w, "restored transcript", "Echo: keep me").await;
    assert_eq!(
        after.trim_end(),
        before.trim_end(),
        "same transcript after restart"
    );
    w.nvim.quit().await;
}

#[tokio::test]
async fn ask_sends_the_selection_with_path_and_lines_and_queues_while_busy() {
    let w = world().await;
    w.nvim.cmd("edit src/main.py").await.expect("edit");
    // No Boo window open: the session and chat are resolved (or created) for the repository.
    w.nvim
        .cmd("1,2Boo ask what does this do?")
        .await
        .expect("ask");
    w.nvim
        .cmd("Boo send second prompt")
        .await
        .expect("queued send");
    w.nvim.cmd("Boo").await.expect(":Boo");
    let text = wait_transcript(&w, "the answer to the second prompt", "Echo: second prompt").await;
    // The selection is attached as a block under the prompt.
    assert!(text.contains("#selection src/main.py:1-2"), "{text}");
    assert!(text.contains("def greet(name):"), "{text}");
    let reqs = w.model.chat_requests();
    let asked = reqs
        .iter()
        .filter_map(|r| r.last_user_text.clone())
        .find(|t| t.contains("what does this do?"))
        .expect("the ask reached the model");
    assert!(asked.contains("return 'hello ' + name"), "{asked}");
    // The second prompt ran after the first, in order, in the same chat.
    let order: Vec<_> = reqs
        .iter()
        .filter_map(|r| r.last_user_text.clone())
        .filter(|t| !t.is_empty())
        .collect();
    let a = order.iter().position(|t| t.contains("what does this do?"));
    let b = order.iter().position(|t| t.contains("second prompt"));
    assert!(a < b, "{order:?}");
    w.nvim.quit().await;
}

#[tokio::test]
async fn an_agent_write_lands_in_the_worktree_only_until_accepted() {
    let w = world().await;
    w.nvim.lua("_G.boo_pending = {}; vim.api.nvim_create_autocmd('User', { pattern = 'BooChangesPending', callback = function(ev) table.insert(_G.boo_pending, ev.data) end })").await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    w.nvim
        .cmd("Boo send make notes [fake:write notes.txt written by the agent]")
        .await
        .expect("send");
    wait_transcript(&w, "the tool's end", "Tool finished").await;
    w.nvim
        .wait_for("idle", "not require('boo').status().busy", WAIT)
        .await;
    let dir = w.nvim.lua("return require('boo').status().dir").await;
    let worktree = PathBuf::from(dir.as_str().expect("session dir"));
    let project = w.dir.join("project");
    assert_eq!(
        std::fs::read_to_string(worktree.join("notes.txt")).expect("written in the worktree"),
        "written by the agent"
    );
    assert!(
        !project.join("notes.txt").exists(),
        "the user's checkout is untouched"
    );
    // The turn's end recomputed the pending diff and announced it.
    w.nvim
        .wait_for("BooChangesPending with notes.txt", "(function() for _, d in ipairs(_G.boo_pending) do if vim.tbl_contains(d.files or {}, 'notes.txt') then return true end end end)()", WAIT)
        .await;
    assert_eq!(
        w.nvim
            .lua("return require('boo').status().pending_changes")
            .await,
        1
    );
    w.nvim.cmd("Boo accept notes.txt").await.expect("accept");
    let p = project.join("notes.txt");
    let start = std::time::Instant::now();
    while !p.exists() && start.elapsed() < WAIT {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        std::fs::read_to_string(&p).expect("accepted"),
        "written by the agent"
    );
    w.nvim.quit().await;
}

/// The texts stored for all chats in the SQLite file, read by a second connection while the
/// backend still runs (WAL: readers see committed writes).

#[tokio::test]
async fn a_hidden_chats_answer_reaches_sqlite_while_it_is_hidden() {
    let w = world().await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    w.nvim
        .cmd("Boo send saved while hidden")
        .await
        .expect("send");
    // Another tab takes the pane: the first chat streams its answer off screen.
    w.nvim.cmd("Boo new").await.expect("new tab");
    w.nvim
        .wait_for(
            "the hidden turn's end",
            "(function() for _, e in ipairs(_G.boo_events) do if e.name == 'BooTurnDone' then return true end end end)()",
            WAIT,
        )
        .await;
    assert!(
        !transcript(&w.nvim)
            .await
            .contains("Echo: saved while hidden"),
        "the answering chat must be hidden for this test"
    );
    let db = w.dir.join("boo.db");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut texts = stored_texts(&db);
    while !texts.iter().any(|t| t.contains("Echo: saved while hidden"))
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
        texts = stored_texts(&db);
    }
    assert!(
        texts.iter().any(|t| t.contains("Echo: saved while hidden")),
        "answer not in SQLite while the chat is hidden: {texts:?}"
    );
    w.nvim.quit().await;
}

#[tokio::test]
async fn a_hidden_chat_killed_mid_stream_comes_back_with_its_partial_answer_marked_interrupted() {
    let w = world().await;
    // No pane is open: the chat streams without ever being drawn.
    w.nvim
        .cmd("Boo send [fake:long 400 20] hidden")
        .await
        .expect("send");
    let db = w.dir.join("boo.db");
    let deadline = std::time::Instant::now() + WAIT;
    while !stored_texts(&db).iter().any(|t| t.contains("chunk-30 ")) {
        assert!(
            std::time::Instant::now() < deadline,
            "the hidden chat's answer never reached the store: {:?}",
            stored_texts(&db)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    w.kill_backend().await;
    assert!(
        stored_texts(&db).iter().any(|t| t.contains("hidden")),
        "the prompt is stored"
    );
    // The next :Boo restarts the backend and shows what had streamed, and that the turn ended.
    w.nvim.cmd("Boo").await.expect(":Boo after the crash");
    let shown = wait_transcript(&w, "the restored partial answer", "chunk-30 ").await;
    assert!(shown.contains("hidden"), "the prompt is shown too: {shown}");
    wait_transcript(&w, "the interrupted mark", "interrupted").await;
    w.nvim.quit().await;
}

/// Pids whose command line is exactly `args` (NUL-separated in /proc).
fn processes_running(args: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = args
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
                .filter(|p| std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c == want))
                .filter(|p| boo_testkit::nvim::pid_alive(*p))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_tool_process_in_its_own_session_is_gone_10_s_after_boocoder_is_killed() {
    let w = world().await;
    w.nvim
        .lua(
            "vim.ui.select = function(items, opts, cb)
               if opts.kind == 'boo.permission' then vim.schedule(function() cb('once') end) else cb(nil) end
             end",
        )
        .await;
    // A duration no other test uses, so the process is ours to find.
    let secs = format!("600.{}", std::process::id());
    w.nvim
        .cmd(&format!(
            "Boo send start it [fake:bash setsid sleep {secs} </dev/null >/dev/null 2>&1 &]"
        ))
        .await
        .expect("send");
    let deadline = std::time::Instant::now() + WAIT;
    let sleeper = loop {
        if let Some(p) = processes_running(&["sleep", &secs]).first() {
            break *p;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the agent's bash tool never started `setsid sleep {secs}`:\n{}",
            transcript(&w.nvim).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // It really left boocoder's process groups: only the guard can find it.
    let sid = std::fs::read_to_string(format!("/proc/{sleeper}/stat")).unwrap_or_default();
    let info = w
        .nvim
        .lua("local r, err = require('boo.rpc').request('hello', { protocol = require('boo.rpc').PROTOCOL }); assert(r, err); return r")
        .await;
    let pid = info["pid"].as_u64().expect("pid") as i32;
    assert!(
        info["guard"]
            .as_str()
            .unwrap_or_default()
            .starts_with("guard process"),
        "{info}"
    );
    // SAFETY: kill(2) has no memory effects; the pid is the backend Neovim started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let gone = boo_testkit::nvim::wait_pid_gone(sleeper, Duration::from_secs(10)).await;
    if !gone {
        // SAFETY: as above; do not leave it behind for the other tests.
        unsafe { libc::kill(sleeper as i32, libc::SIGKILL) };
    }
    assert!(
        gone,
        "`setsid sleep {secs}` ({sleeper}, stat {sid}) outlived a kill -9 of boocoder by 10 s"
    );
    w.nvim.quit().await;
}

#[tokio::test]
async fn a_corrupted_transcript_row_is_kept_and_new_turns_go_after_it() {
    let w = world().await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    answered(&w, "first turn", "Echo: first turn").await;
    let World {
        nvim,
        model,
        env,
        tmp,
        dir,
    } = w;
    nvim.quit().await;
    drop(env);
    // A row this version cannot read (a newer version's kind), in the middle of the chat.
    let db = dir.join("boo.db");
    let rows = |db: &Path| -> Vec<(i64, i64, String)> {
        let conn = rusqlite::Connection::open(db).expect("db");
        let mut st = conn
            .prepare("SELECT chat_id, seq, kind FROM transcript ORDER BY chat_id, seq")
            .expect("prepare");
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("query")
            .filter_map(Result::ok)
            .collect()
    };
    let before = rows(&db);
    assert!(before.len() >= 2, "{before:?}");
    let (chat, bad_seq, _) = before[1].clone();
    rusqlite::Connection::open(&db)
        .expect("db")
        .execute(
            "UPDATE transcript SET kind = 'hologram' WHERE chat_id = ?1 AND seq = ?2",
            [chat, bad_seq],
        )
        .expect("corrupt a row");
    let max_seq = before.iter().map(|r| r.1).max().unwrap_or(0);

    let w = world_in(Some(tmp), Some(model)).await;
    w.nvim.cmd("Boo").await.expect(":Boo after restart");
    wait_transcript(&w, "the placeholder", "unreadable item").await;
    answered(&w, "second turn", "Echo: second turn").await;
    let shown = transcript(&w.nvim).await;
    assert!(shown.contains("Echo: first turn"), "{shown}");
    let after = rows(&db);
    // Every old row is still there, the unreadable one untouched; the new turn comes after.
    for (c, seq, kind) in &before {
        let now = after
            .iter()
            .find(|r| r.0 == *c && r.1 == *seq)
            .unwrap_or_else(|| panic!("row {c}/{seq} lost: {after:?}"));
        let want = if *seq == bad_seq && *c == chat {
            "hologram"
        } else {
            kind.as_str()
        };
        assert_eq!(now.2, want, "row {c}/{seq}");
    }
    let new: Vec<_> = after
        .iter()
        .filter(|r| !before.iter().any(|b| b.0 == r.0 && b.1 == r.1))
        .collect();
    assert!(!new.is_empty(), "the second turn is stored");
    assert!(
        new.iter().all(|r| r.0 != chat || r.1 > max_seq),
        "new rows after the stored ones: {new:?} (max {max_seq})"
    );
    let messages = w.nvim.messages().await;
    assert_eq!(
        messages.matches("unreadable").count(),
        1,
        "one warning:\n{messages}"
    );
    assert!(!messages.contains("stack traceback"), "{messages}");
    w.nvim.quit().await;
}

#[tokio::test]
async fn a_permission_left_waiting_never_holds_up_another_chats_stream() {
    let w = world().await;
    // The picker is opened and never answered (the user walked away).
    w.nvim
        .lua(
            "_G.boo_asked = 0
             vim.ui.select = function(items, opts, cb)
               if opts.kind == 'boo.permission' then _G.boo_asked = _G.boo_asked + 1 end
             end",
        )
        .await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    w.nvim
        .cmd("Boo send [fake:bash echo waiting-for-you]")
        .await
        .expect("send");
    w.nvim
        .wait_for("the permission prompt", "_G.boo_asked > 0", WAIT)
        .await;
    w.nvim.cmd("Boo new").await.expect("a second chat");
    w.nvim
        .cmd("Boo send [fake:long 300 5] meanwhile")
        .await
        .expect("send");
    wait_transcript(&w, "the other chat's whole answer", "chunk-299").await;
    let db = w.dir.join("boo.db");
    let deadline = std::time::Instant::now() + WAIT;
    while !stored_texts(&db).iter().any(|t| t.contains("chunk-299")) {
        assert!(
            std::time::Instant::now() < deadline,
            "the other chat's answer never reached the store"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The question still waits, answerable.
    let pending = w
        .nvim
        .lua("return #(require('boo.rpc').request('permissions', {}) or {})")
        .await;
    assert_eq!(pending, 1, "the permission is still pending");
    w.nvim.quit().await;
}
