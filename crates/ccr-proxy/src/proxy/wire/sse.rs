//! The one server-sent-events decoder: every SSE stream the program reads (OpenAI-style
//! upstreams in the translator, Anthropic upstreams passed through, a fallback's
//! answer spliced in, the Ollama client, `up`'s smoke test) goes through it.
//!
//! Fed byte chunks cut anywhere, it yields events (`event:` name and `data:`) as the
//! HTML standard's event-stream rules define them: lines end at LF, CRLF or a lone CR;
//! `:` lines are comments (pings); `data:` lines of one event are joined with `\n`; a
//! blank line dispatches; `id:`, `retry:` and unknown fields are ignored; a leading
//! BOM is dropped. Lines and events have size limits, and each byte is looked at once.
//! An event whose data sits whole in one chunk is handed out without a copy.

use super::lines::{FrameError, Line, LineDecoder};

/// The longest SSE line read. One `data:` line carries one JSON chunk, and Ollama
/// sends a tool call whole in one: a `Write` of a large file is megabytes. 8 MB keeps
/// such answers and bounds a server that trickles bytes without a newline.
pub const MAX_LINE_BYTES: usize = 8 * 1024 * 1024;
/// The largest data of one event (its `data:` lines joined). Servers send one line per
/// event, so the same bound as a line; it is also the bound on what the translator
/// holds back of one answer piece (a tool call's arguments, thinking held for a rescue).
pub const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;

/// One dispatched event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The `event:` field's value, empty when the event had none.
    pub event: &'a [u8],
    /// The `data:` lines, joined with `\n`.
    pub data: &'a [u8],
}

impl SseEvent<'_> {
    /// The OpenAI end marker, `data: [DONE]`.
    pub fn is_done(&self) -> bool {
        self.data.trim_ascii() == b"[DONE]"
    }

    /// Whether the `event:` field names `name` (spaces around it ignored).
    pub fn is(&self, name: &str) -> bool {
        self.event.trim_ascii() == name.as_bytes()
    }
}

/// Write one event as `event:` and `data:` lines (one per line of `data`) and the blank
/// line that dispatches it: the inverse of [`SseDecoder`] for what it yields.
pub fn write_event(event: &[u8], data: &[u8], out: &mut Vec<u8>) {
    if !event.is_empty() {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(event);
        out.push(b'\n');
    }
    for line in data.split(|&b| b == b'\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.push(b'\n');
}

/// One field line of an event.
enum Field<'l> {
    Blank,
    Data(&'l [u8]),
    Event(&'l [u8]),
    /// Comments, `id:`, `retry:`, unknown fields.
    Ignored,
}

fn field(line: &[u8]) -> Field<'_> {
    if line.is_empty() {
        return Field::Blank;
    }
    let (name, value) = match memchr::memchr(b':', line) {
        Some(0) => return Field::Ignored,
        Some(colon) => {
            let value = &line[colon + 1..];
            (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
        }
        None => (line, &b""[..]),
    };
    match name {
        b"data" => Field::Data(value),
        b"event" => Field::Event(value),
        _ => Field::Ignored,
    }
}

/// An incremental SSE decoder; see the module doc.
#[derive(Debug)]
pub struct SseDecoder {
    lines: LineDecoder,
    /// The data of the event being assembled (when not borrowed from the input).
    data: Vec<u8>,
    /// A `data:` field was seen (an event with only `data:` has empty data, and is one).
    has_data: bool,
    event: Vec<u8>,
    max_event: usize,
    /// `data` and `event` belong to the event last handed out: cleared at the next call.
    dispatched: bool,
    first_line: bool,
}

impl Default for SseDecoder {
    fn default() -> Self {
        SseDecoder::new(MAX_LINE_BYTES, MAX_EVENT_BYTES)
    }
}

impl SseDecoder {
    pub fn new(max_line: usize, max_event: usize) -> SseDecoder {
        SseDecoder {
            lines: LineDecoder::new(max_line),
            data: Vec::new(),
            has_data: false,
            event: Vec::new(),
            max_event,
            dispatched: false,
            first_line: true,
        }
    }

    /// The next event completed by `input`, advancing it; `None` once `input` is used up
    /// (what it began is kept for the next call). After an error nothing more comes out.
    pub fn next<'r, 's: 'r, 'i: 'r>(
        &'s mut self,
        input: &mut &'i [u8],
    ) -> Option<Result<SseEvent<'r>, FrameError>> {
        if self.dispatched {
            self.reset();
        }
        // The data of this event while it is one line inside `input` (no copy yet).
        let mut direct: Option<&'i [u8]> = None;
        loop {
            let line = match self.lines.next_line(input) {
                None => {
                    if let Some(d) = direct {
                        self.data.extend_from_slice(d);
                    }
                    return None;
                }
                Some(Err(e)) => return Some(Err(e)),
                Some(Ok(line)) => line,
            };
            let whole: Option<&'i [u8]> = match line {
                Line::Input(b) => Some(b),
                Line::Buffered(_) => None,
            };
            let mut bytes = line.bytes();
            if std::mem::take(&mut self.first_line) {
                bytes = bytes.strip_prefix("\u{FEFF}".as_bytes()).unwrap_or(bytes);
            }
            match field(bytes) {
                Field::Blank if self.has_data => {
                    self.dispatched = true;
                    let data = match direct {
                        Some(d) => d,
                        None => &self.data,
                    };
                    return Some(Ok(SseEvent {
                        event: &self.event,
                        data,
                    }));
                }
                Field::Blank => self.event.clear(),
                Field::Event(name) => {
                    self.event.clear();
                    self.event.extend_from_slice(name);
                }
                Field::Data(value) => {
                    let held = direct.map_or(self.data.len(), <[u8]>::len);
                    if held + usize::from(self.has_data) + value.len() > self.max_event {
                        return Some(Err(self.too_large()));
                    }
                    match whole {
                        // The first data line, inside the input: borrowed, not copied
                        // (`value` is the end of the line).
                        Some(whole) if !self.has_data => {
                            direct = Some(&whole[whole.len() - value.len()..]);
                        }
                        _ => {
                            if let Some(d) = direct.take() {
                                self.data.extend_from_slice(d);
                            }
                            if self.has_data {
                                self.data.push(b'\n');
                            }
                            self.data.extend_from_slice(value);
                        }
                    }
                    self.has_data = true;
                }
                Field::Ignored => {}
            }
        }
    }

    /// The stream ended: the event it left without its closing blank line, if that
    /// event has data (the standard drops it; a caller may accept it, as the
    /// translator does for a last `data: [DONE]` with no blank line after it).
    pub fn finish(&mut self) -> Result<Option<SseEvent<'_>>, FrameError> {
        if self.dispatched {
            self.reset();
        }
        match self.lines.finish().map(field) {
            Some(Field::Data(value)) => {
                if self.data.len() + usize::from(self.has_data) + value.len() > self.max_event {
                    return Err(self.too_large());
                }
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            Some(Field::Event(name)) => {
                self.event.clear();
                self.event.extend_from_slice(name);
            }
            _ => {}
        }
        if !self.has_data {
            return Ok(None);
        }
        self.dispatched = true;
        Ok(Some(SseEvent {
            event: &self.event,
            data: &self.data,
        }))
    }

    fn reset(&mut self) {
        self.data.clear();
        self.event.clear();
        self.has_data = false;
        self.dispatched = false;
    }

    fn too_large(&mut self) -> FrameError {
        self.lines.stop();
        self.data = Vec::new();
        FrameError::EventTooLarge {
            limit: self.max_event,
        }
    }
}

#[cfg(test)]
mod tests;
