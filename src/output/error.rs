//! The one rendering of a command's error: `error: …`, a `caused by: …` line for each
//! cause not already said, then `hint: …` when the caller found the fix
//! ([`crate::commands::diagnostics::hint_of`] knows the domain's errors, so this module
//! imports nothing from the domain).

use crate::diagnostic;

use super::Palette;

/// The text `main` prints for an error that ended a command (no trailing newline).
pub fn render_error(err: &anyhow::Error, hint: Option<String>, color: bool) -> String {
    let p = Palette::new(color);
    let messages = diagnostic::messages(err.as_ref());
    let mut lines = messages.iter();
    let first = lines.next().map(String::as_str).unwrap_or("failed");
    let mut out = format!("{}: {}", p.fail.apply_to("error"), indented(first));
    for cause in lines {
        let label = p.dim.apply_to("caused by:");
        out.push_str(&format!("\n  {label} {}", indented(cause)));
    }
    if let Some(hint) = hint {
        out.push('\n');
        out.push_str(&p.hint_text(&hint, ""));
    }
    out
}

/// A message's continuation lines, indented under the label so the form stays readable.
fn indented(message: &str) -> String {
    message.lines().collect::<Vec<_>>().join("\n    ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Diagnostic;
    use anyhow::Context as _;

    fn render(err: &anyhow::Error) -> String {
        render_error(err, crate::commands::diagnostics::hint_of(err), false)
    }

    #[test]
    fn error_causes_then_hint() {
        let io = std::io::Error::other("permission denied");
        let err = Err::<(), _>(io)
            .context("cannot write /x")
            .context(Diagnostic::new("cannot save the config").with_hint("check /x"))
            .unwrap_err();
        assert_eq!(
            render(&err),
            "error: cannot save the config\n  caused by: cannot write /x\n  caused by: permission denied\nhint: check /x"
        );
    }

    #[test]
    fn continuation_lines_are_indented() {
        let err = anyhow::anyhow!("two problems:\n- a\n- b");
        assert_eq!(render(&err), "error: two problems:\n    - a\n    - b");
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let err = anyhow::anyhow!("disk full").context("cannot write /x: disk full");
        assert_eq!(render(&err), "error: cannot write /x: disk full");
    }
}
