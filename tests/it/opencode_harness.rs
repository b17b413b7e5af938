//! The test harness itself: the fake model behind the real `opencode serve`. A session is
//! created, `/event` subscribed, a prompt sent with `prompt_async`, and the streamed answer's
//! deltas arrive over SSE until `session.idle`.

use std::time::Duration;

use boo_testkit::fake_model::FakeModel;
use boo_testkit::opencode::Sandbox;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::time::timeout;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_model_streams_through_real_opencode() {
    let model = FakeModel::start();
    let sb = Sandbox::start(&model);
    let http = reqwest::Client::new();
    let dir = sb.project_dir().to_string_lossy().into_owned();
    let auth = |r: reqwest::RequestBuilder| r.basic_auth(sb.username(), Some(sb.password()));

    let health: Value = timeout(
        Duration::from_secs(10),
        auth(http.get(format!("{}/global/health", sb.url()))).send(),
    )
    .await
    .expect("health timeout")
    .expect("health")
    .json()
    .await
    .expect("health json");
    assert_eq!(health["healthy"], json!(true), "{health}");

    let session: Value = auth(http.post(format!("{}/session", sb.url())))
        .query(&[("directory", &dir)])
        .json(&json!({}))
        .send()
        .await
        .expect("create session")
        .json()
        .await
        .expect("session json");
    let sid = session["id"].as_str().expect("session id").to_string();

    let resp = auth(http.get(format!("{}/event", sb.url())))
        .query(&[("directory", &dir)])
        .send()
        .await
        .expect("subscribe");
    assert!(resp.status().is_success());
    let mut body = resp.bytes_stream();

    let st = auth(http.post(format!("{}/session/{sid}/prompt_async", sb.url())))
        .query(&[("directory", &dir)])
        .json(&json!({"parts":[{"type":"text","text":"hello harness"}],
                      "model":{"providerID":"fake","modelID":"fake-model"}}))
        .send()
        .await
        .expect("prompt")
        .status();
    assert_eq!(st.as_u16(), 204);

    let mut buf = String::new();
    let mut deltas = String::new();
    let mut types = Vec::new();
    let run = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.expect("sse chunk");
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(p) = buf.find('\n') {
                let line = buf[..p].trim_end_matches('\r').to_string();
                buf.drain(..=p);
                let Some(data) = line.strip_prefix("data: ") else {
                    continue;
                };
                let ev: Value = serde_json::from_str(data).expect("event json");
                let ty = ev["type"].as_str().unwrap_or_default().to_string();
                let props = &ev["properties"];
                if ty == "message.part.delta" && props["sessionID"] == json!(sid) {
                    deltas.push_str(props["delta"].as_str().unwrap_or_default());
                }
                let idle = ty == "session.idle" && props["sessionID"] == json!(sid);
                types.push(ty);
                if idle {
                    return;
                }
            }
        }
        panic!("event stream ended early");
    };
    timeout(Duration::from_secs(60), run)
        .await
        .unwrap_or_else(|_| panic!("no session.idle; output:\n{}", sb.output()));

    assert!(
        types.iter().any(|t| t == "message.part.updated"),
        "{types:?}"
    );
    assert!(deltas.contains("Thinking about: hello harness"), "{deltas}");
    assert!(deltas.contains("Echo: hello harness"), "{deltas}");
    let chats = model.chat_requests();
    assert!(!chats.is_empty());
    assert_eq!(chats[0].model.as_deref(), Some("fake-model"));
    assert_eq!(chats[0].last_user_text.as_deref(), Some("hello harness"));
}

