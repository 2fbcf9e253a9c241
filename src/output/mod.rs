//! How commands talk to the user, in one place: the one [`Printer`] of a run, made in
//! `main` from the global flags and the terminal (`--json`, `-q`, colour, whether stderr
//! is a terminal) and passed down to every command, and [`render_error`], the one way a
//! failure is shown:
//!
//! ```text
//! error: cannot start Ollama
//!   caused by: Permission denied (os error 13)
//! hint: check the permissions of ~/.claude-code-router
//! ```
//!
//! Where things go: what the command was asked for (step lines, tables, JSON) on
//! stdout; progress, notes, warnings and errors on stderr, so `cmd > file` and `--json`
//! keep stdout clean. Only `commands/` and `main` use this module; domain modules
//! return [`crate::diagnostic::Diagnostic`]s and typed errors instead of printing.

mod error;
mod stderr;
mod stdout;

pub use error::render_error;
pub use stdout::failure as stdout_failure;
use stdout::{out, out_line};

use std::io::IsTerminal;
use std::time::Duration;

use console::Style;
use indicatif::{ProgressBar, ProgressDrawTarget};
use serde_json::{json, Value};

use crate::diagnostic::Diagnostic;
use crate::humanize;

/// Prints for one command run: step lines, plain lines, notes, hints, JSON, progress.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    /// One JSON object per line on stdout instead of text.
    pub json: bool,
    /// `-q`: only failures (and what a command is asked for, such as `env`'s exports).
    pub quiet: bool,
    /// ANSI colour on the marks and labels.
    pub color: bool,
    /// Stderr is a terminal, so a progress bar drawn there is seen, not logged.
    pub stderr_tty: bool,
}

/// The colours of the marks, so `doctor` and the step lines agree.
pub struct Palette {
    pub ok: Style,
    pub warn: Style,
    pub fail: Style,
    pub dim: Style,
    pub hint: Style,
}

impl Palette {
    /// `hint: …`, continuation lines aligned under the text.
    pub fn hint_text(&self, hint: &str, indent: &str) -> String {
        let pad = format!("{indent}      ");
        let mut lines = hint.lines();
        let first = lines.next().unwrap_or_default();
        let mut out = format!("{indent}{} {first}", self.hint.apply_to("hint:"));
        for l in lines {
            out.push('\n');
            out.push_str(&pad);
            out.push_str(l);
        }
        out
    }

    pub fn new(color: bool) -> Palette {
        let s = |st: Style| st.force_styling(color);
        Palette {
            ok: s(Style::new().green()),
            warn: s(Style::new().yellow()),
            fail: s(Style::new().red().bold()),
            dim: s(Style::new().dim()),
            hint: s(Style::new().cyan().bold()),
        }
    }
}

impl Printer {
    /// The printer for this run: `json` is the command's `--json` (false where it has
    /// none), `quiet` the global `-q`, `color` whether colour is wanted
    /// (`--no-color`, `NO_COLOR`, a terminal); the terminal is looked at here.
    pub fn new(json: bool, quiet: bool, color: bool) -> Printer {
        Printer {
            json,
            quiet,
            color,
            stderr_tty: std::io::stderr().is_terminal(),
        }
    }

    pub fn palette(&self) -> Palette {
        Palette::new(self.color)
    }

    /// `✓ step detail (1.23s)`, or a JSON object with `ok: true` and `extra`'s fields.
    pub fn step_ok(&self, step: &str, detail: &str, took: Duration, extra: Value) {
        if self.json {
            self.step_json(step, true, detail, took, extra);
        } else if !self.quiet {
            let p = self.palette();
            out_line(&format!(
                "{} {step:<10} {detail} ({})",
                p.ok.apply_to("✓"),
                humanize::duration(took)
            ));
        }
    }

    /// `– step detail`: deliberately not done; never shown as success.
    pub fn step_skip(&self, step: &str, detail: &str) {
        if self.json {
            out_line(&format!(
                "{}",
                json!({"step": step, "ok": Value::Null, "skipped": true, "detail": detail})
            ));
        } else if !self.quiet {
            out_line(&format!("– {step:<10} {detail}"));
        }
    }

