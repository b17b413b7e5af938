//! What a new user meets: the welcome in an empty chat, readable buffer names, and a folded
//! tool block that says how the tool went.

use std::time::Duration;

use boo_testkit::opencode::SandboxOptions;
use boo_testkit::world::{World, WorldOptions};

const WAIT: Duration = Duration::from_secs(60);

/// The welcome's virtual lines in the shown transcript, joined ("" when none).
const WELCOME: &str = "(function()
  for _, w in ipairs(vim.api.nvim_list_wins()) do
    local b = vim.api.nvim_win_get_buf(w)
    if vim.bo[b].filetype == 'boo' then
      local ns = require('boo.ui.welcome').ns
      local out = {}
      for _, m in ipairs(vim.api.nvim_buf_get_extmarks(b, ns, 0, -1, { details = true })) do
        for _, l in ipairs(m[4].virt_lines or {}) do table.insert(out, l[1][1]) end
      end
      return table.concat(out, '\\n')
    end
  end
  return ''
end)()";

async fn welcome(w: &World) -> String {
    w.nvim
        .lua(&format!("return {WELCOME}"))
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn the_welcome_shows_in_an_empty_chat_until_the_first_prompt() {
    let w = World::start_with(WorldOptions {
        sandbox: Some(SandboxOptions {
            bash_permission: Some("allow".into()),
            ..Default::default()
        }),
        ..Default::default()
    })
    .await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    w.nvim
        .wait_for("the welcome", &format!("{WELCOME} ~= ''"), WAIT)
        .await;
    let text = welcome(&w).await;
    assert!(text.starts_with("Welcome to boo"), "{text}");
    assert!(
        text.contains("<CR> (normal) or <C-s> (insert)"),
        "the send keys: {text}"
    );
    assert!(text.contains("gd review changes"), "the chat keys: {text}");
    assert!(text.contains("Try: "), "example prompts: {text}");
    assert_eq!(
        w.nvim.transcript().await,
        "",
        "the transcript itself stays empty"
    );

    // The first prompt takes it away; a tool's folded header says how the tool went.
    w.nvim
        .cmd("Boo send [fake:bash echo boo-says-hi]")
        .await
        .expect("send");
    let text = w
        .wait_transcript("the tool's result", "→ exit 0: boo-says-hi")
        .await;
    assert!(
        text.contains("⚙ bash: echo boo-says-hi (completed) → exit 0: boo-says-hi"),
        "{text}"
    );
    assert_eq!(welcome(&w).await, "", "gone after the first prompt");

    // Buffer names read well in tablines and :ls.
    let names = w
        .nvim
        .lua("local out = {} for _, b in ipairs(vim.api.nvim_list_bufs()) do if vim.bo[b].filetype:find('^boo') then table.insert(out, vim.api.nvim_buf_get_name(b)) end end return out")
        .await;
    let names: Vec<String> = names
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str().map(String::from))
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.contains("/input") && n.contains(" #")),
        "{names:?}"
    );

    // Turned off, a new chat starts blank.
    w.nvim
        .lua("require('boo').setup(vim.tbl_deep_extend('force', require('boo.config').get(), { ui = { welcome = false } }))")
        .await;
    w.nvim.cmd("Boo new").await.expect(":Boo new");
    w.nvim
        .wait_for(
            "the new chat on screen",
            "(function() for _, w in ipairs(vim.api.nvim_list_wins()) do local b = vim.api.nvim_win_get_buf(w) if vim.bo[b].filetype == 'boo' and vim.api.nvim_buf_line_count(b) == 1 and vim.api.nvim_buf_get_lines(b, 0, 1, false)[1] == '' then return true end end end)()",
            WAIT,
        )
        .await;
    assert_eq!(welcome(&w).await, "", "no welcome when ui.welcome = false");
    w.nvim.quit().await;
}

#[tokio::test]
async fn checkhealth_shows_the_database_worktrees_and_those_left_behind() {
    let w = World::start().await;
    w.nvim.cmd("Boo").await.expect(":Boo");
    // The session's worktree exists once the status names its folder.
    w.nvim
        .wait_for("the worktree", "require('boo').status().dir ~= nil", WAIT)
        .await;
    // A worktree whose session was deleted: its files stay, the record loses its session.
    let left = w.dir.join("worktrees").join("left-behind");
    std::fs::create_dir_all(&left).expect("mkdir");
    std::fs::write(left.join("work.txt"), vec![b'x'; 64 * 1024]).expect("write");
    {
        let conn = rusqlite::Connection::open(w.db()).expect("open db");
        conn.busy_timeout(Duration::from_secs(5)).expect("timeout");
        conn.execute(
            "INSERT INTO worktrees (session_id, repo_root, path, branch, base_commit, review_base, created_at)
             VALUES (NULL, '/r', ?1, 'boo/gone', 'x', 'x', 0)",
            [left.display().to_string()],
        )
        .expect("insert");
    }
    w.nvim.cmd("checkhealth boo").await.expect(":checkhealth");
    let report = w
        .nvim
        .lua("return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\\n')")
        .await
        .as_str()
        .unwrap_or_default()
        .to_string();
    let db = w.db().display().to_string();
    assert!(report.contains(&format!("OK database: {db} (")), "{report}");
    assert!(report.contains("OK worktrees: 2, "), "{report}");
    assert!(
        report.contains(&format!(
            "WARNING 1 worktree(s) whose session is gone (their files stay): {}",
            left.display()
        )),
        "{report}"
    );
    assert!(
        report.contains("server starts and answers"),
        "opencode: {report}"
    );
    w.nvim.quit().await;
}
