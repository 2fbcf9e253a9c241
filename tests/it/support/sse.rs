//! Reading the proxy's Anthropic SSE answers in tests.

use serde_json::Value;

/// (event name, data) pairs of an SSE body; every `data:` must be JSON.
pub fn sse_events(body: &str) -> Vec<(String, Value)> {
    body.split_terminator("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let mut name = String::new();
            let mut data = Value::Null;
            for line in e.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_owned();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(d)
                        .unwrap_or_else(|err| panic!("SSE data is not JSON ({err}): {d}"));
                }
            }
            (name, data)
        })
        .collect()
}

/// The text an SSE answer streamed.
pub fn sse_text(events: &[(String, Value)]) -> String {
    events
        .iter()
        .filter_map(|(_, d)| d["delta"]["text"].as_str())
        .collect()
}
