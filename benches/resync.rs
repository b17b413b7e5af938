//! The end-of-turn re-sync on a long session: the real `opencode serve` and the scripted model,
//! a session grown to 200 turns; at 10, 50 and 200 turns, the time of what the re-sync reads
//! (`GET /session/{id}/message?limit=8`, read from the end) against the whole message list it
//! read before. `cargo bench --bench resync` (or `-- 100` for another final length).

use std::time::{Duration, Instant};

use boo_testkit::fake_model::FakeModel;
use boo_testkit::opencode::Sandbox;
use serde_json::{json, Value};

const RUNS: usize = 9;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let turns: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let model = FakeModel::start();
    let sb = Sandbox::start(&model);
    let http = reqwest::Client::new();
    let dir = sb.project_dir().to_string_lossy().into_owned();
    let req = |m: reqwest::Method, path: &str| {
        http.request(m, format!("{}{path}", sb.url()))
            .basic_auth(sb.username(), Some(sb.password()))
            .query(&[("directory", &dir)])
    };
    let session: Value = req(reqwest::Method::POST, "/session")
        .json(&json!({}))
        .send()
        .await
        .expect("session")
        .json()
        .await
        .expect("json");
    let sid = session["id"].as_str().expect("id").to_string();
    let get = |query: Option<usize>| {
        let mut r = req(reqwest::Method::GET, &format!("/session/{sid}/message"));
        if let Some(l) = query {
            r = r.query(&[("limit", l.to_string())]);
        }
        async move {
            let t = Instant::now();
            let v: Value = r.send().await.expect("get").json().await.expect("json");
            (t.elapsed(), v.as_array().map_or(0, Vec::len))
        }
    };
    println!("re-sync read at N turns (median of {RUNS}); whole list vs the last page");
    let mut done = 0;
    for at in [10, 50, turns] {
        while done < at {
            // The synchronous route answers when the turn has ended.
            req(reqwest::Method::POST, &format!("/session/{sid}/message"))
                .json(&json!({"parts": [{"type": "text", "text": format!("turn {done}")}]}))
                .send()
                .await
                .expect("turn");
            done += 1;
        }
        let (mut full, mut page) = (Vec::new(), Vec::new());
        let (mut nf, mut np) = (0, 0);
        for _ in 0..RUNS {
            let (d, n) = get(None).await;
            full.push(d);
            nf = n;
            let (d, n) = get(Some(8)).await;
            page.push(d);
            np = n;
        }
        let (f, p) = (median(full), median(page));
        println!(
            "{at:4} turns: whole list {nf:4} messages {:7.1} ms | last page {np} messages {:6.1} ms | ratio {:5.1}",
            f.as_secs_f64() * 1e3,
            p.as_secs_f64() * 1e3,
            f.as_secs_f64() / p.as_secs_f64()
        );
    }
}
