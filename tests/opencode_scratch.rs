use boo_testkit::fake_model::FakeModel;
use boo_testkit::opencode::Sandbox;
use futures::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;

async fn dump(prompt: &str, out: &str, reply: Option<&str>) {
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
        .unwrap()
        .json()
        .await
        .unwrap();
    let sid = session["id"].as_str().unwrap().to_string();
    let resp = auth(http.get(format!("{}/event", sb.url())))
        .query(&[("directory", &dir)])
        .send()
        .await
        .unwrap();
    let mut body = resp.bytes_stream();
    auth(http.post(format!("{}/session/{sid}/prompt_async", sb.url())))
        .query(&[("directory", &dir)])
        .json(&json!({"parts":[{"type":"text","text":prompt}]}))
        .send()
        .await
        .unwrap();
    let mut raw = Vec::new();
    let mut buf = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(40), async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.unwrap();
            raw.extend_from_slice(&chunk);
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(p) = buf.find('\n') {
                let line = buf[..p].to_string();
                buf.drain(..=p);
                let Some(data) = line.strip_prefix("data: ") else {
                    continue;
                };
                let ev: Value = serde_json::from_str(data).unwrap();
                if ev["type"] == "permission.asked" {
                    if let Some(r) = reply {
                        let id = ev["properties"]["id"].as_str().unwrap();
                        let st = auth(http.post(format!("{}/permission/{id}/reply", sb.url())))
                            .query(&[("directory", &dir)])
                            .json(&json!({"reply":r}))
                            .send()
                            .await
                            .unwrap();
                        eprintln!("reply status {}", st.status());
                    }
                }
                if ev["type"] == "session.idle" {
                    return;
                }
            }
        }
    })
    .await;
    std::fs::write(out, &raw).unwrap();
    let msgs: Value = auth(http.get(format!("{}/session/{sid}/message", sb.url())))
        .query(&[("directory", &dir)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    std::fs::write(
        format!("{out}.messages.json"),
        serde_json::to_string_pretty(&msgs).unwrap(),
    )
    .unwrap();
    let perms: Value = auth(http.get(format!("{}/permission", sb.url())))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    eprintln!("perms after: {perms}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scratch() {
    dump(
        "run it [fake:bash echo hi]",
        "/tmp/oc_bash_once.sse",
        Some("once"),
    )
    .await;
    dump(
        "run it [fake:bash echo hi]",
        "/tmp/oc_bash_reject.sse",
        Some("reject"),
    )
    .await;
    dump("bad [fake:error]", "/tmp/oc_error.sse", None).await;
    dump("hello plain", "/tmp/oc_plain.sse", None).await;
    dump(
        "w [fake:write out.txt some content]",
        "/tmp/oc_write.sse",
        None,
    )
    .await;
}
