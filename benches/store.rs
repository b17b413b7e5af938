//! Transcript-append throughput and flush latency on a temp file.
//! Run: `cargo bench --bench store` (plain `main`, no harness; about 10 s).

use std::time::{Duration, Instant};

use boocoder::model::{ItemKind, TranscriptItem};
use boocoder::store::{NewChat, Store, StoreOptions};
use serde_json::json;

const CHATS: i64 = 10;
const ITEMS: i64 = 100_000;
const EXPLICIT_FLUSHES: usize = 2_000;
const PER_EXPLICIT_FLUSH: i64 = 20;

fn item(chat: i64, seq: i64, body: &str) -> TranscriptItem {
    TranscriptItem {
        chat_id: chat,
        seq,
        kind: ItemKind::Text,
        part_id: Some(format!("prt_{chat}_{seq}")),
        content: format!("{seq} {body}"),
        meta: json!({"tool": "bash", "status": "completed", "seq": seq}),
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

async fn chats(store: &Store, n: i64) -> Vec<i64> {
    let s = store.create_session("/bench", "bench").await.unwrap();
    let mut out = Vec::new();
    for i in 0..n {
        let c = store
            .create_chat(NewChat {
                session_id: s.id,
                title: format!("c{i}"),
                agent: "opencode".into(),
                model: None,
                position: i,
            })
            .await
            .unwrap();
        out.push(c.id);
    }
    out
}

async fn run() {
    let dir = tempfile::TempDir::new().unwrap();
    let body = "lorem ipsum dolor sit amet ".repeat(10); // ~270 bytes, a typical text part
    let opts = StoreOptions::default();
    println!(
        "store bench: temp file, WAL, synchronous=NORMAL, flush every {:?} or {} items",
        opts.flush_interval, opts.max_batch
    );

    // 1. Throughput: a stream of puts, batched by the store's own timer and size limit.
    let store = Store::open_with(dir.path().join("a.db"), opts.clone())
        .await
        .unwrap();
    let ids = chats(&store, CHATS).await;
    let started = Instant::now();
    for seq in 0..ITEMS / CHATS {
        for &chat in &ids {
            store.put_item(item(chat, seq, &body)).unwrap();
        }
    }
    let queued = started.elapsed();
    store.flush().await.unwrap();
    let took = started.elapsed();
    let stats = store.flush_stats().await.unwrap();
    let mut lat = stats.recent_micros.clone();
    lat.sort_unstable();
    println!(
        "append throughput: {:.0} items/s ({} items in {:.3} s; puts queued in {:.3} s; \
         {} flushes, {:.0} items/flush)",
        ITEMS as f64 / took.as_secs_f64(),
        ITEMS,
        took.as_secs_f64(),
        queued.as_secs_f64(),
        stats.flushes,
        stats.items as f64 / stats.flushes.max(1) as f64
    );
    println!(
        "flush transaction (batched stream): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0)
    );
    let n = store.load_transcript(ids[0]).await.unwrap().len() as i64;
    assert_eq!(n, ITEMS / CHATS, "every item written");
    store.close().await.unwrap();

    // Reopening runs `PRAGMA quick_check` (files up to `quick_check_max_bytes`): its cost.
    let path = dir.path().join("a.db");
    let size = std::fs::metadata(&path).map_or(0, |m| m.len());
    let t = Instant::now();
    let store = Store::open(&path).await.unwrap();
    println!(
        "open with quick_check of a {:.1} MB database: {:.1} ms",
        size as f64 / 1e6,
        t.elapsed().as_secs_f64() * 1e3
    );
    store.close().await.unwrap();

    // 2. Latency of `flush().await` as a caller sees it: small batches, flushed explicitly.
    let store = Store::open_with(
        dir.path().join("b.db"),
        StoreOptions {
            flush_interval: Duration::from_secs(3600),
            ..opts
        },
    )
    .await
    .unwrap();
    let ids = chats(&store, 1).await;
    let mut lat = Vec::with_capacity(EXPLICIT_FLUSHES);
    let mut seq = 0;
    for _ in 0..EXPLICIT_FLUSHES {
        for _ in 0..PER_EXPLICIT_FLUSH {
            store.put_item(item(ids[0], seq, &body)).unwrap();
            seq += 1;
        }
        let t = Instant::now();
        store.flush().await.unwrap();
        lat.push(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX));
    }
    lat.sort_unstable();
    println!(
        "flush().await round trip ({} items each, {} flushes): p50 {:.2} ms, p99 {:.2} ms, \
         max {:.2} ms",
        PER_EXPLICIT_FLUSH,
        EXPLICIT_FLUSHES,
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0)
    );
    store.close().await.unwrap();
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}
