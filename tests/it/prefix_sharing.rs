//! How much of the prompt two users of one replica share: Claude Code's system prompt
//! carries each user's working directory, git status, date and CLAUDE.md, so a
//! replica's prompt cache can serve a second user only up to the first difference.
//! Over two first requests captured from the real Claude Code
//! (`tests/fixtures/prefix/`, by `scripts/prefix-sharing.sh`: different HOME and cwd,
//! git repositories in different states, a CLAUDE.md in one), both are translated as
//! the proxy sends them upstream, and the proxy must not end the shared prefix earlier
//! than the client's own differences do. Run with `--nocapture` for the figures.

use ccr_setup::proxy::translate::request::{to_openai, TargetOptions};
use ccr_setup::proxy::wire::anthropic::MessagesRequest;
use serde_json::Value;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/prefix");

fn fixture(name: &str) -> Value {
    let path = format!("{DIR}/{name}");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (record it with scripts/prefix-sharing.sh)"));
    serde_json::from_str(&text).unwrap()
}

/// The request as the proxy sends it to an OpenAI-kind replica.
fn upstream(body: &Value) -> Value {
    let req: MessagesRequest = serde_json::from_value(body.clone()).expect("the proxy parses it");
    let target = TargetOptions {
        model: "gpt-oss",
        max_tokens_limit: None,
        reasoning_in_history: false,
        ollama: false,
        caps: ccr_setup::proxy::capabilities::Capabilities::UNKNOWN,
    };
    let translated = to_openai(&req, &target).expect("it translates");
    serde_json::to_value(&translated.request).unwrap()
}

/// Text of a content value: a string, or the `text` of each block, in order.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// The prompt text in the order the model reads it: the system text, then each
/// message's (the tools are compared separately: they are the same for both users).
fn client_prompt(body: &Value) -> String {
    let mut text = text_of(&body["system"]);
    for m in body["messages"].as_array().unwrap() {
        text.push('\n');
        text.push_str(&text_of(&m["content"]));
    }
    text
}

fn upstream_prompt(body: &Value) -> String {
    let messages = body["messages"].as_array().unwrap();
    let texts: Vec<String> = messages.iter().map(|m| text_of(&m["content"])).collect();
    texts.join("\n")
}

fn shared_prefix<'a>(a: &'a str, b: &str) -> &'a str {
    let n = a
        .char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map_or(a.len().min(b.len()), |((i, _), _)| i);
    &a[..n]
}

fn tokens(text: &str) -> u64 {
    ccr_setup::proxy::tokens::counter::count_text(text)
}

#[test]
fn prefix_sharing_the_proxy_keeps_what_two_users_share() {
    let (a, b) = (fixture("user-a.json"), fixture("user-b.json"));
    let (ua, ub) = (upstream(&a), upstream(&b));

    let client_shared = shared_prefix(&client_prompt(&a), &client_prompt(&b)).to_owned();
    let (pa, pb) = (upstream_prompt(&ua), upstream_prompt(&ub));
    let upstream_shared = shared_prefix(&pa, &pb);
    let (ja, jb) = (ua.to_string(), ub.to_string());
    let json_shared = shared_prefix(&ja, &jb);
    let version = std::fs::read_to_string(format!("{DIR}/claude-version")).unwrap_or_default();
    println!(
        "[prefix] Claude Code {}: prompt {} / {} o200k tokens; shared by the client {} tokens ({} bytes); \
         shared upstream {} tokens ({} bytes of text, {} bytes of the JSON body of {} / {})",
        version.trim(),
        tokens(&pa),
        tokens(&pb),
        tokens(&client_shared),
        client_shared.len(),
        tokens(upstream_shared),
        upstream_shared.len(),
        json_shared.len(),
        ja.len(),
        jb.len()
    );
    let next = |s: &str, at: usize| s.chars().skip(at).take(60).collect::<String>();
    println!(
        "[prefix] the users first differ at: {:?} / {:?}",
        next(&pa, upstream_shared.chars().count()),
        next(&pb, upstream_shared.chars().count())
    );
    assert!(
        tokens(upstream_shared) >= tokens(&client_shared),
        "the proxy ends the shared prefix early: {} < {} tokens; upstream differs at {:?}",
        tokens(upstream_shared),
        tokens(&client_shared),
        next(&pa, upstream_shared.chars().count())
    );
    // The tools are the same for both users, byte for byte, as sent upstream.
    assert_eq!(ua["tools"], ub["tools"]);
    // Both users' requests do differ (else the fixture proves nothing).
    assert_ne!(pa, pb);
}

#[test]
fn prefix_sharing_check_catches_a_proxy_that_would_differ_early() {
    // A per-user marker at the start of the upstream prompt ends the shared prefix at 0.
    let mut a = fixture("user-a.json");
    let b = fixture("user-b.json");
    a["system"] = Value::String(format!("user a\n{}", text_of(&a["system"])));
    let shared = shared_prefix(
        &upstream_prompt(&upstream(&a)),
        &upstream_prompt(&upstream(&b)),
    )
    .to_owned();
    assert!(tokens(&shared) < 5, "{shared:?}");
}
