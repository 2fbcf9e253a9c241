//! `ccr-setup completions <shell>`: print a completion script.

use clap::CommandFactory;

use super::Outcome;
use crate::cli::{Cli, CompletionsArgs};

pub fn run(args: CompletionsArgs) -> anyhow::Result<Outcome> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "ccr-setup", &mut std::io::stdout());
    Ok(Outcome::Success)
}
