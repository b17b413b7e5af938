//! End-to-end tests of the review in the real Neovim with the real backend and real git: the
//! agent's edits (written by the test into the session's worktree) reach the user's checkout
//! only through accept; reject reverts them in the worktree.

use std::path::{Path, PathBuf};
use std::time::Duration;

use boo_testkit::nvim::{Nvim, NvimOptions};
use boo_testkit::repo;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

/// Twenty numbered lines: edits at both ends make two separate hunks.
fn long_file() -> String {
    (1..=20).map(|i| format!("line {i}\n")).collect()
}

struct Env {
    nvim: Nvim,
    repo: PathBuf,
    wt: PathBuf,
    _tmp: tempfile::TempDir,
}

/// Neovim in a fresh repository whose session (and worktree) exists: `:Boo diff` creates it.
async fn start() -> Env {
    let tmp = tempfile::Builder::new()
        .prefix("boo-review-")
        .tempdir()
        .expect("tmp");
    let repo_dir = tmp.path().join("project");
    repo::init(
        &repo_dir,
        &[("README.md", "# sample\n"), ("src/long.txt", &long_file())],
    );
    let nvim = Nvim::start_with(NvimOptions {
        cwd: Some(repo_dir.clone()),
        config: json!({ "store": { "path": tmp.path().join("boo.db").display().to_string() },
                        "worktree": { "dir": tmp.path().join("worktrees").display().to_string() } }),
        ..Default::default()
    })
    .await;
    nvim.lua(
        "_G.pending_events = {}
         vim.api.nvim_create_autocmd('User', { pattern = 'BooChangesPending',
           callback = function(ev) table.insert(_G.pending_events, ev.data) end })",
    )
    .await;
    nvim.cmd("Boo diff").await.expect(":Boo diff");
    wait_review(
        &nvim,
        "the empty review of the new session",
        "No pending changes.",
    )
    .await;
    let info = review_info(&nvim).await;
    let wt = PathBuf::from(info["worktree"].as_str().expect("worktree dir"));
    assert!(wt.is_dir(), "{info}");
    Env {
        nvim,
        repo: repo_dir,
        wt,
        _tmp: tmp,
    }
}

async fn review_info(nvim: &Nvim) -> Value {
    nvim.lua("return require('boo.rpc').request('review_info', { cwd = vim.fn.getcwd() })")
        .await
}

/// The lines of the review buffer (empty when none).
async fn review_lines(nvim: &Nvim) -> Vec<String> {
    let v = nvim
        .lua(
            "for _, b in ipairs(vim.api.nvim_list_bufs()) do
               if vim.api.nvim_buf_get_name(b):find('^boo://review/') then
                 return vim.api.nvim_buf_get_lines(b, 0, -1, false)
               end
             end
             return {}",
        )
        .await;
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|l| l.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until the review buffer holds a line containing `needle`.
async fn wait_review(nvim: &Nvim, what: &str, needle: &str) {
    let expr = format!(
        "(function() for _, b in ipairs(vim.api.nvim_list_bufs()) do
            if vim.api.nvim_buf_get_name(b):find('^boo://review/') then
              for _, l in ipairs(vim.api.nvim_buf_get_lines(b, 0, -1, false)) do
                if l:find({}, 1, true) then return true end
              end
            end
          end end)()",
        lua_str(needle)
    );
    nvim.wait_for(what, &expr, WAIT).await;
}

/// Waits until the review buffer has no line containing `needle` (and exists).
async fn wait_review_without(nvim: &Nvim, what: &str, needle: &str) {
    let expr = format!(
        "(function() for _, b in ipairs(vim.api.nvim_list_bufs()) do
            if vim.api.nvim_buf_get_name(b):find('^boo://review/') then
              for _, l in ipairs(vim.api.nvim_buf_get_lines(b, 0, -1, false)) do
                if l:find({}, 1, true) then return false end
              end
              return true
            end
          end end)()",
        lua_str(needle)
    );
    nvim.wait_for(what, &expr, WAIT).await;
}

fn lua_str(s: &str) -> String {
    serde_json::to_string(s).expect("json string")
}

