//! The bundled proxy: Anthropic Messages API in front, OpenAI-compatible or
//! Anthropic-native upstreams behind.
//!
//! Dependencies point one way, down this list:
//!
//! * `server`: the axum app (router and layers, handlers, attempts, stream adapters,
//!   the log line and ledger row).
//! * `plan`: everything decided before the first attempt, and the request rewritten
//!   per target; built from:
//!   * `route`: which rule fires, and so which provider/model serves a request;
//!   * `guard`: the context guard (does the prompt fit the target's window?);
//!   * `context_edit`: clearing old tool results so a long conversation fits a local
//!     window, remembered per conversation so the prompt prefix stays stable;
//!   * `fallback`: the chain of targets and the loop that tries them (`run_chain`).
//! * `upstream`: the HTTP client side (timeouts, cancellation, failures classified).
//! * `translate`: pure functions from bytes/events to events (request, response,
//!   stream state machine, reversible tool-name mapping, unsigned-thinking clean-up);
//!   tested without a network.
//! * `repair`: a local model's tool calls made to fit the offered tools (names,
//!   argument syntax and shape, schema coercions, calls printed as text), or refused
//!   with the reason the corrective retry tells the model.
//! * `tokens`: input-token estimation with a per-message cache.
//! * `capabilities`: what each local model can take (vision, thinking, tools,
//!   context), asked of the server or learnt from its errors, per URL and model.
//! * `auth`: the `APIKEY` check and the bind rule.
//! * `health`: the `/health` answer, shared by the server, `status`, `code` and
//!   `doctor`.
//! * `reload`: picking up config edits without a restart.
//! * `sessions`: per Claude Code session, the last request's route (for the status
//!   line) and the local model's recent quality (for the quality fallback).
//! * `error`: Anthropic-shaped error bodies and SSE error events.
//! * `allocator`: the C allocator's setting for the proxy's large per-request buffers.
//! * `wire`: what crosses the network, with no policy: the Anthropic and OpenAI wire
//!   types and the one SSE decoder every stream reader uses (also used by the Ollama
//!   client and `up`'s smoke test).

pub mod allocator;
pub mod auth;
pub mod auth_throttle;
pub mod capabilities;
pub mod clients;
pub mod context_edit;
pub mod error;
pub mod fallback;
pub mod guard;
pub mod health;
pub mod overflow;
pub mod plan;
pub mod proof;
pub mod reload;
pub mod repair;
pub mod replicas;
pub mod route;
pub mod server;
pub mod sessions;
/// The unit tests' shared config and requests; the CLI's unit tests reach it through
/// the `test-support` feature its dev-dependency turns on.
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
pub mod tokens;
pub mod translate;
pub mod upstream;
pub mod wire;
