//! One answer (two turns: reasoning and text; a `bash` tool, then text) as the V1 stream
//! (`message.part.*`, recorded from the real `opencode serve`, see `record_answer` in
//! `opencode_harness.rs`) and as the V2 runner's stream (`session.next.*`, built from the
//! pinned version's event schema: opencode 1.18.33 does not send it yet). Both, and both
//! mixed, must give the same transcript.

use boocoder::agent::opencode::sse::SseParser;
use boocoder::agent::opencode::translate::{Output, Translator};
use boocoder::model::transcript::Transcript;
use boocoder::model::{ItemChange, ItemKind};
use serde_json::{json, Value};

fn events(name: &str) -> Vec<Value> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let raw = std::fs::read(&path).expect("recording");
    let mut datas = Vec::new();
    SseParser::new().push(&raw, &mut datas);
    datas
        .iter()
        .map(|d| serde_json::from_str(d).expect("event json"))
        .collect()
}

fn session(evs: &[Value]) -> String {
    evs.iter()
        .find(|e| e["type"] == "session.idle")
        .and_then(|e| e["properties"]["sessionID"].as_str())
        .expect("session.idle")
        .to_string()
}

/// The transcript as the app builds it: (kind, content, meta) per item, in order.
type Items = Vec<(ItemKind, String, Value)>;

fn apply(t: &mut Transcript, outs: Vec<Output>, other: &mut Vec<Output>) {
    for o in outs {
        match o {
            Output::Change(change) => {
                if let ItemChange::Append { part_id, .. } = &change {
                    assert!(t.find(part_id).is_some(), "append to unknown {part_id}");
                }
                t.apply(change);
            }
            o => other.push(o),
        }
    }
}

fn items(t: &Transcript) -> Items {
    t.items()
        .map(|i| (i.kind, i.content.clone(), i.meta.clone()))
        .collect()
}

fn replay(tr: &mut Translator, evs: &[Value]) -> (Transcript, Vec<Output>) {
    let mut t = Transcript::default();
    let mut other = Vec::new();
    for e in evs {
        let mut outs = Vec::new();
        tr.on_event(e, &mut outs);
        apply(&mut t, outs, &mut other);
    }
    (t, other)
}

/// Interleaves two streams, `a`'s event first: each stream keeps its own order.
fn mix(a: &[Value], b: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for i in 0..a.len().max(b.len()) {
        out.extend(a.get(i).cloned());
        out.extend(b.get(i).cloned());
    }
    out
}

#[test]
fn v1_and_v2_streams_of_one_answer_give_the_same_transcript() {
    let v1 = events("opencode_answer_v1.sse");
    let v2 = events("opencode_answer_v2.sse");
    assert!(v2.iter().any(|e| e["type"] == "session.next.text.delta"));
    assert!(!v2.iter().any(|e| {
        let t = e["type"].as_str().unwrap_or_default();
        t.starts_with("message.")
    }));
    let sid = session(&v1);
    assert_eq!(session(&v2), sid);
    let (t1, o1) = replay(&mut Translator::new(&sid), &v1);
    let (t2, o2) = replay(&mut Translator::new(&sid), &v2);
    let want = items(&t1);
    let kinds: Vec<ItemKind> = want.iter().map(|i| i.0).collect();
    use ItemKind::*;
    assert_eq!(
        kinds,
        vec![User, Reasoning, Text, Info, User, Tool, Info, Text, Info]
    );
    assert_eq!(want[2].1, "Echo: explain the plan");
    assert_eq!(want[5].1, "bash: echo v2");
    assert_eq!(want[5].2["output"], json!("v2\n"));
    assert_eq!(want[5].2["title"], json!("echo v2"));
    assert_eq!(want[7].1, "Tool finished: v2");
    assert_eq!(want[8].2["model"], json!("fake/fake-model"));
    assert_eq!(items(&t2), want);
    let idles = |o: &[Output]| o.iter().filter(|o| **o == Output::Idle).count();
    assert_eq!((idles(&o1), idles(&o2)), (2, 2));
}

#[test]
fn both_streams_at_once_give_no_duplicate() {
    let v1 = events("opencode_answer_v1.sse");
    let v2 = events("opencode_answer_v2.sse");
    let sid = session(&v1);
    let want = items(&replay(&mut Translator::new(&sid), &v1).0);
    for (name, evs) in [("v1 first", mix(&v1, &v2)), ("v2 first", mix(&v2, &v1))] {
        let mut tr = Translator::new(&sid);
        let mut t = Transcript::default();
        let mut other = Vec::new();
        for e in &evs {
            let mut outs = Vec::new();
            tr.on_event(e, &mut outs);
            apply(&mut t, outs, &mut other);
            // Mid-stream too: a streamed text never shows a delta twice.
            for (i, (kind, content, _)) in items(&t).iter().enumerate() {
                let final_text = want.get(i).map(|w| w.1.as_str()).unwrap_or_default();
                assert!(
                    *kind == ItemKind::Tool || final_text.starts_with(content.as_str()),
                    "{name}: item {i} shows {content:?}, ends as {final_text:?}"
                );
            }
        }
        assert_eq!(items(&t), want, "{name}");
        // The end-of-turn re-sync (REST, V1-shaped) lands on the same items.
        let parts: Vec<Value> = v1
            .iter()
            .filter_map(|e| e["properties"].get("part").cloned())
            .collect();
        let infos: Vec<Value> = v1
            .iter()
            .filter_map(|e| e["properties"].get("info").cloned())
            .filter(|i| i.get("role").is_some())
            .collect();
        let rest: Vec<Value> = infos
            .iter()
            .map(|i| {
                let id = i["id"].clone();
                let ps: Vec<Value> = parts
                    .iter()
                    .filter(|p| p["messageID"] == id)
                    .cloned()
                    .collect();
                json!({"info": i, "parts": ps})
            })
            .collect();
        let mut outs = Vec::new();
        tr.resync(&Value::Array(rest), &mut outs);
        apply(&mut t, outs, &mut other);
        assert_eq!(items(&t), want, "{name} after resync");
    }
}
