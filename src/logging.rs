//! Logging setup with `tracing`.
//!
//! The CLI logs to stderr at the level set by `-v` (`up` only with `-v`: its step list
//! is its output). Long-running commands (the proxy, and `up`, which execs into it)
//! also log to daily-rotated files under
//! `~/.claude-code-router/logs/`, keeping a week. Secrets (API keys, Authorization
//! headers) are never passed to a log macro anywhere in the crate.

use std::io::IsTerminal;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::cli::{Command, GlobalArgs};

/// Colour is on for a terminal unless `--no-color` or `NO_COLOR` (any value) says otherwise.
pub fn color_enabled(no_color_flag: bool) -> bool {
    !no_color_flag
        && std::env::var_os(crate::env_vars::EnvVars::NO_COLOR).is_none_or(|v| v.is_empty())
        && std::io::stderr().is_terminal()
}

fn stderr_level(global: &GlobalArgs, command: &Command) -> &'static str {
    // `up` prints its own step list; the log of the in-process proxy it smoke-tests
    // (`… falling back …`) goes to the log file only, unless -v asks for it here.
    if matches!(command, Command::Up(_)) && global.verbose == 0 {
        return "off";
    }
    if global.quiet {
        return "error";
    }
    // The proxy's one-line-per-request log is its main output, so it starts at info.
    let base = if matches!(command, Command::Proxy(_)) {
        1
    } else {
        0
    };
    match base + global.verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    }
}

/// Install the subscriber for this run. `RUST_LOG` overrides `-v`.
///
/// Returns the file writer's guard when a log file is in use; keep it alive until exit
/// so buffered lines are flushed.
pub fn init(global: &GlobalArgs, command: &Command) -> Option<WorkerGuard> {
    let level = stderr_level(global, command);
    let stderr_filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("ccr_setup={level}")));
    let stderr_layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(color_enabled(global.no_color))
        .with_target(false)
        .with_filter(stderr_filter);

    let (file_layer, guard) = if matches!(command, Command::Proxy(_) | Command::Up(_)) {
        match file_writer() {
            Some((writer, guard)) => (
                Some(
                    tracing_subscriber::fmt::layer()
                        .with_writer(writer)
                        .with_ansi(false)
                        .with_filter(EnvFilter::new("ccr_setup=info")),
                ),
                Some(guard),
            ),
            None => (None, None),
        }
    } else {
        (None, None)
    };

    let _ = tracing_subscriber::registry()
        .with(stderr_layer)
        .with(file_layer)
        .try_init();
    guard
}

/// A non-blocking writer to `logs/proxy.log.<date>`, rotated daily, 7 files kept.
/// Returns None (stderr only) when the directory cannot be created.
fn file_writer() -> Option<(tracing_appender::non_blocking::NonBlocking, WorkerGuard)> {
    let dir = crate::paths::logs_dir();
    std::fs::create_dir_all(&dir).ok()?;
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("proxy.log")
        .max_log_files(7)
        .build(&dir)
        .ok()?;
    Some(
        tracing_appender::non_blocking::NonBlockingBuilder::default()
            .buffered_lines_limit(FILE_LOG_BUFFERED_LINES)
            .lossy(true)
            .finish(appender),
    )
}

/// Lines the file writer holds before it drops new ones (lossy: the proxy never waits
/// on the disk). tracing-appender's default, 128,000, pre-allocates and touches a
/// 4 MB channel at start-up: a sixth of the proxy's idle memory. At info level the
/// proxy writes one line per request, so 4,096 is a burst of thousands of requests
/// within one disk write.
const FILE_LOG_BUFFERED_LINES: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn level(args: &[&str]) -> &'static str {
        let cli = crate::cli::Cli::parse_from(args);
        stderr_level(&cli.global, &cli.command)
    }

    #[test]
    fn up_keeps_the_step_list_clean_unless_verbose() {
        assert_eq!(level(&["ccr-setup", "up"]), "off");
        assert_eq!(level(&["ccr-setup", "up", "-v"]), "info");
        assert_eq!(level(&["ccr-setup", "proxy"]), "info");
        assert_eq!(level(&["ccr-setup", "doctor"]), "warn");
    }
}
