//! The fake Ollama against the facts read from Ollama's source
//! (`/work/shared/ollama-facts.md`): one test per fact, named after it, so the fake
//! cannot drift back to a kinder picture of Ollama than the real one.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::fake_ollama::exe::parse_ollama_host;
use support::fake_ollama::openai::TOOL_ARGUMENTS;
use support::fake_ollama::{FakeConfig, FakeModel, FakeOllama, OFFLINE_PULL_ERROR};
use support::sandbox::Sandbox;

fn installed() -> FakeConfig {
    FakeConfig::default().with_installed(FakeModel::gpt_oss())
}

async fn post(fake: &FakeOllama, path: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}{path}", fake.url()))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn get(fake: &FakeOllama, path: &str) -> reqwest::Response {
    reqwest::get(format!("{}{path}", fake.url())).await.unwrap()
}

/// The NDJSON lines of a pull.
async fn pull_lines(fake: &FakeOllama, model: &str) -> (u16, Vec<Value>) {
    let resp = post(fake, "/api/pull", json!({"model": model, "stream": true})).await;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let lines = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (status, lines)
}

/// The `data:` payloads of an SSE answer, in order (`[DONE]` included as text).
async fn sse_data(resp: reqwest::Response) -> Vec<String> {
    let text = resp.text().await.unwrap();
    text.split_terminator("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

fn chat(stream: bool) -> Value {
    json!({"model": "gpt-oss:20b", "stream": stream,
           "messages": [{"role": "user", "content": "hi"}]})
}

fn with_tool(mut body: Value) -> Value {
    body["tools"] = json!([{"type": "function", "function": {"name": "get_time",
        "parameters": {"type": "object", "properties": {"timezone": {"type": "string"}}}}}]);
    body
}

#[tokio::test]
async fn fact_serve_binds_its_port_first_then_answers_after_discovery() {
    let fake = FakeOllama::start(installed().with_start_delay(Duration::from_millis(1500)));
    // The port accepts at once…
    let conn = tokio::net::TcpStream::connect(fake.addr).await;
    assert!(conn.is_ok(), "the port is bound before serving");
    // …but a request hangs until discovery is over.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(400))
        .build()
        .unwrap();
    let early = client
        .get(format!("{}/api/version", fake.url()))
        .send()
        .await;
    assert!(early.unwrap_err().is_timeout(), "a timeout, not a refusal");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let v: Value = get(&fake, "/api/version").await.json().await.unwrap();
    assert_eq!(v, json!({"version": "0.12.3"}));
}

#[tokio::test]
async fn fact_ps_blocks_while_a_model_loads() {
    let fake = FakeOllama::start(installed().with_load_duration(Duration::from_millis(1500)));
    let url = fake.url();
    let load = tokio::spawn(async move {
        reqwest::Client::new()
            .post(format!("{url}/api/chat"))
            .json(&json!({"model": "gpt-oss:20b", "messages": []}))
            .send()
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let ps: Value = get(&fake, "/api/ps").await.json().await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "/api/ps answered during the load, after {:?}",
        started.elapsed()
    );
    assert_eq!(ps["models"][0]["name"], "gpt-oss:20b", "{ps}");
    assert_eq!(load.await.unwrap().status(), 200);
}

#[tokio::test]
async fn fact_ps_fields_always_present_and_context_capped_at_trained() {
    let mut model = FakeModel::gpt_oss();
    model.trained_context = 8192;
    let fake = FakeOllama::start(
        FakeConfig::default()
            .with_installed(model)
            .with_server_context(32_768),
    );
    let load = post(&fake, "/api/chat", json!({"model": "gpt-oss:20b"})).await;
    assert_eq!(load.status(), 200);
    let ps: Value = get(&fake, "/api/ps").await.json().await.unwrap();
    let m = &ps["models"][0];
    for key in [
        "name",
        "model",
        "size",
        "size_vram",
        "expires_at",
        "context_length",
        "digest",
        "details",
    ] {
        assert!(m.get(key).is_some(), "{key} missing: {m}");
    }
    assert_eq!(m["context_length"], 8192, "capped at the trained context");
}

#[tokio::test]
async fn fact_chat_without_messages_loads_with_done_reason_load() {
    let fake = FakeOllama::start(installed());
    let resp: Value = post(&fake, "/api/chat", json!({"model": "gpt-oss:20b"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(resp["done_reason"], "load");
    assert_eq!(resp["done"], true);
}

#[tokio::test]
async fn fact_pull_completed_omitted_when_zero() {
    let fake = FakeOllama::start(FakeConfig::default());
    let (status, lines) = pull_lines(&fake, "gpt-oss:20b").await;
    assert_eq!(status, 200);
    let layers: Vec<&Value> = lines.iter().filter(|l| l.get("digest").is_some()).collect();
    let first = layers.first().expect("layer lines");
    assert!(first.get("completed").is_none(), "{first}");
    assert!(first["total"].as_u64().unwrap() > 0);
    for l in &layers {
        assert_ne!(l.get("completed"), Some(&json!(0)), "{l}");
    }
    assert!(
        layers.iter().any(|l| l.get("completed").is_some()),
        "later lines carry completed"
    );
}

#[tokio::test]
async fn fact_pull_lines_run_manifest_layers_verify_write_remove_success() {
    let fake = FakeOllama::start(FakeConfig::default());
    let (_, lines) = pull_lines(&fake, "gpt-oss:20b").await;
    let mut phases: Vec<String> = Vec::new();
    for l in &lines {
        let s = l["status"].as_str().unwrap();
        let phase = if s.starts_with("pulling ") && s != "pulling manifest" {
            assert_eq!(s.len(), "pulling ".len() + 12, "12 hex of the digest: {s}");
            "pulling <digest>".to_owned()
        } else {
            s.to_owned()
        };
        if phases.last() != Some(&phase) {
            phases.push(phase);
        }
    }
    assert_eq!(
        phases,
        [
            "pulling manifest",
            "pulling <digest>",
            "verifying sha256 digest",
            "writing manifest",
            "removing unused layers",
            "success"
        ]
    );
}

#[tokio::test]
async fn fact_pull_unknown_model_is_http_200_then_an_error_line_after_pulling_manifest() {
    let fake = FakeOllama::start(FakeConfig::default());
    let (status, lines) = pull_lines(&fake, "no-such-model").await;
    assert_eq!(status, 200);
    assert_eq!(
        lines,
        [
            json!({"status": "pulling manifest"}),
            json!({"error": "pull model manifest: file does not exist"})
        ]
    );
}

#[tokio::test]
async fn fact_pull_error_before_the_first_line_is_an_http_status() {
    let fake = FakeOllama::start(FakeConfig::default());
    let resp = post(&fake, "/api/pull", json!({"stream": true})).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
}

#[tokio::test]
async fn fact_pull_offline_fails_with_the_dns_lookup_error() {
    let fake = FakeOllama::start(FakeConfig::default().offline());
    let (status, lines) = pull_lines(&fake, "gpt-oss:20b").await;
    assert_eq!(status, 200);
    assert_eq!(lines[0], json!({"status": "pulling manifest"}));
    let error = lines[1]["error"].as_str().unwrap();
    assert_eq!(error, OFFLINE_PULL_ERROR);
    assert!(error.starts_with("pull model manifest: Get \"https://registry.ollama.ai/"));
    assert!(
        error.contains("dial tcp: lookup registry.ollama.ai") && error.ends_with("no such host")
    );
}

#[tokio::test]
async fn fact_pull_reissued_after_a_drop_can_get_context_canceled() {
    let mut cfg = FakeConfig::default();
    cfg.pull.canceled_after_drop = 1;
    cfg.pull.tick = Duration::from_millis(50);
    let fake = FakeOllama::start(cfg);
    // A pull the client drops after its first lines.
    let mut first = post(&fake, "/api/pull", json!({"model": "gpt-oss:20b"})).await;
    first.chunk().await.unwrap();
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    while fake.state.lock().unwrap().pulls_dropped == 0 {
        assert!(Instant::now() < deadline, "the drop was never noticed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, lines) = pull_lines(&fake, "gpt-oss:20b").await;
    assert_eq!(status, 200);
    assert_eq!(lines.last().unwrap(), &json!({"error": "context canceled"}));
    // Retrying once more resumes the download.
    let (_, lines) = pull_lines(&fake, "gpt-oss:20b").await;
    assert_eq!(lines.last().unwrap(), &json!({"status": "success"}));
}

#[tokio::test]
async fn fact_show_context_key_is_arch_context_length_with_capabilities() {
    let fake = FakeOllama::start(installed());
    let show: Value = post(&fake, "/api/show", json!({"model": "gpt-oss:20b"}))
        .await
        .json()
        .await
        .unwrap();
    let info = &show["model_info"];
    let arch = info["general.architecture"].as_str().unwrap();
    assert_eq!(info[format!("{arch}.context_length")], 131_072);
    // A decoy key that merely contains context_length holds another number.
    let decoys: Vec<&String> = info
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.contains("context_length") && **k != format!("{arch}.context_length"))
        .collect();
    assert!(!decoys.is_empty());
    assert_ne!(info[decoys[0].as_str()], 131_072);
    assert_eq!(
        show["capabilities"],
        json!(["completion", "tools", "thinking"])
    );
}

#[tokio::test]
async fn fact_unknown_model_is_404_with_the_normalised_name() {
    let fake = FakeOllama::start(installed());
    let resp = post(&fake, "/api/show", json!({"model": "gpt-oss"})).await;
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"error": "model 'gpt-oss:latest' not found"}));

    let mut req = chat(false);
    req["model"] = json!("qwen3");
    let resp = post(&fake, "/v1/chat/completions", req).await;
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["message"], "model 'qwen3:latest' not found");
    assert_eq!(body["error"]["type"], "not_found_error");
}

#[tokio::test]
async fn fact_reasoning_arrives_in_the_reasoning_field_never_reasoning_content() {
    let fake = FakeOllama::start(installed());
    let data = sse_data(post(&fake, "/v1/chat/completions", chat(true)).await).await;
    let reasoning: String = data
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["reasoning"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert!(!reasoning.is_empty());
    assert!(!data.iter().any(|d| d.contains("reasoning_content")));
    let whole: Value = post(&fake, "/v1/chat/completions", chat(false))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        whole["choices"][0]["message"]["reasoning"].is_string(),
        "{whole}"
    );
    assert!(whole["choices"][0]["message"]
        .get("reasoning_content")
        .is_none());
}

#[tokio::test]
async fn fact_tool_call_arrives_whole_in_one_chunk_with_a_call_id_of_8_characters() {
    let fake = FakeOllama::start(installed());
    let data = sse_data(post(&fake, "/v1/chat/completions", with_tool(chat(true))).await).await;
    let calls: Vec<Value> = data
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|c| c["choices"][0]["delta"].get("tool_calls").cloned())
        .collect();
    assert_eq!(calls.len(), 1, "one chunk holds the call: {data:?}");
    let call = &calls[0][0];
    assert_eq!(call["index"], 0);
    assert_eq!(call["function"]["name"], "get_time");
    assert_eq!(
        call["function"]["arguments"], TOOL_ARGUMENTS,
        "whole arguments"
    );
    let id = call["id"].as_str().unwrap();
    let tail = id.strip_prefix("call_").expect("call_ prefix");
    assert_eq!(tail.len(), 8, "{id}");
    assert!(tail.chars().all(|c| c.is_ascii_alphanumeric()), "{id}");
}

#[tokio::test]
async fn fact_usage_chunk_has_empty_choices_after_the_finish_chunk() {
    let fake = FakeOllama::start(installed());
    let mut req = chat(true);
    req["stream_options"] = json!({"include_usage": true});
    let data = sse_data(post(&fake, "/v1/chat/completions", req).await).await;
    let n = data.len();
    assert_eq!(data[n - 1], "[DONE]");
    let usage: Value = serde_json::from_str(&data[n - 2]).unwrap();
    assert_eq!(usage["choices"], json!([]));
    let u = &usage["usage"];
    assert_eq!(
        u.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["prompt_tokens", "completion_tokens", "total_tokens"]
    );
    let finish: Value = serde_json::from_str(&data[n - 3]).unwrap();
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn fact_streamed_tool_call_parse_failure_is_200_reasoning_one_empty_chunk_and_no_done() {
    let fake = FakeOllama::start(installed().with_tool_call_parse_failure());
    let resp = post(&fake, "/v1/chat/completions", with_tool(chat(true))).await;
    assert_eq!(resp.status(), 200);
    let data = sse_data(resp).await;
    let (last, before) = data.split_last().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(last).unwrap(),
        json!({"model": "", "choices": [{"delta": {"content": ""}, "finish_reason": null}]})
    );
    assert!(!before.is_empty());
    for d in before {
        let c: Value = serde_json::from_str(d).unwrap();
        assert!(
            c["choices"][0]["delta"]["reasoning"].is_string(),
            "only reasoning: {d}"
        );
    }
    assert!(!data.iter().any(|d| d == "[DONE]" || d.contains("error")));
}

#[tokio::test]
async fn fact_unstreamed_tool_call_parse_failure_is_500_error_parsing_tool_call() {
    let fake = FakeOllama::start(installed().with_tool_call_parse_failure());
    let resp = post(&fake, "/v1/chat/completions", with_tool(chat(false))).await;
    assert_eq!(resp.status(), 500);
    let body: Value = resp.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("error parsing tool call: raw='"),
        "{message}"
    );
    assert_eq!(body["error"]["type"], "api_error");
}

#[tokio::test]
async fn fact_tool_choice_and_parallel_tool_calls_are_ignored() {
    let fake = FakeOllama::start(installed());
    let mut none = with_tool(chat(false));
    none["tool_choice"] = json!("none");
    none["parallel_tool_calls"] = json!(false);
    let body: Value = post(&fake, "/v1/chat/completions", none)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["choices"][0]["finish_reason"], "tool_calls",
        "`none` still calls"
    );

    fake.update(|s| s.config.chat.tool_call_ignored = true);
    let mut forced = with_tool(chat(false));
    forced["tool_choice"] = json!({"type": "function", "function": {"name": "get_time"}});
    let body: Value = post(&fake, "/v1/chat/completions", forced)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["choices"][0]["finish_reason"], "stop",
        "a forced tool comes back as text"
    );
}

