//! `ccr-setup code [ARGS…]`: make sure the proxy answers, then exec `claude` with the
//! environment that points it at the proxy. `ccr-setup env` prints the same environment;
//! [`claude_env`] builds it for both.

use std::os::unix::process::CommandExt;

use anyhow::Context as _;

use super::running_proxy::ensure_proxy;
use super::shared::{claude_env, load_client_config};
use super::{Context, Outcome};
use crate::cli::CodeArgs;
use crate::diagnostic::Diagnostic;

pub fn run(ctx: &Context, args: CodeArgs) -> anyhow::Result<Outcome> {
    let cfg = load_client_config(&ctx.config_path)?;
    let claude = which::which("claude").map_err(|_| {
        Diagnostic::new("Claude Code (`claude`) is not on PATH")
            .with_hint("run `ccr-setup init`, or `npm install -g @anthropic-ai/claude-code`")
    })?;
    ensure_proxy(ctx, &cfg)?;
    let claude_args = if args.lean {
        crate::context_budget::with_lean_args(&args.args)
    } else {
        args.args
    };
    // Claude Code runs the status line (`ccr-setup statusline`) as its child: naming
    // the config here makes it read the same one as this session, not the default.
    let config_path = std::path::absolute(&ctx.config_path).unwrap_or(ctx.config_path.clone());
    let err = std::process::Command::new(&claude)
        .args(&claude_args)
        .envs(claude_env(&cfg))
        .env(crate::env_vars::EnvVars::CCR_SETUP_CONFIG, config_path)
        .exec();
    Err(err).with_context(|| format!("cannot run {}", claude.display()))
}
