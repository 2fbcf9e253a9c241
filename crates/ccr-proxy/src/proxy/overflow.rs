//! A local server's "the prompt does not fit" error, reworded as Anthropic's own
//! `prompt is too long: N tokens > M maximum`. Claude Code compacts on either, but
//! reads the two counts only from Anthropic's wording (`prompt is too long[^0-9]*(\d+)
//! \s*tokens?\s*>\s*(\d+)`), and with them it knows how much to drop.
//!
//! The wordings (see docs/vllm-facts.md and llama-server's `exceed_context_size_error`):
//! * vLLM: `This model's maximum context length is M tokens. However, your request has
//!   N input tokens. Please reduce the length of the input messages.` (older releases:
//!   `However, you requested T tokens (N in the messages, O in the completion)`);
//! * llama-server: `request (N tokens) exceeds the available context size (M tokens),
//!   try increasing it`.
//!
//! vLLM's other 400, `'max_tokens' or 'max_completion_tokens' is too large`, is not an
//! overflow of the prompt (the prompt fits; the answer's room does not) and is left as
//! it is.

/// The prompt's tokens and the server's limit, when `message` says the prompt does not
/// fit.
pub fn prompt_overflow(message: &str) -> Option<(u64, u64)> {
    if let Some(rest) = after(message, "maximum context length is ") {
        if message.contains("'max_tokens' or 'max_completion_tokens' is too large") {
            return None;
        }
        let limit = leading_number(rest)?;
        let input = after(message, "your request has ")
            .or_else(|| after(message, "tokens ("))
            .and_then(leading_number)?;
        return (input >= limit).then_some((input, limit));
    }
    let input = after(message, "request (").and_then(leading_number)?;
    let limit = after(message, "exceeds the available context size (").and_then(leading_number)?;
    Some((input, limit))
}

/// The client's message for an overflow the upstream reported.
pub fn anthropic_message(provider: &str, input: u64, limit: u64, upstream: &str) -> String {
    format!("prompt is too long: {input} tokens > {limit} maximum (provider \"{provider}\" said: {upstream})")
}

fn after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    text.find(marker).map(|i| &text[i + marker.len()..])
}

fn leading_number(text: &str) -> Option<u64> {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vllm_and_llama_server_wordings_give_both_counts() {
        assert_eq!(
            prompt_overflow("This model's maximum context length is 8192 tokens. However, your request has 9001 input tokens. Please reduce the length of the input messages."),
            Some((9001, 8192))
        );
        assert_eq!(
            prompt_overflow("This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (4500 in the messages, 500 in the completion). Please reduce the length of the messages or completion."),
            Some((4500, 4096))
        );
        assert_eq!(
            prompt_overflow("request (9000 tokens) exceeds the available context size (8192 tokens), try increasing it"),
            Some((9000, 8192))
        );
    }

    #[test]
    fn other_errors_are_not_overflows() {
        assert_eq!(prompt_overflow("'max_tokens' or 'max_completion_tokens' is too large: 32000. This model's maximum context length is 8192 tokens and your request has 3000 input tokens (32000 > 8192 - 3000)."), None);
        // The old wording when only the completion makes it too long.
        assert_eq!(prompt_overflow("This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (3000 in the messages, 2000 in the completion)."), None);
        assert_eq!(prompt_overflow("messages: field required"), None);
    }
}
