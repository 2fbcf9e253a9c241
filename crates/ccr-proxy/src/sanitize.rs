//! The one helper for text that came from a client or an upstream (a model name, a
//! session id, a path, an upstream's error) before it reaches a terminal or a log line.
//!
//! Such text can hold ESC/OSC sequences (a title change, a screen clear) or a `\n`
//! that forges a log line, and it can be any length. [`untrusted`] escapes every
//! control character and caps the length, so what is printed is one line of bounded
//! size whatever was sent.

use std::borrow::Cow;
use std::fmt::Write;

/// The default cap for one untrusted field on a line (a model name, an id).
pub const FIELD_MAX: usize = 128;

/// `text` with control characters (C0, DEL, C1, and the Unicode line/paragraph
/// separators and bidi overrides) escaped as `\n`, `\r`, `\t` or `\u{..}`, cut to at
/// most `max` bytes of input (on a char boundary) with `…` marking the cut. Borrowed
/// when nothing needed changing.
pub fn untrusted(text: &str, max: usize) -> Cow<'_, str> {
    // The common case, checked a byte at a time (which vectorises): short printable
    // ASCII, which has nothing to escape and no char boundary to find.
    if text.len() <= max && is_printable_ascii(text.as_bytes()) {
        return Cow::Borrowed(text);
    }
    let cut = cut_at(text, max);
    let clean = &text[..cut];
    if cut == text.len() && !clean.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(clean.len() + 8);
    for c in clean.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    if cut < text.len() {
        out.push('…');
    }
    Cow::Owned(out)
}

/// Every byte is printable ASCII (space to `~`): nothing in it needs escaping.
pub fn is_printable_ascii(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| (b' '..=b'~').contains(b))
}

/// [`untrusted`] with [`FIELD_MAX`].
pub fn field(text: &str) -> Cow<'_, str> {
    untrusted(text, FIELD_MAX)
}

/// The largest char boundary at or below `max`.
fn cut_at(text: &str, max: usize) -> usize {
    if text.len() <= max {
        return text.len();
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    cut
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_terminal_sequences_and_line_breaks() {
        let title = "m\x1b]0;pwned\x07\x1b[2J";
        let out = untrusted(title, 100);
        assert!(!out.chars().any(|c| c.is_control()), "{out:?}");
        assert_eq!(out, "m\\u{1b}]0;pwned\\u{7}\\u{1b}[2J");
        assert_eq!(untrusted("a\nINFO forged\r", 100), "a\\nINFO forged\\r");
        assert_eq!(untrusted("x\u{9b}31m\u{202e}", 100), "x\\u{9b}31m\\u{202e}");
    }

    #[test]
    fn caps_length_on_a_char_boundary() {
        let long = "é".repeat(100);
        let out = untrusted(&long, 11);
        assert_eq!(out, format!("{}…", "é".repeat(5)));
        assert!(matches!(untrusted("gpt-oss:20b", 128), Cow::Borrowed(_)));
        assert_eq!(field(&"a".repeat(1000)).len(), FIELD_MAX + '…'.len_utf8());
    }
}
