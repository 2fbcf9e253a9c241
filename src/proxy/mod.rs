//! The bundled proxy: Anthropic Messages API in front, OpenAI-compatible or
//! Anthropic-native upstreams behind.
//!
//! * `anthropic`, `openai`: wire types of the two APIs.
//! * `error`: Anthropic-shaped error bodies and SSE error events.
//! * `translate`: pure functions from bytes/events to events (request, response,
//!   stream state machine, reversible tool-name mapping); tested without a network.
//! * `upstream`: the HTTP client side (timeouts, cancellation).
//! * `server`: the axum app (endpoints, request log line, pings).
//! * `route`: which provider/model serves a request, and why.
//! * `tokens`: input-token estimation with a per-message cache.
//! * `auth`: the `APIKEY` check.
//! * `fallback`: which failures move a request to the next model.
//! * `reload`: picking up config edits without a restart.

pub mod anthropic;
pub mod auth;
pub mod error;
pub mod fallback;
pub mod openai;
pub mod reload;
pub mod route;
pub mod server;
pub mod tokens;
pub mod translate;
pub mod upstream;
