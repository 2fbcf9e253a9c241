//! Every line a command prints on stderr goes through [`err_line`], which never panics.
//!
//! `eprintln!` panics when stderr cannot be written (`2>/dev/full`, a closed pipe). A
//! line that stderr refuses has nowhere else to go, so it is dropped and the command
//! carries on; its exit code still tells the caller how it ended.

use std::io::Write as _;

/// `text` and a newline on stderr, in one write; a failure to write is ignored.
pub fn err_line(text: &str) {
    let mut line = String::with_capacity(text.len() + 1);
    line.push_str(text);
    line.push('\n');
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}
