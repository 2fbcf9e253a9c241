//! What the ledger costs the request path.
//!
//! * `record/disabled` vs `record/enabled`: one `LedgerHandle::record` call (the only
//!   ledger work a request does), with the writer thread committing to a real SQLite file
//!   in a temp dir. Both include cloning the record, so the difference is the ledger.
//! * `writer/10k_rows`: how long the writer takes to commit 10,000 queued rows, i.e. the
//!   sustained rate it absorbs without dropping.
//! * `proxy/ledger_off` vs `proxy/ledger_on`: a whole non-streamed request through the
//!   real proxy to a fake OpenAI upstream on 127.0.0.1, same run, same upstream; the
//!   only difference is the ledger (disabled handle vs the writer on a SQLite file).
//! * `live/publish_unwatched` vs `live/publish_watched`: what the dashboard's live feed
//!   adds to `record()`, with nobody watching (every request while no dashboard is
//!   open) and with one browser watching; `proxy/dashboard_open` is `proxy/ledger_on`
//!   with a watcher draining the feed, as an open Live page does, paired against it.
//!
//! `cargo bench --bench ledger`

#[path = "../tests/it/support/openai_upstream.rs"]
#[allow(dead_code)]
mod openai_upstream;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ccr_setup::config::ConfigFile;
use ccr_setup::ledger::{
    Ledger, LedgerHandle, LedgerOptions, LiveFeed, RequestOutcome, UsageRecord,
};
use ccr_setup::proxy::reload::LiveConfig;
use ccr_setup::proxy::server::{app, serve, AppState, ServerOptions};
use criterion::{criterion_group, criterion_main, Criterion};
use openai_upstream::{FakeUpstream, Reply};
use serde_json::json;

fn sample() -> UsageRecord {
    UsageRecord {
        started_at_ms: 1_790_000_000_000,
        session_id: Some("user_0123456789abcdef_account__session_0f3c".into()),
        scenario: "default".into(),
        provider: "ollama".into(),
        model: "gpt-oss:20b".into(),
        fallback_from: None,
        fallback_reason: None,
        context_overflowed: false,
        context_cleared_blocks: 0,
        context_cleared_tokens: 0,
        client: None,
        repairs: None,
        tool_call_failures: 0,
        input_tokens: 31_250,
        output_tokens: 412,
        cache_read_tokens: 0,
        cache_write_tokens: 0,
        tokens_estimated: false,
        time_to_first_token_ms: Some(850),
        duration_ms: 9_400,
        outcome: RequestOutcome::Ok,
        http_status: 200,
        stream: true,
    }
}

