//! Lines of a byte stream cut anywhere: the one line splitter under the SSE decoder
//! ([`super::sse`]) and, on its own, the NDJSON decoder (Ollama's pull stream).
//!
//! Each input byte is looked at once (the partial line is kept, never rescanned), a
//! line is cut only at `\n` or `\r` (so a UTF-8 character split across chunks comes out
//! whole), and a line over the limit is an error instead of unbounded memory.

use std::fmt;

/// The longest NDJSON line read from Ollama. Pull progress lines are under 200 bytes
/// and an `{"error"}` line quotes one message; 1 MB is far beyond both, and bounds what
/// a server that never sends a newline can make us hold.
pub const MAX_NDJSON_LINE_BYTES: usize = 1024 * 1024;

/// A stream piece outgrew its limit: the stream cannot be read further.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("one stream line larger than {}", Size(*limit))]
    LineTooLong { limit: usize },
    #[error("one stream event larger than {}", Size(*limit))]
    EventTooLarge { limit: usize },
}

impl FrameError {
    /// A short kind for logs and the ledger.
    pub fn kind(&self) -> &'static str {
        match self {
            FrameError::LineTooLong { .. } => "line_too_long",
            FrameError::EventTooLarge { .. } => "event_too_large",
        }
    }
}

/// A byte limit as people read it: whole megabytes when it is some, bytes otherwise.
struct Size(usize);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MB: usize = 1024 * 1024;
        if self.0 >= MB && self.0.is_multiple_of(MB) {
            write!(f, "{} MB", self.0 / MB)
        } else {
            write!(f, "{} bytes", self.0)
        }
    }
}

