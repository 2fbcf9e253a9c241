//! Filled in by the proxy issues.
