//! `ccr-setup completions <shell>`: print a completion script.

use clap::CommandFactory;

use super::{Context, Outcome};
use crate::cli::{Cli, CompletionsArgs};

pub fn run(ctx: &Context, args: CompletionsArgs) -> anyhow::Result<Outcome> {
    let mut cmd = Cli::command();
    // Into memory first: clap_complete panics when its writer fails; the printer
    // reports a failed write instead.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "ccr-setup", &mut script);
    ctx.out.document(&String::from_utf8_lossy(&script));
    Ok(Outcome::Success)
}
