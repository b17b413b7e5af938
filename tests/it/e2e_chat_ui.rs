//! End-to-end tests of the chat UI in the real Neovim with the real backend: the float, tabs,
//! panes, and restore after a restart. (Streaming turns are in e2e_turns.rs.)

use std::sync::Arc;
use std::time::Duration;

use boo_testkit::dir::TestDir;
use boo_testkit::nvim::{Nvim, NvimOptions};
use boo_testkit::repo;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

/// Neovim started inside a fresh sample repository.
/// The directory is shared by the editors of one test (a restart reuses it).
async fn nvim_in_repo(dir: Option<&Arc<TestDir>>) -> (Nvim, Arc<TestDir>) {
    let shared = dir
        .cloned()
        .unwrap_or_else(|| Arc::new(TestDir::new("boo-repo-")));
    let tmp = shared.path();
    let repo_dir = tmp.join("project");
    if !repo_dir.exists() {
        repo::sample(&repo_dir);
    }
    let nvim = Nvim::start_with(NvimOptions {
        cwd: Some(repo_dir.clone()),
        config: json!({ "store": { "path": tmp.join("boo.db").display().to_string() },
                        "worktree": { "dir": tmp.join("worktrees").display().to_string() } }),
        ..Default::default()
    })
    .await;
    (nvim, shared)
}

/// Windows of boo panes: {win, pane, buf_name, ft, float, winbar}.
async fn boo_windows(nvim: &Nvim) -> Vec<Value> {
    let v = nvim
        .lua(
            "local out = {}
             for _, w in ipairs(vim.api.nvim_list_wins()) do
               local b = vim.api.nvim_win_get_buf(w)
               if vim.w[w].boo_pane then
                 table.insert(out, { win = w, pane = vim.w[w].boo_pane, name = vim.api.nvim_buf_get_name(b),
                   ft = vim.bo[b].filetype, float = vim.api.nvim_win_get_config(w).relative ~= '',
                   winbar = vim.wo[w].winbar })
               end
             end
             return out",
        )
        .await;
    v.as_array().cloned().unwrap_or_default()
}

async fn wait_windows(nvim: &Nvim, what: &str, n: usize) -> Vec<Value> {
    nvim.wait_for(
        what,
        &format!(
            "(function() local n = 0 for _, w in ipairs(vim.api.nvim_list_wins()) do if vim.w[w].boo_pane then n = n + 1 end end return n == {n} end)()"
        ),
        WAIT,
    )
    .await;
    boo_windows(nvim).await
}

