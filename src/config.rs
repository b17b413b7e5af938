//! The configuration Lua sends after `hello` (paths already resolved against stdpath()).
//! A leaf module: `rpc/` decodes it, `app/` uses it.
//!
//! Decoded key by key ([`Config::decode`]): one bad value is reported by its name and left at
//! its default, instead of failing the whole message (which once meant an in-memory database
//! and `/tmp` worktrees).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct OpencodeConfig {
    pub cmd: Option<String>,
    pub url: Option<String>,
    pub password: Option<String>,
    /// "provider/model"; None = opencode's own default.
    pub model: Option<String>,
    pub watchdog_seconds: Option<u64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    /// SQLite database file.
    pub store_path: Option<PathBuf>,
    /// Root folder of session worktrees.
    pub worktree_dir: Option<PathBuf>,
    /// Ignored files copied into a new worktree.
    pub copy_ignored: Vec<String>,
    /// Keep a spare worktree made ahead for the next session.
    pub worktree_spare: bool,
    pub opencode: OpencodeConfig,
    pub router: RouterConfig,
    /// CLI and ACP agents by name (`qwen`, `claude`, `goose`, `opencode-acp`, `gemini`...).
    #[serde(deserialize_with = "map_or_empty_list")]
    pub agents: BTreeMap<String, CliAgentConfig>,
    /// Per-session caps on usage.
    pub budget: BudgetConfig,
    /// Most render batches a second while a chat streams (None = the default).
    pub ui_fps: Option<u32>,
    /// boo's MCP server for agents (tasks that start tasks).
    pub mcp: McpConfig,
    /// `:Boo arena`: the saved contestants, how many run at once, the check command.
    pub arena: ArenaConfig,
    /// Keys that did not decode, each as "key: why" (reported to the user).
    #[serde(skip)]
    pub problems: Vec<String>,
}

