//! End-to-end tests of `:Boo session` in the real Neovim with the real backend and real git:
//! new sessions get their own worktree and branch, the picker switches, rename, and delete asks
//! before losing work (stash keeps it on a branch; the worktree record outlives the session).

use std::path::{Path, PathBuf};
use std::time::Duration;

use boo_testkit::nvim::{Nvim, NvimOptions};
use boo_testkit::repo;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

struct Env {
    nvim: Nvim,
    repo: PathBuf,
    db: PathBuf,
    _tmp: tempfile::TempDir,
}

/// Neovim in a fresh sample repository with its first session open (`:Boo`), and
/// `vim.ui.select` replaced by a stub that records the question and picks the item whose label
/// starts with `_G.pick` (or cancels when nil).
async fn start() -> Env {
    let tmp = tempfile::Builder::new()
        .prefix("boo-sessions-")
        .tempdir()
        .expect("tmp");
    repo::sample(&tmp.path().join("project"));
    start_in(tmp).await
}

/// Like `start`, in an existing temp dir (its repository and database), e.g. after a restart.
async fn start_in(tmp: tempfile::TempDir) -> Env {
    let repo_dir = tmp.path().join("project");
    let db = tmp.path().join("boo.db");
    let nvim = Nvim::start_with(NvimOptions {
        cwd: Some(repo_dir.clone()),
        config: json!({ "store": { "path": db.display().to_string() },
                        "worktree": { "dir": tmp.path().join("worktrees").display().to_string() } }),
        ..Default::default()
    })
    .await;
    nvim.lua(
        "_G.asked = {}
         vim.ui.select = function(items, opts, on_choice)
           local labels = {}
           for _, it in ipairs(items) do table.insert(labels, opts.format_item and opts.format_item(it) or tostring(it)) end
           table.insert(_G.asked, { prompt = opts.prompt, labels = labels })
           for i, it in ipairs(items) do
             if _G.pick and vim.startswith(labels[i], _G.pick) then return on_choice(it, i) end
           end
           on_choice(nil, nil)
         end",
    )
    .await;
    nvim.cmd("Boo").await.expect(":Boo");
    wait_worktree(&nvim, None).await;
    Env {
        nvim,
        repo: repo_dir,
        db,
        _tmp: tmp,
    }
}

async fn info(nvim: &Nvim) -> Value {
    nvim.lua("return require('boo.rpc').request('review_info', { cwd = vim.fn.getcwd() })")
        .await
}

