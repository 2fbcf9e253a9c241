//! What translation adds to a request: `cargo bench --bench translate`.
//!
//! * `request/*`: a 76 KB Claude Code-shaped request (24 tools, system blocks, tool
//!   history; `tests/it/golden/request/claude_code_76k.anthropic.json`): parse once, then
//!   translate to OpenAI and serialise (the openai-kind path), or re-serialise (the
//!   anthropic-kind pass-through path).
//! * `stream/200_chunks`: a 200-chunk OpenAI transcript (reasoning, text, a tool call
//!   with fragmented arguments) translated to Anthropic SSE, fed one upstream chunk at
//!   a time as it arrives from the network.
//! * `sse/passthrough_observe`: the same answer as Anthropic SSE (the translator's
//!   output), cut every 97 bytes so lines and characters split, read by the SSE decoder
//!   for usage as the pass-through path does for an Anthropic upstream.

use std::hint::black_box;

use ccr_setup::proxy::repair::ToolCatalog;
use ccr_setup::proxy::translate::request::{to_openai, TargetOptions};
use ccr_setup::proxy::translate::stream::StreamTranslator;
use ccr_setup::proxy::translate::tool_names::ToolNameMap;
use ccr_setup::proxy::wire::anthropic::MessagesRequest;
use ccr_setup::proxy::wire::sse::SseDecoder;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;

const TARGET: TargetOptions = TargetOptions {
    model: "gpt-oss:20b",
    max_tokens_limit: Some(32768),
    reasoning_in_history: false,
    ollama: false,
    caps: ccr_setup::proxy::capabilities::Capabilities::UNKNOWN,
};

fn request_body() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/it/golden/request/claude_code_76k.anthropic.json"
    ))
    .expect("benchmark fixture")
}

/// 200 upstream chunks: 60 reasoning, 100 text, 1 tool-call head, 37 argument pieces,
/// a finish chunk and a usage chunk; then [DONE].
fn transcript_chunks() -> Vec<Vec<u8>> {
    let chunk = |delta: serde_json::Value, finish: Option<&str>| {
        let v = json!({"id": "chatcmpl-b", "object": "chat.completion.chunk", "created": 1, "model": "gpt-oss:20b",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        format!("data: {v}\n\n").into_bytes()
    };
    let mut out = Vec::new();
    for i in 0..63 {
        out.push(chunk(
            json!({"reasoning": format!(" step {i} of the plan,")}),
            None,
        ));
    }
    for i in 0..100 {
        out.push(chunk(
            json!({"content": format!(" word{i} — ünïcode")}),
            None,
        ));
    }
    out.push(chunk(json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "Bash", "arguments": ""}}]}), None));
    let args = format!("{{\"command\": \"{}\"}}", "ls -la /tmp && ".repeat(8));
    let pieces: Vec<String> = args
        .as_bytes()
        .chunks(args.len().div_ceil(37))
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    for p in pieces {
        out.push(chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}),
            None,
        ));
    }
    out.push(chunk(json!({}), Some("tool_calls")));
    let usage = json!({"id": "chatcmpl-b", "choices": [], "usage": {"prompt_tokens": 20000, "completion_tokens": 400}});
    out.push(format!("data: {usage}\n\ndata: [DONE]\n\n").into_bytes());
    out
}

fn bench_request(c: &mut Criterion) {
    let body = request_body();
    let mut group = c.benchmark_group("request");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("parse_76k", |b| {
        b.iter(|| black_box(serde_json::from_slice::<MessagesRequest>(black_box(&body)).unwrap()))
    });
    let parsed: MessagesRequest = serde_json::from_slice(&body).unwrap();
    group.bench_function("to_openai_and_serialise_76k", |b| {
        b.iter(|| {
            let t = to_openai(black_box(&parsed), &TARGET).unwrap();
            black_box(serde_json::to_vec(&t.request).unwrap())
        })
    });
    group.bench_function("parse_translate_serialise_76k", |b| {
        b.iter(|| {
            let req: MessagesRequest = serde_json::from_slice(black_box(&body)).unwrap();
            let t = to_openai(&req, &TARGET).unwrap();
            black_box(serde_json::to_vec(&t.request).unwrap())
        })
    });
    group.bench_function("passthrough_reserialise_76k", |b| {
        b.iter(|| black_box(serde_json::to_vec(black_box(&parsed)).unwrap()))
    });
    group.finish();
}

