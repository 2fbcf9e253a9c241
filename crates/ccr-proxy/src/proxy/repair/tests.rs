//! Repair against Claude Code 2.1.197's real tool schemas (from the recorded session).

use super::*;
use serde_json::json;

/// The client body of the recording's first request that offers tools.
fn claude_code_body() -> Bytes {
    let recording = include_str!("../../../../../tests/fixtures/session/claude-code-2.1.197.jsonl");
    recording
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["body"]["tools"].as_array().is_some_and(|t| !t.is_empty()))
        .map(|r| Bytes::from(serde_json::to_vec(&r["body"]).unwrap()))
        .unwrap()
}

pub(crate) fn claude_code_catalog() -> ToolCatalog {
    let body = claude_code_body();
    let v: Value = serde_json::from_slice(&body).unwrap();
    let names = v["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    ToolCatalog::new(names, body)
}

#[test]
fn schemas_are_read_from_the_body_on_demand() {
    let catalog = claude_code_catalog();
    let bash = catalog.schema("Bash").unwrap();
    assert!(bash["properties"]["command"].is_object());
    assert_eq!(catalog.schema("NoSuchTool"), None);
}

#[test]
fn a_good_call_passes_untouched() {
    let call = fit_call(
        &claude_code_catalog(),
        "Bash",
        r#"{"command":"ls","description":"List files"}"#,
        false,
    )
    .unwrap();
    assert_eq!(call.name, "Bash");
    assert!(call.repairs.is_empty(), "{:?}", call.detail);
    assert_eq!(
        call.input,
        json!({"command":"ls","description":"List files"})
    );
}

#[test]
fn each_repair_is_named() {
    let catalog = claude_code_catalog();
    let cases: &[(&str, &str, &[RepairKind], Value)] = &[
        (
            "functions.Read",
            r#"{"file_path":"/p/app.py"}"#,
            &[RepairKind::Name],
            json!({"file_path":"/p/app.py"}),
        ),
        (
            "Bash",
            r#""{\"command\":\"ls\"}""#,
            &[RepairKind::Shape],
            json!({"command":"ls"}),
        ),
        (
            "Bash",
            r#"{"arguments":{"command":"ls"}}"#,
            &[RepairKind::Shape],
            json!({"command":"ls"}),
        ),
        (
            "Bash",
            "{'command': 'ls',}",
            &[RepairKind::Syntax],
            json!({"command":"ls"}),
        ),
        (
            "Read",
            r#"{"file_path":"/p/app.py","limit":"20"}"#,
            &[RepairKind::Coerced],
            json!({"file_path":"/p/app.py","limit":20}),
        ),
        (
            "container.exec",
            r#"{"cmd":["bash","-lc","pytest -q"]}"#,
            &[RepairKind::Name],
            json!({"command":"pytest -q"}),
        ),
    ];
    for (name, args, repairs, input) in cases {
        let call = fit_call(&catalog, name, args, true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&call.repairs, repairs, "{name} {args}: {:?}", call.detail);
        assert_eq!(&call.input, input, "{name} {args}");
    }
}

#[test]
fn calls_that_do_not_fit_say_why() {
    let catalog = claude_code_catalog();
    let err = fit_call(&catalog, "read_file_contents", "{}", true).unwrap_err();
    assert!(err.reason.contains("no tool of that name"), "{err}");
    let err = fit_call(&catalog, "Read", r#"{"path":"/p/app.py"}"#, true).unwrap_err();
    assert!(err.reason.contains("file_path"), "{err}");
    let err = fit_call(&catalog, "Bash", r#"{"command": "rm -rf /tmp/bu"#, true).unwrap_err();
    assert!(err.reason.contains("not valid JSON"), "{err}");
    let note = corrective_note(&err);
    assert!(
        note.contains("Bash") && note.contains("not valid JSON"),
        "{note}"
    );
}

#[test]
fn printed_calls_become_calls_and_prose_stays_prose() {
    let catalog = claude_code_catalog();
    let call = text_call::find(
        &catalog,
        "```json\n{\"name\": \"Bash\", \"arguments\": {\"command\": \"ls\"}}\n```",
    )
    .unwrap();
    assert_eq!(call.repairs, vec![RepairKind::TextCall]);
    assert_eq!(call.input, json!({"command": "ls"}));
    let call = text_call::find(
        &catalog,
        "<|channel|>commentary to=functions.Read <|constrain|>json<|message|>{\"file_path\":\"/p/a.py\"}<|call|>",
    )
    .unwrap();
    assert_eq!(call.name, "Read");
    assert_eq!(call.repairs, vec![RepairKind::TextCall, RepairKind::Name]);
    for prose in [
        "I ran ls.",
        "{\"name\": \"Bash\"}",
        "Here is the config: {\"name\": \"Bash\", \"arguments\": {\"command\": \"ls\"}}",
        "{\"name\": \"Deploy\", \"arguments\": {}}",
    ] {
        assert_eq!(text_call::find(&catalog, prose), None, "{prose}");
    }
    assert!(text_call::may_be_call("  {\"na"));
    assert!(text_call::may_be_call("``"));
    assert!(!text_call::may_be_call("Sure"));
    assert!(text_call::may_be_call("```js"), "still may become ```json");
    assert!(text_call::may_be_call("```json\n{\"na"));
    assert!(
        !text_call::may_be_call("```python\nprint(1)"),
        "code streams at once"
    );
    assert!(!text_call::may_be_call("```py"));
}

#[test]
fn the_note_goes_after_the_conversation() {
    let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    let out = openai_body_with_note(body, "fix it").unwrap();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["messages"][0]["content"], "hi");
    assert_eq!(
        v["messages"][1],
        json!({"role":"system","content":"fix it"})
    );
    assert!(out.starts_with(br#"{"model":"m","messages":[{"role":"user","content":"hi"}"#));
}

/// The corpus of real malformed calls (tests/fixtures/tool-calls, with sources):
/// each case is repaired to the expected call, retried, or left as text.
#[test]
fn the_corpus_of_real_malformed_calls() {
    let corpus: Vec<Value> = serde_json::from_str(include_str!(
        "../../../../../tests/fixtures/tool-calls/corpus.json"
    ))
    .unwrap();
    assert!(corpus.len() >= 20, "the corpus shrank to {}", corpus.len());
    let catalog = claude_code_catalog();
    let mut wrong = Vec::new();
    for case in &corpus {
        let id = case["id"].as_str().unwrap();
        let expect = &case["expect"];
        let got = match case["form"].as_str().unwrap() {
            "call" => match fit_call(
                &catalog,
                case["name"].as_str().unwrap(),
                case["arguments"].as_str().unwrap(),
                true,
            ) {
                Ok(call) => json!({"name": call.name, "input": call.input}),
                Err(_) => json!("retry"),
            },
            "text" => match text_call::classify(&catalog, case["text"].as_str().unwrap()) {
                text_call::TextVerdict::Call(call)
                | text_call::TextVerdict::ProseThenCall(_, call) => {
                    json!({"name": call.name, "input": call.input})
                }
                text_call::TextVerdict::Attempt(_) => json!("retry"),
                text_call::TextVerdict::Prose => json!("text"),
            },
            other => panic!("{id}: unknown form {other}"),
        };
        if &got != expect {
            wrong.push(format!("{id}: expected {expect}, got {got}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