/// Records the SSE stream of a long answer (`[fake:long 4000]`) from the real server into
/// `tests/data/opencode_long_stream.sse` for the `events` benchmark. Run on purpose:
/// `BOO_RECORD=1 cargo test --test it -- opencode_harness::record_long_stream --ignored`.
/// The sandbox's temp path is replaced by `/home/user/project` in the recording.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn record_long_stream() {
    if std::env::var_os("BOO_RECORD").is_none() {
        return;
    }
    let model = FakeModel::start();
    let sb = Sandbox::start(&model);
    let http = reqwest::Client::new();
    let dir = sb.project_dir().to_string_lossy().into_owned();
    let auth = |r: reqwest::RequestBuilder| r.basic_auth(sb.username(), Some(sb.password()));
    let session: Value = auth(http.post(format!("{}/session", sb.url())))
        .query(&[("directory", &dir)])
        .json(&json!({}))
        .send()
        .await
        .expect("create session")
        .json()
        .await
        .expect("session json");
    let sid = session["id"].as_str().expect("id").to_string();
    let mut body = auth(http.get(format!("{}/event", sb.url())))
        .query(&[("directory", &dir)])
        .send()
        .await
        .expect("subscribe")
        .bytes_stream();
    auth(http.post(format!("{}/session/{sid}/prompt_async", sb.url())))
        .query(&[("directory", &dir)])
        .json(&json!({"parts":[{"type":"text","text":"long [fake:long 4000]"}]}))
        .send()
        .await
        .expect("prompt");
    let mut raw = Vec::new();
    let idle = format!("\"type\":\"session.idle\",\"properties\":{{\"sessionID\":\"{sid}\"");
    timeout(Duration::from_secs(120), async {
        while let Some(chunk) = body.next().await {
            raw.extend_from_slice(&chunk.expect("chunk"));
            if String::from_utf8_lossy(&raw).contains(&idle) {
                return;
            }
        }
    })
    .await
    .expect("no session.idle");
    let text = String::from_utf8_lossy(&raw).replace(&dir, "/home/user/project");
    let root = sb.env.root().to_string_lossy().into_owned();
    let text = text.replace(&root, "/home/user");
    let out = boo_testkit::tools::repo_root().join("tests/data/opencode_long_stream.sse");
    std::fs::create_dir_all(out.parent().expect("parent")).expect("mkdir");
    std::fs::write(&out, text).expect("write recording");
}

/// Records the SSE stream of two turns (reasoning and text; a `bash` tool then text) from the
/// real server into `tests/data/opencode_answer_v1.sse`, the V1 half of `opencode_v2.rs`. Run on
/// purpose: `BOO_RECORD=1 cargo test --test it -- opencode_harness::record_answer --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn record_answer() {
    if std::env::var_os("BOO_RECORD").is_none() {
        return;
    }
    let model = FakeModel::start();
    let opts = boo_testkit::opencode::SandboxOptions {
        bash_permission: Some("allow".into()),
        ..Default::default()
    };
    let sb = Sandbox::start_with(&model, opts);
    let http = reqwest::Client::new();
    let dir = sb.project_dir().to_string_lossy().into_owned();
    let auth = |r: reqwest::RequestBuilder| r.basic_auth(sb.username(), Some(sb.password()));
    let session: Value = auth(http.post(format!("{}/session", sb.url())))
        .query(&[("directory", &dir)])
        .json(&json!({}))
        .send()
        .await
        .expect("create session")
        .json()
        .await
        .expect("session json");
    let sid = session["id"].as_str().expect("id").to_string();
    let mut body = auth(http.get(format!("{}/event", sb.url())))
        .query(&[("directory", &dir)])
        .send()
        .await
        .expect("subscribe")
        .bytes_stream();
    let mut raw = Vec::new();
    let idle = format!("\"type\":\"session.idle\",\"properties\":{{\"sessionID\":\"{sid}\"");
    for (i, prompt) in ["explain the plan", "run it [fake:bash echo v2]"]
        .iter()
        .enumerate()
    {
        auth(http.post(format!("{}/session/{sid}/prompt_async", sb.url())))
            .query(&[("directory", &dir)])
            .json(&json!({"parts":[{"type":"text","text": prompt}]}))
            .send()
            .await
            .expect("prompt");
        timeout(Duration::from_secs(120), async {
            while let Some(chunk) = body.next().await {
                raw.extend_from_slice(&chunk.expect("chunk"));
                if String::from_utf8_lossy(&raw).matches(&idle).count() > i {
                    return;
                }
            }
        })
        .await
        .expect("no session.idle");
    }
    let text = String::from_utf8_lossy(&raw).replace(&dir, "/home/user/project");
    let root = sb.env.root().to_string_lossy().into_owned();
    let text = text.replace(&root, "/home/user");
    let out = boo_testkit::tools::repo_root().join("tests/data/opencode_answer_v1.sse");
    std::fs::write(&out, text).expect("write recording");
}
