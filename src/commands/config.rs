//! `ccr-setup config show|validate|path`.

use super::{Context, Outcome};
use crate::cli::ConfigCommand;
use crate::config::{redacted, ConfigError, ConfigFile};

pub fn run(ctx: &Context, cmd: ConfigCommand) -> anyhow::Result<Outcome> {
    match cmd {
        ConfigCommand::Path => {
            println!("{}", ctx.config_path.display());
            Ok(Outcome::Success)
        }
        ConfigCommand::Show => {
            let file = ConfigFile::load(&ctx.config_path)?;
            println!("{}", serde_json::to_string_pretty(&redacted(&file.doc))?);
            // Where each key comes from, never its value; on stderr so stdout stays JSON.
            for key in file.key_sources() {
                eprintln!("{}", key.describe());
            }
            Ok(Outcome::Success)
        }
        ConfigCommand::Validate => {
            let file = ConfigFile::load(&ctx.config_path)?;
            match file.resolve() {
                Ok(cfg) => {
                    if !ctx.quiet {
                        println!(
                            "✓ {} is valid: {} provider(s), default route {}",
                            ctx.config_path.display(),
                            cfg.providers.len(),
                            cfg.router.default
                        );
                    }
                    Ok(Outcome::Success)
                }
                Err(ConfigError::Invalid { path, problems }) => {
                    println!("✗ {} has {} problem(s):", path.display(), problems.len());
                    for p in &problems {
                        println!("  {}: {}", p.path, p.message);
                        println!("      hint: {}", p.fix);
                    }
                    Ok(Outcome::Failed)
                }
                Err(other) => Err(other.into()),
            }
        }
    }
}
