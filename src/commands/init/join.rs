//! `init --join URL`: a laptop joins a team server. The key comes from `--key`,
//! `$CCR_SETUP_CLIENT_KEY` or a hidden prompt (never echoed, never logged); the server
//! is asked for the key's own usage to prove both work; then the key goes into the
//! secrets store and the config records the join (`Join`, see `config::join`). No
//! Ollama, proxy or service is installed or started on the laptop.

use std::time::Duration;

use dialoguer::theme::ColorfulTheme;

use super::super::prompt::Prompter;
use super::super::shared::block_on;
use super::super::{Context, Outcome};
use super::{load_existing, tilde};
use crate::cli::InitArgs;
use crate::config::{server_url, ConfigFile, Join, SecretsStore, CLIENT_KEY_VAR};
use crate::diagnostic::Diagnostic;
use crate::provision::team_config;

/// How long the server may take to answer the join's check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) fn run(ctx: &Context, args: &InitArgs) -> anyhow::Result<Outcome> {
    let out = ctx.out;
    let prompter = Prompter::open(args.yes);
    let url = server_url(args.join.as_deref().unwrap_or_default())?;
    let ca_cert = match &args.ca_cert {
        Some(p) => {
            let abs = std::path::absolute(p).unwrap_or(p.clone());
            if !abs.is_file() {
                return Err(Diagnostic::new(format!("--ca-cert {}: no such file", abs.display()))
                    .with_hint("copy the server's CA certificate (Caddy's root.crt; docs/team.md) here first")
                    .into());
            }
            Some(abs)
        }
        None => None,
    };
    let key = client_key(&prompter, args)?;
    let join = Join {
        url: url.clone(),
        key: key.clone(),
        ca_cert: ca_cert.clone(),
    };
    let usage = block_on(crate::team::fetch_usage(&join, None, CHECK_TIMEOUT))?;
    out.line(&format!(
        "{url} accepts the key: client {} ({} request{} today).",
        crate::sanitize::field(&usage.client),
        usage.today.requests,
        if usage.today.requests == 1 { "" } else { "s" }
    ));
    let existing = load_existing(ctx)?;
    let mut doc = existing
        .as_ref()
        .map(|f| f.doc.clone())
        .unwrap_or(serde_json::Value::Null);
    let ca_text = ca_cert.as_ref().map(|p| p.display().to_string());
    team_config::apply_join(&mut doc, &url, ca_text.as_deref())?;
    let config = ConfigFile::new(&ctx.config_path, doc);
    let _ = super::check_resolves(ctx, &config, &[])?;
    let store = SecretsStore::for_config(&ctx.config_path);
    out.line("Plan:");
    out.line(&format!(
        "    {:<9} {} (joined to {url}; no local Ollama or proxy)",
        if existing.is_some() {
            "update"
        } else {
            "create"
        },
        tilde(&config.path)
    ));
    out.line(&format!(
        "    {:<9} {CLIENT_KEY_VAR} in the {} (the config holds only the reference)",
        "store",
        store.destination()
    ));
    if let Some(outcome) = super::consent(&out, &prompter, args.dry_run)? {
        return Ok(outcome);
    }
    let stored = store.set(CLIENT_KEY_VAR, &key)?;
    out.line(&format!("Stored the client key in the {stored}."));
    super::write_config(&out, &config)?;
    out.line("\nDone. Next: `ccr-setup code` starts Claude Code on the team server; `ccr-setup stats` shows your use today.");
    Ok(Outcome::Success)
}

/// The key from `--key`, `$CCR_SETUP_CLIENT_KEY`, or a hidden prompt.
fn client_key(prompter: &Prompter, args: &InitArgs) -> anyhow::Result<String> {
    let given = args
        .key
        .clone()
        .or_else(|| crate::env_vars::non_empty(CLIENT_KEY_VAR));
    let key = match (given, prompter.term()) {
        (Some(k), _) => k,
        (None, Some(term)) => dialoguer::Password::with_theme(&ColorfulTheme::default())
            .with_prompt("Client key (ccr_…, from `ccr-setup clients add` on the server)")
            .interact_on(term)?,
        (None, None) => {
            return Err(Diagnostic::new("no client key to join with")
                .with_hint(format!(
                    "pass --key ccr_…, set {CLIENT_KEY_VAR}, or run this in a terminal to be asked"
                ))
                .into())
        }
    };
    let key = key.trim().to_owned();
    if key.is_empty() || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Diagnostic::new("the client key is empty or holds spaces")
            .with_hint("paste the whole `ccr_…` key that `ccr-setup clients add` printed")
            .into());
    }
    Ok(key)
}
