//! Tests of [`super::request`]: the translation's choices, one per test.
use super::*;
use serde_json::json;

fn translate(body: Value, target: TargetOptions) -> Value {
    let req: MessagesRequest = serde_json::from_value(body).unwrap();
    let t = to_openai(&req, &target).unwrap();
    serde_json::to_value(&t.request).unwrap()
}

const TARGET: TargetOptions = TargetOptions {
    model: "gpt-oss:20b",
    max_tokens_limit: None,
    reasoning_in_history: false,
    ollama: false,
    caps: Capabilities::UNKNOWN,
};

#[test]
fn reasoning_effort_thresholds() {
    let e = |b| reasoning_effort(Some(&Thinking::Enabled { budget_tokens: b }), None);
    assert_eq!(
        (e(1024), e(4096), e(4097), e(16384), e(16385)),
        (
            Some("low"),
            Some("low"),
            Some("medium"),
            Some("medium"),
            Some("high")
        )
    );
    assert_eq!(
        reasoning_effort(Some(&Thinking::Disabled), Some("max")),
        None
    );
    assert_eq!(reasoning_effort(None, Some("high")), None);
}

#[test]
fn max_tokens_is_clamped_to_the_provider_limit() {
    let body =
        json!({"model": "m", "max_tokens": 64000, "messages": [{"role": "user", "content": "hi"}]});
    let clamped = TargetOptions {
        max_tokens_limit: Some(8192),
        ..TARGET
    };
    assert_eq!(translate(body.clone(), clamped)["max_tokens"], 8192);
    assert_eq!(translate(body, TARGET)["max_tokens"], 64000);
}

#[test]
fn reasoning_goes_back_only_when_the_provider_wants_it() {
    let body = json!({"model": "m", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "ponder", "signature": ""}, {"type": "tool_use", "id": "c1", "name": "Bash", "input": {"command": "ls"}}]},
    ]});
    let plain = translate(body.clone(), TARGET);
    assert!(plain["messages"][1].get("reasoning_content").is_none());
    assert_eq!(plain["messages"][1]["content"], Value::Null);
    let deepseek = TargetOptions {
        reasoning_in_history: true,
        ..TARGET
    };
    assert_eq!(
        translate(body, deepseek)["messages"][1]["reasoning_content"],
        "ponder"
    );
}

#[test]
fn unknown_role_names_the_field() {
    let req: MessagesRequest = serde_json::from_value(json!({"model": "m", "messages": [{"role": "user", "content": "a"}, {"role": "robot", "content": "b"}]})).unwrap();
    let err = to_openai(&req, &TARGET).unwrap_err();
    assert_eq!(err.field, "messages[1].role");
}

#[test]
fn ollama_gets_a_note_for_images_it_cannot_read() {
    let body = json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "url", "url": "https://u:p@example.com/cat.png?sig=1"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/gif", "data": "R0lG"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}}]}]});
    let ollama = TargetOptions {
        ollama: true,
        ..TARGET
    };
    let parts = translate(body.clone(), ollama)["messages"][0]["content"].clone();
    assert_eq!(parts[0]["type"], "text", "{parts}");
    assert!(parts[0]["text"].as_str().unwrap().contains("cannot fetch"));
    assert!(
        !parts[0]["text"].as_str().unwrap().contains("u:p"),
        "redacted"
    );
    assert!(parts[1]["text"].as_str().unwrap().contains("image/gif"));
    assert_eq!(parts[2]["image_url"]["url"], "data:image/png;base64,iVBO");
    // Other servers get the images as they are.
    let other = translate(body, TARGET)["messages"][0]["content"].clone();
    assert_eq!(
        other[0]["image_url"]["url"],
        "https://u:p@example.com/cat.png?sig=1"
    );
}

#[test]
fn ollama_gets_tool_choice_as_the_tools_offered() {
    let body = |choice: Value| {
        json!({"model": "m", "tool_choice": choice, "messages": [{"role": "user", "content": "a"}],
            "tools": [{"name": "A", "input_schema": {"type": "object"}}, {"name": "B", "input_schema": {"type": "object"}}]})
    };
    let ollama = TargetOptions {
        ollama: true,
        ..TARGET
    };
    let none = translate(body(json!({"type": "none"})), ollama);
    assert!(
        none.get("tools").is_none() && none.get("tool_choice").is_none(),
        "{none}"
    );
    let only_b = translate(body(json!({"type": "tool", "name": "B"})), ollama);
    assert_eq!(only_b["tools"].as_array().unwrap().len(), 1, "{only_b}");
    assert_eq!(only_b["tools"][0]["function"]["name"], "B");
    // Other servers honour tool_choice: all tools stay.
    let llama = translate(body(json!({"type": "none"})), TARGET);
    assert_eq!(llama["tools"].as_array().unwrap().len(), 2);
    assert_eq!(llama["tool_choice"], "none");
}

