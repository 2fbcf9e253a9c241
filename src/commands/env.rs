//! `ccr-setup env`: the environment `code` sets, as export lines for
//! `eval "$(ccr-setup env)"` (sh/bash/zsh) or `ccr-setup env --shell fish | source`.

use super::{Context, Outcome};
use crate::cli::{EnvArgs, EnvShell};

/// Quote for fish: single quotes, with `\` and `'` backslash-escaped.
fn fish_quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', r"\\").replace('\'', r"\'"))
}

/// Quote for POSIX sh: always single-quoted, so empty values stay visible.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The export lines for `env`.
pub fn render(vars: &[(&str, String)], shell: EnvShell) -> String {
    vars.iter()
        .map(|(k, v)| match shell {
            EnvShell::Sh => format!("export {k}={}\n", sh_quote(v)),
            EnvShell::Fish => format!("set -gx {k} {};\n", fish_quote(v)),
        })
        .collect()
}

pub fn run(ctx: &Context, args: EnvArgs) -> anyhow::Result<Outcome> {
    let cfg = super::shared::load_client_config(&ctx.config_path)?;
    ctx.out
        .document(&render(&super::shared::claude_env(&cfg), args.shell));
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_the_shell() {
        let vars = [("A", "it's $x".to_owned()), ("B", String::new())];
        assert_eq!(
            render(&vars, EnvShell::Sh),
            "export A='it'\\''s $x'\nexport B=''\n"
        );
        assert_eq!(
            render(&vars, EnvShell::Fish),
            "set -gx A 'it\\'s $x';\nset -gx B '';\n"
        );
        // Run the sh form through a real shell and read the values back.
        let script = format!(
            "{}printf '%s|%s' \"$A\" \"$B\"",
            render(&vars, EnvShell::Sh)
        );
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "it's $x|");
    }
}
