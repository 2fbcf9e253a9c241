use super::*;
use serde_json::json;

/// A Claude Code-like conversation: a fixed prompt of `fixed_words`, then one `Read`
/// per file (each result `file_words` long), the last result in the last message.
fn reads(files: usize, fixed_words: usize, file_words: usize) -> MessagesRequest {
    let mut messages = vec![
        json!({"role": "user", "content": format!("Read the files one at a time. {}", "context ".repeat(fixed_words))}),
    ];
    for i in 0..files {
        messages.push(json!({"role": "assistant", "content": [
            {"type": "text", "text": format!("Reading f{i}.txt")},
            {"type": "tool_use", "id": format!("toolu_{i}"), "name": "Read", "input": {"file_path": format!("/w/f{i}.txt")}}
        ]}));
        messages.push(json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": format!("toolu_{i}"), "content": format!("{i} {}", "line of file text ".repeat(file_words / 4))}
        ]}));
    }
    serde_json::from_value(json!({"model": "m", "messages": messages})).unwrap()
}

fn budget(window: u64) -> Budget {
    Budget {
        window,
        reserve: 4096,
        target: window * 70 / 100,
    }
}

fn count(est: &TokenEstimator, req: &MessagesRequest) -> u64 {
    est.count(req).total()
}

fn result_text(req: &MessagesRequest, m: usize) -> String {
    match &req.messages[m].content {
        Content::Blocks(b) => match &b[0] {
            ContentBlock::Known(KnownBlock::ToolResult {
                content: Some(ToolResultContent::Text(t)),
                ..
            }) => t.clone(),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

/// Edit `req` as the proxy does; the edited request's real count must be what the
/// report says, and within the window.
fn edit(
    est: &TokenEstimator,
    mem: &ClearMemory,
    req: &mut MessagesRequest,
    b: &Budget,
) -> EditReport {
    let input = count(est, req);
    match decide(req, b, input, est, mem, Some("s")) {
        EditOutcome::Untouched => EditReport {
            input_before: input,
            input_after: input,
            ..EditReport::default()
        },
        EditOutcome::Fits(plan) => {
            let report = plan.apply(req, mem);
            let real = count(est, req);
            assert!(
                real.abs_diff(report.input_after) <= 8,
                "report {} vs recount {real}",
                report.input_after
            );
            assert!(real <= b.limit(), "{real} > {}", b.limit());
            report
        }
        EditOutcome::TooLong { input, limit } => panic!("too long: {input} > {limit}"),
    }
}

#[test]
fn a_request_that_fits_is_untouched() {
    let (est, mem) = (TokenEstimator::default(), ClearMemory::default());
    let req = reads(2, 1000, 1000);
    let input = count(&est, &req);
    assert!(matches!(
        decide(&req, &budget(32_768), input, &est, &mem, None),
        EditOutcome::Untouched
    ));
}

#[test]
fn the_oldest_results_are_cleared_down_to_the_target_and_the_last_never() {
    let (est, mem) = (TokenEstimator::default(), ClearMemory::default());
    let b = budget(32_768);
    let mut req = reads(8, 8_000, 4_000);
    let before = count(&est, &req);
    assert!(before > b.limit(), "the fixture must overflow: {before}");
    let report = edit(&est, &mem, &mut req, &b);
    assert!(report.input_after <= b.target, "{report:?}");
    assert!(report.cleared_blocks >= 3, "{report:?}");
    assert_eq!(report.cleared_blocks, report.newly_cleared);
    // Oldest first: f0 is a stub, the last result is whole.
    let first = result_text(&req, 2);
    assert!(
        first.contains("/w/f0.txt") && first.contains("Read the file again"),
        "{first}"
    );
    let last = result_text(&req, req.messages.len() - 1);
    assert!(last.starts_with("7 line of file text"), "{last}");
}

#[test]
fn the_clear_point_is_sticky_so_the_prefix_stays_byte_stable() {
    let (est, mem) = (TokenEstimator::default(), ClearMemory::default());
    let b = budget(32_768);
    let mut turn1 = reads(6, 8_000, 4_000);
    let r1 = edit(&est, &mem, &mut turn1, &b);
    assert!(r1.newly_cleared > 0);
    // The next turn: the same history plus one more read. It fits at the limit with
    // the remembered clears, so nothing new is cleared and the old part is unchanged.
    let mut turn2 = reads(7, 8_000, 1_000);
    // Same history for the first six reads (file_words differs only for the new one).
    let six = reads(6, 8_000, 4_000);
    turn2
        .messages
        .splice(0..six.messages.len(), six.messages.clone());
    let r2 = edit(&est, &mem, &mut turn2, &b);
    assert_eq!(r2.newly_cleared, 0, "{r2:?}");
    assert_eq!(r2.cleared_blocks, r1.cleared_blocks);
    let a = serde_json::to_string(&turn1.messages).unwrap();
    let c = serde_json::to_string(&turn2.messages[..turn1.messages.len()]).unwrap();
    assert_eq!(a, c, "the edited history is byte-identical turn to turn");
}

#[test]
fn a_rewound_conversation_forgets_its_clears() {
    let (est, mem) = (TokenEstimator::default(), ClearMemory::default());
    let b = budget(32_768);
    let mut long = reads(8, 8_000, 4_000);
    let r = edit(&est, &mem, &mut long, &b);
    assert!(r.cleared_blocks >= 3);
    // /rewind to two reads: the remembered ids are not all there; it fits untouched.
    let mut short = reads(2, 8_000, 4_000);
    let r = edit(&est, &mem, &mut short, &b);
    assert_eq!(r.cleared_blocks, 0, "{r:?}");
    assert!(result_text(&short, 2).starts_with("0 line"));
}

#[test]
fn a_single_result_too_big_for_the_room_is_cut_in_the_middle() {
    let (est, mem) = (TokenEstimator::default(), ClearMemory::default());
    let b = budget(32_768);
    let mut req = reads(1, 8_000, 30_000);
    let r = edit(&est, &mem, &mut req, &b);
    assert_eq!(r.cut_blocks, 1, "{r:?}");
    let text = result_text(&req, 2);
    assert!(text.starts_with("0 line of file text"), "head kept");
    assert!(text.trim_end().ends_with("line of file text"), "tail kept");
    assert!(text.contains("cut about"), "with a note");
}

#[test]
fn a_pointer_to_a_cleared_read_gets_the_content_back() {
    let (est, mem) = (TokenEstimator::default(), ClearMemory::default());
    let b = budget(32_768);
    // Turn 1: f0's result is cleared.
    let mut turn1 = reads(6, 8_000, 4_000);
    let original = result_text(&turn1, 2);
    edit(&est, &mem, &mut turn1, &b);
    assert!(result_text(&turn1, 2).starts_with("[ccr-setup cleared"));
    // Turn 2: the model reads f0.txt again; Claude Code answers with a pointer to the
    // result that is no longer there.
    let mut turn2 = reads(6, 8_000, 4_000);
    let n = turn2.messages.len();
    let more: MessagesRequest = serde_json::from_value(json!({"model": "m", "messages": [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_again", "name": "Read", "input": {"file_path": "/w/f0.txt"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_again", "content": "File unchanged since last read. The content from the earlier Read tool_result in this conversation is still current — refer to that instead of re-reading."}]}
    ]})).unwrap();
    turn2.messages.extend(more.messages);
    let r = edit(&est, &mem, &mut turn2, &b);
    assert!(result_text(&turn2, 2).starts_with("[ccr-setup cleared"));
    assert_eq!(r.restored_reads, 1, "{r:?}");
    assert_eq!(
        result_text(&turn2, n + 1),
        original,
        "the pointer now holds the file"
    );
}

