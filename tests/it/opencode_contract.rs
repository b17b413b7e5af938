//! The opencode contract: the real server driven through a scripted conversation (text and
//! reasoning, a tool behind a permission, a write, a model error, an abort). Every event type and
//! the key structure of every event and REST reply (key paths with JSON types, no values) are
//! compared with `tests/data/opencode_contract.txt`, so an upgrade shows what changed as a diff.
//!
//! * `BOO_OPENCODE=/path/to/opencode` (what `make contract OPENCODE=...` sets) runs it against
//!   another binary.
//! * `BOO_RECORD=1` writes the fixture from this run; `BOO_RECORD=merge` keeps it and marks
//!   what this run did not share with it as optional (`? ` lines: the server's timing decides
//!   whether some events come, e.g. a `session.status` between two others).

use std::collections::BTreeSet;
use std::time::Duration;

use boo_testkit::fake_model::FakeModel;
use boo_testkit::opencode::Sandbox;
use futures::StreamExt;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(60);

fn fixture_path() -> std::path::PathBuf {
    boo_testkit::tools::repo_root().join("tests/data/opencode_contract.txt")
}

/// Key paths with their JSON types: `properties.part.time.start number`. Map keys that are
/// data, not names (file paths, ids), become `*`.
fn shape(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    let kind = match v {
        Value::Object(m) => {
            if m.is_empty() {
                out.insert(format!("{prefix} {{}}"));
            }
            for (k, x) in m {
                let data_key = k.contains('/') || k.starts_with("ses_") || k.starts_with("per_");
                let k = if data_key { "*" } else { k.as_str() };
                let p = if prefix.is_empty() {
                    k.to_string()
                } else {
                    format!("{prefix}.{k}")
                };
                shape(x, &p, out);
            }
            return;
        }
        Value::Array(a) => {
            for x in a {
                shape(x, &format!("{prefix}[]"), out);
            }
            "array"
        }
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Null => "null",
    };
    out.insert(format!("{prefix} {kind}"));
}

/// The contract lines of one event or reply, under `what` (`event message.part.updated`).
fn lines_of(what: &str, v: &Value, out: &mut BTreeSet<String>) {
    out.insert(what.to_string());
    let mut s = BTreeSet::new();
    shape(v, "", &mut s);
    for l in s {
        out.insert(format!("{what}: {}", l.trim_start()));
    }
}

/// What differs between the fixture and a run: required lines missing, lines not in the
/// fixture. Empty when they agree.
fn compare(fixture: &str, run: &BTreeSet<String>) -> String {
    let mut required = BTreeSet::new();
    let mut optional = BTreeSet::new();
    for l in fixture
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        match l.strip_prefix("? ") {
            Some(o) => optional.insert(o.to_string()),
            None => required.insert(l.to_string()),
        };
    }
    let mut diff = String::new();
    for l in required.iter().filter(|l| !run.contains(*l)) {
        diff.push_str(&format!("- {l}\n"));
    }
    for l in run
        .iter()
        .filter(|l| !required.contains(*l) && !optional.contains(*l))
    {
        diff.push_str(&format!("+ {l}\n"));
    }
    diff
}

/// The fixture text of `run`, with `optional` lines marked.
fn fixture_text(run: &BTreeSet<String>, optional: &BTreeSet<String>) -> String {
    let mut all: BTreeSet<&String> = run.iter().collect();
    all.extend(optional.iter());
    let mut s = String::from(
        "# The opencode contract (tests/it/opencode_contract.rs): event types and key paths.\n\
         # `? ` lines may be absent from a run. Regenerate: BOO_RECORD=1 (or merge).\n",
    );
    for l in all {
        if optional.contains(l) || !run.contains(l) {
            s.push_str("? ");
        }
        s.push_str(l);
        s.push('\n');
    }
    s
}

struct Server {
    sb: Sandbox,
    http: reqwest::Client,
    dir: String,
}

