//! A fallback's answer spliced into a stream that was already committed (see
//! [`super::translated`]): the client has our `message_start`, and maybe some content
//! blocks, so the fallback's own `message_start` is dropped and its block indexes are
//! shifted past ours.

use std::pin::Pin;

use axum::response::Response;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::proxy::error::ProxyError;
use crate::proxy::wire::sse::{self, SseDecoder, SseEvent};

/// A fallback's answer forwarded into a stream that already sent its `message_start`:
/// the fallback's own `message_start` event is dropped, everything else passes as is,
/// except that content block indexes are shifted past the blocks already shown.
pub(super) struct Spliced {
    body: Pin<Box<dyn Stream<Item = Result<Bytes, axum::Error>> + Send>>,
    splicer: Splicer,
}

impl Spliced {
    pub(super) fn new(response: Response, index_offset: u32) -> Spliced {
        Spliced {
            body: Box::pin(response.into_body().into_data_stream()),
            splicer: Splicer::new(index_offset),
        }
    }

    pub(super) async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            let mut out = Vec::new();
            match self.body.next().await {
                Some(Ok(chunk)) => self.splicer.feed(&chunk, &mut out),
                Some(Err(e)) => {
                    ProxyError::bad_gateway(format!("the fallback's answer broke: {e}"))
                        .write_sse(&mut out);
                    return Some(Bytes::from(out));
                }
                None => {
                    self.splicer.finish(&mut out);
                    return (!out.is_empty()).then(|| Bytes::from(out));
                }
            }
            if !out.is_empty() {
                return Some(Bytes::from(out));
            }
        }
    }
}

/// The rewriting, event by event, apart from the body it reads.
struct Splicer {
    /// The answer is our own translator's output, already bounded by the limits on
    /// what the upstream sent; JSON escaping can grow an event, hence the margin.
    sse: SseDecoder,
    start_dropped: bool,
    index_offset: u32,
}

impl Splicer {
    fn new(index_offset: u32) -> Splicer {
        Splicer {
            sse: SseDecoder::new(4 * sse::MAX_LINE_BYTES, 4 * sse::MAX_EVENT_BYTES),
            start_dropped: false,
            index_offset,
        }
    }

    fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<u8>) {
        while let Some(event) = self.sse.next(&mut chunk) {
            match event {
                Ok(event) => forward(&mut self.start_dropped, self.index_offset, event, out),
                Err(e) => ProxyError::oversize_stream(e).write_sse(out),
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if let Ok(Some(event)) = self.sse.finish() {
            forward(&mut self.start_dropped, self.index_offset, event, out);
        }
    }
}

/// Write one event, unless it is the first and a `message_start`, with its content
/// block `index` raised by `offset`.
fn forward(start_dropped: &mut bool, offset: u32, event: SseEvent<'_>, out: &mut Vec<u8>) {
    let has = |needle: &[u8]| memchr::memmem::find(event.data, needle).is_some();
    if !std::mem::replace(start_dropped, true)
        && (event.is("message_start") || has(b"\"message_start\""))
    {
        return;
    }
    let shifted = (offset > 0 && has(b"\"index\""))
        .then(|| {
            let mut v = serde_json::from_slice::<serde_json::Value>(event.data).ok()?;
            let index = v.get("index")?.as_u64()?;
            v["index"] = (index + u64::from(offset)).into();
            Some(v.to_string())
        })
        .flatten();
    let data = shifted.as_ref().map_or(event.data, String::as_bytes);
    sse::write_event(event.event, data, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn splice(offset: u32, input: &[u8]) -> String {
        let mut splicer = Splicer::new(offset);
        let mut out = Vec::new();
        // Cut in two, inside the first event, to pass a boundary too.
        let (a, b) = input.split_at(input.len() / 3);
        splicer.feed(a, &mut out);
        splicer.feed(b, &mut out);
        splicer.finish(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn spliced_events_follow_the_blocks_already_shown() {
        let start = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}\n\n";
        let block = "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"é\"}}\n\n";
        let stop = "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        let text = splice(2, format!("{start}{block}{stop}").as_bytes());
        assert!(
            text.starts_with("event: content_block_start\ndata: {"),
            "{text}"
        );
        assert!(text.contains("\"index\":2") && text.contains("é"), "{text}");
        assert!(text.ends_with(stop), "{text}");
        // No offset: the events after the start, byte for byte.
        let text = splice(0, format!("{start}{block}{stop}").as_bytes());
        assert_eq!(text, format!("{block}{stop}"));
    }
}
