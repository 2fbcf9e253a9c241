//! Translation between the Anthropic Messages API and OpenAI chat completions.
//! Pure functions: no I/O, no clocks.

pub mod request;
pub mod response;
pub mod stream;
pub mod tool_names;