#[tokio::test]
async fn fact_prompt_over_the_context_is_truncated_silently_with_capped_prompt_tokens() {
    let fake = FakeOllama::start(installed().with_server_context(4096));
    let long = "word ".repeat(4000); // about 5000 fake tokens per message
    let req = json!({"model": "gpt-oss:20b", "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": format!("first {long}")},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "last question"},
    ]});
    let resp = post(&fake, "/v1/chat/completions", req).await;
    assert_eq!(resp.status(), 200, "no error for an overlong prompt");
    let body: Value = resp.json().await.unwrap();
    let prompt = body["usage"]["prompt_tokens"].as_u64().unwrap();
    assert!(prompt <= 4096, "{prompt}");
    let seen = fake.state.lock().unwrap().prompts.last().unwrap().clone();
    let roles: Vec<&str> = seen.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(
        roles,
        ["system", "assistant", "user"],
        "the oldest user turn dropped"
    );
}

#[tokio::test]
async fn fact_image_url_and_gif_are_400_while_base64_png_is_taken() {
    let fake =
        FakeOllama::start(FakeConfig::default().with_installed(FakeModel::seeing("gemma4:latest")));
    let with_image = |url: &str| {
        json!({"model": "gemma4", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": url}}]}]})
    };
    for bad in [
        "https://example.com/cat.png",
        "data:image/gif;base64,R0lGODlhAQABAAAAACw=",
    ] {
        let resp = post(&fake, "/v1/chat/completions", with_image(bad)).await;
        assert_eq!(resp.status(), 400, "{bad}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    }
    let ok = post(
        &fake,
        "/v1/chat/completions",
        with_image("data:image/png;base64,iVBORw0KGgo="),
    )
    .await;
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn fact_an_image_for_a_model_without_vision_fails_in_the_runner_with_500() {
    let fake = FakeOllama::start(installed());
    let body = json!({"model": "gpt-oss:20b", "stream": true, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]});
    let resp = post(&fake, "/v1/chat/completions", body).await;
    assert_eq!(resp.status(), 500, "not checked up front: the runner fails");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "api_error");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("image input is not supported"),
        "{message}"
    );
    assert_eq!(
        fake.state.lock().unwrap().loaded.len(),
        1,
        "the model was loaded first"
    );
}

#[tokio::test]
async fn fact_thinking_for_a_model_without_it_is_400_naming_the_model() {
    let fake = FakeOllama::start(installed().with_installed(FakeModel::plain("qwen2.5-coder:7b")));
    let mut body = chat(true);
    body["model"] = json!("qwen2.5-coder:7b");
    body["reasoning_effort"] = json!("medium");
    let resp = post(&fake, "/v1/chat/completions", body.clone()).await;
    assert_eq!(resp.status(), 400);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["error"]["type"], "invalid_request_error");
    assert_eq!(
        answer["error"]["message"],
        "\"qwen2.5-coder:7b\" does not support thinking"
    );
    // `none` turns thinking off, and a model with thinking takes any effort.
    body["reasoning_effort"] = json!("none");
    assert_eq!(
        post(&fake, "/v1/chat/completions", body).await.status(),
        200
    );
    let mut gpt = chat(false);
    gpt["reasoning_effort"] = json!("high");
    assert_eq!(post(&fake, "/v1/chat/completions", gpt).await.status(), 200);
}

#[tokio::test]
async fn fact_a_tool_schema_that_does_not_fit_is_400() {
    let fake = FakeOllama::start(installed());
    let mut req = chat(false);
    req["tools"] = json!([{"type": "function", "function": {"name": "f",
        "parameters": {"type": "object", "properties": {"anything": true}}}}]);
    let resp = post(&fake, "/v1/chat/completions", req).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("cannot unmarshal bool"));
    // Keywords it merely drops (additionalProperties, format…) are no error.
    let ok = with_tool(chat(false));
    let mut ok = ok;
    ok["tools"][0]["function"]["parameters"]["additionalProperties"] = json!(false);
    assert_eq!(
        post(&fake, "/v1/chat/completions", ok.clone())
            .await
            .status(),
        200
    );
    // `anyOf` is kept and decoded member by member: objects pass, a boolean is a 400.
    let props = "/tools/0/function/parameters/properties";
    *ok.pointer_mut(props).unwrap() =
        json!({"when": {"anyOf": [{"type": "string"}, {"type": "integer"}]}});
    assert_eq!(
        post(&fake, "/v1/chat/completions", ok.clone())
            .await
            .status(),
        200
    );
    *ok.pointer_mut(props).unwrap() = json!({"when": {"anyOf": [{"type": "string"}, true]}});
    assert_eq!(post(&fake, "/v1/chat/completions", ok).await.status(), 400);
}

