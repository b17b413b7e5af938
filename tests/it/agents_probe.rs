//! The probe against the real opencode (with the scripted model configured), a second scripted
//! model acting as an OpenAI-compatible router, and CLI agents placed on a PATH by the test.

use std::time::{Duration, Instant};

use crate::support::agents::*;
use boo_testkit::fake_model::FakeModel;
use boo_testkit::opencode::{OpencodeEnv, SandboxOptions};
use boocoder::agent::external::CliKind;
use boocoder::agent::opencode::OpencodeConfig;
use boocoder::agent::probe::{self, ProbeOptions, RoutedOpencode, RouterOptions};
use boocoder::agent::AgentBackend;
use std::sync::Arc;

/// The opencode backend the probe asks, as the app makes it (router models added to its
/// server's config on first use).
fn backend(
    command: std::path::PathBuf,
    env: Vec<(String, String)>,
    router: Option<RouterOptions>,
) -> Arc<RoutedOpencode> {
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let cfg = OpencodeConfig {
        command,
        env,
        ..Default::default()
    };
    Arc::new(RoutedOpencode::new(cfg, router, tx))
}

#[tokio::test]
async fn probe_lists_opencode_models_router_models_and_cli_agents() {
    let model = FakeModel::start();
    let router = FakeModel::start();
    let env = OpencodeEnv::new(&model, &SandboxOptions::default());
    let tmp = tempfile::tempdir().expect("tmp");
    let bin = tmp.path().join("bin");
    script(&bin, "qwen", "echo '0.24.4-test'");
    script(&bin, "claude", "echo 'broken install' >&2; exit 2");
    script(&bin, "gemini", "echo '0.9.0-test'");
    let acp_spec = |name: &str, active: bool| {
        let b = boocoder::agent::acp::builtin::find(name).expect("built in");
        probe::AcpSpec {
            name: name.into(),
            command: b.cmd.into(),
            env: Vec::new(),
            active,
            install: b.install.into(),
        }
    };
    let router_opts = RouterOptions {
        name: "llama-swap".into(),
        // Without `/v1`: it is added.
        url: format!("http://127.0.0.1:{}", router.port()),
        api_key: None,
    };
    let oc = backend(
        boo_testkit::tools::opencode(),
        env.vars().to_vec(),
        Some(router_opts.clone()),
    );
    let opts = ProbeOptions {
        opencode: oc.clone(),
        opencode_source: "opencode".into(),
        directory: env.project_dir().to_path_buf(),
        router: Some(router_opts),
        clis: CliKind::ALL
            .iter()
            .map(|k| (*k, std::path::PathBuf::from(k.name()), Vec::new()))
            .collect(),
        acp: vec![
            acp_spec("gemini", true),
            acp_spec("codex-acp", true),
            acp_spec("qwen", false),
        ],
        search_path: Some(bin.clone().into_os_string()),
        timeout: Duration::from_secs(60),
    };
    let t0 = Instant::now();
    let report = probe::run(opts.clone()).await;
    let took = t0.elapsed();
    // The backend's own server answered: a second probe finds it warm.
    let t1 = Instant::now();
    let again = probe::run(opts).await;
    let warm = t1.elapsed();
    assert_eq!(again.opencode, report.opencode);
    oc.shutdown().await;
    assert_eq!(report.opencode.error, None, "{report:#?}");
    assert_eq!(report.opencode.version.as_deref(), Some("1.18.33"));
    let models = report.models();
    assert!(
        models.contains(&"fake/fake-model".to_string()),
        "{models:?}"
    );
    assert!(
        models.contains(&"llama-swap/fake-model".to_string()),
        "{models:?}"
    );
    // The router's models are opencode models: the server lists the router as a provider.
    let provider = report
        .opencode
        .providers
        .iter()
        .find(|p| p.id == "llama-swap")
        .unwrap_or_else(|| panic!("opencode knows the router: {report:#?}"));
    assert_eq!(provider.models, ["fake-model"]);
    let router = report.router.as_ref().expect("router probed");
    assert_eq!(
        router.url,
        format!("http://127.0.0.1:{}/v1", provider_port(&router.url))
    );
    assert_eq!(router.error, None);
    // opencode's agents: build (the default) and plan; hidden ones are left out.
    let names: Vec<&str> = report
        .opencode
        .agents
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert!(
        names.contains(&"build") && names.contains(&"plan"),
        "{names:?}"
    );
    assert!(!names.contains(&"title"), "{names:?}");
    // CLIs: qwen found with its version, claude found but broken (goose is an ACP agent).
    let cli = |n: &str| {
        report
            .cli
            .iter()
            .find(|c| c.name == n)
            .cloned()
            .unwrap_or_else(|| panic!("{n} probed"))
    };
    assert_eq!(cli("qwen").version.as_deref(), Some("0.24.4-test"));
    assert_eq!(
        cli("qwen").path,
        Some(bin.join("qwen").display().to_string())
    );
    assert!(
        cli("claude")
            .error
            .as_deref()
            .is_some_and(|e| e.contains("broken install")),
        "{:?}",
        cli("claude")
    );
    assert!(
        report.cli.iter().all(|c| c.name != "goose"),
        "goose has no CLI path: {:?}",
        report.cli
    );
    // ACP agents: gemini found with its version; codex-acp missing, with how to install it;
    // qwen found but run as a CLI (listed once).
    let acp = |n: &str| {
        report
            .acp
            .iter()
            .find(|c| c.found.name == n)
            .cloned()
            .unwrap_or_else(|| panic!("{n} probed: {:#?}", report.acp))
    };
    assert_eq!(acp("gemini").found.version.as_deref(), Some("0.9.0-test"));
    assert!(
        acp("codex-acp")
            .found
            .error
            .as_deref()
            .is_some_and(|e| e.contains("npm install -g @zed-industries/codex-acp")),
        "{:?}",
        acp("codex-acp")
    );
    assert!(!acp("qwen").active && acp("qwen").found.path.is_some());
    let agents = report.agents();
    assert_eq!(agents, ["opencode", "opencode:plan", "qwen", "gemini"]);
    eprintln!(
        "probe took {took:?} (report says {} ms); again on the warm server: {warm:?}",
        report.took_ms
    );
}

fn provider_port(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches("/v1").parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn probe_reports_an_unreachable_router_and_a_missing_opencode() {
    let tmp = tempfile::tempdir().expect("tmp");
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let opts = ProbeOptions {
        opencode: backend(tmp.path().join("no-opencode"), Vec::new(), None),
        opencode_source: "no-opencode".into(),
        directory: tmp.path().to_path_buf(),
        router: Some(RouterOptions {
            name: "lab".into(),
            url: format!("http://127.0.0.1:{port}/v1"),
            api_key: Some("k".into()),
        }),
        clis: Vec::new(),
        acp: Vec::new(),
        search_path: None,
        timeout: Duration::from_secs(5),
    };
    let report = probe::run(opts).await;
    let router = report.router.clone().expect("router");
    assert!(
        router
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("unreachable")),
        "{router:?}"
    );
    assert!(router.models.is_empty());
    assert!(
        report
            .opencode
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("opencode not found")),
        "{:?}",
        report.opencode
    );
    assert_eq!(report.agents(), ["opencode"]);
}
