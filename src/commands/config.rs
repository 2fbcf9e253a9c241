//! `ccr-setup config show|validate|path`.

use super::{Context, Outcome};
use crate::cli::ConfigCommand;
use crate::config::{redacted, ConfigError, ConfigFile};

pub fn run(ctx: &Context, cmd: ConfigCommand) -> anyhow::Result<Outcome> {
    let out = ctx.out;
    match cmd {
        ConfigCommand::Path => {
            out.line(&ctx.config_path.display().to_string());
            Ok(Outcome::Success)
        }
        ConfigCommand::Show => {
            let file = ConfigFile::load(&ctx.config_path)?;
            out.line(&serde_json::to_string_pretty(&redacted(&file.doc))?);
            // Where each key comes from, never its value; on stderr so stdout stays JSON.
            for key in file.key_sources() {
                out.err_line(&key.describe());
            }
            Ok(Outcome::Success)
        }
        ConfigCommand::Validate => {
            let file = ConfigFile::load(&ctx.config_path)?;
            match file.resolve() {
                Ok(cfg) => {
                    out.say(&format!(
                        "✓ {} is valid: {} provider(s), default route {}",
                        ctx.config_path.display(),
                        cfg.providers.len(),
                        cfg.router.default
                    ));
                    Ok(Outcome::Success)
                }
                Err(ConfigError::Invalid { path, problems }) => {
                    out.line(&format!(
                        "✗ {} has {} problem(s):",
                        path.display(),
                        problems.len()
                    ));
                    for p in &problems {
                        out.line(&format!("  {}: {}", p.path, p.message));
                        out.line(&format!("      hint: {}", p.fix));
                    }
                    Ok(Outcome::Failed)
                }
                Err(other) => Err(other.into()),
            }
        }
    }
}