fn env_dir(k: &str) -> Option<PathBuf> {
    std::env::var_os(k)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

/// boo's per-user state folder (`$XDG_STATE_HOME/boo`, else `~/.local/state/boo`, else
/// `$XDG_RUNTIME_DIR/boo`): never a shared name under `/tmp`.
pub fn user_state_dir() -> Option<PathBuf> {
    env_dir("XDG_STATE_HOME")
        .or_else(|| env_dir("HOME").map(|h| h.join(".local/state")))
        .or_else(|| env_dir("XDG_RUNTIME_DIR"))
        .map(|d| d.join("boo"))
}

/// boo's per-user data folder (`$XDG_DATA_HOME/boo`, else `~/.local/share/boo`).
pub fn user_data_dir() -> Option<PathBuf> {
    env_dir("XDG_DATA_HOME")
        .or_else(|| env_dir("HOME").map(|h| h.join(".local/share")))
        .map(|d| d.join("boo"))
}

/// Decodes `obj[key]` into `slot`; a bad value is recorded by its dotted name and left alone.
fn field<T: DeserializeOwned>(
    obj: &Value,
    key: &str,
    prefix: &str,
    slot: &mut T,
    problems: &mut Vec<String>,
) {
    let Some(v) = obj.get(key) else { return };
    if v.is_null() {
        return;
    }
    match serde_json::from_value(v.clone()) {
        Ok(x) => *slot = x,
        Err(e) => problems.push(format!("{prefix}{key}: {e}")),
    }
}

impl Config {
    /// Decodes the `configure` argument key by key; see the module comment.
    pub fn decode(v: Option<&Value>) -> Config {
        let mut c = Config::default();
        let p = &mut c.problems;
        let v = match v {
            None | Some(Value::Null) => return c,
            Some(Value::Array(a)) if a.is_empty() => return c,
            Some(v) if !v.is_object() => {
                p.push(format!("configure: expected a table, got {v}"));
                return c;
            }
            Some(v) => v,
        };
        field(v, "store_path", "", &mut c.store_path, p);
        field(v, "worktree_dir", "", &mut c.worktree_dir, p);
        field(v, "copy_ignored", "", &mut c.copy_ignored, p);
        field(v, "worktree_spare", "", &mut c.worktree_spare, p);
        field(v, "ui_fps", "", &mut c.ui_fps, p);
        if let Some(fps) = c.ui_fps.filter(|f| !(1..=120).contains(f)) {
            p.push(format!("ui.fps: must be between 1 and 120, got {fps}"));
            c.ui_fps = None;
        }
        for (name, path) in [
            ("store_path", &c.store_path),
            ("worktree_dir", &c.worktree_dir),
        ] {
            if let Some(path) = path {
                if !path.is_absolute() {
                    p.push(format!(
                        "{name}: must be an absolute path, got '{}'",
                        path.display()
                    ));
                }
            }
        }
        if let Some(o) = v.get("opencode") {
            let oc = &mut c.opencode;
            field(o, "cmd", "opencode.", &mut oc.cmd, p);
            field(o, "url", "opencode.", &mut oc.url, p);
            field(o, "password", "opencode.", &mut oc.password, p);
            field(o, "model", "opencode.", &mut oc.model, p);
            field(
                o,
                "watchdog_seconds",
                "opencode.",
                &mut oc.watchdog_seconds,
                p,
            );
        }
        if let Some(r) = v.get("router") {
            field(r, "url", "router.", &mut c.router.url, p);
            field(r, "name", "router.", &mut c.router.name, p);
            field(r, "api_key", "router.", &mut c.router.api_key, p);
        }
        if let Some(m) = v.get("mcp") {
            field(m, "enabled", "mcp.", &mut c.mcp.enabled, p);
            field(m, "max_depth", "mcp.", &mut c.mcp.max_depth, p);
            field(m, "max_tasks", "mcp.", &mut c.mcp.max_tasks, p);
        }
        if let Some(a) = v.get("arena") {
            field(a, "contestants", "arena.", &mut c.arena.contestants, p);
            field(a, "limit", "arena.", &mut c.arena.limit, p);
            field(a, "check", "arena.", &mut c.arena.check, p);
            field(a, "check_timeout", "arena.", &mut c.arena.check_timeout, p);
            if c.arena.limit == 0 {
                p.push("arena.limit: must be at least 1".into());
                c.arena.limit = ArenaConfig::default().limit;
            }
        }
        if let Some(b) = v.get("budget") {
            field(b, "cost", "budget.", &mut c.budget.cost, p);
            field(b, "tokens", "budget.", &mut c.budget.tokens, p);
        }
        if let Some(agents) = v.get("agents") {
            match (agents.as_object(), agents.as_array()) {
                (Some(m), _) => {
                    for (name, a) in m {
                        let prefix = format!("agents.{name}.");
                        let mut ac = CliAgentConfig::default();
                        field(a, "cmd", &prefix, &mut ac.cmd, p);
                        field(a, "args", &prefix, &mut ac.args, p);
                        if let Some(env) = a.get("env") {
                            match map_or_empty_list::<_, String>(env.clone()) {
                                Ok(m) => ac.env = m,
                                Err(e) => p.push(format!("{prefix}env: {e}")),
                            }
                        }
                        field(a, "watchdog_seconds", &prefix, &mut ac.watchdog_seconds, p);
                        field(a, "protocol", &prefix, &mut ac.protocol, p);
                        c.agents.insert(name.clone(), ac);
                    }
                }
                // An empty Lua table arrives as an empty list.
                (None, Some(l)) if l.is_empty() => {}
                _ => p.push(format!("agents: expected a table of names, got {agents}")),
            }
        }
        c
    }
}

/// An OpenAI-compatible model router (llama-swap, vLLM, Ollama...): its models become opencode
/// models under the provider `name` (`llama-swap` by default).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct RouterConfig {
    /// Base URL of its OpenAI API (`http://127.0.0.1:8080/v1`; `/v1` is added when missing).
    pub url: Option<String>,
    pub name: Option<String>,
    pub api_key: Option<String>,
}

/// boo's MCP server: whether opencode gets it, and the limits on what agents start with it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default)]
pub struct McpConfig {
    pub enabled: bool,
    /// A chat of the user is depth 0; a task deeper than this is refused.
    pub max_depth: u32,
    /// Agent-made tasks running or queued at once.
    pub max_tasks: u32,
}

impl Default for McpConfig {
    fn default() -> Self {
        McpConfig {
            enabled: true,
            max_depth: 2,
            max_tasks: 4,
        }
    }
}

/// `:Boo arena`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default)]
pub struct ArenaConfig {
    /// Saved contestants: `"agent"` or `"agent:provider/model"` (see `app::arena::parse`).
    pub contestants: Vec<String>,
    /// Contestants running at once; the rest wait.
    pub limit: u32,
    /// The check command as argv (never a shell line), run in each contestant's worktree.
    pub check: Vec<String>,
    /// Seconds before a check is killed.
    pub check_timeout: u64,
}

impl Default for ArenaConfig {
    fn default() -> Self {
        ArenaConfig {
            contestants: Vec::new(),
            limit: 3,
            check: Vec::new(),
            check_timeout: 300,
        }
    }
}

/// Per-session caps: a turn is not run (or, past a step, aborted) once one is reached.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct BudgetConfig {
    /// Dollars.
    pub cost: Option<f64>,
    /// Tokens in and out.
    pub tokens: Option<u64>,
}

