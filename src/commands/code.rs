//! `ccr-setup code [ARGS…]`: make sure the proxy answers (and proves it holds the
//! `APIKEY`), then exec `claude` with the environment that points it at the proxy and,
//! instead of the key, a session token the proxy minted. On a laptop joined to a team
//! server it starts nothing and points `claude` at the server's https URL. `ccr-setup env` prints the same environment;
//! [`claude_env`] builds it for both.

use std::os::unix::process::CommandExt;

use anyhow::Context as _;

use super::running_proxy::ensure_proxy;
use super::shared::{block_on, claude_env, load_client_config};
use super::{Context, Outcome};
use crate::cli::CodeArgs;
use crate::config::Join;
use crate::diagnostic::Diagnostic;
use crate::env_vars::EnvVars;

pub fn run(ctx: &Context, args: CodeArgs) -> anyhow::Result<Outcome> {
    let cfg = load_client_config(&ctx.config_path)?;
    let claude = which::which("claude").map_err(|_| {
        Diagnostic::new("Claude Code (`claude`) is not on PATH")
            .with_hint("run `ccr-setup init`, or `npm install -g @anthropic-ai/claude-code`")
    })?;
    let joined = Join::of(&cfg).is_some();
    // A joined laptop talks to the team server; no local proxy is started.
    if !joined {
        ensure_proxy(ctx, &cfg)?;
    }
    let mut env = claude_env(&cfg);
    let key = cfg.api_key.as_deref().filter(|k| !k.is_empty() && !joined);
    if let Some(key) = key {
        let base = crate::service::runtime::proxy_url(&cfg.host, cfg.port);
        let token = block_on(session_token(&base, key))?;
        for (name, value) in &mut env {
            if *name == EnvVars::ANTHROPIC_AUTH_TOKEN {
                *value = token.clone();
            }
        }
    }
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
        .envs(env)
        .env(crate::env_vars::EnvVars::CCR_SETUP_CONFIG, config_path)
        .exec();
    Err(err).with_context(|| format!("cannot run {}", claude.display()))
}

/// A session token from the proxy at `base` (verified by `ensure_proxy` just before):
/// Claude Code sends its credential, with every prompt, to whatever holds the port, so
/// it gets a token that expires and cannot be turned into the `APIKEY`.
async fn session_token(base: &str, key: &str) -> anyhow::Result<String> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .no_proxy()
        .build()?;
    let resp = client
        .post(format!("{base}/v1/ccr/session-token"))
        .header("x-api-key", key)
        .send()
        .await
        .with_context(|| format!("cannot ask the proxy at {base} for a session token"))?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    match body["token"].as_str() {
        Some(token) if status.is_success() => Ok(token.to_owned()),
        _ => Err(Diagnostic::new(format!(
            "the proxy at {base} gave no session token (HTTP {}); it may be an older ccr-setup",
            status.as_u16()
        ))
        .with_hint("restart it: `ccr-setup stop`, then run this again")
        .into()),
    }
}
