//! Entry point: parse arguments, run the command, map the result to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = ccr_setup::cli::Cli::parse();
    // An older install's loose modes are fixed at start; `doctor` reports them instead
    // (and `doctor --fix` repairs them).
    if !matches!(cli.command, ccr_setup::cli::Command::Doctor(_)) {
        ccr_setup::fsutil::tighten_private_tree(&ccr_setup::paths::router_dir());
    }
    let _log_guard = ccr_setup::logging::init(&cli.global, &cli.command);
    // The run's one printer, passed down to the command.
    let out = ccr_setup::output::Printer::new(
        cli.command.json(),
        cli.global.quiet,
        ccr_setup::logging::color_enabled(cli.global.no_color),
    );
    // A command that ran to its end but could not print its output has failed.
    let result = ccr_setup::commands::run(cli, out)
        .and_then(|outcome| ccr_setup::output::stdout_failure().map_or(Ok(outcome), Err));
    match result {
        Ok(outcome) => outcome.into(),
        Err(err) => {
            out.failure(&err, ccr_setup::commands::diagnostics::hint_of(&err));
            ExitCode::from(1)
        }
    }
}