impl Server {
    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.sb.url()))
            .basic_auth(self.sb.username(), Some(self.sb.password()))
            .query(&[("directory", &self.dir)])
    }

    /// A REST call whose reply joins the contract as `rest METHOD ROUTE`.
    async fn rest(
        &self,
        out: &mut BTreeSet<String>,
        method: reqwest::Method,
        path: &str,
        route: &str,
        body: Option<Value>,
    ) -> Value {
        let mut r = self.req(method.clone(), path);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.expect("request");
        let status = resp.status();
        assert!(status.is_success(), "{method} {path}: {status}");
        let text = resp.text().await.expect("body");
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        lines_of(
            &format!("rest {method} {route} {}", status.as_u16()),
            &v,
            out,
        );
        v
    }
}

/// Reads events until `until` says stop; every event joins the contract.
async fn events_until(
    stream: &mut (impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    buf: &mut String,
    out: &mut BTreeSet<String>,
    mut until: impl FnMut(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            for line in frame.lines() {
                let Some(data) = line.strip_prefix("data: ") else {
                    continue;
                };
                let Ok(ev) = serde_json::from_str::<Value>(data) else {
                    continue;
                };
                let ty = ev["type"].as_str().unwrap_or("?").to_string();
                // The heartbeat's timing depends on how long the run takes.
                if ty != "server.heartbeat" {
                    lines_of(&format!("event {ty}"), &ev, out);
                }
                if until(&ev) {
                    return ev;
                }
            }
        }
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("event timeout")
            .expect("stream open")
            .expect("chunk");
        buf.push_str(&String::from_utf8_lossy(&chunk));
    }
}

fn is(ev: &Value, ty: &str, sid: &str) -> bool {
    ev["type"] == ty && ev["properties"]["sessionID"] == sid
}