/// One line, without its terminator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'s, 'i> {
    /// Whole inside the input just given: not copied.
    Input(&'i [u8]),
    /// Split across inputs: assembled in the decoder.
    Buffered(&'s [u8]),
}

impl<'s, 'i> Line<'s, 'i> {
    pub fn bytes(&self) -> &[u8] {
        match self {
            Line::Input(b) => b,
            Line::Buffered(b) => b,
        }
    }
}

/// Splits bytes into lines at `\n`, `\r\n` or a lone `\r` (the SSE rule; NDJSON uses
/// the first two).
#[derive(Debug)]
pub struct LineDecoder {
    /// The line not yet terminated (or, when `returned`, the line last handed out).
    partial: Vec<u8>,
    returned: bool,
    /// The last input ended with `\r`: a `\n` opening the next input belongs to it.
    skip_lf: bool,
    max_line: usize,
    failed: bool,
}

impl LineDecoder {
    pub fn new(max_line: usize) -> LineDecoder {
        LineDecoder {
            partial: Vec::new(),
            returned: false,
            skip_lf: false,
            max_line,
            failed: false,
        }
    }

    /// The next complete line of `input`, advancing it past the line; `None` once
    /// `input` is used up (an unterminated rest is kept for the next call). After an
    /// error nothing more comes out.
    pub fn next_line<'s, 'i>(
        &'s mut self,
        input: &mut &'i [u8],
    ) -> Option<Result<Line<'s, 'i>, FrameError>> {
        if self.returned {
            self.partial.clear();
            self.returned = false;
        }
        if self.failed {
            *input = &[];
            return None;
        }
        if self.skip_lf {
            match input.first() {
                None => return None,
                Some(b'\n') => *input = &input[1..],
                Some(_) => {}
            }
            self.skip_lf = false;
        }
        let Some(pos) = memchr::memchr2(b'\n', b'\r', input) else {
            if self.partial.len() + input.len() > self.max_line {
                return Some(Err(self.fail(input)));
            }
            self.partial.extend_from_slice(input);
            *input = &[];
            return None;
        };
        let head = &input[..pos];
        if self.partial.len() + head.len() > self.max_line {
            return Some(Err(self.fail(input)));
        }
        let end = match (input[pos], input.get(pos + 1)) {
            (b'\r', Some(b'\n')) => pos + 2,
            (b'\r', None) => {
                self.skip_lf = true;
                pos + 1
            }
            _ => pos + 1,
        };
        *input = &input[end..];
        if self.partial.is_empty() {
            return Some(Ok(Line::Input(head)));
        }
        self.partial.extend_from_slice(head);
        self.returned = true;
        Some(Ok(Line::Buffered(&self.partial)))
    }

    /// The input ended: its last line if it had no terminator.
    pub fn finish(&mut self) -> Option<&[u8]> {
        if self.returned {
            self.partial.clear();
        }
        self.skip_lf = false;
        if self.failed || self.partial.is_empty() {
            return None;
        }
        self.returned = true;
        Some(&self.partial)
    }

    /// Read nothing more (the stream above gave up on it).
    pub fn stop(&mut self) {
        self.failed = true;
        self.partial = Vec::new();
    }

    fn fail(&mut self, input: &mut &[u8]) -> FrameError {
        self.stop();
        *input = &[];
        FrameError::LineTooLong {
            limit: self.max_line,
        }
    }
}

/// At most `max` bytes of `bytes` as text for a log or an error message, cut at a
/// character boundary (never inside a UTF-8 character) and marked with `…` when cut.
pub fn preview(bytes: &[u8], max: usize) -> std::borrow::Cow<'_, str> {
    if bytes.len() <= max {
        return String::from_utf8_lossy(bytes);
    }
    let mut cut = max;
    // Back off over continuation bytes (10xxxxxx) to the start of the character.
    while cut > 0 && bytes[cut] & 0xC0 == 0x80 {
        cut -= 1;
    }
    let mut text = String::from_utf8_lossy(&bytes[..cut]).into_owned();
    text.push('…');
    std::borrow::Cow::Owned(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_lines(decoder: &mut LineDecoder, chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for chunk in chunks {
            let mut input = *chunk;
            while let Some(line) = decoder.next_line(&mut input) {
                out.push(line.unwrap().bytes().to_vec());
            }
        }
        out.extend(decoder.finish().map(<[u8]>::to_vec));
        out
    }

    #[test]
    fn every_terminator_ends_a_line_even_cut_between_cr_and_lf() {
        let mut d = LineDecoder::new(100);
        let lines = all_lines(&mut d, &[b"a\r", b"\nb\rc\n\r", b"\r\nd"]);
        assert_eq!(lines, [&b"a"[..], b"b", b"c", b"", b"", b"d"]);
    }

    #[test]
    fn a_line_over_the_limit_is_an_error_whole_or_split() {
        let mut d = LineDecoder::new(4);
        let mut input = &b"abcde\n"[..];
        assert_eq!(
            d.next_line(&mut input),
            Some(Err(FrameError::LineTooLong { limit: 4 }))
        );
        assert_eq!(
            d.next_line(&mut &b"ok\n"[..]),
            None,
            "nothing after an error"
        );

        let mut d = LineDecoder::new(4);
        assert_eq!(d.next_line(&mut &b"abc"[..]), None);
        assert!(matches!(d.next_line(&mut &b"de"[..]), Some(Err(_))));
        // Exactly at the limit is fine.
        let mut d = LineDecoder::new(4);
        assert_eq!(all_lines(&mut d, &[b"ab", b"cd\n"]), [b"abcd"]);
    }

    #[test]
    fn limits_are_named_in_megabytes_or_bytes() {
        let e = FrameError::LineTooLong {
            limit: 8 * 1024 * 1024,
        };
        assert_eq!(e.to_string(), "one stream line larger than 8 MB");
        let e = FrameError::EventTooLarge { limit: 100 };
        assert_eq!(e.to_string(), "one stream event larger than 100 bytes");
    }

    #[test]
    fn previews_never_cut_a_character() {
        let text = "ab€cd".as_bytes(); // € is 3 bytes: 2..5
        for max in 0..text.len() {
            let p = preview(text, max);
            assert!(!p.contains('\u{FFFD}'), "{max}: {p}");
            assert!(p.ends_with('…'), "{max}: {p}");
        }
        assert_eq!(preview(text, 3), "ab…");
        assert_eq!(preview(text, 5), "ab€…");
        assert_eq!(preview(text, 7), "ab€cd");
    }
}
