//! The local prompt cache only works if turn N+1's prompt starts with turn N's, byte
//! for byte. Over a real recorded Claude Code 2.1.197 session
//! (`tests/fixtures/session/`, recorded by `scripts/bench-session.sh --record` with the
//! environment `ccr-setup code` sets), every main-loop and subagent request is
//! translated for an OpenAI-kind upstream, and each one's JSON must be a byte prefix of
//! the next one's up to the end of its messages, with everything after the messages
//! (tools, their order and serialisation, parameters) identical.

use ccr_setup::proxy::translate::request::{to_openai, TargetOptions};
use ccr_setup::proxy::wire::anthropic::MessagesRequest;
use serde_json::Value;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/session/claude-code-2.1.197.jsonl"
);

struct Recorded {
    n: u64,
    kind: String,
    body: Vec<u8>,
}

fn fixture() -> Vec<Recorded> {
    std::fs::read_to_string(FIXTURE)
        .expect("the recorded session fixture")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("a fixture line is JSON");
            Recorded {
                n: v["n"].as_u64().unwrap(),
                kind: v["kind"].as_str().unwrap().to_owned(),
                body: serde_json::to_vec(&v["body"]).unwrap(),
            }
        })
        .collect()
}

/// A translated request split where the messages end: `head` is everything up to the
/// last message (without the closing `]`), `tail` everything after the messages array.
struct Split {
    whole: Vec<u8>,
    head_len: usize,
    tail: Vec<u8>,
}

fn translate(body: &[u8]) -> Split {
    translate_for(body, false)
}

/// As [`translate`], for Ollama (tool schemas adapted, tool_choice enforced) or not.
fn translate_for(body: &[u8], ollama: bool) -> Split {
    let req: MessagesRequest = serde_json::from_slice(body).expect("the proxy parses it");
    let target = TargetOptions {
        model: "local-model",
        max_tokens_limit: None,
        reasoning_in_history: false,
        ollama,
        caps: ccr_setup::proxy::capabilities::Capabilities::UNKNOWN,
    };
    let translated = to_openai(&req, &target).expect("it translates");
    let whole = serde_json::to_vec(&translated.request).unwrap();
    let messages = serde_json::to_vec(&translated.request.messages).unwrap();
    let at = memchr::memmem::find(&whole, &messages).expect("messages serialised verbatim");
    let end = at + messages.len();
    Split {
        head_len: end - 1,
        tail: whole[end..].to_vec(),
        whole,
    }
}

/// Err describes the first byte where `next` stops extending `prev`.
fn extends(prev: &Split, next: &Split) -> Result<(), String> {
    let head = &prev.whole[..prev.head_len];
    if let Some(i) = head.iter().zip(&next.whole).position(|(a, b)| a != b) {
        let from = i.saturating_sub(80);
        return Err(format!(
            "prompt differs at byte {i}:\n  before: …{}…\n  after:  …{}…",
            String::from_utf8_lossy(&head[from..(i + 80).min(head.len())]),
            String::from_utf8_lossy(&next.whole[from..(i + 80).min(next.whole.len())]),
        ));
    }
    if next.whole.get(prev.head_len) != Some(&b',') {
        return Err("the next request adds no message after the previous ones".to_owned());
    }
    if prev.tail != next.tail {
        return Err(format!(
            "tools or parameters after the messages changed:\n  before: {}\n  after:  {}",
            String::from_utf8_lossy(&prev.tail[..prev.tail.len().min(300)]),
            String::from_utf8_lossy(&next.tail[..next.tail.len().min(300)]),
        ));
    }
    Ok(())
}

#[test]
fn the_recording_is_a_realistic_session() {
    let recs = fixture();
    assert!(recs.len() >= 12, "{} requests", recs.len());
    let kinds = |k: &str| recs.iter().filter(|r| r.kind == k).count();
    assert!(kinds("main") >= 7 && kinds("subagent") >= 1 && kinds("background") >= 1);
    // Tool round trips of the main loop: tool_use blocks answered in its last request.
    let last_main: Value =
        serde_json::from_slice(&recs.iter().rfind(|r| r.kind == "main").unwrap().body).unwrap();
    let results = last_main["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["content"].as_array())
        .flatten()
        .filter(|b| b["type"] == "tool_result")
        .count();
    assert!(results >= 6, "{results} tool round trips");
}

#[test]
fn each_turn_extends_the_previous_prompt_byte_for_byte() {
    let recs = fixture();
    let mut checked = 0;
    // For Ollama too: its adapted tool descriptions must be as stable as the rest.
    for (kind, ollama) in [
        ("main", false),
        ("subagent", false),
        ("main", true),
        ("subagent", true),
    ] {
        let turns: Vec<(u64, Split)> = recs
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| (r.n, translate_for(&r.body, ollama)))
            .collect();
        for pair in turns.windows(2) {
            let ((n, prev), (m, next)) = (&pair[0], &pair[1]);
            if let Err(why) = extends(prev, next) {
                panic!("{kind} request {n} → {m} (ollama: {ollama}): {why}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 16, "only {checked} turn pairs checked");
}

/// The check itself catches what would defeat the cache: a reordered tool list, or a
/// volatile line in the system prompt (what Claude Code's billing header would be).
#[test]
fn the_check_catches_reordered_tools_and_a_changed_system_prompt() {
    let recs = fixture();
    let mains: Vec<&Recorded> = recs.iter().filter(|r| r.kind == "main").collect();
    let (a, b) = (mains[0], mains[1]);
    let prev = translate(&a.body);

    let mut reordered: Value = serde_json::from_slice(&b.body).unwrap();
    reordered["tools"].as_array_mut().unwrap().swap(0, 1);
    let err = extends(&prev, &translate(&serde_json::to_vec(&reordered).unwrap())).unwrap_err();
    assert!(err.contains("tools or parameters"), "{err}");

    let mut volatile: Value = serde_json::from_slice(&b.body).unwrap();
    let first = volatile["system"][1]["text"].as_str().unwrap().to_owned();
    volatile["system"][1]["text"] = Value::String(format!("{first} turn=2"));
    let err = extends(&prev, &translate(&serde_json::to_vec(&volatile).unwrap())).unwrap_err();
    assert!(err.contains("prompt differs at byte"), "{err}");
}

/// What Ollama's schema notes cost (docs/guide.md, "Translation"): the first main
/// request of the recording, translated for Ollama and for other servers, counted in
/// o200k tokens. The notes are the same on every turn, so this is paid once per prompt.
#[test]
fn ollama_schema_notes_cost_a_few_hundred_tokens_per_prompt() {
    use ccr_setup::proxy::tokens::count_text;
    let first_main = fixture()
        .into_iter()
        .find(|r| r.kind == "main")
        .expect("a main-loop request");
    let count = |ollama| {
        let split = translate_for(&first_main.body, ollama);
        count_text(std::str::from_utf8(&split.whole).unwrap())
    };
    let (plain, ollama) = (count(false), count(true));
    eprintln!("first main request: {plain} o200k tokens, {ollama} for Ollama");
    assert_eq!((plain, ollama), (20_488, 20_712));
}
