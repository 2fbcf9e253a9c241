//! What the ledger costs the request path.
//!
//! * `record/disabled` vs `record/enabled`: one `LedgerHandle::record` call (the only
//!   ledger work a request does), with the writer thread committing to a real SQLite file
//!   in a temp dir. Both include cloning the record, so the difference is the ledger.
//! * `writer/10k_rows`: how long the writer takes to commit 10,000 queued rows, i.e. the
//!   sustained rate it absorbs without dropping.
//!
//! `cargo bench --bench ledger`

use std::time::{Duration, Instant};

use ccr_setup::ledger::{Ledger, LedgerHandle, LedgerOptions, RequestOutcome, UsageRecord};
use criterion::{criterion_group, criterion_main, Criterion};

fn sample() -> UsageRecord {
    UsageRecord {
        started_at_ms: 1_790_000_000_000,
        session_id: Some("user_0123456789abcdef_account__session_0f3c".into()),
        scenario: "default".into(),
        provider: "ollama".into(),
        model: "gpt-oss:20b".into(),
        fallback_from: None,
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
    eprintln!(
        "record/enabled: {} rows written, {} dropped (queue full while criterion called \
         record() back to back, far faster than any proxy)",
        h.written, h.dropped
    );
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

criterion_group!(benches, record_cost, writer_throughput);
criterion_main!(benches);
