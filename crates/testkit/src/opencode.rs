//! An isolated environment for the real `opencode serve`, wired to a [`FakeModel`].
//!
//! [`OpencodeEnv`] is the hermetic part (temp dir holding the four XDG dirs and HOME, the
//! disable env vars, the inline config naming the fake provider, a git project dir); the
//! product's own server lifecycle can be started with its [`vars`](OpencodeEnv::vars).
//! [`Sandbox`] additionally runs `opencode serve` itself (for tests of the raw API) and kills
//! its process group on drop.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::fake_model::{FakeModel, MODEL_ID};

/// Provider id of the fake model in the opencode config.
pub const PROVIDER_ID: &str = "fake";

/// What to put in the sandbox's config.
#[derive(Clone, Debug)]
pub struct SandboxOptions {
    /// `permission.bash` (`"ask"`, `"allow"`, `"deny"`); `None` leaves it out.
    pub bash_permission: Option<String>,
    /// Merged (top-level keys) into the generated config.
    pub extra_config: Option<Value>,
    /// More model ids of the fake provider besides [`MODEL_ID`] (the fake serves any id; a
    /// `[fake:modelwrite]` prompt answers by the model's id).
    pub models: Vec<String>,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            bash_permission: Some("ask".to_string()),
            extra_config: None,
            models: Vec::new(),
        }
    }
}

/// The hermetic environment: a temp dir with its own XDG dirs and HOME, and a git project.
pub struct OpencodeEnv {
    dir: crate::dir::TestDir,
    project: PathBuf,
    vars: Vec<(String, String)>,
}

impl OpencodeEnv {
    pub fn new(model: &FakeModel, opts: &SandboxOptions) -> OpencodeEnv {
        let dir = crate::dir::TestDir::new("boo-oc-");
        let root = dir.path().to_path_buf();
        let mut vars = Vec::new();
        for (k, sub) in [
            ("XDG_CONFIG_HOME", "config"),
            ("XDG_DATA_HOME", "data"),
            ("XDG_STATE_HOME", "state"),
            ("XDG_CACHE_HOME", "cache"),
            ("HOME", "home"),
        ] {
            let p = root.join(sub);
            std::fs::create_dir_all(&p).expect("create sandbox dir");
            vars.push((k.to_string(), p.to_string_lossy().into_owned()));
        }
        for k in [
            "OPENCODE_DISABLE_AUTOUPDATE",
            "OPENCODE_DISABLE_SHARE",
            "OPENCODE_DISABLE_LSP_DOWNLOAD",
            "OPENCODE_DISABLE_MODELS_FETCH",
            "OPENCODE_DISABLE_DEFAULT_PLUGINS",
        ] {
            vars.push((k.to_string(), "1".to_string()));
        }
        vars.push((
            "OPENCODE_CONFIG_CONTENT".to_string(),
            config_for(&model.base_url(), opts).to_string(),
        ));
        let env = OpencodeEnv {
            project: root.join("project"),
            dir,
            vars,
        };
        let project = env.project.clone();
        env.init_repo(&project);
        env
    }

    /// Env vars to set on `opencode serve` (XDG dirs, HOME, disable switches, inline config).
    pub fn vars(&self) -> &[(String, String)] {
        &self.vars
    }

    /// The temp root (deleted on drop).
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A git repository with one commit, to use as a session directory.
    pub fn project_dir(&self) -> &Path {
        &self.project
    }

    /// Another git repository with one commit inside the sandbox (e.g. a second worktree).
    pub fn new_project(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        self.init_repo(&p);
        p
    }

    fn init_repo(&self, p: &Path) {
        std::fs::create_dir_all(p).expect("create project dir");
        std::fs::write(p.join("README.md"), "sandbox project\n").expect("write README");
        let git = |args: &[&str]| {
            let st = Command::new("git")
                .args(args)
                .current_dir(p)
                .env("HOME", self.dir.path().join("home"))
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run git");
            assert!(st.success(), "git {args:?} failed");
        };
        git(&["init", "-q"]);
        git(&["add", "."]);
        git(&[
            "-c",
            "user.name=boo",
            "-c",
            "user.email=boo@example.invalid",
            "commit",
            "-q",
            "-m",
            "init",
        ]);
    }
}

/// The fake model's context window, as the opencode config gives it.
pub const CONTEXT_LIMIT: u64 = 32000;
/// Its price in dollars per million tokens: input, output, cache read.
pub const COST: (f64, f64, f64) = (1.0, 2.0, 0.5);

