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
    let color = ccr_setup::logging::color_enabled(cli.global.no_color);
    // A command that ran to its end but could not print its output has failed.
    let result = ccr_setup::commands::run(cli)
        .and_then(|outcome| ccr_setup::output::stdout_failure().map_or(Ok(outcome), Err));
    match result {
        Ok(outcome) => outcome.into(),
        Err(err) => {
            let hint = ccr_setup::commands::diagnostics::hint_of(&err);
            eprintln!("{}", ccr_setup::output::render_error(&err, hint, color));
            ExitCode::from(1)
        }
    }
}
