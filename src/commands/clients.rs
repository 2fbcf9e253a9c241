//! `ccr-setup clients add|list|remove`: team mode's named client keys.

use serde_json::json;

use super::{Context, Outcome};
use crate::cli::{ClientsAddArgs, ClientsCommand, ClientsListArgs, ClientsRemoveArgs};
use crate::config::client_keys::{format_hash, hash_key, new_client_key};
use crate::config::{Config, ConfigFile};
use crate::fsutil::WriteOutcome;
use crate::ledger::{self, Group, StatsOptions, Totals};

pub fn run(ctx: &Context, cmd: ClientsCommand) -> anyhow::Result<Outcome> {
    match cmd {
        ClientsCommand::Add(args) => add(ctx, args),
        ClientsCommand::List(args) => list(ctx, args),
        ClientsCommand::Remove(args) => remove(ctx, args),
    }
}

fn saved(out: &crate::output::Printer, what: &str, write: &WriteOutcome) {
    match write {
        WriteOutcome::Replaced { backup } => out.progress(&format!(
            "{what} (previous config backed up to {})",
            backup.display()
        )),
        WriteOutcome::Created | WriteOutcome::Unchanged => out.progress(what),
    }
}

fn add(ctx: &Context, args: ClientsAddArgs) -> anyhow::Result<Outcome> {
    let out = ctx.out;
    let mut file = ConfigFile::load(&ctx.config_path)?;
    let key = new_client_key().ok_or_else(|| {
        anyhow::anyhow!("the operating system gave no randomness for a client key")
    })?;
    let hash = format_hash(&hash_key(&key));
    let write = file.add_client(&args.name, &hash, args.daily_requests, args.daily_cloud_usd)?;
    if args.json {
        out.document(&format!(
            "{}\n",
            json!({
                "name": args.name,
                "key": key,
                "key_hash": hash,
                "daily_requests": args.daily_requests,
                "daily_cloud_usd": args.daily_cloud_usd,
            })
        ));
    } else {
        out.document(&format!("{key}\n"));
    }
    saved(
        &out,
        &format!(
            "added client {} to {}; only the key's hash is stored",
            args.name,
            ctx.config_path.display()
        ),
        &write,
    );
    out.progress(
        "the key above is shown only this once: give it to the user, who sets it as ANTHROPIC_AUTH_TOKEN for Claude Code; a running proxy accepts it within seconds",
    );
    Ok(Outcome::Success)
}

fn remove(ctx: &Context, args: ClientsRemoveArgs) -> anyhow::Result<Outcome> {
    let out = ctx.out;
    let mut file = ConfigFile::load(&ctx.config_path)?;
    let write = file.remove_client(&args.name)?;
    if args.json {
        out.document(&format!("{}\n", json!({"removed": args.name})));
    }
    saved(
        &out,
        &format!(
            "removed client {}; a running proxy refuses its key from its next config reload (seconds)",
            args.name
        ),
        &write,
    );
    Ok(Outcome::Success)
}

/// Today's totals per client (the admin's under [`ledger::ADMIN_GROUP`]) from the
/// ledger, in the clients' time zone; empty when there is no ledger yet.
fn today_by_client(config: &Config) -> anyhow::Result<Vec<ledger::GroupRow>> {
    let path = crate::paths::ledger_path();
    if !path.exists() {
        return Ok(Vec::new());
    }
    let tz = config.clients_timezone;
    let midnight = chrono::Utc::now()
        .with_timezone(&tz)
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_local_timezone(tz).single())
        .map(|t| t.timestamp_millis());
    let mut options = StatsOptions::from_config(Some(config), None)
        .map_err(|e| anyhow::anyhow!("{}", e.first().map(|p| p.to_string()).unwrap_or_default()))?;
    options.since_ms = midnight;
    options.group_by = Some(Group::Client);
    options.utc_offset = tz;
    let conn = ledger::open_for_reading(&path)?;
    Ok(ledger::report(&conn, &options)?.groups)
}

fn list(ctx: &Context, args: ClientsListArgs) -> anyhow::Result<Outcome> {
    let out = ctx.out;
    let config = crate::config::load(&ctx.config_path)?;
    let today = today_by_client(&config)?;
    let use_of = |name: &str| {
        today
            .iter()
            .find(|g| g.key == name)
            .map(|g| g.totals.clone())
            .unwrap_or_default()
    };
    if args.json {
        let clients: Vec<_> = config
            .clients
            .iter()
            .map(|c| {
                let t = use_of(&c.name);
                json!({
                    "name": c.name,
                    "daily_requests": c.daily_requests,
                    "daily_cloud_usd": c.daily_cloud_usd,
                    "today": today_json(&t),
                })
            })
            .collect();
        out.document(&format!(
            "{}\n",
            json!({
                "timezone": config.clients_timezone.to_string(),
                "clients": clients,
                "admin_today": today_json(&use_of(ledger::ADMIN_GROUP)),
            })
        ));
        return Ok(Outcome::Success);
    }
    if config.clients.is_empty() {
        out.say("no clients yet; add one with `ccr-setup clients add NAME`");
        return Ok(Outcome::Success);
    }
    let width = config
        .clients
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0)
        .max(6);
    out.line(&format!(
        "{:<width$}  {:>14}  {:>15}  {:>14}  {:>11}",
        "client", "daily requests", "daily cloud USD", "requests today", "cloud today"
    ));
    for c in &config.clients {
        let t = use_of(&c.name);
        out.line(&format!(
            "{:<width$}  {:>14}  {:>15}  {:>14}  {:>11}",
            c.name,
            c.daily_requests.map_or("-".to_owned(), |n| n.to_string()),
            c.daily_cloud_usd
                .map_or("-".to_owned(), |u| format!("${u:.2}")),
            t.requests,
            format!("${:.2}", t.cloud_cost_usd),
        ));
    }
    Ok(Outcome::Success)
}

fn today_json(t: &Totals) -> serde_json::Value {
    json!({
        "requests": t.requests,
        "input_tokens": t.input_tokens,
        "output_tokens": t.output_tokens,
        "cloud_usd": t.cloud_cost_usd,
        "saved_usd": t.savings_usd,
    })
}