/// The inline opencode config (`OPENCODE_CONFIG_CONTENT`) for a fake model at `base_url`.
pub fn config_for(base_url: &str, opts: &SandboxOptions) -> Value {
    let mut cfg = json!({
        "$schema": "https://opencode.ai/config.json",
        "provider": {
            PROVIDER_ID: {
                "npm": "@ai-sdk/openai-compatible",
                "name": "Fake",
                "options": {"baseURL": base_url, "apiKey": "x"},
                "models": {MODEL_ID: {
                    "name": "Fake",
                    "limit": {"context": CONTEXT_LIMIT, "output": 4096},
                    // Dollars per million tokens, so turns have a known cost.
                    "cost": {"input": COST.0, "output": COST.1, "cache_read": COST.2},
                    // Images too, so an image attachment reaches the model as an image part.
                    "attachment": true,
                    "modalities": {"input": ["text", "image"], "output": ["text"]},
                }}
            }
        },
        "model": format!("{PROVIDER_ID}/{MODEL_ID}"),
        "small_model": format!("{PROVIDER_ID}/{MODEL_ID}"),
        "autoupdate": false,
        "share": "disabled",
    });
    for m in &opts.models {
        let same = cfg["provider"][PROVIDER_ID]["models"][MODEL_ID].clone();
        cfg["provider"][PROVIDER_ID]["models"][m.as_str()] = same;
    }
    if let Some(b) = &opts.bash_permission {
        cfg["permission"] = json!({ "bash": b });
    }
    if let (Some(Value::Object(extra)), Value::Object(obj)) = (&opts.extra_config, &mut cfg) {
        for (k, v) in extra {
            obj.insert(k.clone(), v.clone());
        }
    }
    cfg
}

/// A random password (hex) from the OS's random source.
pub fn random_password() -> String {
    let mut b = [0u8; 16];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok();
    if !ok {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b.copy_from_slice(&(t ^ std::process::id() as u128).to_le_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A running `opencode serve` in an [`OpencodeEnv`].
pub struct Sandbox {
    pub env: OpencodeEnv,
    child: Child,
    url: String,
    password: String,
    output: Arc<Mutex<String>>,
}

impl Sandbox {
    /// Starts `opencode serve` for `model` with the default options (`bash: ask`).
    pub fn start(model: &FakeModel) -> Sandbox {
        Sandbox::start_with(model, SandboxOptions::default())
    }

    pub fn start_with(model: &FakeModel, opts: SandboxOptions) -> Sandbox {
        let env = OpencodeEnv::new(model, &opts);
        let password = random_password();
        let mut cmd = Command::new(crate::tools::opencode());
        cmd.args(["serve", "--hostname", "127.0.0.1", "--port", "0"])
            .current_dir(env.project_dir())
            .env("OPENCODE_SERVER_PASSWORD", &password)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        for (k, v) in env.vars() {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn opencode serve");
        let output = Arc::new(Mutex::new(String::new()));
        let (url_tx, url_rx) = std::sync::mpsc::channel::<String>();
        if let Some(out) = child.stdout.take() {
            let output = output.clone();
            std::thread::spawn(move || {
                let mut tx = Some(url_tx);
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if let Some(rest) = line.trim().strip_prefix("opencode server listening on ") {
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(rest.trim().to_string());
                        }
                    }
                    if let Ok(mut o) = output.lock() {
                        o.push_str(&line);
                        o.push('\n');
                    }
                }
            });
        }
        if let Some(err) = child.stderr.take() {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines() {
                    let Ok(line) = line else { break };
                    if let Ok(mut o) = output.lock() {
                        o.push_str(&line);
                        o.push('\n');
                    }
                }
            });
        }
        let url = match url_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(u) => u,
            Err(_) => {
                let pid = child.id() as i32;
                // SAFETY: kill(2) on a process group we created; no memory is touched.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                }
                let _ = child.wait();
                let out = output.lock().map(|o| o.clone()).unwrap_or_default();
                panic!("opencode serve did not report its URL; output:\n{out}");
            }
        };
        Sandbox {
            env,
            child,
            url,
            password,
            output,
        }
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> &str {
        self.url.trim_end_matches('/')
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    /// Basic-auth user name.
    pub fn username(&self) -> &str {
        "opencode"
    }

    pub fn project_dir(&self) -> &Path {
        self.env.project_dir()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server printed so far (stdout and stderr interleaved by line).
    pub fn output(&self) -> String {
        self.output.lock().map(|o| o.clone()).unwrap_or_default()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        // SAFETY: kill(2) on the process group of our own child; no memory is touched.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}
