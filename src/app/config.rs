//! The configuration Lua sends after `hello` (paths already resolved against stdpath()).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

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
    pub opencode: OpencodeConfig,
    pub router: RouterConfig,
    /// CLI agents by name (`qwen`, `claude`, `goose`).
    #[serde(deserialize_with = "map_or_empty_list")]
    pub agents: BTreeMap<String, CliAgentConfig>,
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

/// How to run one CLI agent (`agents.qwen`, `agents.claude`, `agents.goose`).
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
    /// Stop a turn after this long without output (default 600).
    pub watchdog_seconds: Option<u64>,
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
    }
}
