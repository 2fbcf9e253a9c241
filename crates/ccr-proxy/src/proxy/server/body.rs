//! Reading a request body with bounded time and memory.
//!
//! A JSON tree costs far more than its text: a 30 MB body of tiny array items becomes
//! gigabytes as `serde_json::Value`s. So while the body arrives, [`JsonShape`] counts its
//! values and nesting (skipping string contents with `memchr`), and a body over either
//! limit is refused before it is parsed, usually long before it has all arrived. Real
//! Claude Code requests are far below both: a 94 KB turn of a recorded session holds 869
//! values.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use crate::proxy::error::{ErrorKind, ProxyError};
use crate::proxy::wire::anthropic::MAX_BODY_BYTES;

/// Values (objects, arrays, members, items) one request may hold: 250× a long session.
pub const MAX_JSON_VALUES: u64 = 250_000;
/// Nesting depth one request may reach (serde_json's own recursion limit).
pub const MAX_JSON_DEPTH: u32 = 128;
/// The longest a client may take to send its body.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(120);
/// The most reserved up front from a declared `Content-Length`.
const MAX_PREALLOCATION: usize = 1024 * 1024;

/// Where a scan over JSON text is, across chunk boundaries.
#[derive(Debug, Default, Clone)]
pub struct JsonShape {
    in_string: bool,
    escaped: bool,
    depth: u32,
    values: u64,
}

/// Why a body's shape is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error("the request body nests deeper than {MAX_JSON_DEPTH} levels")]
    TooDeep,
    #[error("the request body holds more than {MAX_JSON_VALUES} JSON values")]
    TooManyValues,
}

impl JsonShape {
    /// Scan the next piece of the body. Not a validator: the parse that follows is.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), ShapeError> {
        let mut i = 0;
        while i < bytes.len() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                    i += 1;
                    continue;
                }
                match memchr::memchr2(b'"', b'\\', &bytes[i..]) {
                    None => break,
                    Some(offset) => {
                        let b = bytes[i + offset];
                        i += offset + 1;
                        if b == b'\\' {
                            self.escaped = true;
                        } else {
                            self.in_string = false;
                        }
                    }
                }
                continue;
            }
            match bytes[i] {
                b'"' => self.in_string = true,
                b'{' | b'[' => {
                    self.depth += 1;
                    self.values += 1;
                    if self.depth > MAX_JSON_DEPTH {
                        return Err(ShapeError::TooDeep);
                    }
                }
                b'}' | b']' => self.depth = self.depth.saturating_sub(1),
                b',' | b':' => self.values += 1,
                _ => {}
            }
            i += 1;
        }
        if self.values > MAX_JSON_VALUES {
            return Err(ShapeError::TooManyValues);
        }
        Ok(())
    }
}

/// Read the whole body under [`MAX_BODY_BYTES`], [`JsonShape`]'s limits and
/// [`BODY_READ_TIMEOUT`].
pub(super) async fn read_json_body(headers: &HeaderMap, body: Body) -> Result<Bytes, ProxyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    match tokio::time::timeout(BODY_READ_TIMEOUT, read(declared, body)).await {
        Ok(result) => result,
        Err(_) => Err(ProxyError::new(
            StatusCode::REQUEST_TIMEOUT,
            ErrorKind::InvalidRequest,
            format!(
                "the request body did not arrive within {} s",
                BODY_READ_TIMEOUT.as_secs()
            ),
        )),
    }
}

async fn read(declared: Option<usize>, body: Body) -> Result<Bytes, ProxyError> {
    let mut stream = body.into_data_stream();
    let first = match stream.next().await {
        None => return Ok(Bytes::new()),
        Some(chunk) => chunk.map_err(unreadable)?,
    };
    let mut shape = JsonShape::default();
    shape.feed(&first).map_err(refused)?;
    if first.len() > MAX_BODY_BYTES {
        return Err(ProxyError::request_too_large());
    }
    // Copied even when the body is one piece: a chunk is a slice of the connection's
    // read buffer, and holding it for the request's life (a stream can run for
    // minutes) would keep that whole buffer alive and make the connection allocate a
    // new one for every request.
    let capacity = declared
        .unwrap_or(0)
        .min(MAX_PREALLOCATION)
        .max(first.len());
    let mut buf = BytesMut::with_capacity(capacity);
    buf.extend_from_slice(&first);
    drop(first);
    let mut next = stream.next().await;
    while let Some(chunk) = next {
        let chunk = chunk.map_err(unreadable)?;
        if buf.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ProxyError::request_too_large());
        }
        shape.feed(&chunk).map_err(refused)?;
        buf.extend_from_slice(&chunk);
        next = stream.next().await;
    }
    Ok(buf.freeze())
}

fn unreadable(e: axum::Error) -> ProxyError {
    ProxyError::invalid_request(format!("could not read the request body: {e}"))
}

fn refused(e: ShapeError) -> ProxyError {
    ProxyError::invalid_request(format!(
        "{e}; a Claude Code request holds a few thousand at most"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape_of(pieces: &[&[u8]]) -> Result<JsonShape, ShapeError> {
        let mut s = JsonShape::default();
        for p in pieces {
            s.feed(p)?;
        }
        Ok(s)
    }

    #[test]
    fn counts_values_outside_strings_across_chunks() {
        let s = shape_of(&[br#"{"a":[1,2,"x,y:[{"#, br#"\"]"],"b":{}}"#]).unwrap();
        // Counted: `{` `:` `[` `,` `,` then `,` `:` `{` after the string; nothing inside it.
        assert_eq!((s.depth, s.values), (0, 8));
        // An escaped quote split across chunks does not end the string.
        let s = shape_of(&[br#"["a\"#, br#"",[["#]).unwrap();
        assert_eq!((s.depth, s.in_string), (1, true));
    }

    #[test]
    fn refuses_deep_nesting_and_many_values() {
        let deep = "[".repeat(129);
        assert_eq!(
            shape_of(&[deep.as_bytes()]).unwrap_err(),
            ShapeError::TooDeep
        );
        assert!(shape_of(&["[".repeat(128).as_bytes()]).is_ok());
        let many = format!("[{}0]", "0,".repeat(MAX_JSON_VALUES as usize));
        assert_eq!(
            shape_of(&[many.as_bytes()]).unwrap_err(),
            ShapeError::TooManyValues
        );
        // Inside a string, brackets and commas are text.
        let text = format!("[\"{}\"]", "[,".repeat(MAX_JSON_VALUES as usize));
        assert!(shape_of(&[text.as_bytes()]).is_ok());
    }

    #[tokio::test]
    async fn a_one_piece_body_is_copied_out_of_the_connections_buffer() {
        let chunk = Bytes::from(br#"{"model":"m"}"#.to_vec());
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, chunk.len().into());
        let read = read_json_body(&headers, Body::from(chunk.clone()))
            .await
            .unwrap();
        assert_eq!(read, chunk);
        // Holding a slice of the chunk would pin the whole read buffer it came from.
        assert_ne!(read.as_ptr(), chunk.as_ptr());
    }
}