async fn run_conversation() -> BTreeSet<String> {
    use reqwest::Method;
    let model = FakeModel::start();
    let sb = Sandbox::start(&model);
    let dir = sb.project_dir().to_string_lossy().into_owned();
    let s = Server {
        sb,
        http: reqwest::Client::new(),
        dir,
    };
    let mut out = BTreeSet::new();
    let mut stream = s
        .req(Method::GET, "/event")
        .send()
        .await
        .expect("subscribe")
        .bytes_stream()
        .boxed();
    let mut buf = String::new();
    events_until(&mut stream, &mut buf, &mut out, |e| {
        e["type"] == "server.connected"
    })
    .await;
    let session = s
        .rest(
            &mut out,
            Method::POST,
            "/session",
            "/session",
            Some(json!({})),
        )
        .await;
    let sid = session["id"].as_str().expect("session id").to_string();
    let prompt = |text: &str| json!({"parts": [{"type": "text", "text": text}]});
    let route = format!("/session/{sid}/prompt_async");
    let turn = |text: &'static str| {
        let body = prompt(text);
        let route = route.clone();
        let s = &s;
        async move {
            let r = s
                .req(Method::POST, &route)
                .json(&body)
                .send()
                .await
                .expect("prompt");
            assert!(r.status().is_success(), "prompt: {}", r.status());
        }
    };
    let idle = |sid: String| move |e: &Value| is(e, "session.idle", &sid);

    // Text and reasoning.
    turn("hello contract").await;
    events_until(&mut stream, &mut buf, &mut out, idle(sid.clone())).await;
    // A tool behind a permission, answered once.
    turn("[fake:bash echo contract]").await;
    let asked = events_until(&mut stream, &mut buf, &mut out, |e| {
        e["type"] == "permission.asked"
    })
    .await;
    s.rest(&mut out, Method::GET, "/permission", "/permission", None)
        .await;
    let pid = asked["properties"]["id"].as_str().expect("permission id");
    s.rest(
        &mut out,
        Method::POST,
        &format!("/permission/{pid}/reply"),
        "/permission/{id}/reply",
        Some(json!({"reply": "once"})),
    )
    .await;
    events_until(&mut stream, &mut buf, &mut out, idle(sid.clone())).await;
    // A write.
    turn("[fake:write notes.txt written by the contract]").await;
    events_until(&mut stream, &mut buf, &mut out, idle(sid.clone())).await;
    // A model error.
    turn("bad [fake:error]").await;
    events_until(&mut stream, &mut buf, &mut out, idle(sid.clone())).await;
    // An abort mid-answer.
    turn("[fake:stall 60]").await;
    events_until(&mut stream, &mut buf, &mut out, |e| {
        e["type"] == "message.part.delta" || e["type"] == "message.part.updated"
    })
    .await;
    s.rest(
        &mut out,
        Method::GET,
        "/session/status",
        "/session/status",
        None,
    )
    .await;
    s.rest(
        &mut out,
        Method::POST,
        &format!("/session/{sid}/abort"),
        "/session/{id}/abort",
        None,
    )
    .await;
    events_until(&mut stream, &mut buf, &mut out, idle(sid.clone())).await;
    // What the re-sync reads: the whole list, and (what the end-of-turn re-sync relies on)
    // `?limit=N` giving the newest N, oldest first.
    let all = s
        .rest(
            &mut out,
            Method::GET,
            &format!("/session/{sid}/message"),
            "/session/{id}/message",
            None,
        )
        .await;
    let tail = s
        .rest(
            &mut out,
            Method::GET,
            &format!("/session/{sid}/message?limit=2"),
            "/session/{id}/message?limit",
            None,
        )
        .await;
    let ids = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|m| m["info"]["id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let all_ids = ids(&all);
    assert!(all_ids.len() > 2, "{all_ids:?}");
    assert_eq!(
        ids(&tail),
        all_ids[all_ids.len() - 2..].to_vec(),
        "limit gives the newest"
    );
    s.rest(
        &mut out,
        Method::GET,
        &format!("/session/{sid}"),
        "/session/{id}",
        None,
    )
    .await;
    s.rest(&mut out, Method::GET, "/agent", "/agent", None)
        .await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pinned_opencode_keeps_its_contract() {
    let run = run_conversation().await;
    let path = fixture_path();
    let fixture = std::fs::read_to_string(&path).unwrap_or_default();
    match std::env::var("BOO_RECORD").as_deref() {
        Ok("1") => {
            std::fs::write(&path, fixture_text(&run, &BTreeSet::new())).expect("write");
            return;
        }
        Ok("merge") => {
            let mut optional = BTreeSet::new();
            for l in fixture
                .lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
            {
                match l.strip_prefix("? ") {
                    Some(o) => optional.insert(o.to_string()),
                    None if !run.contains(l) => optional.insert(l.to_string()),
                    None => false,
                };
            }
            let known: BTreeSet<String> = fixture
                .lines()
                .map(|l| l.trim_start_matches("? ").to_string())
                .collect();
            if !fixture.is_empty() {
                optional.extend(run.iter().filter(|l| !known.contains(*l)).cloned());
            }
            std::fs::write(&path, fixture_text(&run, &optional)).expect("write");
            return;
        }
        _ => {}
    }
    let diff = compare(&fixture, &run);
    assert!(
        diff.is_empty(),
        "the opencode contract changed (- expected, + new; {}):\n{diff}",
        path.display()
    );
}

/// The comparison names what changed: a renamed event shows as one line gone, one new.
#[test]
fn a_renamed_event_fails_readably() {
    let fixture = std::fs::read_to_string(fixture_path()).expect("fixture");
    let mut run: BTreeSet<String> = fixture
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("? ") && !l.is_empty())
        .map(str::to_string)
        .collect();
    assert!(compare(&fixture, &run).is_empty());
    run = run
        .into_iter()
        .map(|l| l.replace("event message.part.delta", "event session.next.text.delta"))
        .collect();
    let diff = compare(&fixture, &run);
    assert!(diff.contains("- event message.part.delta\n"), "{diff}");
    assert!(diff.contains("+ event session.next.text.delta\n"), "{diff}");
    assert!(
        diff.contains("+ event session.next.text.delta: properties.delta string"),
        "{diff}"
    );
}
