//! A recorded stream of the real `opencode serve` (`tests/data/opencode_long_stream.sse`, see
//! `record_long_stream` in `opencode_harness.rs`) replayed through the SSE parser and the
//! translator: a cheap regression test for protocol drift, independent of chunk boundaries.

use boocoder::agent::opencode::sse::SseParser;
use boocoder::agent::opencode::translate::{Output, Translator};
use boocoder::model::{ItemChange, ItemKind};
use serde_json::Value;

fn recording() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/opencode_long_stream.sse"
    );
    std::fs::read(path).expect("recording")
}

/// Replays with `chunk`-byte reads; returns the items (kind, content) in order and the
/// non-change outputs.
fn replay(raw: &[u8], chunk: usize) -> (Vec<(ItemKind, String)>, Vec<Output>) {
    let mut parser = SseParser::new();
    let mut datas = Vec::new();
    for c in raw.chunks(chunk) {
        parser.push(c, &mut datas);
    }
    let events: Vec<Value> = datas
        .iter()
        .map(|d| serde_json::from_str(d).expect("event json"))
        .collect();
    let session = events
        .iter()
        .find(|e| e["type"] == "session.idle")
        .and_then(|e| e["properties"]["sessionID"].as_str())
        .expect("session.idle")
        .to_string();
    let mut tr = Translator::new(session);
    let mut outs = Vec::new();
    for e in &events {
        tr.on_event(e, &mut outs);
    }
    // Built as the app builds it.
    let mut t = boocoder::model::transcript::Transcript::default();
    let mut other = Vec::new();
    for o in outs {
        match o {
            Output::Change(change) => {
                if let ItemChange::Append { part_id, .. } = &change {
                    assert!(
                        t.find(part_id).is_some(),
                        "append to unknown part {part_id}"
                    );
                }
                t.apply(change);
            }
            o => other.push(o),
        }
    }
    let items = t.items().map(|i| (i.kind, i.content.clone())).collect();
    (items, other)
}

#[test]
fn recorded_long_stream_translates_to_the_expected_transcript() {
    let raw = recording();
    let want_text: String = (0..4000).map(|i| format!("chunk-{i} ")).collect();
    let (items, other) = replay(&raw, 1400);
    let kinds: Vec<ItemKind> = items.iter().map(|(k, _)| *k).collect();
    assert_eq!(kinds, vec![ItemKind::User, ItemKind::Text, ItemKind::Info]);
    assert_eq!(items[0].1, "long [fake:long 4000]");
    assert_eq!(items[1].1, want_text);
    assert!(other.contains(&Output::Idle));
    assert!(!other.iter().any(|o| matches!(o, Output::Error { .. })));
    // Chunk boundaries do not matter.
    for chunk in [7, 333] {
        assert_eq!(replay(&raw, chunk).0, items, "chunk size {chunk}");
    }
}
