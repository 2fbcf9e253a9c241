//! The stream translator's behaviour on odd upstream streams.
use super::*;

fn run(input: &str) -> String {
    let mut t = StreamTranslator::new("msg_1", "m", 10, ToolNameMap::default());
    let mut out = Vec::new();
    t.feed(input.as_bytes(), &mut out);
    t.finish(&mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn single_tool_call_keeps_only_the_first_whole_call() {
    // Ollama sends each call whole, in one chunk, with its own index.
    let input = concat!(
        r#"data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"Read","arguments":"{\"p\":1}"}},{"index":1,"id":"b","function":{"name":"Bash","arguments":"{}"}}]}}]}"#,
        "\n\n",
        r#"data: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        "\n\ndata: [DONE]\n\n"
    );
    let mut t =
        StreamTranslator::new("msg_1", "m", 10, ToolNameMap::default()).single_tool_call(true);
    let mut out = Vec::new();
    t.feed(input.as_bytes(), &mut out);
    t.finish(&mut out);
    let out = String::from_utf8(out).unwrap();
    assert_eq!(out.matches("\"type\":\"tool_use\"").count(), 1, "{out}");
    assert!(
        out.contains("\"name\":\"Read\"") && !out.contains("Bash"),
        "{out}"
    );
    assert!(out.contains("message_stop"));
    // Without the flag both come through.
    let both = run(input);
    assert_eq!(both.matches("\"type\":\"tool_use\"").count(), 2, "{both}");
}

#[test]
fn done_without_finish_reason_is_an_error() {
    let out = run(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n",
    );
    assert!(out.contains("event: error"), "{out}");
    assert!(!out.contains("message_stop"), "{out}");
}

#[test]
fn eof_without_done_is_an_error_but_done_without_trailing_blank_line_is_fine() {
    let body = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}]}\n\n";
    assert!(run(body).contains("event: error"));
    let ok = run(&format!("{body}data: [DONE]"));
    assert!(
        ok.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
        "{ok}"
    );
}

#[test]
fn event_error_and_invalid_json_end_the_stream() {
    let out = run("event: error\ndata: {\"message\":\"model crashed\"}\n\n");
    assert!(out.contains("model crashed"), "{out}");
    let out = run("data: {not json\n\n");
    assert!(
        out.contains("event: error") && out.contains("not valid JSON"),
        "{out}"
    );
}

#[test]
fn stop_after_tool_calls_still_reports_tool_use() {
    let out = run(concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"function\":{\"name\":\"Bash\",\"arguments\":\"{}\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        "data: [DONE]\n\n"
    ));
    assert!(out.contains("\"stop_reason\":\"tool_use\""), "{out}");
}

#[test]
fn late_fragment_of_a_closed_tool_call_is_an_error_not_a_reopen() {
    let out = run(concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"a\",\"function\":{\"name\":\"A\",\"arguments\":\"{\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"b\",\"function\":{\"name\":\"B\",\"arguments\":\"{}\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"}\"}}]}}]}\n\n",
    ));
    assert_eq!(out.matches("event: content_block_start").count(), 2);
    assert!(out.contains("interleaved"), "{out}");
}

#[test]
fn mapped_tool_names_are_restored() {
    let long = "x".repeat(70);
    let mut names = ToolNameMap::default();
    let upstream = names.register(&long).into_owned();
    let mut t = StreamTranslator::new("msg_1", "m", 1, names);
    let mut out = Vec::new();
    let body = format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"tool_calls\":[{{\"index\":0,\"id\":\"c\",\"function\":{{\"name\":\"{upstream}\",\"arguments\":\"{{}}\"}}}}]}},\"finish_reason\":\"tool_calls\"}}]}}\n\ndata: [DONE]\n\n");
    t.feed(body.as_bytes(), &mut out);
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains(&format!("\"name\":\"{long}\"")), "{out}");
    assert!(t.summary().completed);
}

#[test]
fn nameless_arguments_are_capped_like_an_sse_line() {
    let megabyte = "x".repeat(1024 * 1024);
    let chunk = serde_json::json!({"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "function": {"arguments": megabyte}}]}}]});
    let mut t = StreamTranslator::new("msg_1", "m", 10, ToolNameMap::default());
    let mut out = Vec::new();
    for _ in 0..12 {
        t.feed(format!("data: {chunk}\n\n").as_bytes(), &mut out);
    }
    assert!(t.is_finished());
    assert_eq!(t.error_kind(), Some("line_too_long"));
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("event: error"), "{text}");
    assert!(text.contains("before the tool's name"), "{text}");
    assert!(text.len() < 4096, "{} bytes", text.len());
    // Ended without a name, the error says how much, not what.
    let out = run(&format!(
        "data: {}\n\ndata: {}\n\ndata: [DONE]\n\n",
        serde_json::json!({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "function": {"arguments": "{\"secret\": 1}"}}]}}]}),
        serde_json::json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
    ));
    assert!(
        out.contains("without a name (13 bytes of arguments)"),
        "{out}"
    );
    assert!(!out.contains("secret"), "{out}");
}

/// 100,000 calls, each with its own index: the lookup by index is O(1) (a search of
/// the list made this quadratic: 60,000 calls took seconds of CPU).
#[test]
fn many_tool_calls_translate_in_linear_time() {
    let mut input = String::new();
    for i in 0..100_000 {
        input.push_str(&format!(
            "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"tool_calls\":[{{\"index\":{i},\"id\":\"c{i}\",\"function\":{{\"name\":\"t\",\"arguments\":\"{{}}\"}}}}]}}}}]}}\n\n"
        ));
    }
    let started = std::time::Instant::now();
    let mut t = StreamTranslator::new("msg_1", "m", 10, ToolNameMap::default());
    let mut out = Vec::new();
    t.feed(input.as_bytes(), &mut out);
    let took = started.elapsed();
    assert!(!t.is_finished());
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");
}

/// In repair mode, text that may be a call printed as text is held until the end; an
/// upstream that never ends it is cut at 8 MB with an error event (issue #28).
#[test]
fn held_text_that_may_be_a_call_is_capped() {
    let catalog = crate::proxy::repair::ToolCatalog::new(
        vec!["Bash".into()],
        bytes::Bytes::from_static(
            br#"{"tools":[{"name":"Bash","input_schema":{"type":"object"}}]}"#,
        ),
    );
    let mut t =
        StreamTranslator::new("msg_1", "m", 10, ToolNameMap::default()).repair_tools(Some(catalog));
    let mut out = Vec::new();
    let start = serde_json::json!({"choices": [{"index": 0, "delta": {"content": "{\"name\": \"Bash\", \"arguments\": \""}}]});
    t.feed(format!("data: {start}\n\n").as_bytes(), &mut out);
    let megabyte = serde_json::json!({"choices": [{"index": 0, "delta": {"content": "x".repeat(1024 * 1024)}}]});
    for _ in 0..10 {
        t.feed(format!("data: {megabyte}\n\n").as_bytes(), &mut out);
    }
    assert!(t.is_finished());
    assert_eq!(t.error_kind(), Some("line_too_long"));
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("may be a tool call"),
        "{}",
        &text[text.len().saturating_sub(300)..]
    );
    assert!(text.len() < 4096, "{} bytes", text.len());
}
