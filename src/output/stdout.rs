//! Every byte a command prints on stdout goes through [`out`], which never panics.
//!
//! `println!` panics when stdout cannot be written (a full disk, `> /dev/full`, a pipe
//! whose reader is gone). Here the first failure is kept, later output is dropped, and
//! `main` ends the run with it ([`failure`]) in the usual error / caused by / hint form.
//! A reader that went away (`ccr-setup stats | head -1`) is not an error: the rest
//! of the output had nowhere to go, as with any Unix tool.

use std::io::{ErrorKind, Write as _};
use std::sync::Mutex;

use crate::diagnostic::Diagnostic;

/// The first write to stdout that failed, if any.
static FAILED: Mutex<Option<std::io::Error>> = Mutex::new(None);

/// Write `text` to stdout and flush; after a failure, nothing more is written.
pub fn out(text: &str) {
    let mut failed = FAILED.lock().unwrap_or_else(|e| e.into_inner());
    if failed.is_some() {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        *failed = Some(e);
    }
}

/// `text` and a newline on stdout (see [`out`]).
pub fn out_line(text: &str) {
    out(&format!("{text}\n"));
}

/// Why stdout could not be written, as the error that ends the run; None when it all
/// went out, or when the reader had gone away.
pub fn failure() -> Option<anyhow::Error> {
    let e = FAILED.lock().unwrap_or_else(|e| e.into_inner()).take()?;
    if e.kind() == ErrorKind::BrokenPipe {
        return None;
    }
    Some(anyhow::Error::new(e).context(
        Diagnostic::new("cannot write to standard output").with_hint(
            "the output was cut short; send it where it can be written (a file on a disk with room, a terminal)",
        ),
    ))
}
