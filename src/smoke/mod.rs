//! The smoke test `up` runs: prove the model answers, calls a tool and holds the
//! configured context, first directly against Ollama, then through the bundled proxy.
//!
//! * [`probes`]: the requests and what they measure (no printing).
//! * [`local_proxy`]: the proxy started in this process on a free loopback port.

pub mod local_proxy;
pub mod probes;

pub use local_proxy::LocalProxy;
pub use probes::{ChatMetrics, SmokeError};
