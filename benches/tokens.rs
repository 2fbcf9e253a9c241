//! Token estimation of a 150k-token Claude Code-shaped conversation: the first pass
//! (cold cache, everything tokenized) against the same conversation with one new turn
//! added (warm cache, only the new turn tokenized). Issue 4 requires the second to be at
//! least 20× cheaper; the ratio is printed at the end.
//!
//! `cargo bench --bench tokens`

use std::time::{Duration, Instant};

use ccr_setup::proxy::anthropic::MessagesRequest;
use ccr_setup::proxy::tokens::TokenEstimator;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use serde_json::{json, Value};

const TARGET_TOKENS: u64 = 150_000;

/// Deterministic pseudo-random text generator (no rand dependency needed).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize
    }

    fn prose(&mut self, words: usize) -> String {
        const VOCAB: &[&str] = &[
            "the",
            "function",
            "returns",
            "config",
            "request",
            "stream",
            "token",
            "error",
            "provider",
            "should",
            "handle",
            "because",
            "Ollama",
            "context",
            "window",
            "we",
            "need",
            "to",
            "check",
            "whether",
            "file",
            "is",
            "written",
            "atomically",
            "and",
            "tests",
            "pass",
            "proxy",
            "routing",
            "fallback",
            "model",
            "local",
            "cloud",
        ];
        let mut s = String::new();
        for i in 0..words {
            if i > 0 {
                s.push(if i % 17 == 0 { '\n' } else { ' ' });
            }
            s.push_str(VOCAB[self.next() % VOCAB.len()]);
        }
        s
    }

    fn code(&mut self, lines: usize) -> String {
        let mut s = String::new();
        for i in 0..lines {
            let n = self.next() % 1000;
            s.push_str(&format!(
                "{:>5}\u{2192}    let value_{n} = compute_{}(&input[{i}..], {n}); // {}\n",
                i + 1,
                self.next() % 50,
                self.prose(4)
            ));
        }
        s
    }
}

fn tools() -> Vec<Value> {
    let mut g = Lcg(7);
    (0..24)
        .map(|i| {
            json!({
                "name": format!("Tool{i}"),
                "description": g.prose(300),
                "input_schema": {
                    "type": "object",
                    "properties": {
                        "command": {"type": "string", "description": g.prose(30)},
                        "timeout": {"type": "number", "description": g.prose(10)},
                        "file_path": {"type": "string", "description": g.prose(12)}
                    },
                    "required": ["command"],
                    "additionalProperties": false
                }
            })
        })
        .collect()
}

/// One Claude Code turn: a user prompt, the assistant thinking and calling a tool, and
/// the tool result holding a file's contents.
fn turn(g: &mut Lcg, i: usize) -> Vec<Value> {
    vec![
        json!({"role": "user", "content": [{"type": "text", "text": g.prose(40)}]}),
        json!({"role": "assistant", "content": [
            {"type": "thinking", "thinking": g.prose(60), "signature": ""},
            {"type": "text", "text": g.prose(30)},
            {"type": "tool_use", "id": format!("toolu_{i:04}"), "name": "Read",
             "input": {"file_path": format!("/repo/src/module_{i}.rs")}}
        ]}),
        json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": format!("toolu_{i:04}"),
             "content": [{"type": "text", "text": g.code(60)}]}
        ]}),
    ]
}

fn conversation() -> MessagesRequest {
    let mut g = Lcg(42);
    let estimator = TokenEstimator::new(1 << 20);
    let mut messages = Vec::new();
    let mut i = 0;
    loop {
        messages.extend(turn(&mut g, i));
        i += 1;
        if i % 10 == 0 {
            let req = build(messages.clone());
            if estimator.estimate(&req) >= TARGET_TOKENS {
                return req;
            }
        }
    }
}

fn build(messages: Vec<Value>) -> MessagesRequest {
    let mut g = Lcg(3);
    serde_json::from_value(json!({
        "model": "claude-opus-4-8",
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197; cc_entrypoint=cli"},
            {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
            {"type": "text", "text": g.prose(2500), "cache_control": {"type": "ephemeral"}}
        ],
        "tools": tools(),
        "messages": messages,
        "max_tokens": 64000,
        "thinking": {"type": "adaptive"},
        "stream": true
    }))
    .expect("bench request parses")
}

/// The base conversation plus one new user turn no estimator has seen (unique per call).
fn with_new_turn(base: &MessagesRequest, n: u64) -> MessagesRequest {
    let mut g = Lcg(1_000 + n);
    let mut req = base.clone();
    let extra: MessagesRequest = serde_json::from_value(json!({
        "model": "m",
        "messages": [{"role": "user", "content": [{"type": "text", "text": format!("turn {n}: {}", g.prose(40))}]}]
    }))
    .unwrap();
    req.messages.extend(extra.messages);
    req
}

fn bench(c: &mut Criterion) {
    TokenEstimator::warm_up();
    let base = conversation();
    let tokens = TokenEstimator::default().estimate(&base);
    let bytes = serde_json::to_vec(&base).unwrap().len();
    eprintln!(
        "conversation: {tokens} estimated tokens, {bytes} bytes of JSON, {} messages",
        base.messages.len()
    );

    let mut group = c.benchmark_group("tokens_150k");
    group.sample_size(10);
    group.bench_function("first_pass_cold", |b| {
        b.iter_batched(
            TokenEstimator::default,
            |est| est.estimate(&base),
            BatchSize::PerIteration,
        )
    });
    let warm = TokenEstimator::default();
    warm.estimate(&base);
    let mut n = 0u64;
    group.bench_function("one_new_turn_warm", |b| {
        b.iter_batched(
            || {
                n += 1;
                with_new_turn(&base, n)
            },
            // Return the request so criterion drops it outside the timed section.
            |req| (warm.estimate(&req), req),
            BatchSize::PerIteration,
        )
    });
    group.finish();

    // The ratio, measured directly so the report does not depend on reading criterion's
    // output: median of several runs each.
    let cold = median((0..7).map(|_| {
        let est = TokenEstimator::default();
        let t = Instant::now();
        std::hint::black_box(est.estimate(&base));
        t.elapsed()
    }));
    let warm_t = median((0..51).map(|i| {
        let req = with_new_turn(&base, 1_000_000 + i);
        let t = Instant::now();
        std::hint::black_box(warm.estimate(&req));
        t.elapsed()
    }));
    let ratio = cold.as_secs_f64() / warm_t.as_secs_f64();
    eprintln!(
        "tokens bench: first pass {cold:?}, with one new turn {warm_t:?}, ratio {ratio:.1}x (required >= 20x)"
    );
    assert!(
        ratio >= 20.0,
        "warm pass only {ratio:.1}x cheaper than cold"
    );
}

fn median(samples: impl Iterator<Item = Duration>) -> Duration {
    let mut v: Vec<Duration> = samples.collect();
    v.sort();
    v[v.len() / 2]
}

criterion_group!(benches, bench);
criterion_main!(benches);
