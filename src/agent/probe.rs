//! Which agents are available, and with which models.
//!
//! * opencode: its agents (`GET /agent`) and configured providers/models
//!   (`GET /config/providers`), asked from the backend's own server (the warm one the chats
//!   use, or the attached one), through its `Client`: the probe starts no server of its own.
//! * an optional OpenAI-compatible model router (llama-swap, vLLM, Ollama...): its
//!   `GET /v1/models`. Its models become opencode models under a provider named after the router
//!   (`llama-swap/` by default): [`router_config_content`] adds that provider to the inline
//!   config (`OPENCODE_CONFIG_CONTENT`) the opencode server starts with, merged with the user's.
//! * CLI agents (qwen, claude): found on `PATH` (or configured), with `--version`.
//!
//! Everything here is async with timeouts; the caller caches the [`ProbeReport`].

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};

use super::external::CliKind;

/// Default provider name of the model router in opencode.
pub const DEFAULT_ROUTER_NAME: &str = "llama-swap";

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct AgentInfo {
    pub name: String,
    /// primary | subagent | all
    pub mode: String,
    pub description: String,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ProviderInfo {
    pub id: String,
    pub name: String,
    pub models: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct OpencodeProbe {
    /// Where it was asked: the attached URL, or the command.
    pub source: String,
    pub version: Option<String>,
    pub error: Option<String>,
    pub agents: Vec<AgentInfo>,
    pub providers: Vec<ProviderInfo>,
    /// opencode's default model (`provider/model`), if it says.
    pub default_model: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct RouterProbe {
    pub name: String,
    pub url: String,
    /// Model ids as the router lists them (without the prefix).
    pub models: Vec<String>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct CliProbe {
    pub name: String,
    pub command: String,
    /// Absolute path when found.
    pub path: Option<String>,
    pub version: Option<String>,
    pub error: Option<String>,
}

/// One ACP agent as probed.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct AcpProbe {
    #[serde(flatten)]
    pub found: CliProbe,
    /// The agent runs through ACP with the current config (else: a CLI, or not configured).
    pub active: bool,
    /// How to install it.
    pub install: String,
}

/// An ACP agent to probe.
#[derive(Clone, Debug)]
pub struct AcpSpec {
    pub name: String,
    pub command: PathBuf,
    pub env: Vec<(String, String)>,
    pub active: bool,
    pub install: String,
}

/// The result of one probe.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ProbeReport {
    pub opencode: OpencodeProbe,
    pub router: Option<RouterProbe>,
    pub cli: Vec<CliProbe>,
    /// ACP agents (`name`, command, version or why not); `active` ones run through ACP.
    #[serde(default)]
    pub acp: Vec<AcpProbe>,
    /// Unix ms when it finished.
    pub at: i64,
    pub took_ms: u64,
}

impl ProbeReport {
    /// Every usable model as `provider/model`: opencode's, then the router's (prefixed), sorted
    /// and without duplicates.
    pub fn models(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .opencode
            .providers
            .iter()
            .flat_map(|p| p.models.iter().map(move |m| format!("{}/{m}", p.id)))
            .collect();
        if let Some(r) = &self.router {
            v.extend(r.models.iter().map(|m| format!("{}/{m}", r.name)));
        }
        v.sort();
        v.dedup();
        v
    }

    /// Every agent a chat can use: `opencode` (its default agent), `opencode:<agent>` for its
    /// other primary agents, and the CLI agents that were found.
    pub fn agents(&self) -> Vec<String> {
        let mut v = vec!["opencode".to_string()];
        for a in &self.opencode.agents {
            if a.name != super::opencode::DEFAULT_AGENT && a.mode != "subagent" {
                v.push(format!("opencode:{}", a.name));
            }
        }
        v.extend(
            self.cli
                .iter()
                .filter(|c| c.path.is_some() && c.error.is_none())
                .map(|c| c.name.clone()),
        );
        for a in &self.acp {
            if a.active && a.found.path.is_some() && !v.contains(&a.found.name) {
                v.push(a.found.name.clone());
            }
        }
        v
    }
}

#[derive(Clone, Debug)]
pub struct RouterOptions {
    pub name: String,
    /// Base URL of its OpenAI API (`http://host:port/v1`; `/v1` is added when missing).
    pub url: String,
    pub api_key: Option<String>,
}

/// A CLI agent to probe: its kind, command and extra environment.
pub type CliSpec = (CliKind, PathBuf, Vec<(String, String)>);

/// What to probe.
#[derive(Clone)]
pub struct ProbeOptions {
    /// The opencode backend whose server is asked (it starts it if it is not running yet).
    pub opencode: std::sync::Arc<dyn super::AgentBackend>,
    /// How the report names it: the command, or the attached URL.
    pub opencode_source: String,
    /// The directory whose opencode instance is asked (its project config applies).
    pub directory: PathBuf,
    pub router: Option<RouterOptions>,
    pub clis: Vec<CliSpec>,
    pub acp: Vec<AcpSpec>,
    /// Where CLIs are looked for (`PATH` of this process when `None`).
    pub search_path: Option<std::ffi::OsString>,
    pub timeout: Duration,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Runs the whole probe: router, CLIs and opencode concurrently.
pub async fn run(opts: ProbeOptions) -> ProbeReport {
    let started = Instant::now();
    let clis = futures::future::join_all(
        opts.clis
            .iter()
            .map(|(k, cmd, env)| probe_cli(*k, cmd, env, opts.search_path.as_deref())),
    );
    let router = async {
        match &opts.router {
            Some(r) => Some(probe_router(r).await),
            None => None,
        }
    };
    // The backend adds the router's models to its server's config itself (`RoutedOpencode`).
    let opencode = async {
        let ask = probe_opencode(&opts);
        match tokio::time::timeout(opts.timeout, ask).await {
            Ok(p) => p,
            Err(_) => OpencodeProbe {
                source: opts.opencode_source.clone(),
                error: Some(format!(
                    "opencode did not answer within {} s",
                    opts.timeout.as_secs()
                )),
                ..Default::default()
            },
        }
    };
    // An ACP agent run by a command probed anyway (qwen's CLI, opencode) is not run again: its
    // result is copied below (every `--version` is a process start on a busy machine).
    let same_as_cli = |a: &AcpSpec| opts.clis.iter().position(|(_, c, _)| *c == a.command);
    // Not attached, the report's source is the command the opencode backend runs.
    let same_as_opencode =
        |a: &AcpSpec| a.command.as_os_str() == std::ffi::OsStr::new(&opts.opencode_source);
    let acp = futures::future::join_all(opts.acp.iter().map(|a| async {
        let found = if same_as_cli(a).is_some() || same_as_opencode(a) {
            CliProbe::default()
        } else {
            probe_command(
                &a.name,
                &a.command,
                &a.env,
                opts.search_path.as_deref(),
                &a.install,
            )
            .await
        };
        AcpProbe {
            found,
            active: a.active,
            install: a.install.clone(),
        }
    }));
    let (cli, router, opencode, acp) = tokio::join!(clis, router, opencode, acp);
    let mut acp = acp;
    for (a, spec) in acp.iter_mut().zip(&opts.acp) {
        if let Some(i) = same_as_cli(spec) {
            a.found = CliProbe {
                name: spec.name.clone(),
                ..cli[i].clone()
            };
        } else if same_as_opencode(spec) {
            a.found = CliProbe {
                name: spec.name.clone(),
                command: spec.command.display().to_string(),
                path: find_command(&spec.command, opts.search_path.as_deref())
                    .map(|p| p.display().to_string()),
                version: opencode.version.clone(),
                error: opencode.error.clone(),
            };
        }
    }
    ProbeReport {
        opencode,
        router,
        cli,
        acp,
        at: now_ms(),
        took_ms: started.elapsed().as_millis() as u64,
    }
}

/// The absolute path of `cmd`: itself when it names a file, else the first match on `path`
/// (this process's `PATH` when `None`).
pub fn find_command(cmd: &Path, path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if cmd.components().count() > 1 || cmd.is_absolute() {
        return executable(cmd).then(|| cmd.to_path_buf());
    }
    let paths = match path {
        Some(p) => p.to_os_string(),
        None => std::env::var_os("PATH")?,
    };
    std::env::split_paths(&paths)
        .map(|d| d.join(cmd))
        .find(|p| executable(p))
}

/// `cmd --version` (first line), with a timeout.
pub async fn probe_cli(
    kind: CliKind,
    cmd: &Path,
    env: &[(String, String)],
    search_path: Option<&std::ffi::OsStr>,
) -> CliProbe {
    probe_command(kind.name(), cmd, env, search_path, kind.install_hint()).await
}

/// `cmd --version` of the agent `name` (first line), with a timeout; `install` says how to
/// get it when it is not found.
pub async fn probe_command(
    name: &str,
    cmd: &Path,
    env: &[(String, String)],
    search_path: Option<&std::ffi::OsStr>,
    install: &str,
) -> CliProbe {
    let mut p = CliProbe {
        name: name.to_string(),
        command: cmd.display().to_string(),
        ..Default::default()
    };
    let Some(path) = find_command(cmd, search_path) else {
        p.error = Some(format!("not found ({install})"));
        return p;
    };
    p.path = Some(path.display().to_string());
    let mut c = tokio::process::Command::new(&path);
    c.arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        c.env(k, v);
    }
    match tokio::time::timeout(Duration::from_secs(15), c.output()).await {
        Ok(Ok(out)) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            p.version = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .map(str::to_string);
        }
        Ok(Ok(out)) => {
            let err = String::from_utf8_lossy(&out.stderr);
            p.error = Some(format!(
                "--version failed ({}): {}",
                out.status,
                err.lines().last().unwrap_or_default().trim()
            ));
        }
        Ok(Err(e)) => p.error = Some(format!("does not run: {e}")),
        Err(_) => p.error = Some("--version did not answer within 15 s".into()),
    }
    p
}

/// `http://host:port/v1` from what the user configured (with or without `/v1`).
pub fn router_base(url: &str) -> String {
    let u = url.trim().trim_end_matches('/');
    if u.ends_with("/v1") {
        u.to_string()
    } else {
        format!("{u}/v1")
    }
}

/// The router's `GET /v1/models`.
pub async fn probe_router(r: &RouterOptions) -> RouterProbe {
    let base = router_base(&r.url);
    let mut p = RouterProbe {
        name: r.name.clone(),
        url: base.clone(),
        ..Default::default()
    };
    let http = match reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(h) => h,
        Err(e) => {
            p.error = Some(e.to_string());
            return p;
        }
    };
    let mut req = http.get(format!("{base}/models"));
    if let Some(k) = r.api_key.as_deref().filter(|k| !k.is_empty()) {
        req = req.bearer_auth(k);
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            p.error = Some(format!("unreachable: {}", without_url(&e)));
            return p;
        }
    };
    if !resp.status().is_success() {
        p.error = Some(format!("GET /v1/models answered {}", resp.status()));
        return p;
    }
    match resp.json::<Value>().await {
        Ok(v) => {
            let ids = v
                .get("data")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|m| m.get("id").and_then(Value::as_str))
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            if ids.is_empty() {
                p.error = Some("it lists no models".into());
            }
            p.models = ids;
        }
        Err(e) => p.error = Some(format!("not the OpenAI models list: {e}")),
    }
    p
}

fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(&format!(" ({u})"), "");
    }
    s
}

/// The opencode server's environment with the router's provider added to its inline config
/// (`OPENCODE_CONFIG_CONTENT` of `env`, else of this process). Unchanged without models.
pub fn with_router(
    env: &[(String, String)],
    r: &RouterProbe,
    api_key: Option<&str>,
) -> Vec<(String, String)> {
    let mut env = env.to_vec();
    if r.models.is_empty() {
        return env;
    }
    let user = env
        .iter()
        .rev()
        .find(|(k, _)| k == "OPENCODE_CONFIG_CONTENT")
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var("OPENCODE_CONFIG_CONTENT").ok());
    env.retain(|(k, _)| k != "OPENCODE_CONFIG_CONTENT");
    env.push((
        "OPENCODE_CONFIG_CONTENT".into(),
        router_config_content(user.as_deref(), r, api_key),
    ));
    env
}

/// The opencode provider entry for the router's models.
pub fn router_provider(r: &RouterProbe, api_key: Option<&str>) -> Value {
    let models: serde_json::Map<String, Value> = r
        .models
        .iter()
        .map(|m| (m.clone(), json!({ "name": m })))
        .collect();
    json!({
        "npm": "@ai-sdk/openai-compatible",
        "name": r.name,
        "options": { "baseURL": r.url, "apiKey": api_key.filter(|k| !k.is_empty()).unwrap_or("none") },
        "models": models,
    })
}