#[test]
fn a_result_whose_pointer_is_in_the_last_message_is_not_cleared_for_nothing() {
    let (est, mem) = (TokenEstimator::default(), ClearMemory::default());
    let b = budget(32_768);
    let mut req = reads(6, 8_000, 4_000);
    let more: MessagesRequest = serde_json::from_value(json!({"model": "m", "messages": [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_again", "name": "Read", "input": {"file_path": "/w/f0.txt"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_again", "content": "Wasted call — file unchanged since your last Read. Refer to that earlier tool_result instead."}]}
    ]})).unwrap();
    req.messages.extend(more.messages);
    let r = edit(&est, &mem, &mut req, &b);
    // Clearing f0 would only move its content to the pointer: f0 stays, f1… go.
    assert!(result_text(&req, 2).starts_with("0 line"), "{r:?}");
    assert!(
        result_text(&req, 4).starts_with("[ccr-setup cleared"),
        "{r:?}"
    );
    assert_eq!(r.restored_reads, 0);
}

#[test]
fn long_inputs_of_old_calls_are_cleared_with_their_results() {
    let (est, mem) = (TokenEstimator::default(), ClearMemory::default());
    let b = budget(8_192);
    let mut req: MessagesRequest = serde_json::from_value(json!({"model": "m", "messages": [
        {"role": "user", "content": "write it"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "b1", "name": "Bash", "input": {"command": "cargo build"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "b1", "content": "warning: unused ".repeat(2000)}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "w1", "name": "Write", "input": {"file_path": "/w/big.rs", "content": "fn x() {}\n".repeat(2000)}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "w1", "content": "File created successfully at: /w/big.rs"}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "b2", "name": "Bash", "input": {"command": "ls"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "b2", "content": "a b c"}]}
    ]}))
    .unwrap();
    let r = edit(&est, &mem, &mut req, &b);
    assert_eq!(r.cleared_blocks, 2, "{r:?}");
    let json = serde_json::to_string(&req.messages[3]).unwrap();
    assert!(
        json.contains("cleared by ccr-setup to save context"),
        "{json}"
    );
    assert!(json.contains("/w/big.rs"), "the path stays: {json}");
    let bash = result_text(&req, 2);
    assert!(bash.contains("do not repeat the call"), "{bash}");
}

#[test]
fn nothing_left_to_clear_is_too_long_in_anthropics_words() {
    let (est, mem) = (TokenEstimator::default(), ClearMemory::default());
    let b = budget(8_192);
    let req = reads(1, 9_000, 100);
    let input = count(&est, &req);
    let EditOutcome::TooLong { input: n, limit } = decide(&req, &b, input, &est, &mem, None) else {
        panic!("expected TooLong");
    };
    assert_eq!(limit, 8_192 - 4_096);
    let message = too_long_message(n, limit, "ollama", 8_192);
    // Claude Code's own test for a prompt-too-long error.
    let re =
        regex_automata::meta::Regex::new(r"prompt is too long[^0-9]*(\d+)\s*tokens?\s*>\s*(\d+)")
            .unwrap();
    assert!(re.is_match(&message), "{message}");
}
