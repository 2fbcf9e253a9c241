//! What crosses the network, with no policy: the Anthropic and OpenAI wire types, and
//! the one incremental decoder for their streams (SSE) and for Ollama's NDJSON.
//!
//! Everything here is pure (bytes in, types or events out) and imports nothing else
//! of the proxy, so the translator and every stream reader can depend on it.

pub mod anthropic;
pub mod lines;
pub mod openai;
pub mod sse;