#[tokio::test]
async fn fact_stop_hit_is_reported_as_stop_and_max_tokens_as_length() {
    let fake = FakeOllama::start(installed());
    let mut req = chat(false);
    req["stop"] = json!(["fake"]);
    let body: Value = post(&fake, "/v1/chat/completions", req)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "Hello from the ");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    let mut req = chat(false);
    req["max_tokens"] = json!(2);
    let body: Value = post(&fake, "/v1/chat/completions", req)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert_eq!(body["usage"]["completion_tokens"], 2);
}

#[tokio::test]
async fn fact_native_messages_answer_anthropic_shapes_without_count_tokens() {
    let fake = FakeOllama::start(installed());
    let req = json!({"model": "gpt-oss:20b", "max_tokens": 50,
                     "messages": [{"role": "user", "content": "hi"}]});
    let body: Value = post(&fake, "/v1/messages", req.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["type"], "message");
    assert_eq!(body["model"], "gpt-oss:20b", "the name as given");
    assert_eq!(body["content"][0]["text"], "Hello from the fake Ollama.");
    assert_eq!(body["stop_reason"], "end_turn");

    let mut stream = req.clone();
    stream["stream"] = json!(true);
    let text = post(&fake, "/v1/messages", stream)
        .await
        .text()
        .await
        .unwrap();
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));

    let mut unknown = req.clone();
    unknown["model"] = json!("nope:1b");
    let resp = post(&fake, "/v1/messages", unknown).await;
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "not_found_error");

    let resp = post(&fake, "/v1/messages/count_tokens", req).await;
    assert_eq!(resp.status(), 404, "no count_tokens route");
}

