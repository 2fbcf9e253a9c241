//! What a cleared or cut tool result says instead of its content, and how Claude Code's
//! "file unchanged" pointers are recognised.
//!
//! Every text here is a pure function of the block it replaces (tool name, input,
//! token count), so the same history always edits to the same bytes and a local
//! server's prompt cache keeps matching turn after turn.

use serde_json::Value;

/// Tools whose call only reads: the stub may invite calling it again. Anything else
/// (Bash, Edit, Write, Task, MCP tools…) may change things, so its stub never does.
const READ_ONLY_TOOLS: &[&str] = &[
    "Read",
    "Grep",
    "Glob",
    "LS",
    "WebFetch",
    "WebSearch",
    "NotebookRead",
];

/// Inputs of an old call longer than this many bytes are cleared with its result
/// (the `content` of a `Write`, the strings of an `Edit`): what the model needs of an
/// old edit is that it happened, and where.
pub const INPUT_FIELD_CLEAR_BYTES: usize = 1_024;

/// The text that replaces a cleared result of `tool` called with `input`.
pub fn cleared_result(tool: &str, input: &Value, tokens: u64) -> String {
    let what = match (tool, input.get("file_path").and_then(Value::as_str)) {
        ("Read", Some(path)) => format!("the contents of {path}"),
        (_, Some(path)) => format!("the output of {tool} on {path}"),
        _ => format!("the output of this {tool} call"),
    };
    let again = if tool == "Read" {
        "If you need it again, Read the file again.".to_owned()
    } else if READ_ONLY_TOOLS.contains(&tool) {
        format!("If you need it again, make the same {tool} call again.")
    } else {
        "It is no longer available; do not repeat the call only to see it again.".to_owned()
    };
    format!(
        "[ccr-setup cleared this result (about {tokens} tokens) to keep the conversation within the local model's context window. It held {what}. {again}]"
    )
}

/// The text that replaces a long string in an old call's input.
pub fn cleared_input_field(bytes: usize) -> String {
    format!("[cleared by ccr-setup to save context: {bytes} bytes]")
}

/// The note in the middle of a result cut to fit.
pub fn cut_note(tokens_removed: u64) -> String {
    format!(
        "\n\n[… ccr-setup cut about {tokens_removed} tokens from the middle of this result to fit the local model's context window …]\n\n"
    )
}

/// Claude Code answers a second `Read` of an unchanged file with a pointer to the
/// earlier result instead of the content (2.1.197: "File unchanged since last read. The
/// content from the earlier Read tool_result in this conversation is still current —
/// refer to that instead of re-reading."; also "Wasted call — file unchanged since your
/// last Read"). Once that earlier result is cleared, the pointer points at nothing.
pub fn is_unchanged_pointer(text: &str) -> bool {
    let head = &text[..text.len().min(400)];
    let head = head.to_ascii_lowercase();
    head.contains("file unchanged since last read")
        || head.contains("file unchanged since your last read")
}

/// `text` with its middle replaced by [`cut_note`], keeping `keep_bytes` (at char
/// boundaries) split evenly between head and tail.
pub fn cut_middle(text: &str, keep_bytes: usize, tokens_removed: u64) -> String {
    let half = keep_bytes / 2;
    let mut head_end = half.min(text.len());
    while !text.is_char_boundary(head_end) {
        head_end -= 1;
    }
    let mut tail_start = text.len().saturating_sub(half).max(head_end);
    while !text.is_char_boundary(tail_start) {
        tail_start += 1;
    }
    let mut out = String::with_capacity(head_end + (text.len() - tail_start) + 160);
    out.push_str(&text[..head_end]);
    out.push_str(&cut_note(tokens_removed));
    out.push_str(&text[tail_start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stubs_name_the_tool_and_never_invite_rerunning_a_command() {
        let read = cleared_result("Read", &json!({"file_path": "/src/a.rs"}), 5000);
        assert!(read.contains("/src/a.rs") && read.contains("Read the file again"));
        let grep = cleared_result("Grep", &json!({"pattern": "x"}), 10);
        assert!(grep.contains("same Grep call again"), "{grep}");
        let bash = cleared_result("Bash", &json!({"command": "rm -rf build"}), 900);
        assert!(bash.contains("do not repeat the call"), "{bash}");
        assert!(!bash.contains("again,"), "{bash}");
        assert!(
            !bash.contains("rm -rf"),
            "the command is not echoed: {bash}"
        );
        // Same block, same bytes.
        assert_eq!(
            read,
            cleared_result("Read", &json!({"file_path": "/src/a.rs"}), 5000)
        );
    }

    #[test]
    fn pointers_of_both_wordings_are_recognised() {
        assert!(is_unchanged_pointer("File unchanged since last read. The content from the earlier Read tool_result in this conversation is still current — refer to that instead of re-reading."));
        assert!(is_unchanged_pointer(
            "Wasted call — file unchanged since your last Read. Refer to that earlier tool_result instead."
        ));
        assert!(!is_unchanged_pointer("     1\tfn main() {}"));
    }

    #[test]
    fn a_cut_keeps_head_and_tail_on_char_boundaries() {
        let text = "é".repeat(1000);
        let cut = cut_middle(&text, 101, 400);
        assert!(cut.starts_with("éé") && cut.ends_with("éé"));
        assert!(cut.contains("cut about 400 tokens"));
        assert!(cut.len() < 400);
    }
}
