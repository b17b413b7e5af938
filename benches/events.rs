//! Replays a recorded opencode event stream (`tests/data/opencode_long_stream.sse`: a real
//! `opencode serve` answering the fake model's `[fake:long 4000]`) through the SSE parser and
//! the translator, and prints events/s and microseconds per event.
//!
//! `cargo bench --bench events`

use std::time::{Duration, Instant};

use boocoder::agent::opencode::sse::SseParser;
use boocoder::agent::opencode::translate::{Output, Translator};
use boocoder::model::ItemChange;
use serde_json::Value;

const CHUNK: usize = 1400; // about one TCP segment per read

fn session_of(raw: &[u8]) -> String {
    let mut p = SseParser::new();
    let mut datas = Vec::new();
    p.push(raw, &mut datas);
    for d in datas {
        let v: Value = serde_json::from_str(&d).unwrap_or(Value::Null);
        if v["type"] == "session.idle" {
            return v["properties"]["sessionID"]
                .as_str()
                .unwrap_or_default()
                .to_string();
        }
    }
    panic!("recording has no session.idle");
}

/// One replay: returns (events, text length of the answer).
fn replay(raw: &[u8], session: &str) -> (usize, usize) {
    let mut parser = SseParser::new();
    let mut tr = Translator::new(session);
    let mut datas = Vec::with_capacity(64);
    let mut outs = Vec::with_capacity(64);
    let mut events = 0;
    let mut text = 0;
    for chunk in raw.chunks(CHUNK) {
        parser.push(chunk, &mut datas);
        for d in datas.drain(..) {
            events += 1;
            let Ok(v) = serde_json::from_str::<Value>(&d) else {
                continue;
            };
            tr.on_event(&v, &mut outs);
            for o in outs.drain(..) {
                match o {
                    Output::Change(ItemChange::Append { delta, .. }) => text += delta.len(),
                    Output::Change(ItemChange::Upsert { content, .. }) => {
                        std::hint::black_box(content);
                    }
                    _ => {}
                }
            }
        }
    }
    (events, text)
}

fn main() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/opencode_long_stream.sse"
    );
    let raw = std::fs::read(path).expect("read recording");
    let session = session_of(&raw);
    let (events, text) = replay(&raw, &session);
    let want: usize = (0..4000).map(|i| format!("chunk-{i} ").len()).sum();
    assert_eq!(text, want, "replay lost or duplicated text");

    // Warm up, then run for at least 2 s.
    for _ in 0..3 {
        std::hint::black_box(replay(&raw, &session));
    }
    let mut runs = 0u32;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) || runs < 10 {
        std::hint::black_box(replay(&raw, &session));
        runs += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let total = events as f64 * f64::from(runs);
    let mb = raw.len() as f64 * f64::from(runs) / secs / 1e6;
    println!(
        "events: {events} events ({} bytes) x {runs} replays in {secs:.2} s",
        raw.len()
    );
    println!(
        "events: {:.0} events/s, {:.2} us/event, {mb:.0} MB/s (SSE parse + JSON + translation)",
        total / secs,
        secs * 1e6 / total
    );
}