#[test]
fn tool_choice_without_tools_is_omitted() {
    let body = json!({"model": "m", "tool_choice": {"type": "any"}, "messages": [{"role": "user", "content": "a"}]});
    let out = translate(body, TARGET);
    assert!(out.get("tool_choice").is_none());
}

/// gpt-oss as Ollama's `/api/show` describes it: tools and thinking, no vision.
const GPT_OSS: Capabilities = Capabilities {
    vision: Some(false),
    thinking: Some(true),
    tools: Some(true),
    context: Some(131_072),
    ollama: true,
};

#[test]
fn a_model_without_vision_gets_notes_for_every_image() {
    let png = json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}});
    let body = json!({"model": "m", "messages": [
        {"role": "user", "content": [png.clone(), {"type": "text", "text": "what is this?"}]},
        {"role": "assistant", "content": "a cat"},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [png.clone()]}]},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [png, {"type": "text", "text": "and this?"}]},
        // Claude Code may end with a system message: the last user turn is still the
        // current one.
        {"role": "system", "content": "reminder"}]});
    let blind = TargetOptions {
        ollama: true,
        caps: GPT_OSS,
        ..TARGET
    };
    let out = translate(body.clone(), blind);
    assert!(!out.to_string().contains("image_url"), "{out}");
    let msgs = out["messages"].as_array().unwrap();
    // Earlier images: the one-line note, in user turns and tool results alike.
    assert_eq!(
        msgs[0]["content"],
        format!("{BLIND_EARLIER_NOTE}\nwhat is this?")
    );
    assert_eq!(msgs[3]["content"], BLIND_EARLIER_NOTE);
    // The image just given: a note naming the model and the image route.
    let last = msgs[msgs.len() - 2]["content"].as_str().unwrap();
    assert!(last.starts_with(&blind_image_note("gpt-oss:20b")), "{last}");
    assert!(last.contains("Router.image") && last.ends_with("and this?"));
    // A model with vision (or not known to lack it) gets the images.
    let seeing = TargetOptions {
        ollama: true,
        caps: Capabilities {
            vision: Some(true),
            ..GPT_OSS
        },
        ..TARGET
    };
    assert_eq!(
        translate(body.clone(), seeing)
            .to_string()
            .matches("data:image/png")
            .count(),
        3
    );
    assert_eq!(
        translate(body, TARGET)
            .to_string()
            .matches("data:image/png")
            .count(),
        3
    );
}

#[test]
fn a_model_without_thinking_never_gets_reasoning_effort() {
    let body = json!({"model": "m", "thinking": {"type": "adaptive"}, "output_config": {"effort": "high"},
        "messages": [{"role": "user", "content": "hi"}]});
    let thinking = TargetOptions {
        caps: GPT_OSS,
        ..TARGET
    };
    assert_eq!(
        translate(body.clone(), thinking)["reasoning_effort"],
        "medium"
    );
    let plain = TargetOptions {
        caps: Capabilities {
            thinking: Some(false),
            ..GPT_OSS
        },
        ..TARGET
    };
    let out = translate(body, plain);
    assert!(out.get("reasoning_effort").is_none(), "{out}");
}

#[test]
fn claude_code_effort_maps_one_tier_down() {
    let adaptive = Thinking::Adaptive {
        extra: Default::default(),
    };
    let e = |effort| reasoning_effort(Some(&adaptive), effort);
    // Claude Code's default (`high` on every main turn) is `medium` locally.
    assert_eq!(
        [
            e(Some("low")),
            e(Some("medium")),
            e(Some("high")),
            e(None),
            e(Some("xhigh")),
            e(Some("max"))
        ],
        [
            Some("low"),
            Some("low"),
            Some("medium"),
            Some("medium"),
            Some("high"),
            Some("high")
        ]
    );
    let body = json!({"model": "m", "thinking": {"type": "adaptive"}, "output_config": {"effort": "max"},
        "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(translate(body, TARGET)["reasoning_effort"], "high");
}
