//! `content_block_delta` events written straight into the output, without a serde
//! pass: they are nearly every event of a streamed answer (one per token), and going
//! through serde's tagged-enum machinery cost 8% of the proxy's CPU on a stream. The
//! bytes equal `serde_json`'s for the same event (the proptest below holds them to it),
//! so what the client receives does not change.

use super::Delta;

/// Append `event: content_block_delta` with `delta` at block `index` to `out`.
pub(super) fn write(index: u32, delta: &Delta<'_>, out: &mut Vec<u8>) {
    let (head, text): (&[u8], &str) = match delta {
        Delta::TextDelta { text } => (br#""text_delta","text":""#, text),
        Delta::ThinkingDelta { thinking } => (br#""thinking_delta","thinking":""#, thinking),
        Delta::SignatureDelta { signature } => (br#""signature_delta","signature":""#, signature),
        Delta::InputJsonDelta { partial_json } => {
            (br#""input_json_delta","partial_json":""#, partial_json)
        }
    };
    out.reserve(text.len() + 100);
    out.extend_from_slice(
        b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":",
    );
    write_u32(index, out);
    out.extend_from_slice(br#","delta":{"type":"#);
    out.extend_from_slice(head);
    escape_json_text(text, out);
    out.extend_from_slice(b"\"}}\n\n");
}

/// `n` in decimal.
fn write_u32(mut n: u32, out: &mut Vec<u8>) {
    let mut digits = [0u8; 10];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// The body of a JSON string, escaped as `serde_json` escapes it: `"` and `\`, the
/// short forms `\b \t \n \f \r`, `\u00xx` (lower-case hex) for the other control
/// characters, everything else (DEL and non-ASCII included) as it is.
fn escape_json_text(text: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b >= 0x20 && b != b'"' && b != b'\\' {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        start = i + 1;
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            _ => {
                let hex = [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]];
                out.extend_from_slice(b"\\u00");
                out.extend_from_slice(&hex);
                continue;
            }
        };
        out.extend_from_slice(short);
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use super::super::StreamEvent;
    use super::*;
    use proptest::prelude::*;

    /// The event as serde writes it: the reference the fast path must equal.
    fn by_serde(index: u32, delta: Delta<'_>) -> Vec<u8> {
        let event = StreamEvent::ContentBlockDelta { index, delta };
        let mut out = b"event: content_block_delta\ndata: ".to_vec();
        serde_json::to_writer(&mut out, &event).unwrap();
        out.extend_from_slice(b"\n\n");
        out
    }

    fn fast(index: u32, delta: Delta<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        StreamEvent::ContentBlockDelta { index, delta }.write_sse(&mut out);
        out
    }

    /// Characters that need care (every control character, quote, backslash, DEL,
    /// two-, three- and four-byte UTF-8, U+2028) mixed with any character at all.
    fn tricky_text() -> impl Strategy<Value = String> {
        let tricky = prop_oneof![
            (0u8..0x20).prop_map(char::from),
            Just('"'),
            Just('\\'),
            Just('/'),
            Just('\u{7f}'),
            Just('é'),
            Just('\u{2028}'),
            Just('€'),
            Just('🦀'),
            any::<char>(),
        ];
        proptest::collection::vec(tricky, 0..48).prop_map(|c| c.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn every_delta_is_byte_identical_to_serdes(text in tricky_text(), index in any::<u32>()) {
            let t = text.as_str();
            for delta in [
                Delta::TextDelta { text: t },
                Delta::ThinkingDelta { thinking: t },
                Delta::SignatureDelta { signature: t },
                Delta::InputJsonDelta { partial_json: t },
            ] {
                prop_assert_eq!(
                    String::from_utf8(fast(index, delta.clone())).unwrap(),
                    String::from_utf8(by_serde(index, delta)).unwrap()
                );
            }
        }
    }

    #[test]
    fn every_control_character_and_the_index_edges_match_serde() {
        let all: String = (0u8..0x80).map(char::from).collect();
        for index in [0, 9, 10, 99, 100, u32::MAX] {
            let delta = Delta::TextDelta { text: &all };
            assert_eq!(fast(index, delta.clone()), by_serde(index, delta));
        }
    }
}
