//! The bundled proxy: Anthropic Messages API in front, OpenAI-compatible or
//! Anthropic-native upstreams behind. Filled in by the proxy issues.
