//! A fallback's answer spliced into a stream that was already committed (see
//! [`super::translated`]): the client has our `message_start`, and maybe some content
//! blocks, so the fallback's own `message_start` is dropped and its block indexes are
//! shifted past ours.

use std::pin::Pin;

use axum::response::Response;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::proxy::error::ProxyError;

/// A fallback's answer forwarded into a stream that already sent its `message_start`:
/// the fallback's own `message_start` event is dropped, everything else passes as is,
/// except that content block indexes are shifted past the blocks already shown.
pub(super) struct Spliced {
    body: Pin<Box<dyn Stream<Item = Result<Bytes, axum::Error>> + Send>>,
    /// Bytes of an event not yet complete, while events are being rewritten (until
    /// `message_start` is found, or all along when indexes are shifted).
    pending: Vec<u8>,
    start_dropped: bool,
    index_offset: u32,
}

impl Spliced {
    pub(super) fn new(response: Response, index_offset: u32) -> Spliced {
        Spliced {
            body: Box::pin(response.into_body().into_data_stream()),
            pending: Vec::new(),
            start_dropped: false,
            index_offset,
        }
    }

    pub(super) async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            let chunk = match self.body.next().await {
                Some(Ok(chunk)) => chunk,
                Some(Err(e)) => {
                    let mut out = Vec::new();
                    ProxyError::bad_gateway(format!("the fallback's answer broke: {e}"))
                        .write_sse(&mut out);
                    self.pending.clear();
                    self.start_dropped = true;
                    return Some(Bytes::from(out));
                }
                None => {
                    let rest = std::mem::take(&mut self.pending);
                    return (!rest.is_empty()).then(|| Bytes::from(rest));
                }
            };
            if self.start_dropped && self.index_offset == 0 {
                return Some(chunk);
            }
            self.pending.extend_from_slice(&chunk);
            let mut out = Vec::new();
            while let Some(end) = memchr::memmem::find(&self.pending, b"\n\n") {
                let event: Vec<u8> = self.pending.drain(..end + 2).collect();
                if !self.start_dropped {
                    self.start_dropped = true;
                    if memchr::memmem::find(&event, b"message_start").is_some() {
                        continue;
                    }
                }
                shift_index(&event, self.index_offset, &mut out);
                if self.index_offset == 0 {
                    out.append(&mut self.pending);
                    break;
                }
            }
            if !out.is_empty() {
                return Some(Bytes::from(out));
            }
        }
    }
}

/// Write one SSE event with its content block `index` raised by `offset`.
fn shift_index(event: &[u8], offset: u32, out: &mut Vec<u8>) {
    let has_index = offset > 0 && memchr::memmem::find(event, b"\"index\"").is_some();
    if !has_index {
        out.extend_from_slice(event);
        return;
    }
    let text = String::from_utf8_lossy(event);
    for line in text.split_inclusive('\n') {
        let shifted = line
            .strip_prefix("data:")
            .and_then(|data| serde_json::from_str::<serde_json::Value>(data.trim()).ok())
            .and_then(|mut v| {
                let index = v.get("index")?.as_u64()?;
                v["index"] = (index + u64::from(offset)).into();
                Some(format!("data: {v}\n"))
            });
        out.extend_from_slice(shifted.as_deref().unwrap_or(line).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spliced_events_follow_the_blocks_already_shown() {
        let mut out = Vec::new();
        shift_index(
            b"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
            2,
            &mut out,
        );
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("event: content_block_start\ndata: {"),
            "{text}"
        );
        assert!(
            text.contains("\"index\":2") && text.ends_with("\n\n"),
            "{text}"
        );
        let mut out = Vec::new();
        shift_index(
            b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
            2,
            &mut out,
        );
        assert_eq!(
            out,
            b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
        );
    }
}
