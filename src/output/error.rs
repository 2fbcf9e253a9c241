//! The one rendering of a command's error: `error: …`, a `caused by: …` line for each
//! cause not already said, then `hint: …` when any error in the chain knows the fix.

use crate::config::ConfigError;
use crate::diagnostic::{self, Diagnostic, Hint};
use crate::ollama::serve::ServeError;
use crate::platform::UnknownPlatform;
use crate::provision::install::{InstallError, PlanError};

use super::Palette;

/// The text `main` prints for an error that ended a command (no trailing newline).
pub fn render_error(err: &anyhow::Error, color: bool) -> String {
    let p = Palette::new(color);
    let messages = diagnostic::messages(err.as_ref());
    let mut lines = messages.iter();
    let first = lines.next().map(String::as_str).unwrap_or("failed");
    let mut out = format!("{}: {}", p.fail.apply_to("error"), indented(first));
    for cause in lines {
        let label = p.dim.apply_to("caused by:");
        out.push_str(&format!("\n  {label} {}", indented(cause)));
    }
    if let Some(hint) = hint_of(err) {
        let printer = super::Printer {
            json: false,
            quiet: false,
            color,
        };
        out.push('\n');
        out.push_str(&printer.hint_text(&hint, ""));
    }
    out
}

/// A message's continuation lines, indented under the label so the form stays readable.
fn indented(message: &str) -> String {
    message.lines().collect::<Vec<_>>().join("\n    ")
}

/// The fix for an error: from a [`Diagnostic`] anywhere in its contexts, else from the
/// first typed error in the chain that knows one.
pub fn hint_of(err: &anyhow::Error) -> Option<String> {
    if let Some(hint) = err
        .downcast_ref::<Diagnostic>()
        .and_then(|d| d.hint.clone())
    {
        return Some(hint);
    }
    err.chain().find_map(|e| {
        if let Some(d) = e.downcast_ref::<Diagnostic>() {
            d.hint.clone()
        } else if let Some(c) = e.downcast_ref::<ConfigError>() {
            c.hint()
        } else if let Some(s) = e.downcast_ref::<ServeError>() {
            s.hint()
        } else if let Some(i) = e.downcast_ref::<InstallError>() {
            i.hint()
        } else if let Some(p) = e.downcast_ref::<PlanError>() {
            p.hint()
        } else if let Some(p) = e.downcast_ref::<UnknownPlatform>() {
            p.hint()
        } else if let Some(c) = e.downcast_ref::<crate::config::ClientEdit>() {
            c.hint()
        } else if let Some(n) = e.downcast_ref::<crate::proxy::clients::NoClients>() {
            n.hint()
        } else if let Some(u) = e.downcast_ref::<crate::config::ServerUrlError>() {
            u.hint()
        } else if let Some(u) = e.downcast_ref::<crate::team::UsageError>() {
            u.hint()
        } else if let Some(g) = e.downcast_ref::<crate::provision::engine::EngineError>() {
            g.hint()
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    #[test]
    fn error_causes_then_hint() {
        let io = std::io::Error::other("permission denied");
        let err = Err::<(), _>(io)
            .context("cannot write /x")
            .context(Diagnostic::new("cannot save the config").with_hint("check /x"))
            .unwrap_err();
        assert_eq!(
            render_error(&err, false),
            "error: cannot save the config\n  caused by: cannot write /x\n  caused by: permission denied\nhint: check /x"
        );
    }

    #[test]
    fn continuation_lines_are_indented() {
        let err = anyhow::anyhow!("two problems:\n- a\n- b");
        assert_eq!(
            render_error(&err, false),
            "error: two problems:\n    - a\n    - b"
        );
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let err = anyhow::anyhow!("disk full").context("cannot write /x: disk full");
        assert_eq!(
            render_error(&err, false),
            "error: cannot write /x: disk full"
        );
    }
}