#[tokio::test]
async fn boo_opens_the_float_with_transcript_and_input() {
    let (nvim, _tmp) = nvim_in_repo(None).await;
    nvim.cmd("Boo").await.expect(":Boo");
    let wins = wait_windows(&nvim, "the float's two windows", 2).await;
    let fts: Vec<_> = wins
        .iter()
        .map(|w| w["ft"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        fts.contains(&"boo".to_string()) && fts.contains(&"boo_input".to_string()),
        "{wins:?}"
    );
    assert!(wins.iter().all(|w| w["float"] == true), "{wins:?}");
    let main = wins
        .iter()
        .find(|w| w["ft"] == "boo")
        .expect("transcript window");
    // A readable name for tablines and `:ls`, with the chat's id.
    let name = main["name"].as_str().unwrap_or_default();
    assert!(name.starts_with("boo://chat 1 #"), "{main}");
    let input = wins
        .iter()
        .find(|w| w["ft"] == "boo_input")
        .expect("input window");
    assert_eq!(
        input["name"].as_str().unwrap_or_default(),
        format!("{name} prompt"),
        "{input}"
    );
    assert!(
        main["winbar"]
            .as_str()
            .unwrap_or_default()
            .contains("chat 1"),
        "{main}"
    );
    // The transcript cannot be edited by hand; the cursor is in the input.
    assert_eq!(
        nvim.lua_with(
            "return vim.bo[vim.api.nvim_win_get_buf(...)].modifiable",
            vec![main["win"].clone()]
        )
        .await,
        false
    );
    assert_eq!(nvim.lua("return vim.bo.filetype").await, "boo_input");
    // :Boo again hides it; everything keeps running, and :Boo brings the same chat back.
    nvim.cmd("Boo").await.expect("hide");
    wait_windows(&nvim, "the float to hide", 0).await;
    nvim.cmd("Boo").await.expect("show again");
    let again = wait_windows(&nvim, "the float again", 2).await;
    let name_again = again
        .iter()
        .find(|w| w["ft"] == "boo")
        .map(|w| w["name"].clone());
    assert_eq!(name_again, Some(main["name"].clone()));
    nvim.quit().await;
}

async fn active(nvim: &Nvim) -> Value {
    nvim.lua("for _, w in ipairs(vim.api.nvim_list_wins()) do if vim.bo[vim.api.nvim_win_get_buf(w)].filetype == 'boo' then return vim.api.nvim_buf_get_name(vim.api.nvim_win_get_buf(w)) end end").await
}

#[tokio::test]
async fn tabs_new_next_and_close() {
    let (nvim, _tmp) = nvim_in_repo(None).await;
    nvim.cmd("Boo").await.expect(":Boo");
    wait_windows(&nvim, "the float", 2).await;
    nvim.cmd("Boo new").await.expect("new");
    nvim.wait_for("two tabs in the winbar", "(function() for _, w in ipairs(vim.api.nvim_list_wins()) do if vim.wo[w].winbar:find('chat 2', 1, true) then return true end end end)()", WAIT).await;
    let second = active(&nvim).await;
    nvim.cmd("Boo next").await.expect("next");
    nvim.wait_for("the first tab", &format!("(function() for _, w in ipairs(vim.api.nvim_list_wins()) do if vim.bo[vim.api.nvim_win_get_buf(w)].filetype == 'boo' then return vim.api.nvim_buf_get_name(vim.api.nvim_win_get_buf(w)) ~= {second} end end end)()"), WAIT).await;
    let first = active(&nvim).await;
    assert_ne!(first, second);
    nvim.cmd("Boo tabclose").await.expect("tabclose");
    nvim.wait_for("one tab left", "(function() for _, w in ipairs(vim.api.nvim_list_wins()) do local wb = vim.wo[w].winbar if wb:find('chat', 1, true) then return not wb:find('chat 1', 1, true) end end end)()", WAIT).await;
    assert_eq!(active(&nvim).await, second);
    nvim.quit().await;
}

#[tokio::test]
async fn split_close_and_reopen_keep_the_chat_buffers() {
    let (nvim, _tmp) = nvim_in_repo(None).await;
    nvim.cmd("Boo").await.expect(":Boo");
    wait_windows(&nvim, "the float", 2).await;
    nvim.cmd("vertical Boo split chat").await.expect("split");
    let wins = wait_windows(&nvim, "float + split", 4).await;
    let split: Vec<_> = wins
        .iter()
        .filter(|w| w["float"] == false && w["ft"] == "boo")
        .collect();
    assert_eq!(split.len(), 1, "{wins:?}");
    let split_name = split[0]["name"].clone();
    let pane = split[0]["pane"].clone();
    // The split became the current window (its input), and it is a vertical split.
    assert_eq!(nvim.lua("return vim.w.boo_pane").await, pane);
    nvim.cmd("Boo close").await.expect("close");
    wait_windows(&nvim, "the split gone", 2).await;
    nvim.cmd("Boo reopen").await.expect("reopen");
    let wins = wait_windows(&nvim, "the split back", 4).await;
    let back: Vec<_> = wins
        .iter()
        .filter(|w| w["float"] == false && w["ft"] == "boo")
        .collect();
    assert_eq!(back.len(), 1, "{wins:?}");
    assert_eq!(back[0]["name"], split_name, "same chat buffer after reopen");
    nvim.quit().await;
}

#[tokio::test]
async fn closing_the_float_window_by_hand_leaves_no_broken_state() {
    let (nvim, _tmp) = nvim_in_repo(None).await;
    nvim.cmd("Boo").await.expect(":Boo");
    let wins = wait_windows(&nvim, "the float", 2).await;
    let main = wins.iter().find(|w| w["ft"] == "boo").expect("main")["win"].clone();
    nvim.lua_with(
        "vim.api.nvim_set_current_win(...); vim.cmd('close')",
        vec![main],
    )
    .await;
    // Its input window goes too; nothing is left half-open.
    wait_windows(&nvim, "both float windows closed", 0).await;
    nvim.cmd("Boo").await.expect(":Boo after :q");
    wait_windows(&nvim, "the float again", 2).await;
    // And with <C-w>c from the input window.
    nvim.lua("vim.cmd('wincmd c')").await;
    wait_windows(&nvim, "closed with <C-w>c", 0).await;
    nvim.cmd("Boo").await.expect(":Boo again");
    wait_windows(&nvim, "the float once more", 2).await;
    let msgs = nvim.messages().await;
    assert!(!msgs.contains("Error"), "{msgs}");
    nvim.quit().await;
}

#[tokio::test]
async fn restart_restores_chats_and_transcripts() {
    let (nvim, tmp) = nvim_in_repo(None).await;
    nvim.cmd("Boo").await.expect(":Boo");
    wait_windows(&nvim, "the float", 2).await;
    nvim.cmd("Boo new").await.expect("new");
    nvim.cmd("Boo send remember this prompt")
        .await
        .expect("send");
    nvim.wait_for(
        "the prompt in the transcript",
        "(function() for _, b in ipairs(vim.api.nvim_list_bufs()) do if vim.bo[b].filetype == 'boo' and table.concat(vim.api.nvim_buf_get_lines(b, 0, -1, false), '\\n'):find('remember this prompt', 1, true) then return true end end end)()",
        WAIT,
    )
    .await;
    // Let the backend persist the frame, then quit for real.
    tokio::time::sleep(Duration::from_millis(300)).await;
    nvim.quit().await;

    let (nvim, _) = nvim_in_repo(Some(&tmp)).await;
    nvim.cmd("Boo").await.expect(":Boo after restart");
    let wins = wait_windows(&nvim, "the float after restart", 2).await;
    let winbar = wins.iter().find(|w| w["ft"] == "boo").expect("main")["winbar"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        winbar.contains("chat 1") && winbar.contains("chat 2"),
        "{winbar}"
    );
    nvim.wait_for(
        "the restored transcript",
        "(function() for _, b in ipairs(vim.api.nvim_list_bufs()) do if vim.bo[b].filetype == 'boo' and table.concat(vim.api.nvim_buf_get_lines(b, 0, -1, false), '\\n'):find('remember this prompt', 1, true) then return true end end end)()",
        WAIT,
    )
    .await;
    nvim.quit().await;
}

#[tokio::test]
async fn split_term_and_code_open_in_the_session_worktree() {
    let (nvim, tmp) = nvim_in_repo(None).await;
    nvim.cmd("Boo").await.expect(":Boo");
    nvim.wait_for(
        "the session's worktree",
        "require('boo').status().dir ~= nil",
        WAIT,
    )
    .await;
    let dir = nvim.lua("return require('boo').status().dir").await;
    let dir = dir.as_str().expect("dir").to_string();
    assert!(
        dir.starts_with(&tmp.path().join("worktrees").display().to_string()),
        "{dir}"
    );
    nvim.cmd("Boo split term").await.expect("term");
    nvim.wait_for("a terminal", "vim.bo.buftype == 'terminal'", WAIT)
        .await;
    let cwd = nvim.lua("return vim.fn.getcwd(0)").await;
    // The child changes directory after the fork, so under load its first reading can
    // still be the editor's; what counts is where the shell ends up running.
    let job_cwd_lua = "(function() local pid = vim.fn.jobpid(vim.bo.channel); return vim.uv.fs_readlink('/proc/' .. pid .. '/cwd') end)()";
    nvim.wait_for(
        "the shell in the worktree",
        &format!("{job_cwd_lua} == {dir:?}"),
        Duration::from_secs(5),
    )
    .await;
    let job_cwd = nvim.lua(&format!("return {job_cwd_lua}")).await;
    assert_eq!(
        job_cwd.as_str(),
        Some(dir.as_str()),
        "terminal runs in the worktree (window cwd {cwd})"
    );
    nvim.cmd("Boo split code").await.expect("code");
    nvim.wait_for(
        "the file view",
        "vim.fn.getcwd(0) ~= nil and vim.w.boo_pane ~= nil and vim.bo.buftype ~= 'terminal'",
        WAIT,
    )
    .await;
    assert_eq!(
        nvim.lua("return vim.fn.getcwd(0)").await.as_str(),
        Some(dir.as_str())
    );
    nvim.quit().await;
}
