//! What team mode adds to a request: the key check against every client's hash, the
//! day counters (admit, cloud budget), and adding a finished request to them.
//!
//! * `identify/admin_key` vs `identify/client_key_50`: one `auth::identify` with the
//!   admin `APIKEY`, and with a client key among 50 clients (SHA-256 of the key, then
//!   a constant-time compare with every hash).
//! * `counters/admit_and_budget`: `ClientUsage::admit` then `cloud_blocked`, as
//!   `/v1/messages` calls them before planning.
//! * `counters/record`: `ClientUsage::record` of a finished cloud request (pricing it
//!   as `stats` does).
//!
//! `cargo bench --bench clients`

use std::path::Path;
use std::sync::Arc;

use ccr_setup::config::client_keys::{format_hash, hash_key};
use ccr_setup::config::{Config, ConfigFile};
use ccr_setup::ledger::{RequestOutcome, UsageRecord};
use ccr_setup::proxy::auth::{identify, Caller};
use ccr_setup::proxy::clients::ClientUsage;
use criterion::{criterion_group, criterion_main, Criterion};
use http::HeaderMap;
use serde_json::json;

fn config() -> Config {
    let clients: Vec<_> = (0..50)
        .map(|i| json!({"name": format!("user{i}"), "key_hash": format_hash(&hash_key(&format!("ccr_key{i}"))), "daily_requests": 1_000_000_000u64, "daily_cloud_usd": 1e12}))
        .collect();
    let doc = json!({
        "Providers": [
            {"name": "local", "api_base_url": "http://127.0.0.1:11434/v1/chat/completions", "models": ["m"]},
            {"name": "cloud", "api_base_url": "https://api.anthropic.com/v1/messages", "api_key": "sk", "models": ["claude-sonnet-4-5"]}
        ],
        "Router": {"default": "local,m"},
        "APIKEY": "admin-secret",
        "Clients": clients,
    });
    ConfigFile::new(Path::new("/bench/config.json"), doc)
        .resolve_with(&|_| None)
        .unwrap()
}

fn headers(key: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("authorization", format!("Bearer {key}").parse().unwrap());
    h
}

fn record() -> UsageRecord {
    UsageRecord {
        started_at_ms: 0,
        session_id: Some("session-1".into()),
        scenario: "default".into(),
        provider: "cloud".into(),
        model: "claude-sonnet-4-5".into(),
        fallback_from: None,
        fallback_reason: None,
        context_overflowed: false,
        context_cleared_blocks: 0,
        context_cleared_tokens: 0,
        client: Some("user49".into()),
        repairs: None,
        tool_call_failures: 0,
        input_tokens: 12_000,
        output_tokens: 300,
        cache_read_tokens: 30_000,
        cache_write_tokens: 0,
        tokens_estimated: false,
        time_to_first_token_ms: Some(200),
        duration_ms: 900,
        outcome: RequestOutcome::Ok,
        http_status: 200,
        stream: true,
    }
}

fn benches(c: &mut Criterion) {
    let config = config();
    let admin = headers("admin-secret");
    let client = headers("ccr_key49");
    assert_eq!(identify(&config, &admin), Ok(Caller::Admin));
    c.bench_function("identify/admin_key", |b| {
        b.iter(|| identify(&config, &admin))
    });
    c.bench_function("identify/client_key_50", |b| {
        b.iter(|| identify(&config, &client))
    });
    let usage = ClientUsage::default();
    let caller = Caller::Client(Arc::from("user49"));
    c.bench_function("counters/admit_and_budget", |b| {
        b.iter(|| {
            usage.admit(&caller, &config).unwrap();
            usage.cloud_blocked(&caller, &config)
        })
    });
    let rec = record();
    c.bench_function("counters/record", |b| {
        b.iter(|| usage.record(&rec, &config, 0))
    });
}

criterion_group!(clients_benches, benches);
criterion_main!(clients_benches);