/// How to run one agent of `agents.<name>`: a CLI (`claude`, `qwen`) or an ACP agent (`qwen`, `goose`...).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct CliAgentConfig {
    /// The command; its name on `PATH` by default.
    pub cmd: Option<String>,
    /// Replaces the default extra arguments (approval mode and the like).
    pub args: Option<Vec<String>>,
    /// Extra environment (e.g. `OPENAI_BASE_URL` for qwen).
    #[serde(deserialize_with = "map_or_empty_list")]
    pub env: BTreeMap<String, String>,
    /// Stop a turn after this long without output (default 600; 0 = never).
    pub watchdog_seconds: Option<u64>,
    /// `acp` (Agent Client Protocol over stdio) or `stream-json` (the CLI's own JSON lines);
    /// the agent's default when `None`.
    pub protocol: Option<String>,
}

/// A map that Lua may send as an empty list (an empty Lua table is ambiguous).
pub(crate) fn map_or_empty_list<'de, D, V>(d: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: serde::Deserializer<'de>,
    V: serde::de::DeserializeOwned,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either<V> {
        Map(BTreeMap<String, V>),
        List(Vec<serde_json::Value>),
    }
    match Either::<V>::deserialize(d)? {
        Either::Map(m) => Ok(m),
        Either::List(l) if l.is_empty() => Ok(BTreeMap::new()),
        Either::List(_) => Err(serde::de::Error::custom("expected a table of names")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arena_config_decodes_with_defaults_and_names_a_bad_value() {
        let c = Config::decode(Some(&serde_json::json!({"arena": {
            "contestants": ["opencode:p/m", "qwen"], "check": ["sh", "-c", "true"],
            "check_timeout": 5, "limit": null,
        }})));
        assert_eq!(c.arena.contestants, vec!["opencode:p/m", "qwen"]);
        assert_eq!(c.arena.check, vec!["sh", "-c", "true"]);
        assert_eq!((c.arena.limit, c.arena.check_timeout), (3, 5));
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        let c = Config::decode(Some(
            &serde_json::json!({"arena": {"limit": 0, "check": "make test"}}),
        ));
        assert_eq!(c.arena.limit, 3);
        assert!(c.arena.check.is_empty());
        assert_eq!(c.problems.len(), 2, "{:?}", c.problems);
        assert!(c.problems.iter().any(|p| p.starts_with("arena.check:")));
    }

    #[test]
    fn budget_decodes_and_a_bad_value_is_named() {
        let c = Config::decode(Some(
            &serde_json::json!({"budget": {"cost": 2.5, "tokens": 500000}}),
        ));
        assert_eq!(
            c.budget,
            BudgetConfig {
                cost: Some(2.5),
                tokens: Some(500000)
            }
        );
        let c = Config::decode(Some(&serde_json::json!({"budget": {"tokens": "lots"}})));
        assert_eq!(c.budget.tokens, None);
        assert!(
            c.problems[0].starts_with("budget.tokens:"),
            "{:?}",
            c.problems
        );
    }

    #[test]
    fn agents_and_router_decode_also_from_empty_lua_tables() {
        let c: Config = serde_json::from_value(serde_json::json!({
            "router": {"url": "http://h:1/v1", "name": "lab"},
            "agents": {"qwen": {"cmd": "/opt/qwen", "args": ["--yolo"], "env": []}, "goose": []},
        }))
        .expect("decodes");
        assert_eq!(c.router.name.as_deref(), Some("lab"));
        let q = &c.agents["qwen"];
        assert_eq!(q.cmd.as_deref(), Some("/opt/qwen"));
        assert!(q.env.is_empty());
        let c: Config = serde_json::from_value(serde_json::json!({"agents": []})).expect("decodes");
        assert!(c.agents.is_empty());
        let c = Config::decode(Some(
            &serde_json::json!({"agents": {"goose": []}, "router": {"name": "lab"}}),
        ));
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        assert_eq!(c.router.name.as_deref(), Some("lab"));
        assert!(c.agents.contains_key("goose"));
    }

    #[test]
    fn one_bad_value_is_named_and_the_rest_still_applies() {
        let c = Config::decode(Some(&serde_json::json!({
            "store_path": "/data/boo.db",
            "worktree_dir": "rel/wt",
            "copy_ignored": [1],
            "opencode": {"watchdog_seconds": 1.5, "cmd": "/bin/oc"},
            "agents": {"qwen": {"env": {"X": 1}, "watchdog_seconds": -1, "cmd": "/q"}},
        })));
        assert_eq!(c.store_path, Some(PathBuf::from("/data/boo.db")));
        assert_eq!(c.opencode.cmd.as_deref(), Some("/bin/oc"));
        assert_eq!(c.agents["qwen"].cmd.as_deref(), Some("/q"));
        let all = c.problems.join("\n");
        for key in [
            "copy_ignored:",
            "opencode.watchdog_seconds:",
            "agents.qwen.env:",
            "agents.qwen.watchdog_seconds:",
            "worktree_dir: must be an absolute path",
        ] {
            assert!(all.contains(key), "{key} missing from {all}");
        }
        assert_eq!(c.problems.len(), 5, "{all}");
    }
}
