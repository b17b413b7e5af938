//! Secrets stay out of the log: the real Neovim, boocoder and `opencode serve` with the
//! scripted model, configured with a router URL that carries credentials and an API key.

use std::time::Duration;

use boo_testkit::fake_model::FakeModel;
use boo_testkit::nvim::{Nvim, NvimOptions};
use boo_testkit::opencode::{OpencodeEnv, SandboxOptions};
use boo_testkit::repo;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn router_credentials_and_api_key_never_reach_the_log() {
    let model = FakeModel::start();
    let env = OpencodeEnv::new(&model, &SandboxOptions::default());
    let tmp = tempfile::tempdir().expect("tmp");
    let project = repo::sample(&tmp.path().join("project"));
    let nvim = Nvim::start_with(NvimOptions {
        cwd: Some(project),
        env: env.vars().to_vec(),
        // Port 1 is closed: the router probe fails and its error (naming the URL) is logged.
        config: json!({
            "router": { "url": "http://alice:ROUTERPW@127.0.0.1:1/v1", "api_key": "sk-APIKEY-XYZ" },
            "agents": { "qwen": { "env": { "QWEN_TOKEN": "ENVSECRET" } } },
        }),
    })
    .await;
    nvim.cmd("Boo").await.expect(":Boo");
    nvim.cmd("Boo send hello there").await.expect("send");
    nvim.wait_transcript("the answer", "Echo: hello there", WAIT)
        .await;
    let log = nvim.log();
    assert!(
        log.contains("router"),
        "the router failure is logged: {log}"
    );
    for secret in ["ROUTERPW", "sk-APIKEY-XYZ", "ENVSECRET"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
    let msgs = nvim.messages().await;
    assert!(!msgs.contains("ROUTERPW"), "{msgs}");
    nvim.quit().await;
}
