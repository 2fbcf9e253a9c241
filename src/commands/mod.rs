//! One module per subcommand: thin orchestration over the domain modules. Commands
//! may print, through the run's one [`crate::output::Printer`] (`ctx.out`, made in
//! `main`); domain modules may not. Commands
//! never import from each other: what two of them share lives in [`shared`] and
//! [`prompt`].

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::output::Printer;

pub mod clients;
pub mod code;
pub mod completions;
pub mod config;
pub mod diagnostics;
pub mod doctor;
pub mod env;
pub mod init;
mod init_consent;
mod init_key;
pub mod prompt;
pub mod proxy;
mod running_proxy;
pub mod shared;
pub mod stats;
pub mod status;
pub mod statusline;
pub mod stop;
pub mod ui;
pub mod uninstall;
pub mod up;

/// How a command finished when it did not hit an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Success,
    /// The work or a check failed; the command already explained why. Exit 1.
    Failed,
    /// The command cannot go on as invoked (e.g. consent is needed and there is no
    /// terminal to ask on); it already said what to run instead. Exit 2.
    Usage,
}

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Success => ExitCode::SUCCESS,
            Outcome::Failed => ExitCode::from(1),
            Outcome::Usage => ExitCode::from(2),
        }
    }
}

/// What every command gets from `main`: the global flags and the run's printer.
#[derive(Debug, Clone)]
pub struct Context {
    pub config_path: PathBuf,
    pub verbose: u8,
    /// The one printer of this run (`--json`, `-q`, colour, the terminal): every line
    /// a command prints goes through it.
    pub out: Printer,
}

impl Context {
    pub fn new(global: &GlobalArgs, out: Printer) -> Self {
        Context {
            config_path: global
                .config
                .clone()
                .unwrap_or_else(crate::paths::default_config_path),
            verbose: global.verbose,
            out,
        }
    }
}

/// Run the parsed command line, printing through `out`.
pub fn run(cli: Cli, out: Printer) -> anyhow::Result<Outcome> {
    let ctx = Context::new(&cli.global, out);
    match cli.command {
        Command::Init(args) => init::run(&ctx, args),
        Command::Doctor(args) => doctor::run(&ctx, args),
        Command::Up(args) => up::run(&ctx, args),
        Command::Proxy(args) => proxy::run(&ctx, args),
        Command::Code(args) => code::run(&ctx, args),
        Command::Env(args) => env::run(&ctx, args),
        Command::Status(args) => status::run(&ctx, args),
        Command::Stop(args) => stop::run(&ctx, args),
        Command::Uninstall(args) => uninstall::run(&ctx, args),
        Command::Stats(args) => stats::run(&ctx, args),
        Command::Statusline(args) => statusline::run(&ctx, args),
        Command::Ui(args) => ui::run(&ctx, args),
        Command::Config(cmd) => config::run(&ctx, cmd),
        Command::Clients(cmd) => clients::run(&ctx, cmd),
        Command::Completions(args) => completions::run(&ctx, args),
    }
}
