//! Translation between the Anthropic Messages API and OpenAI chat completions, and
//! the history clean-up an Anthropic-kind target needs (`unsigned_thinking`).
//! Pure functions: no I/O, no clocks.

pub mod request;
pub mod response;
pub mod schema_notes;
pub mod stream;
pub mod tool_names;
pub mod unsigned_thinking;