#[test]
fn fact_ollama_host_is_read_as_ollama_reads_it() {
    let cases = [
        ("", ("127.0.0.1", 11434)),
        ("\"127.0.0.1:11500\"", ("127.0.0.1", 11500)),
        ("0.0.0.0", ("0.0.0.0", 11434)),
        ("http://example.com", ("example.com", 80)),
        ("https://example.com", ("example.com", 443)),
        ("ftp://example.com", ("example.com", 11434)),
        ("http://[::1]:8080/path", ("::1", 8080)),
        ("localhost:99999", ("localhost", 11434)),
        (":8080", ("", 8080)),
    ];
    for (value, (host, port)) in cases {
        assert_eq!(
            parse_ollama_host(value),
            (host.to_owned(), port),
            "{value:?}"
        );
    }
}

/// The fake executable: `ollama --version`, then `ollama serve` on OLLAMA_HOST with the
/// context from OLLAMA_CONTEXT_LENGTH (4096 when unset, as on a small GPU), recording its
/// start and requests; it stops when its script is killed.
#[test]
fn fact_the_executable_serves_on_ollama_host_with_4096_by_default() {
    let sb = Sandbox::new();
    let exe = sb.add_fake_ollama();
    let out = sb.command(&exe).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ollama version is 0.12.3\n"
    );

    let host = format!("127.0.0.1:{}", support::unbound_port());
    let mut serve = sb
        .command(&exe)
        .arg("serve")
        .env("OLLAMA_HOST", &host)
        .env("FAKE_OLLAMA_INSTALLED", "gpt-oss:20b")
        .env("FAKE_OLLAMA_RECORD", sb.record_path())
        .env("FAKE_OLLAMA_REQUESTS", sb.requests_path())
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ps = rt.block_on(async {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while client.get(format!("http://{host}/")).send().await.is_err() {
            assert!(Instant::now() < deadline, "the fake never answered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let load = json!({"model": "gpt-oss:20b"});
        client
            .post(format!("http://{host}/api/chat"))
            .json(&load)
            .send()
            .await
            .unwrap();
        let ps = client
            .get(format!("http://{host}/api/ps"))
            .send()
            .await
            .unwrap();
        ps.json::<Value>().await.unwrap()
    });
    assert_eq!(ps["models"][0]["context_length"], 4096);
    let starts = sb.serve_starts();
    assert_eq!(starts.len(), 1);
    assert_eq!(starts[0]["pid"].as_u64(), Some(u64::from(serve.id())));
    assert_eq!(starts[0]["env"]["OLLAMA_HOST"], host.as_str());
    assert!(
        sb.served().contains(&"GET /api/ps".to_owned()),
        "{:?}",
        sb.served()
    );

    let _ = serve.kill();
    let _ = serve.wait();
    let server = u32::try_from(starts[0]["server_pid"].as_u64().unwrap()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while ccr_setup::service::runtime::process_argv(server).is_some() {
        assert!(Instant::now() < deadline, "the server outlived its script");
        std::thread::sleep(Duration::from_millis(50));
    }
}