/// Waits for the current session to have a worktree (other than `not`); returns the info.
async fn wait_worktree(nvim: &Nvim, not: Option<&Value>) -> Value {
    let start = std::time::Instant::now();
    loop {
        let i = info(nvim).await;
        let ok = i["worktree"].is_string() && not.is_none_or(|n| i["session"] != n["session"]);
        if ok {
            return i;
        }
        if start.elapsed() > WAIT {
            panic!(
                "no worktree: {i}\nmessages:\n{}\nlog:\n{}",
                nvim.messages().await,
                nvim.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn wait_message(nvim: &Nvim, needle: &str) -> String {
    let start = std::time::Instant::now();
    loop {
        let m = nvim.messages().await;
        if m.contains(needle) {
            return m;
        }
        if start.elapsed() > WAIT {
            panic!(
                "timed out waiting for {needle:?}\nmessages:\n{m}\nlog:\n{}",
                nvim.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Session branches matching `pattern` (the spare's `boo/spare-*` left out).
fn branches(repo_dir: &Path, pattern: &str) -> Vec<String> {
    repo::git(
        repo_dir,
        &["branch", "--list", pattern, "--format=%(refname:short)"],
    )
    .lines()
    .filter(|b| !b.starts_with("boo/spare-"))
    .map(str::to_string)
    .collect()
}

/// The worktrees table: (session_id, path, removed) rows.
fn worktree_rows(db: &Path) -> Vec<(Option<i64>, String, bool)> {
    let conn = rusqlite::Connection::open(db).expect("open db");
    let mut st = conn
        .prepare("SELECT session_id, path, removed_at IS NOT NULL FROM worktrees ORDER BY id")
        .expect("prepare");
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[tokio::test]
async fn new_session_gets_its_own_worktree_and_the_picker_switches() {
    let env = start().await;
    let nvim = &env.nvim;
    let first = info(nvim).await;
    nvim.cmd("Boo session new second try").await.expect("new");
    let second = wait_worktree(nvim, Some(&first)).await;
    assert_ne!(first["worktree"], second["worktree"]);
    assert_eq!(second["title"], "second try");
    let b = branches(&env.repo, "boo/*");
    assert_eq!(b.len(), 2, "{b:?}");
    assert!(b.iter().any(|n| n.starts_with("boo/second-try")), "{b:?}");
    // The float shows the new session's chat.
    nvim.wait_for(
        "a chat of the new session in the float",
        &format!(
            "(function() for _, w in ipairs(vim.api.nvim_list_wins()) do local n = vim.b[vim.api.nvim_win_get_buf(w)].boo_id or '' if n:find('^boo://{}/%d+$') then return true end end end)()",
            second["session"]
        ),
        WAIT,
    )
    .await;
    // Rename.
    nvim.cmd("Boo session rename renamed one")
        .await
        .expect("rename");
    nvim.wait_for(
        "the new title",
        "require('boo.rpc').request('review_info', {}).title == 'renamed one'",
        WAIT,
    )
    .await;
    // The picker lists both and switches back to the first.
    let first_title = first["title"].as_str().expect("title").to_string();
    nvim.lua_with("_G.pick = ...", vec![json!(first_title.clone())])
        .await;
    nvim.cmd("Boo session").await.expect("pick");
    nvim.wait_for(
        "the first session current again",
        &format!(
            "require('boo.rpc').request('review_info', {{}}).session == {}",
            first["session"]
        ),
        WAIT,
    )
    .await;
    let asked = nvim.lua("return _G.asked[#_G.asked]").await;
    let labels: Vec<String> = asked["labels"]
        .as_array()
        .expect("labels")
        .iter()
        .map(|l| l.as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(labels.len(), 2, "{asked}");
    assert!(
        labels.iter().any(|l| l.starts_with("renamed one")),
        "{labels:?}"
    );
    // And forth again.
    nvim.lua("_G.pick = 'renamed one'").await;
    nvim.cmd("Boo session").await.expect("pick");
    nvim.wait_for(
        "the second session current again",
        &format!(
            "require('boo.rpc').request('review_info', {{}}).session == {}",
            second["session"]
        ),
        WAIT,
    )
    .await;
    // Completion of :Boo session.
    let mut comp: Vec<String> = serde_json::from_value(
        nvim.lua("return vim.fn.getcompletion('Boo session ', 'cmdline')")
            .await,
    )
    .expect("list");
    comp.sort();
    assert_eq!(comp, ["delete", "new", "rename"]);
    env.nvim.quit().await;
}

#[tokio::test]
async fn deleting_a_session_with_unaccepted_work_asks_and_stash_keeps_it() {
    let env = start().await;
    let nvim = &env.nvim;
    let i = info(nvim).await;
    let wt = PathBuf::from(i["worktree"].as_str().expect("wt"));
    std::fs::write(wt.join("src/main.py"), "print('agent work')\n").expect("write");
    // Cancel first: nothing happens.
    nvim.lua("_G.pick = 'cancel'").await;
    nvim.cmd("Boo session delete").await.expect("delete");
    wait_message(nvim, "kept").await;
    let asked = nvim.lua("return _G.asked[1]").await;
    assert!(
        asked["prompt"]
            .as_str()
            .unwrap_or_default()
            .contains("1 unaccepted"),
        "{asked}"
    );
    assert_eq!(asked["labels"].as_array().map(Vec::len), Some(3), "{asked}");
    assert!(wt.is_dir());
    // Stash and delete.
    nvim.lua("_G.pick = 'stash'").await;
    nvim.cmd("Boo session delete").await.expect("delete");
    let msgs = wait_message(nvim, "deleted; its work is kept on branch boo-stash/").await;
    assert!(!wt.exists(), "the worktree directory is gone");
    let stash = branches(&env.repo, "boo-stash/*");
    assert_eq!(stash.len(), 1, "{stash:?}");
    assert!(msgs.contains(&stash[0]), "{msgs}");
    let kept = repo::git(&env.repo, &["show", &format!("{}:src/main.py", stash[0])]);
    assert_eq!(kept, "print('agent work')\n");
    // The user's checkout was never touched.
    assert!(repo::git(&env.repo, &["status", "--porcelain"]).is_empty());
    // The worktree record outlives the session.
    let rows = worktree_rows(&env.db);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, None, "session_id is NULL: {rows:?}");
    assert!(rows[0].2, "marked removed: {rows:?}");
    let conn = rusqlite::Connection::open(&env.db).expect("db");
    let sessions: i64 = conn
        .query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
        .expect("count");
    assert_eq!(sessions, 0);
    // The session's float went away with it.
    nvim.wait_for(
        "no boo windows",
        "(function() for _, w in ipairs(vim.api.nvim_list_wins()) do if vim.w[w].boo_pane then return false end end return true end)()",
        WAIT,
    )
    .await;
    // A new session gets a worktree of its own even though the old branch was kept.
    nvim.cmd("Boo").await.expect(":Boo");
    let again = wait_worktree(nvim, None).await;
    let again_wt = PathBuf::from(again["worktree"].as_str().expect("wt"));
    assert!(again_wt.is_dir() && again_wt != wt, "{again}");
    assert_eq!(
        repo::git(&env.repo, &["show", &format!("{}:src/main.py", stash[0])]),
        "print('agent work')\n",
        "the stash survives the new session"
    );
    env.nvim.quit().await;
}

#[tokio::test]
async fn deleting_a_clean_session_asks_nothing() {
    let env = start().await;
    let nvim = &env.nvim;
    let i = info(nvim).await;
    let wt = PathBuf::from(i["worktree"].as_str().expect("wt"));
    nvim.cmd("Boo session delete").await.expect("delete");
    wait_message(nvim, "deleted").await;
    assert_eq!(nvim.lua("return #_G.asked").await, 0);
    assert!(!wt.exists());
    assert!(branches(&env.repo, "boo/*").is_empty());
    assert!(branches(&env.repo, "boo-stash/*").is_empty());
    // :Boo afterwards starts a fresh session.
    nvim.cmd("Boo").await.expect(":Boo");
    let again = wait_worktree(nvim, None).await;
    assert!(PathBuf::from(again["worktree"].as_str().expect("wt")).is_dir());
    env.nvim.quit().await;
}

#[tokio::test]
async fn the_picker_reopens_a_session_not_loaded_since_a_restart() {
    let env = start().await;
    let first = info(&env.nvim).await;
    env.nvim.cmd("Boo session new later").await.expect("new");
    let second = wait_worktree(&env.nvim, Some(&first)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let Env {
        nvim, _tmp: tmp, ..
    } = env;
    nvim.quit().await;

    // After a restart :Boo reopens the last active session; the other one is only in the store.
    let env = start_in(tmp).await;
    let nvim = &env.nvim;
    assert_eq!(info(nvim).await["session"], second["session"]);
    nvim.lua_with("_G.pick = ...", vec![first["title"].clone()])
        .await;
    nvim.cmd("Boo session").await.expect("pick");
    nvim.wait_for(
        "the first session current, with its worktree",
        &format!(
            "(function() local i = require('boo.rpc').request('review_info', {{}}) return i.session == {} and i.worktree == {} end)()",
            first["session"], first["worktree"]
        ),
        WAIT,
    )
    .await;
    nvim.wait_for(
        "its chat in the float",
        &format!(
            "(function() for _, w in ipairs(vim.api.nvim_list_wins()) do if (vim.b[vim.api.nvim_win_get_buf(w)].boo_id or ''):find('^boo://{}/%d+$') then return true end end end)()",
            first["session"]
        ),
        WAIT,
    )
    .await;
    env.nvim.quit().await;
}

/// The next session takes over the spare worktree made after the first one was ready: no new
/// checkout, a session worktree like any other (its branch, a turn in it, its review), and a
/// new spare is made for the session after. Real opencode and the scripted model.
#[tokio::test]
async fn the_next_session_takes_over_the_spare_worktree() {
    let w = boo_testkit::world::World::start().await;
    let nvim = &w.nvim;
    let repo_dir = w.dir.join("project");
    nvim.cmd("Boo").await.expect(":Boo");
    let first = wait_worktree(nvim, None).await;
    let spare = || {
        repo::git(
            &repo_dir,
            &[
                "branch",
                "--list",
                "boo/spare-*",
                "--format=%(refname:short)",
            ],
        )
        .lines()
        .map(str::to_string)
        .collect::<Vec<_>>()
    };
    let wait_spare = |what: &'static str| async move {
        let t0 = std::time::Instant::now();
        while spare().is_empty() {
            assert!(t0.elapsed() < WAIT, "{what}:\n{}", nvim.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        spare().remove(0)
    };
    let spare_branch = wait_spare("no spare made").await;
    let spare_name = spare_branch.trim_start_matches("boo/").to_string();
    // The spare is warmed in opencode (a scratch prompt) before any session asks for it.
    let t0 = std::time::Instant::now();
    while !nvim.log().lines().any(|l| {
        l.contains("opencode ready for the directory")
            && l.contains("warmed")
            && l.contains(&spare_name)
    }) {
        assert!(
            t0.elapsed() < WAIT,
            "the spare was not warmed:\n{}",
            nvim.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A prompt sent right away is for the new session, although the view still shows the
    // old session's float when `:Boo send` runs.
    nvim.cmd("Boo session new via spare").await.expect("new");
    nvim.cmd("Boo send [fake:write spare.txt from the spare session]")
        .await
        .expect("send");
    let second = wait_worktree(nvim, Some(&first)).await;
    assert!(
        nvim.log().contains("spare worktree adopted"),
        "{}",
        nvim.log()
    );
    let dir = PathBuf::from(second["worktree"].as_str().expect("dir"));
    // Adopted in place: the spare's directory (opencode's warm instance), the session's branch.
    assert_eq!(
        dir.file_name().map(|n| n.to_string_lossy().into_owned()),
        Some(spare_name.clone())
    );
    let head = repo::git(&dir, &["symbolic-ref", "HEAD"]);
    assert!(
        head.trim().starts_with("refs/heads/boo/via-spare-"),
        "{head}"
    );
    assert!(
        !spare().contains(&spare_branch),
        "the spare became the session's"
    );
    // The turn writes into its worktree only, pending review.
    nvim.wait_for(
        "the write pending",
        "require('boo').status().pending_changes == 1",
        Duration::from_secs(60),
    )
    .await;
    assert!(dir.join("spare.txt").exists());
    assert!(!repo_dir.join("spare.txt").exists());
    wait_spare("no spare for the session after").await;
    w.nvim.quit().await;
}