async fn wait_file(nvim: &Nvim, what: &str, path: &Path, content: &str) {
    let start = std::time::Instant::now();
    while start.elapsed() < WAIT {
        if std::fs::read_to_string(path).ok().as_deref() == Some(content) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "timed out waiting for {what}: {} is {:?}\nmessages:\n{}\nlog:\n{}",
        path.display(),
        std::fs::read_to_string(path).ok(),
        nvim.messages().await,
        nvim.log()
    );
}

async fn wait_message(nvim: &Nvim, what: &str, needle: &str) -> String {
    let start = std::time::Instant::now();
    loop {
        let m = nvim.messages().await;
        if m.contains(needle) {
            return m;
        }
        if start.elapsed() > WAIT {
            panic!(
                "timed out waiting for {what} ({needle:?})\nmessages:\n{m}\nlog:\n{}",
                nvim.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Puts the cursor of the review window on the `n`th (1-based) line starting with `prefix`
/// and types `keys` (buffer-local maps apply).
async fn press_on(nvim: &Nvim, prefix: &str, n: usize, keys: &str) {
    let ok = nvim
        .lua_with(
            "local prefix, n, keys = ...
             for _, w in ipairs(vim.api.nvim_list_wins()) do
               local b = vim.api.nvim_win_get_buf(w)
               if vim.api.nvim_buf_get_name(b):find('^boo://review/') then
                 vim.api.nvim_set_current_win(w)
                 local seen = 0
                 for i, l in ipairs(vim.api.nvim_buf_get_lines(b, 0, -1, false)) do
                   if vim.startswith(l, prefix) then
                     seen = seen + 1
                     if seen == n then
                       vim.api.nvim_win_set_cursor(w, { i, 0 })
                       vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(keys, true, false, true), 'mx', false)
                       return true
                     end
                   end
                 end
               end
             end
             return false",
            vec![json!(prefix), json!(n), json!(keys)],
        )
        .await;
    assert_eq!(
        ok, true,
        "no line {n} starting with {prefix:?} in the review"
    );
}

fn edit_lines(text: &str, edits: &[(usize, &str)]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for (i, new) in edits {
        lines[*i - 1] = new.to_string();
    }
    lines.iter().map(|l| format!("{l}\n")).collect()
}

#[tokio::test]
async fn worktree_changes_wait_for_accept_and_are_listed_with_counts() {
    let env = start().await;
    let nvim = &env.nvim;
    let changed = edit_lines(&long_file(), &[(2, "line two, by the agent")]);
    std::fs::write(env.wt.join("src/long.txt"), &changed).expect("write");
    std::fs::write(env.wt.join("NEW.md"), "new file\nfrom the agent\n").expect("write");
    nvim.cmd("Boo diff").await.expect(":Boo diff");
    wait_review(
        nvim,
        "the modified file in the list",
        "M src/long.txt  +1 -1",
    )
    .await;
    wait_review(nvim, "the added file in the list", "A NEW.md  +2 -0").await;
    let lines = review_lines(nvim).await;
    assert!(
        lines.iter().any(|l| l == "+line two, by the agent"),
        "{lines:?}"
    );
    // The view is a diff buffer nobody edits by hand.
    let buf = nvim
        .lua("return { ft = vim.bo.filetype, mod = vim.bo.modifiable, name = vim.api.nvim_buf_get_name(0) }")
        .await;
    assert_eq!(buf["ft"], "boo_review", "{buf}");
    assert_eq!(buf["mod"], false, "{buf}");
    // Nothing reached the user's checkout.
    assert_eq!(
        std::fs::read_to_string(env.repo.join("src/long.txt")).expect("read"),
        long_file()
    );
    assert!(!env.repo.join("NEW.md").exists());
    assert!(repo::git(&env.repo, &["status", "--porcelain"]).is_empty());
    // The event and the statusline count.
    let ev = nvim
        .wait_for(
            "BooChangesPending with two files",
            "(function() for _, d in ipairs(_G.pending_events) do if #d.files == 2 then return d end end end)()",
            WAIT,
        )
        .await;
    assert!(ev["session"].is_i64(), "{ev}");
    // The statusline state is about the active chat: open one.
    nvim.cmd("Boo").await.expect(":Boo");
    nvim.wait_for(
        "status().pending_changes == 2",
        "require('boo').status().pending_changes == 2",
        WAIT,
    )
    .await;
    // Completion of :Boo accept offers the pending paths.
    let comp = nvim
        .lua("return vim.fn.getcompletion('Boo accept ', 'cmdline')")
        .await;
    assert_eq!(comp, json!(["NEW.md", "src/long.txt"]));
    // Accepting one file writes it; the other stays pending.
    nvim.cmd("Boo accept src/long.txt").await.expect("accept");
    wait_file(
        nvim,
        "the accepted file",
        &env.repo.join("src/long.txt"),
        &changed,
    )
    .await;
    wait_review_without(nvim, "the accepted file gone from the view", "src/long.txt").await;
    wait_review(nvim, "the other file still pending", "A NEW.md").await;
    assert!(!env.repo.join("NEW.md").exists());
    // The same again: all pending changes.
    nvim.cmd("Boo accept").await.expect("accept all");
    wait_file(
        nvim,
        "the new file",
        &env.repo.join("NEW.md"),
        "new file\nfrom the agent\n",
    )
    .await;
    wait_review(nvim, "an empty review", "No pending changes.").await;
    env.nvim.quit().await;
}

#[tokio::test]
async fn accepting_one_hunk_keeps_the_other_pending_and_never_offers_it_again() {
    let env = start().await;
    let nvim = &env.nvim;
    let changed = edit_lines(&long_file(), &[(2, "TOP CHANGE"), (19, "BOTTOM CHANGE")]);
    std::fs::write(env.wt.join("src/long.txt"), &changed).expect("write");
    nvim.cmd("Boo diff").await.expect(":Boo diff");
    wait_review(nvim, "the two hunks", "+BOTTOM CHANGE").await;
    let hunks = review_lines(nvim)
        .await
        .iter()
        .filter(|l| l.starts_with("@@"))
        .count();
    assert_eq!(hunks, 2);
    // Cursor on the second hunk (any line of it), ga.
    press_on(nvim, "+BOTTOM", 1, "ga").await;
    let expected = edit_lines(&long_file(), &[(19, "BOTTOM CHANGE")]);
    wait_file(
        nvim,
        "only the bottom hunk applied",
        &env.repo.join("src/long.txt"),
        &expected,
    )
    .await;
    wait_review_without(nvim, "the accepted hunk gone", "BOTTOM CHANGE").await;
    wait_review(nvim, "the other hunk still there", "+TOP CHANGE").await;
    // ]c moves between hunks; with one hunk left there is one header.
    let lines = review_lines(nvim).await;
    assert_eq!(lines.iter().filter(|l| l.starts_with("@@")).count(), 1);
    // :Boo diff again: the accepted hunk never comes back.
    nvim.cmd("Boo diff").await.expect(":Boo diff again");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lines = review_lines(nvim).await;
    assert!(
        !lines.iter().any(|l| l.contains("BOTTOM")),
        "accepted hunk offered again: {lines:?}"
    );
    assert!(lines.iter().any(|l| l == "+TOP CHANGE"), "{lines:?}");
    // The new review base is recorded in the store.
    let db = env._tmp.path().join("boo.db");
    let (base, review_base): (String, String) = rusqlite::Connection::open(&db)
        .expect("db")
        .query_row("SELECT base_commit, review_base FROM worktrees", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("row");
    assert_ne!(base, review_base, "review base advanced");
    let parent = repo::git(&env.repo, &["rev-parse", &format!("{review_base}^")]);
    assert_eq!(parent.trim(), base);
    // The worktree still has both (accept never touches it); the user's file only the bottom.
    assert_eq!(
        std::fs::read_to_string(env.wt.join("src/long.txt")).expect("read"),
        changed
    );
    assert_eq!(
        std::fs::read_to_string(env.repo.join("src/long.txt")).expect("read"),
        expected
    );
    env.nvim.quit().await;
}

#[tokio::test]
async fn hunk_navigation_and_side_by_side() {
    let env = start().await;
    let nvim = &env.nvim;
    let changed = edit_lines(&long_file(), &[(2, "TOP CHANGE"), (19, "BOTTOM CHANGE")]);
    std::fs::write(env.wt.join("src/long.txt"), &changed).expect("write");
    nvim.cmd("Boo diff").await.expect(":Boo diff");
    wait_review(nvim, "the two hunks", "+BOTTOM CHANGE").await;
    // The view opened on the first hunk; ]c goes to the second, [c back.
    let first = nvim.lua("return vim.api.nvim_get_current_line()").await;
    assert!(
        first.as_str().unwrap_or_default().starts_with("@@"),
        "{first}"
    );
    let l1 = nvim.lua("return vim.fn.line('.')").await;
    nvim.lua("vim.api.nvim_feedkeys(']c', 'mx', false)").await;
    let l2 = nvim.lua("return vim.fn.line('.')").await;
    assert!(l2.as_i64() > l1.as_i64(), "{l1} {l2}");
    assert!(nvim
        .lua("return vim.api.nvim_get_current_line()")
        .await
        .as_str()
        .unwrap_or_default()
        .starts_with("@@"));
    nvim.lua("vim.api.nvim_feedkeys('[c', 'mx', false)").await;
    assert_eq!(nvim.lua("return vim.fn.line('.')").await, l1);
    // The hunk's lines are highlighted on screen (drawn for the visible rows only).
    let cell = nvim
        .lua(
            "vim.api.nvim_set_hl(0, 'BooDiffAdded', { fg = '#123456' })
             vim.api.nvim_set_hl(0, 'BooDiffAdd', { bg = '#654321' })
             local buf = vim.api.nvim_get_current_buf()
             for n, l in ipairs(vim.api.nvim_buf_get_lines(buf, 0, -1, false)) do
               if l == '+TOP CHANGE' then
                 vim.api.nvim_win_set_cursor(0, { n, 0 })
                 vim.cmd('redraw!')
                 local pos = vim.fn.screenpos(0, n, 1)
                 local cell = vim.api.nvim__inspect_cell(1, pos.row - 1, pos.col - 1)
                 return { char = cell[1], fg = cell[2].foreground, bg = cell[2].background }
               end
             end",
        )
        .await;
    assert_eq!(
        cell,
        json!({ "char": "+", "fg": 0x123456, "bg": 0x654321 }),
        "the added line's highlight on screen"
    );
    nvim.lua("vim.api.nvim_win_set_cursor(0, { vim.fn.line('.'), 0 })")
        .await;
    // <CR>: a new tab with the worktree version and the checkout in diff mode.
    let tabs_before = nvim.lua("return #vim.api.nvim_list_tabpages()").await;
    nvim.lua("vim.api.nvim_feedkeys(vim.keycode('<CR>'), 'mx', false)")
        .await;
    let tabs_after = nvim.lua("return #vim.api.nvim_list_tabpages()").await;
    assert_eq!(tabs_after.as_i64(), tabs_before.as_i64().map(|n| n + 1));
    let wins = nvim
        .lua(
            "local out = {}
             for _, w in ipairs(vim.api.nvim_tabpage_list_wins(0)) do
               table.insert(out, { name = vim.api.nvim_buf_get_name(vim.api.nvim_win_get_buf(w)), diff = vim.wo[w].diff })
             end
             return out",
        )
        .await;
    let wins = wins.as_array().expect("wins").clone();
    assert_eq!(wins.len(), 2, "{wins:?}");
    assert!(wins.iter().all(|w| w["diff"] == true), "{wins:?}");
    let names: Vec<String> = wins
        .iter()
        .map(|w| w["name"].as_str().unwrap_or_default().to_string())
        .collect();
    let canon = |p: &Path| std::fs::canonicalize(p).expect("canon");
    let named: Vec<PathBuf> = names.iter().map(|n| canon(Path::new(n))).collect();
    assert!(
        named.contains(&canon(&env.wt.join("src/long.txt"))),
        "{names:?}"
    );
    assert!(
        named.contains(&canon(&env.repo.join("src/long.txt"))),
        "{names:?}"
    );
    env.nvim.quit().await;
}

#[tokio::test]
async fn a_conflicting_user_edit_is_reported_and_the_file_left_alone() {
    let env = start().await;
    let nvim = &env.nvim;
    std::fs::write(
        env.wt.join("src/long.txt"),
        edit_lines(&long_file(), &[(5, "agent's line five")]),
    )
    .expect("write");
    let mine = edit_lines(&long_file(), &[(5, "my own line five")]);
    std::fs::write(env.repo.join("src/long.txt"), &mine).expect("write");
    let before = std::fs::read(env.repo.join("src/long.txt")).expect("read");
    nvim.cmd("Boo accept src/long.txt").await.expect("accept");
    let msgs = wait_message(nvim, "the conflict report", "conflict in src/long.txt").await;
    let line = msgs
        .lines()
        .find(|l| l.contains("conflict in src/long.txt"))
        .expect("line");
    assert!(line.contains("nothing was accepted"), "{line}");
    assert_eq!(
        std::fs::read(env.repo.join("src/long.txt")).expect("read"),
        before,
        "the user's file must stay byte-for-byte"
    );
    // Still pending.
    nvim.cmd("Boo diff").await.expect(":Boo diff");
    wait_review(nvim, "the change still pending", "+agent's line five").await;
    env.nvim.quit().await;
}

#[tokio::test]
async fn unsaved_buffers_are_never_clobbered_and_clean_ones_reload() {
    let env = start().await;
    let nvim = &env.nvim;
    let changed = edit_lines(&long_file(), &[(10, "accepted line ten")]);
    std::fs::write(env.wt.join("src/long.txt"), &changed).expect("write");
    // The user has the file open with unsaved edits.
    nvim.cmd("tabnew src/long.txt").await.expect("edit");
    nvim.lua("vim.api.nvim_buf_set_lines(0, 0, 1, false, { 'my unsaved edit' })")
        .await;
    nvim.cmd("Boo accept src/long.txt").await.expect("accept");
    wait_message(
        nvim,
        "the refusal",
        "save or discard your edits to src/long.txt first",
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(env.repo.join("src/long.txt")).expect("read"),
        long_file(),
        "refused before touching the file"
    );
    let buf = nvim
        .lua("return { first = vim.api.nvim_buf_get_lines(0, 0, 1, false)[1], modified = vim.bo.modified }")
        .await;
    assert_eq!(buf, json!({"first": "my unsaved edit", "modified": true}));
    // Discard the edits: now the accept goes through and the clean buffer reloads.
    nvim.cmd("edit!").await.expect("discard");
    nvim.cmd("Boo accept src/long.txt").await.expect("accept");
    wait_file(
        nvim,
        "the accepted file",
        &env.repo.join("src/long.txt"),
        &changed,
    )
    .await;
    nvim.wait_for(
        "the buffer reloaded",
        "(function() for _, b in ipairs(vim.api.nvim_list_bufs()) do if vim.api.nvim_buf_get_name(b):find('src/long.txt$') then return vim.api.nvim_buf_get_lines(b, 9, 10, false)[1] == 'accepted line ten' and not vim.bo[b].modified end end end)()",
        WAIT,
    )
    .await;
    env.nvim.quit().await;
}

#[tokio::test]
async fn reject_reverts_in_the_worktree_by_hunk_and_by_path() {
    let env = start().await;
    let nvim = &env.nvim;
    let changed = edit_lines(&long_file(), &[(2, "TOP CHANGE"), (19, "BOTTOM CHANGE")]);
    std::fs::write(env.wt.join("src/long.txt"), &changed).expect("write");
    std::fs::write(env.wt.join("NEW.md"), "agent file\n").expect("write");
    nvim.cmd("Boo diff").await.expect(":Boo diff");
    wait_review(nvim, "the hunks", "+TOP CHANGE").await;
    press_on(nvim, "+TOP", 1, "gr").await;
    wait_file(
        nvim,
        "the top hunk reverted in the worktree",
        &env.wt.join("src/long.txt"),
        &edit_lines(&long_file(), &[(19, "BOTTOM CHANGE")]),
    )
    .await;
    wait_review_without(nvim, "the rejected hunk gone", "TOP CHANGE").await;
    // :Boo reject {path}: the whole file; an added file is removed from the worktree.
    nvim.cmd("Boo reject NEW.md").await.expect("reject");
    let start = std::time::Instant::now();
    while env.wt.join("NEW.md").exists() && start.elapsed() < WAIT {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(!env.wt.join("NEW.md").exists(), "{}", nvim.log());
    // gR on the file: the rest of long.txt.
    wait_review_without(nvim, "NEW.md gone", "NEW.md").await;
    press_on(nvim, "M src/long.txt", 1, "gR").await;
    wait_file(
        nvim,
        "the file reverted",
        &env.wt.join("src/long.txt"),
        &long_file(),
    )
    .await;
    wait_review(nvim, "nothing pending", "No pending changes.").await;
    // The user's checkout never changed.
    assert!(repo::git(&env.repo, &["status", "--porcelain"]).is_empty());
    // Paths are checked.
    nvim.cmd("Boo reject ../outside.txt").await.expect("reject");
    let msgs = wait_message(nvim, "the refusal", "not inside").await;
    assert!(msgs.contains("outside.txt"), "{msgs}");
    env.nvim.quit().await;
}

/// `:Boo diff` where no review is possible: one clear line each.
#[tokio::test]
async fn diff_outside_a_repo_in_an_empty_repo_and_in_a_bare_repo_says_so_once() {
    let tmp = tempfile::Builder::new()
        .prefix("boo-review-bad-")
        .tempdir()
        .expect("tmp");
    let plain = tmp.path().join("plain");
    std::fs::create_dir_all(&plain).expect("mkdir");
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    repo::git(&empty, &["init", "-q"]);
    let bare = tmp.path().join("bare.git");
    std::fs::create_dir_all(&bare).expect("mkdir");
    repo::git(&bare, &["init", "-q", "--bare"]);
    for (dir, needle) in [
        (&plain, "not a git repository"),
        (&empty, "no commits"),
        (&bare, "bare repository"),
    ] {
        let nvim = Nvim::start_with(NvimOptions {
            cwd: Some(dir.clone()),
            config: json!({ "store": { "path": tmp.path().join("boo.db").display().to_string() },
                            "worktree": { "dir": tmp.path().join("worktrees").display().to_string() } }),
            ..Default::default()
        })
        .await;
        nvim.cmd("Boo diff").await.expect(":Boo diff");
        wait_message(&nvim, needle, needle).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let msgs = nvim.messages().await;
        let boo_lines: Vec<&str> = msgs.lines().filter(|l| l.starts_with("boo:")).collect();
        assert_eq!(boo_lines.len(), 1, "{dir:?}: {msgs}");
        assert!(!msgs.contains("stack traceback"), "{msgs}");
        nvim.quit().await;
    }
}

#[tokio::test]
async fn gd_in_the_chat_opens_the_review_in_its_own_tab() {
    let env = start().await;
    let nvim = &env.nvim;
    std::fs::write(env.wt.join("README.md"), "# sample\nmore\n").expect("write");
    // Close the review from start(), then open the float and press gd in its transcript.
    nvim.lua("for _, b in ipairs(vim.api.nvim_list_bufs()) do if vim.api.nvim_buf_get_name(b):find('^boo://review/') then vim.api.nvim_buf_delete(b, { force = true }) end end")
        .await;
    nvim.cmd("Boo").await.expect(":Boo");
    nvim.wait_for(
        "the float",
        "(function() for _, w in ipairs(vim.api.nvim_list_wins()) do if vim.bo[vim.api.nvim_win_get_buf(w)].filetype == 'boo' then vim.api.nvim_set_current_win(w) return true end end end)()",
        WAIT,
    )
    .await;
    nvim.lua("vim.api.nvim_feedkeys('gd', 'mx', false)").await;
    wait_review(nvim, "the review from gd", "M README.md  +1 -0").await;
    let cur = nvim
        .lua("return { name = vim.api.nvim_buf_get_name(0), float = vim.api.nvim_win_get_config(0).relative ~= '' }")
        .await;
    assert!(
        cur["name"]
            .as_str()
            .unwrap_or_default()
            .starts_with("boo://review/"),
        "{cur}"
    );
    assert_eq!(cur["float"], false, "{cur}");
    // q closes it; the buffer goes away and the backend stops refreshing it.
    nvim.lua("vim.api.nvim_feedkeys('q', 'mx', false)").await;
    assert!(review_lines(nvim).await.is_empty());
    let msgs = nvim.messages().await;
    assert!(!msgs.contains("Error"), "{msgs}");
    env.nvim.quit().await;
}

/// Keys pressed faster than the view refreshes act on what the user saw, never on whatever
/// hunk now has the same position.
#[tokio::test]
async fn a_stale_view_never_accepts_the_wrong_hunk() {
    let env = start().await;
    let nvim = &env.nvim;
    let changed = edit_lines(&long_file(), &[(2, "TOP CHANGE"), (19, "BOTTOM CHANGE")]);
    std::fs::write(env.wt.join("src/long.txt"), &changed).expect("write");
    nvim.cmd("Boo diff").await.expect(":Boo diff");
    wait_review(nvim, "the two hunks", "+BOTTOM CHANGE").await;
    // ga twice on the first hunk before any refresh can arrive.
    nvim.lua(
        "for _, w in ipairs(vim.api.nvim_list_wins()) do
           local b = vim.api.nvim_win_get_buf(w)
           if vim.api.nvim_buf_get_name(b):find('^boo://review/') then
             vim.api.nvim_set_current_win(w)
             local lines = vim.api.nvim_buf_get_lines(b, 0, -1, false)
             for i, l in ipairs(lines) do
               if l == '+TOP CHANGE' then
                 vim.api.nvim_win_set_cursor(w, { i, 0 })
                 vim.api.nvim_feedkeys('ga', 'mx', false)
                 vim.api.nvim_feedkeys('ga', 'mx', false)
               end
             end
           end
         end",
    )
    .await;
    let expected = edit_lines(&long_file(), &[(2, "TOP CHANGE")]);
    wait_file(
        nvim,
        "only the top hunk applied",
        &env.repo.join("src/long.txt"),
        &expected,
    )
    .await;
    wait_message(nvim, "the second press reported", "no longer pending").await;
    wait_review_without(nvim, "the top hunk gone", "TOP CHANGE").await;
    wait_review(nvim, "the bottom hunk still pending", "+BOTTOM CHANGE").await;
    assert_eq!(
        std::fs::read_to_string(env.repo.join("src/long.txt")).expect("read"),
        expected,
        "the bottom hunk must not be accepted by the second press"
    );
    env.nvim.quit().await;
}

/// `:Boo accept` of everything where the second file cannot land (a file of the user's is in
/// the way of the agent's directory): nothing is written, one line names the cause.
#[tokio::test]
async fn accept_all_is_all_or_nothing_and_names_the_cause() {
    let env = start().await;
    let nvim = &env.nvim;
    let changed = edit_lines(&long_file(), &[(3, "agent's line three")]);
    std::fs::write(env.wt.join("src/long.txt"), &changed).expect("write");
    std::fs::create_dir_all(env.wt.join("zz")).expect("mkdir");
    std::fs::write(env.wt.join("zz/new.txt"), "new\n").expect("write");
    std::fs::write(env.repo.join("zz"), "my notes\n").expect("write");
    let before = crate::support::worktree::digest(&env.repo);
    nvim.cmd("Boo accept").await.expect("accept");
    let msgs = wait_message(nvim, "the refusal", "nothing was written").await;
    let line = msgs
        .lines()
        .find(|l| l.contains("nothing was written"))
        .expect("line");
    assert!(
        line.contains("zz is a file in the way of a directory"),
        "{line}"
    );
    assert_eq!(
        crate::support::worktree::digest(&env.repo),
        before,
        "checkout untouched"
    );
    nvim.cmd("Boo diff").await.expect(":Boo diff");
    wait_review(nvim, "the first file still pending", "+agent's line three").await;
    env.nvim.quit().await;
}

/// A file name with a newline and one that is not UTF-8 render in the review (escaped) and
/// `gA` on them accepts the real files.
#[cfg(unix)]
#[tokio::test]
async fn odd_file_names_render_escaped_and_accept() {
    use std::os::unix::ffi::OsStrExt;
    let env = start().await;
    let nvim = &env.nvim;
    let latin1 = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
    std::fs::write(env.wt.join("two\nlines.txt"), "agent nl\n").expect("write");
    std::fs::write(env.wt.join(latin1), "agent latin1\n").expect("write");
    nvim.cmd("Boo diff").await.expect(":Boo diff");
    wait_review(nvim, "the newline name", "A two\\nlines.txt").await;
    wait_review(nvim, "the non-UTF-8 name", "A caf\\xe9.txt").await;
    press_on(nvim, "A two\\nlines.txt", 2, "gA").await;
    wait_file(
        nvim,
        "the newline file accepted",
        &env.repo.join("two\nlines.txt"),
        "agent nl\n",
    )
    .await;
    wait_review_without(nvim, "the newline file gone", "two\\nlines").await;
    press_on(nvim, "A caf\\xe9.txt", 2, "gA").await;
    wait_file(
        nvim,
        "the non-UTF-8 file accepted",
        &env.repo.join(latin1),
        "agent latin1\n",
    )
    .await;
    env.nvim.quit().await;
}

/// Over a thousand changed files: the view lists them all without hunks, `<Tab>` loads one
/// file's hunks, which can then be accepted.
#[tokio::test]
async fn many_files_are_listed_and_hunks_load_per_file() {
    let env = start().await;
    let nvim = &env.nvim;
    for i in 0..1100 {
        let dir = env.wt.join(format!("gen/d{:02}", i % 50));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join(format!("f{i:04}.txt")), format!("generated {i}\n"))
            .expect("write");
    }
    let changed = edit_lines(&long_file(), &[(4, "agent's line four")]);
    std::fs::write(env.wt.join("src/long.txt"), &changed).expect("write");
    nvim.cmd("Boo diff").await.expect(":Boo diff");
    wait_review(nvim, "the list of files", "1101 file(s)").await;
    wait_review(nvim, "the lazy hint", "(<Tab> shows its hunks)").await;
    let lines = review_lines(nvim).await;
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with('+') || l.starts_with("@@")),
        "no hunks before they are asked for"
    );
    assert!(
        lines.iter().any(|l| l == "A gen/d07/f1057.txt  +1 -0"),
        "listed"
    );
    press_on(nvim, "M src/long.txt", 2, "<Tab>").await;
    wait_review(nvim, "the file's hunks loaded", "+agent's line four").await;
    let lines = review_lines(nvim).await;
    assert_eq!(
        lines.iter().filter(|l| l.starts_with('+')).count(),
        1,
        "only that file's hunks"
    );
    press_on(nvim, "+agent's line four", 1, "ga").await;
    wait_file(
        nvim,
        "the hunk accepted",
        &env.repo.join("src/long.txt"),
        &changed,
    )
    .await;
    env.nvim.quit().await;
}

/// The summary at the top lists each file: `gA` there accepts that file, and `ga` there (no
/// hunk under the cursor) says in one line what it needs.
#[tokio::test]
async fn keys_on_a_summary_line_act_on_its_file_or_say_why_not() {
    let env = start().await;
    let nvim = &env.nvim;
    std::fs::write(env.wt.join("summary.txt"), "from the agent\n").expect("write");
    std::fs::write(env.wt.join("other.txt"), "also\n").expect("write");
    nvim.cmd("Boo diff").await.expect(":Boo diff");
    wait_review(nvim, "the new file", "A summary.txt").await;
    press_on(nvim, "A summary.txt", 1, "ga").await;
    let m = wait_message(nvim, "why ga cannot act", "no hunk under the cursor").await;
    assert_eq!(m.matches("no hunk under the cursor").count(), 1, "{m}");
    assert!(
        !env.repo.join("summary.txt").exists(),
        "ga accepted nothing"
    );
    press_on(nvim, "A summary.txt", 1, "gA").await;
    wait_file(
        nvim,
        "the file accepted from its summary line",
        &env.repo.join("summary.txt"),
        "from the agent\n",
    )
    .await;
    wait_review_without(nvim, "the file gone from the review", "summary.txt").await;
    assert!(!env.repo.join("other.txt").exists(), "only that file");
    // A line that names no file.
    press_on(nvim, "Review:", 1, "gA").await;
    wait_message(nvim, "why gA cannot act there", "no file on this line").await;
    env.nvim.quit().await;
}
