//! One end-to-end world, as most e2e tests need it: the scripted model, a hermetic opencode
//! environment, a sample project with its database and worktrees in a [`TestDir`], and the
//! real Neovim with the plugin started in the project.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value as Json};

use crate::dir::TestDir;
use crate::fake_model::FakeModel;
use crate::nvim::{Nvim, NvimOptions};
use crate::opencode::{OpencodeEnv, SandboxOptions};

const WAIT: Duration = Duration::from_secs(60);

pub struct World {
    pub nvim: Nvim,
    pub model: FakeModel,
    pub env: OpencodeEnv,
    /// The world's folder: `project/` (the repository), `boo.db`, `worktrees/`.
    pub dir: PathBuf,
    /// Shared by the worlds of one test (a restart keeps it); removed when the test passes.
    pub tmp: Arc<TestDir>,
}

/// How to start a [`World`]; everything is optional.
#[derive(Default)]
pub struct WorldOptions {
    /// Reuse this folder (a restart); default a new one.
    pub tmp: Option<Arc<TestDir>>,
    pub model: Option<FakeModel>,
    pub sandbox: Option<SandboxOptions>,
    /// Reuse this opencode environment (its storage keeps the agent's sessions).
    pub env: Option<OpencodeEnv>,
    /// Merged into the plugin config (after the store and worktree paths).
    pub config: Option<Json>,
}

impl World {
    pub async fn start() -> World {
        World::start_with(WorldOptions::default()).await
    }

    pub async fn start_with(o: WorldOptions) -> World {
        let model = o.model.unwrap_or_else(FakeModel::start);
        let env = o
            .env
            .unwrap_or_else(|| OpencodeEnv::new(&model, &o.sandbox.unwrap_or_default()));
        let tmp = o.tmp.unwrap_or_else(|| Arc::new(TestDir::new("boo-e2e-")));
        let dir = tmp.path().to_path_buf();
        let project = dir.join("project");
        if !project.exists() {
            crate::repo::sample(&project);
        }
        let mut config = json!({
            "store": { "path": dir.join("boo.db").display().to_string() },
            "worktree": { "dir": dir.join("worktrees").display().to_string() },
        });
        if let Some(extra) = &o.config {
            crate::nvim::merge(&mut config, extra);
        }
        let nvim = Nvim::start_with(NvimOptions {
            cwd: Some(project),
            env: env.vars().to_vec(),
            config,
        })
        .await;
        World {
            nvim,
            model,
            env,
            dir,
            tmp,
        }
    }

    /// Quits Neovim (and with it the backend) and starts a new world in the same folder with
    /// the same model.
    pub async fn restart(self) -> World {
        let World {
            nvim,
            model,
            env,
            tmp,
            ..
        } = self;
        nvim.quit().await;
        drop(env);
        World::start_with(WorldOptions {
            tmp: Some(tmp),
            model: Some(model),
            ..Default::default()
        })
        .await
    }

    /// [`World::restart`] keeping the opencode environment: the agent's own sessions survive,
    /// as they do for a user.
    pub async fn restart_keeping_agent(self) -> World {
        let World {
            nvim,
            model,
            env,
            tmp,
            ..
        } = self;
        nvim.quit().await;
        World::start_with(WorldOptions {
            tmp: Some(tmp),
            model: Some(model),
            env: Some(env),
            ..Default::default()
        })
        .await
    }

    pub fn db(&self) -> PathBuf {
        self.dir.join("boo.db")
    }

    /// The running backend's pid (from its `hello` reply).
    pub async fn backend_pid(&self) -> i32 {
        self.nvim
            .lua("local r, err = require('boo.rpc').request('hello', { protocol = require('boo.rpc').PROTOCOL }); assert(r, err); return r.pid")
            .await
            .as_i64()
            .expect("pid") as i32
    }

    /// `kill -9` of the backend, then waits until the plugin saw it exit; returns its pid.
    pub async fn kill_backend(&self) -> i32 {
        let pid = self.backend_pid().await;
        // SAFETY: kill(2) has no memory effects; the pid is the backend Neovim started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        self.nvim
            .wait_for(
                "the plugin to notice the exit",
                "not require('boo.rpc').running()",
                WAIT,
            )
            .await;
        pid
    }

    /// Waits until the transcript on screen contains `needle`; returns it.
    pub async fn wait_transcript(&self, what: &str, needle: &str) -> String {
        self.nvim.wait_transcript(what, needle, WAIT).await
    }
}

/// The transcript texts stored in the database file (empty when it cannot be read yet).
pub fn stored_texts(db: &Path) -> Vec<String> {
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return Vec::new();
    };
    let Ok(mut stmt) = conn.prepare("SELECT content FROM transcript ORDER BY chat_id, seq") else {
        return Vec::new();
    };
    stmt.query_map([], |r| r.get::<_, String>(0))
        .map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default()
}
