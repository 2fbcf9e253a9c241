//! How commands talk to the user, in one place: a [`Printer`] that knows `--json`,
//! `-q` and colour, and [`render_error`], the one way a failure is shown:
//!
//! ```text
//! error: cannot start Ollama
//!   caused by: Permission denied (os error 13)
//! hint: check the permissions of ~/.claude-code-router
//! ```
//!
//! Only `commands/` and `main` use this module; domain modules return
//! [`crate::diagnostic::Diagnostic`]s and typed errors instead of printing.

mod error;
mod stdout;

pub use error::render_error;
pub use stdout::{failure as stdout_failure, out, out_line};

use std::time::Duration;

use console::Style;
use serde_json::{json, Value};

use crate::diagnostic::Diagnostic;
use crate::humanize;

/// Prints for one command run: step lines, plain lines, notes, hints and JSON.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    /// One JSON object per line on stdout instead of text.
    pub json: bool,
    /// `-q`: only failures (and what a command is asked for, such as `env`'s exports).
    pub quiet: bool,
    /// ANSI colour on the marks and labels.
    pub color: bool,
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
            eprintln!("note: {text}");
        }
    }

    /// Progress a command reports on stderr (left out by `-q`).
    pub fn progress(&self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }

    /// What the command was asked for (a JSON document, a table, CSV), exactly as
    /// given, in every mode.
    pub fn document(&self, text: &str) {
        out(text);
    }

    /// A line on stderr that even `-q` shows: a warning, or what to do by hand.
    pub fn err_line(&self, text: &str) {
        eprintln!("{text}");
    }

    /// A failure that does not end the command: `error: …` and `hint: …` on stderr.
    pub fn error(&self, failure: &Diagnostic) {
        let p = self.palette();
        eprintln!("{}: {}", p.fail.apply_to("error"), failure.message);
        if let Some(hint) = &failure.hint {
            eprintln!("{}", self.hint_text(hint, ""));
        }
    }

    /// `hint: …`, continuation lines aligned under the text.
    pub fn hint_text(&self, hint: &str, indent: &str) -> String {
        let p = self.palette();
        let pad = format!("{indent}      ");
        let mut lines = hint.lines();
        let first = lines.next().unwrap_or_default();
        let mut out = format!("{indent}{} {first}", p.hint.apply_to("hint:"));
        for l in lines {
            out.push('\n');
            out.push_str(&pad);
            out.push_str(l);
        }
        out
    }
}
