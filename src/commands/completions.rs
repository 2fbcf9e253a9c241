//! `ccr-setup completions <shell>`: print a completion script.

use clap::CommandFactory;

use super::Outcome;
use crate::cli::{Cli, CompletionsArgs};

pub fn run(args: CompletionsArgs) -> anyhow::Result<Outcome> {
    let mut cmd = Cli::command();
    // Into memory first: clap_complete panics when its writer fails; `output::out`
    // reports a failed write instead.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "ccr-setup", &mut script);
    crate::output::out(&String::from_utf8_lossy(&script));
    Ok(Outcome::Success)
}