    /// `✗ step message (1.23s)` then `  hint: …`, even with `-q`.
    pub fn step_fail(&self, step: &str, failure: &Diagnostic, took: Duration) {
        if self.json {
            let fix = failure.hint_or_empty();
            self.step_json(step, false, &failure.message, took, json!({"fix": fix}));
            return;
        }
        let p = self.palette();
        out_line(&format!(
            "{} {step:<10} {} ({})",
            p.fail.apply_to("✗"),
            failure.message,
            humanize::duration(took)
        ));
        if let Some(hint) = &failure.hint {
            out_line(&self.hint_text(hint, "  "));
        }
    }

    fn step_json(&self, step: &str, ok: bool, detail: &str, took: Duration, extra: Value) {
        let seconds = (took.as_secs_f64() * 1000.0).round() / 1000.0;
        let mut v = json!({"step": step, "ok": ok, "detail": detail, "seconds": seconds});
        if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), extra) {
            obj.extend(more);
        }
        out_line(&v.to_string());
    }

    /// A text line on stdout (not in JSON mode; shown with `-q`).
    pub fn line(&self, text: &str) {
        if !self.json {
            out_line(text);
        }
    }

    /// A text line on stdout that `-q` and `--json` leave out.
    pub fn say(&self, text: &str) {
        if !self.json && !self.quiet {
            out_line(text);
        }
    }

    /// `note: …` on stderr (left out by `-q`): something the user should know that is
    /// not a failure.
    pub fn note(&self, text: &str) {
        if !self.quiet {
            stderr::err_line(&format!("note: {text}"));
        }
    }

    /// Progress a command reports on stderr (left out by `-q`).
    pub fn progress(&self, text: &str) {
        if !self.quiet {
            stderr::err_line(text);
        }
    }

    /// A progress bar of `len` units drawn on stderr, or None where it would be noise
    /// or unseen: stderr not a terminal, `-q`, `--json`. Stdout never gets its bytes.
    pub fn progress_bar(&self, len: u64) -> Option<ProgressBar> {
        (self.stderr_tty && !self.quiet && !self.json)
            .then(|| ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr()))
    }

    /// One JSON event line on stdout, in `--json` mode only (progress a script follows).
    pub fn event(&self, value: &Value) {
        if self.json {
            out_line(&value.to_string());
        }
    }

    /// What the command was asked for (a JSON document, a table, CSV), exactly as
    /// given, in every mode.
    pub fn document(&self, text: &str) {
        out(text);
    }

    /// [`Printer::document`] for one line: `text` and a newline.
    pub fn document_line(&self, text: &str) {
        out_line(text);
    }

    /// A line on stderr that even `-q` shows: a warning, or what to do by hand.
    pub fn err_line(&self, text: &str) {
        stderr::err_line(text);
    }

    /// The error that ended the command, rendered once ([`render_error`]) on stderr.
    pub fn failure(&self, err: &anyhow::Error, hint: Option<String>) {
        stderr::err_line(&render_error(err, hint, self.color));
    }

    /// A failure that does not end the command: `error: …` and `hint: …` on stderr.
    pub fn error(&self, failure: &Diagnostic) {
        let p = self.palette();
        stderr::err_line(&format!(
            "{}: {}",
            p.fail.apply_to("error"),
            failure.message
        ));
        if let Some(hint) = &failure.hint {
            stderr::err_line(&self.hint_text(hint, ""));
        }
    }

    /// `hint: …`, continuation lines aligned under the text.
    pub fn hint_text(&self, hint: &str, indent: &str) -> String {
        self.palette().hint_text(hint, indent)
    }
}

#[cfg(test)]
mod tests {
    use super::Printer;

    fn printer(json: bool, quiet: bool, stderr_tty: bool) -> Printer {
        Printer {
            json,
            quiet,
            color: false,
            stderr_tty,
        }
    }

    #[test]
    fn a_progress_bar_only_on_a_terminal_stderr_without_quiet_or_json() {
        assert!(printer(false, false, true).progress_bar(10).is_some());
        for (json, quiet, tty) in [
            (false, false, false),
            (false, true, true),
            (true, false, true),
            (true, true, false),
        ] {
            assert!(
                printer(json, quiet, tty).progress_bar(10).is_none(),
                "json {json}, quiet {quiet}, stderr a terminal {tty}"
            );
        }
    }
}