/// The user's inline opencode config (if any) with the router's provider added. A provider of
/// the same name the user configured keeps its settings and gains the router's models.
pub fn router_config_content(user: Option<&str>, r: &RouterProbe, api_key: Option<&str>) -> String {
    let mut cfg = user
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let ours = router_provider(r, api_key);
    let providers = cfg
        .as_object_mut()
        .map(|o| o.entry("provider").or_insert_with(|| json!({})));
    if let Some(Value::Object(providers)) = providers {
        match providers.get_mut(&r.name) {
            Some(Value::Object(theirs)) => {
                let models = theirs.entry("models").or_insert_with(|| json!({}));
                if let (Value::Object(m), Some(Value::Object(add))) = (models, ours.get("models")) {
                    for (k, v) in add {
                        m.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
            }
            _ => {
                providers.insert(r.name.clone(), ours);
            }
        }
    }
    cfg.to_string()
}

/// Asks the backend's server for its version, agents and providers.
async fn probe_opencode(opts: &ProbeOptions) -> OpencodeProbe {
    let mut p = OpencodeProbe {
        source: opts.opencode_source.clone(),
        ..Default::default()
    };
    let client = match opts.opencode.server_client().await {
        Some(Ok(c)) => c,
        Some(Err(super::AgentError::NotFound(_))) => {
            p.error = Some(
                "opencode not found: install it (npm i -g opencode-ai) or set opencode.cmd".into(),
            );
            return p;
        }
        Some(Err(e)) => {
            p.error = Some(format!("opencode does not start: {e}"));
            return p;
        }
        None => {
            p.error = Some("not an opencode backend".into());
            return p;
        }
    };
    match client.health().await {
        Ok(v) => p.version = Some(v),
        Err(e) => {
            p.error = Some(format!("unreachable: {e}"));
            return p;
        }
    }
    let dir = opts.directory.as_path();
    let (agents, providers) = tokio::join!(client.agents(dir), client.providers(dir));
    match agents {
        Ok(v) => p.agents = parse_agents(&v),
        Err(e) => p.error = Some(e.to_string()),
    }
    match providers {
        Ok(v) => {
            let (providers, default) = parse_providers(&v);
            p.providers = providers;
            p.default_model = default;
        }
        Err(e) => p.error = Some(e.to_string()),
    }
    p
}

/// `GET /agent`: visible agents (hidden ones are opencode's internals).
pub fn parse_agents(v: &Value) -> Vec<AgentInfo> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter(|x| x.get("hidden").and_then(Value::as_bool) != Some(true))
                .filter_map(|x| {
                    Some(AgentInfo {
                        name: x.get("name")?.as_str()?.to_string(),
                        mode: x
                            .get("mode")
                            .and_then(Value::as_str)
                            .unwrap_or("all")
                            .to_string(),
                        description: x
                            .get("description")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `GET /config/providers`: `{providers:[{id, name, models:{id:{...}}}], default:{p: m}}`.
pub fn parse_providers(v: &Value) -> (Vec<ProviderInfo>, Option<String>) {
    let providers: Vec<ProviderInfo> = v
        .get("providers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|p| {
                    let id = p.get("id")?.as_str()?.to_string();
                    if id == crate::agent::opencode::warm::PROVIDER {
                        return None;
                    }
                    let mut models: Vec<String> = match p.get("models") {
                        Some(Value::Object(m)) => m.keys().cloned().collect(),
                        Some(Value::Array(m)) => m
                            .iter()
                            .filter_map(|x| x.get("id").and_then(Value::as_str))
                            .map(str::to_string)
                            .collect(),
                        _ => Vec::new(),
                    };
                    models.sort();
                    Some(ProviderInfo {
                        name: p
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or(&id)
                            .to_string(),
                        id,
                        models,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    // opencode names one default per provider; prefer the one of a provider the user added.
    let default = v.get("default").and_then(Value::as_object).and_then(|d| {
        let mut listed = d
            .iter()
            .filter(|(p, _)| p.as_str() != crate::agent::opencode::warm::PROVIDER);
        let pick = listed
            .clone()
            .find(|(p, _)| p.as_str() != "opencode")
            .or_else(|| listed.next())?;
        Some(format!("{}/{}", pick.0, pick.1.as_str()?))
    });
    (providers, default)
}

/// The opencode backend with the model router's models added as a provider: made on the first
/// turn, after asking the router for its models (so nothing waits at start-up, and a router
/// that is down only costs its own models).
pub struct RoutedOpencode {
    cfg: super::opencode::OpencodeConfig,
    router: Option<RouterOptions>,
    events: tokio::sync::mpsc::UnboundedSender<super::AgentEvent>,
    backend: tokio::sync::OnceCell<super::opencode::OpencodeBackend>,
}

impl RoutedOpencode {
    pub fn new(
        cfg: super::opencode::OpencodeConfig,
        router: Option<RouterOptions>,
        events: tokio::sync::mpsc::UnboundedSender<super::AgentEvent>,
    ) -> RoutedOpencode {
        RoutedOpencode {
            cfg,
            router,
            events,
            backend: tokio::sync::OnceCell::new(),
        }
    }

    async fn backend(&self) -> &super::opencode::OpencodeBackend {
        self.backend
            .get_or_init(|| async {
                let mut cfg = self.cfg.clone();
                if let Some(r) = &self.router {
                    let p = probe_router(r).await;
                    match &p.error {
                        None => {
                            let url = crate::logging::redact_urls(&p.url);
                            tracing::info!(router = %url, models = ?p.models, "router models added to opencode");
                            cfg.env = with_router(&cfg.env, &p, r.api_key.as_deref());
                        }
                        Some(e) => {
                            let (url, e) = (crate::logging::redact_urls(&p.url), crate::logging::redact_urls(e));
                            tracing::warn!(router = %url, "router: {e}");
                            let _ = self.events.send(super::AgentEvent::ServerError(format!(
                                "model router {url}: {e}; its models are not available to opencode"
                            )));
                        }
                    }
                }
                super::opencode::OpencodeBackend::new(cfg, self.events.clone())
            })
            .await
    }
}

#[async_trait::async_trait]
impl super::AgentBackend for RoutedOpencode {
    fn name(&self) -> &str {
        "opencode"
    }

    async fn start_turn(&self, req: super::TurnRequest) -> Result<(), super::AgentError> {
        self.backend().await.start_turn(req).await
    }

    async fn abort(&self, chat: crate::model::ChatId) -> Result<(), super::AgentError> {
        match self.backend.get() {
            Some(b) => b.abort(chat).await,
            None => Err(super::AgentError::NotRunning(chat)),
        }
    }

    async fn reply_permission(
        &self,
        id: &str,
        reply: super::PermissionReply,
    ) -> Result<(), super::AgentError> {
        match self.backend.get() {
            Some(b) => b.reply_permission(id, reply).await,
            None => Err(super::AgentError::UnknownPermission(id.to_string())),
        }
    }

    async fn pending_permissions(&self) -> Vec<super::PendingPermission> {
        match self.backend.get() {
            Some(b) => b.pending_permissions().await,
            None => Vec::new(),
        }
    }

    async fn close_chat(&self, chat: crate::model::ChatId) {
        if let Some(b) = self.backend.get() {
            b.close_chat(chat).await
        }
    }

    async fn shutdown(&self) {
        if let Some(b) = self.backend.get() {
            b.shutdown().await
        }
    }

    async fn prepare(&self, directory: Option<std::path::PathBuf>) {
        self.backend().await.prepare(directory).await
    }

    async fn server_client(
        &self,
    ) -> Option<Result<super::opencode::client::Client, super::AgentError>> {
        self.backend().await.server_client().await
    }

    async fn rewind(
        &self,
        directory: std::path::PathBuf,
        external_id: String,
        before: Option<String>,
    ) -> Result<(), super::AgentError> {
        self.backend()
            .await
            .rewind(directory, external_id, before)
            .await
    }

    async fn fork(
        &self,
        directory: std::path::PathBuf,
        external_id: String,
        before: Option<String>,
    ) -> Result<String, super::AgentError> {
        self.backend()
            .await
            .fork(directory, external_id, before)
            .await
    }

    async fn commands(&self, directory: std::path::PathBuf) -> Vec<(String, String)> {
        self.backend().await.commands(directory).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warm_up_provider_is_never_listed_nor_the_default() {
        let warm = crate::agent::opencode::warm::PROVIDER;
        let v = json!({
            "providers": [
                {"id": warm, "name": "w", "models": {"none": {}}},
                {"id": "opencode", "name": "opencode", "models": {"big-pickle": {}}}
            ],
            "default": {warm: "none", "opencode": "big-pickle"}
        });
        let (providers, default) = parse_providers(&v);
        assert_eq!(default.as_deref(), Some("opencode/big-pickle"));
        assert_eq!(providers.len(), 1);
        let only = json!({"providers": [{"id": warm, "models": {}}], "default": {warm: "none"}});
        assert_eq!(parse_providers(&only), (Vec::new(), None));
    }

    #[test]
    fn providers_agents_and_the_merged_model_list() {
        let v = json!({
            "providers": [
                {"id": "opencode", "name": "opencode", "models": {"big-pickle": {}}},
                {"id": "fake", "name": "Fake", "models": {"fake-model": {}}}
            ],
            "default": {"opencode": "big-pickle", "fake": "fake-model"}
        });
        let (providers, default) = parse_providers(&v);
        assert_eq!(default.as_deref(), Some("fake/fake-model"));
        let agents = parse_agents(&json!([
            {"name": "build", "mode": "primary"},
            {"name": "plan", "mode": "primary"},
            {"name": "explore", "mode": "subagent"},
            {"name": "title", "mode": "primary", "hidden": true}
        ]));
        let report = ProbeReport {
            opencode: OpencodeProbe {
                providers,
                agents,
                ..Default::default()
            },
            router: Some(RouterProbe {
                name: "llama-swap".into(),
                url: "http://127.0.0.1:1/v1".into(),
                models: vec!["qwen3".into()],
                error: None,
            }),
            cli: vec![
                CliProbe {
                    name: "qwen".into(),
                    path: Some("/bin/qwen".into()),
                    ..Default::default()
                },
                CliProbe {
                    name: "claude".into(),
                    error: Some("not found".into()),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        assert_eq!(
            report.models(),
            ["fake/fake-model", "llama-swap/qwen3", "opencode/big-pickle"]
        );
        assert_eq!(report.agents(), ["opencode", "opencode:plan", "qwen"]);
    }

    #[test]
    fn router_provider_merges_into_the_users_inline_config() {
        let r = RouterProbe {
            name: "llama-swap".into(),
            url: "http://127.0.0.1:9/v1".into(),
            models: vec!["a".into(), "b".into()],
            error: None,
        };
        let merged: Value = serde_json::from_str(&router_config_content(
            Some(r#"{"model":"x/y","provider":{"x":{"npm":"n"},"llama-swap":{"options":{"apiKey":"k"},"models":{"a":{"name":"mine"}}}}}"#),
            &r,
            None,
        ))
        .expect("json");
        assert_eq!(merged["model"], "x/y");
        assert_eq!(merged["provider"]["x"]["npm"], "n");
        assert_eq!(merged["provider"]["llama-swap"]["options"]["apiKey"], "k");
        assert_eq!(
            merged["provider"]["llama-swap"]["models"]["a"]["name"],
            "mine"
        );
        assert_eq!(merged["provider"]["llama-swap"]["models"]["b"]["name"], "b");
        let fresh: Value =
            serde_json::from_str(&router_config_content(None, &r, None)).expect("json");
        assert_eq!(
            fresh["provider"]["llama-swap"]["options"]["baseURL"],
            "http://127.0.0.1:9/v1"
        );
        assert_eq!(
            fresh["provider"]["llama-swap"]["npm"],
            "@ai-sdk/openai-compatible"
        );
        assert_eq!(router_base("http://h:1"), "http://h:1/v1");
        assert_eq!(router_base("http://h:1/v1/"), "http://h:1/v1");
    }
}