fn wait_settled(handle: &LedgerHandle, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while {
        let h = handle.health();
        h.written + h.dropped < n
    } {
        assert!(
            Instant::now() < deadline,
            "writer stuck: {:?}",
            handle.health()
        );
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn record_cost(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let record = sample();
    let mut group = c.benchmark_group("record");

    let disabled = LedgerHandle::disabled();
    group.bench_function("disabled", |b| {
        b.iter(|| disabled.record(std::hint::black_box(record.clone())))
    });

    let enabled = Ledger::spawn(dir.path().join("bench.sqlite"), LedgerOptions::default());
    group.bench_function("enabled", |b| {
        b.iter(|| enabled.record(std::hint::black_box(record.clone())))
    });
    group.finish();
    let h = enabled.health();
    if h.written + h.dropped > 0 {
        eprintln!(
            "record/enabled: {} rows written, {} dropped (queue full while criterion called \
             record() back to back, far faster than any proxy)",
            h.written, h.dropped
        );
    }
}

fn live_feed_cost(c: &mut Criterion) {
    let record = sample();
    let mut group = c.benchmark_group("live");
    let feed = LiveFeed::default();
    group.bench_function("publish_unwatched", |b| {
        b.iter(|| feed.publish(std::hint::black_box(&record)))
    });
    // The receiver is never read: the ring overwrites its oldest row, which costs the
    // sender the same as a reader keeping up.
    let _watcher = feed.subscribe();
    group.bench_function("publish_watched", |b| {
        b.iter(|| feed.publish(std::hint::black_box(&record)))
    });
    group.finish();
}

fn writer_throughput(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("writer");
    group.sample_size(10);
    let handle = Ledger::spawn(
        dir.path().join("throughput.sqlite"),
        LedgerOptions {
            queue_capacity: 20_000,
            ..LedgerOptions::default()
        },
    );
    let record = sample();
    group.bench_function("10k_rows", |b| {
        b.iter(|| {
            let h = handle.health();
            let target = h.written + h.dropped + 10_000;
            for _ in 0..10_000 {
                handle.record(record.clone());
            }
            wait_settled(&handle, target);
        })
    });
    group.finish();
    let h = handle.health();
    assert_eq!(h.dropped, 0, "the writer fell behind a 20k queue: {h:?}");
}

async fn start_proxy(upstream_url: String, ledger: LedgerHandle) -> String {
    let doc = json!({
        "Providers": [{"name": "local", "api_base_url": upstream_url, "api_key": "",
                       "models": ["gpt-oss:20b"]}],
        "Router": {"default": "local,gpt-oss:20b"}
    });
    let config = ConfigFile::new(std::path::Path::new("/bench/config.json"), doc)
        .resolve_with(&|_| None)
        .unwrap();
    let state = AppState::new(LiveConfig::new(config), ledger, ServerOptions::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        serve(listener, app(Arc::clone(&state)), std::future::pending()).await;
    });
    base
}

fn proxy_requests(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let enabled = Ledger::spawn(dir.path().join("proxy.sqlite"), LedgerOptions::default());
    let watched = Ledger::spawn(dir.path().join("watched.sqlite"), LedgerOptions::default());
    // An open Live page: a task that takes every row off the feed.
    let mut feed = watched.live().subscribe();
    rt.spawn(async move { while feed.recv().await.is_ok() {} });
    let (off, on, open, _fake) = rt.block_on(async {
        let fake = FakeUpstream::start(vec![Reply::json(&json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": "fake",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "Hi."}}],
            "usage": {"prompt_tokens": 40, "completion_tokens": 3, "total_tokens": 43}
        }))])
        .await;
        let url = fake.url("/v1/chat/completions");
        let off = start_proxy(url.clone(), LedgerHandle::disabled()).await;
        let on = start_proxy(url.clone(), enabled.clone()).await;
        let open = start_proxy(url, watched.clone()).await;
        (off, on, open, fake)
    });
    // Load the tokenizer before timing anything.
    ccr_setup::proxy::tokens::TokenEstimator::warm_up();
    let client = reqwest::Client::new();
    let body = json!({
        "model": "claude-opus-4-8", "max_tokens": 64, "stream": false,
        "metadata": {"user_id": "user_0f3c_account__session_bench"},
        "messages": [{"role": "user", "content": "Say hi"}]
    });
    let send = |base: String| {
        let client = client.clone();
        let body = body.clone();
        async move {
            let resp = client
                .post(format!("{base}/v1/messages"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            resp.bytes().await.unwrap()
        }
    };
    let mut group = c.benchmark_group("proxy");
    group.bench_function("ledger_off", |b| b.to_async(&rt).iter(|| send(off.clone())));
    group.bench_function("ledger_on", |b| b.to_async(&rt).iter(|| send(on.clone())));
    group.bench_function("dashboard_open", |b| {
        b.to_async(&rt).iter(|| send(open.clone()))
    });
    group.finish();

    // Criterion runs one after the other, so load from other processes can favour
    // either. Pairs of requests, alternating which goes first, see the same load.
    let paired = |a: &str, b: &str, label: (&str, &str)| {
        const PAIRS: usize = 2_000;
        let (mut t_a, mut t_b) = (Vec::with_capacity(PAIRS), Vec::with_capacity(PAIRS));
        rt.block_on(async {
            for i in 0..PAIRS {
                let order = if i % 2 == 0 {
                    [false, true]
                } else {
                    [true, false]
                };
                for second in order {
                    let started = Instant::now();
                    send(if second { b.to_owned() } else { a.to_owned() }).await;
                    let took = started.elapsed().as_secs_f64() * 1e6;
                    if second {
                        t_b.push(took)
                    } else {
                        t_a.push(took)
                    }
                }
            }
        });
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (mean_a, mean_b) = (mean(&t_a), mean(&t_b));
        let (med_a, med_b) = (median(&mut t_a), median(&mut t_b));
        eprintln!(
            "proxy paired ({PAIRS} pairs, alternating): {} median {med_a:.1} µs mean \
             {mean_a:.1} µs; {} median {med_b:.1} µs mean {mean_b:.1} µs; difference of \
             medians {:+.1} µs",
            label.0,
            label.1,
            med_b - med_a
        );
    };
    paired(&off, &on, ("ledger off", "ledger on"));
    paired(&on, &open, ("ledger on", "ledger on + dashboard open"));
    let h = enabled.health();
    eprintln!(
        "proxy/ledger_on: {} rows written, {} dropped",
        h.written, h.dropped
    );
}

criterion_group!(
    benches,
    record_cost,
    live_feed_cost,
    writer_throughput,
    proxy_requests
);
criterion_main!(benches);
