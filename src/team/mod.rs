//! Team mode seen from a laptop: the client's own usage read from the team server's
//! `GET /v1/ccr/usage` (the server's address and key are the config's `Join`).
//!
//! The server side (client keys, limits, the usage endpoint) lives in the proxy; this
//! module is the client of it, used by `init --join`, `doctor`, `stats` and the status
//! line of a joined laptop.

pub mod report;
pub mod usage;

pub use usage::{fetch_usage, SessionUsage, Usage, UsageError};