fn bench_stream(c: &mut Criterion) {
    let chunks = transcript_chunks();
    assert_eq!(chunks.len(), 200);
    let bytes: usize = chunks.iter().map(Vec::len).sum();
    let mut group = c.benchmark_group("stream");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("200_chunks", |b| {
        b.iter(|| {
            let mut t =
                StreamTranslator::new("msg_bench", "gpt-oss:20b", 20000, ToolNameMap::default());
            let mut out = Vec::with_capacity(64 * 1024);
            for chunk in &chunks {
                t.feed(black_box(chunk), &mut out);
            }
            t.finish(&mut out);
            assert!(t.summary().completed);
            black_box(out)
        })
    });
    // The same answer in repair mode, as every Claude Code turn with tools now runs:
    // text through the gate, the call held whole, its schema read from the request
    // body and checked. The catalog is built per answer, as the proxy does.
    // The tools of the real Claude Code 2.1.197 recording (the 76 KB fixture's tools
    // are renamed, and the answer calls Bash).
    let recording = include_str!("../tests/fixtures/session/claude-code-2.1.197.jsonl");
    let first_with_tools = recording
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["body"]["tools"].as_array().is_some_and(|t| !t.is_empty()))
        .unwrap();
    let body = bytes::Bytes::from(serde_json::to_vec(&first_with_tools["body"]).unwrap());
    let names: Vec<String> = first_with_tools["body"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    group.bench_function("200_chunks_repairing", |b| {
        b.iter(|| {
            let catalog = ToolCatalog::new(names.clone(), body.clone());
            let mut t =
                StreamTranslator::new("msg_bench", "gpt-oss:20b", 20000, ToolNameMap::default())
                    .repair_tools(Some(catalog));
            let mut out = Vec::with_capacity(64 * 1024);
            for chunk in &chunks {
                t.feed(black_box(chunk), &mut out);
            }
            t.finish(&mut out);
            assert!(t.summary().completed, "{}", String::from_utf8_lossy(&out));
            black_box(out)
        })
    });
    group.finish();
}

fn bench_sse(c: &mut Criterion) {
    let mut t = StreamTranslator::new("msg_bench", "gpt-oss:20b", 20000, ToolNameMap::default());
    let mut answer = Vec::new();
    for chunk in transcript_chunks() {
        t.feed(&chunk, &mut answer);
    }
    t.finish(&mut answer);
    let chunks: Vec<&[u8]> = answer.chunks(97).collect();
    let mut group = c.benchmark_group("sse");
    group.throughput(Throughput::Bytes(answer.len() as u64));
    group.bench_function("passthrough_observe", |b| {
        b.iter(|| {
            let mut decoder = SseDecoder::default();
            let (mut events, mut stops) = (0, 0);
            for chunk in &chunks {
                let mut input = black_box(*chunk);
                while let Some(event) = decoder.next(&mut input) {
                    let data = event.unwrap().data;
                    events += 1;
                    let is = |needle: &[u8]| memchr::memmem::find(data, needle).is_some();
                    if is(b"\"message_stop\"") {
                        stops += 1;
                    } else if is(b"\"message_start\"") || is(b"\"message_delta\"") {
                        black_box(data);
                    }
                }
            }
            assert_eq!(stops, 1);
            black_box(events)
        })
    });
    group.finish();
}

criterion_group!(benches, bench_request, bench_stream, bench_sse);
criterion_main!(benches);
