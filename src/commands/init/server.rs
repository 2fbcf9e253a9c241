//! `init --server`: the team's GPU box. Find the model server (or take the one named),
//! write a config in server mode, a systemd unit for the proxy and a Caddyfile for
//! TLS, then say what comes next (client keys, Caddy, starting the unit).
//!
//! The engine is the operator's: it was found running (or named), so `init` neither
//! installs nor starts it and writes no Ollama service. The unit is written but not
//! started: in server mode the proxy refuses to run before the first client key
//! exists (`ccr-setup clients add NAME`).

use std::time::Duration;

use anyhow::Context as _;
use dialoguer::theme::ColorfulTheme;

use super::super::prompt::Prompter;
use super::super::shared::{block_on, resolve_manager};
use super::super::{Context, Outcome};
use super::plan::Change;
use super::{load_existing, tilde};
use crate::cli::{EngineChoice, InitArgs, TlsChoice};
use crate::config::{ConfigFile, DEFAULT_PORT};
use crate::diagnostic::Diagnostic;
use crate::env_vars::EnvVars;
use crate::fsutil;
use crate::output::Printer;
use crate::provision::caddy::{self, TlsMode};
use crate::provision::engine::{self, Engine, EngineError, EngineKind};
use crate::provision::team_config::{self, ServerAnswers};
use crate::service::{self, Layout, ServiceSpec};

/// How long one engine probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) fn run(ctx: &Context, args: &InitArgs) -> anyhow::Result<Outcome> {
    let out = ctx.out;
    let prompter = Prompter::open(args.yes);
    let engine = find_engine(&out, &prompter, args)?;
    let model = args
        .model
        .clone()
        .or_else(|| engine.model.clone())
        .ok_or_else(|| EngineError::NoModel {
            url: engine.base.clone(),
            kind: engine.kind,
        })?;
    let context_window = args.context_length.or(engine.context_window);
    if context_window.is_none() {
        out.line(&format!("Note: {} did not report its context window (Ollama does once the model is loaded); pass --context-length N so the proxy can keep requests within it.", engine.kind.name()));
    }
    let existing = load_existing(ctx)?;
    let port = args
        .port
        .or_else(|| {
            existing
                .as_ref()
                .and_then(|f| crate::provision::router_config::current_port(&f.doc))
        })
        .unwrap_or(DEFAULT_PORT);
    let mut doc = existing
        .as_ref()
        .map(|f| f.doc.clone())
        .unwrap_or(serde_json::Value::Null);
    let answers = ServerAnswers {
        engine,
        model,
        context_window,
        port,
    };
    team_config::apply_server(&mut doc, &answers)?;
    let config = ConfigFile::new(&ctx.config_path, doc);
    let _ = super::check_resolves(ctx, &config, &["Clients", "ServerMode"])?;
    let caddyfile = caddyfile(&prompter, args, &ctx.config_path, port)?;
    let unit = unit(ctx, args)?;
    print_plan(&out, &config, existing.as_ref(), &caddyfile, unit.as_ref());
    if let Some(outcome) = super::consent(&out, &prompter, args.dry_run)? {
        return Ok(outcome);
    }
    super::write_config(&out, &config)?;
    for (path, text, mode) in [Some(&caddyfile), unit.as_ref()].into_iter().flatten() {
        fsutil::write_with_backup(path, text.as_bytes(), *mode)
            .with_context(|| format!("cannot write {}", path.display()))?;
        out.line(&format!("Wrote {}", tilde(path)));
    }
    next_steps(&out, &caddyfile.0, unit.is_some(), &answers);
    Ok(Outcome::Success)
}

/// The engine named by the flags, else the one found on a default port (asked when
/// several answer).
fn find_engine(out: &Printer, prompter: &Prompter, args: &InitArgs) -> anyhow::Result<Engine> {
    let kind = args.engine.map(|e| match e {
        EngineChoice::Vllm => EngineKind::Vllm,
        EngineChoice::LlamaServer => EngineKind::LlamaServer,
        EngineChoice::Ollama => EngineKind::Ollama,
    });
    let base = match (&args.engine_url, kind) {
        (Some(url), _) => Some(engine::engine_base(url)?),
        (None, Some(k)) => Some(format!("http://127.0.0.1:{}", k.default_port())),
        (None, None) => None,
    };
    if let Some(base) = base {
        let found = match kind {
            Some(k) => block_on(engine::expect(&base, k, PROBE_TIMEOUT))?,
            None => block_on(engine::identify(&base, PROBE_TIMEOUT)).ok_or_else(|| {
                EngineError::NoneFound {
                    probed: vec![base.clone()],
                }
            })?,
        };
        out.line(&format!("Engine: {}", describe(&found)));
        return Ok(found);
    }
    let ports = probe_ports();
    let found = block_on(engine::detect(&ports, PROBE_TIMEOUT));
    for port in &ports {
        match found.iter().find(|e| e.base.ends_with(&format!(":{port}"))) {
            Some(e) => out.line(&format!("Found {}", describe(e))),
            None => out.line(&format!("Nothing answers on 127.0.0.1:{port}")),
        }
    }
    let chosen = match (found.len(), prompter.term()) {
        (0, _) => {
            return Err(EngineError::NoneFound {
                probed: ports.iter().map(|p| format!("127.0.0.1:{p}")).collect(),
            }
            .into())
        }
        (1, _) | (_, None) => 0,
        (_, Some(term)) => dialoguer::Select::with_theme(&ColorfulTheme::default())
            .with_prompt("Which engine should the team use?")
            .items(&found.iter().map(describe).collect::<Vec<_>>())
            .default(0)
            .interact_on(term)?,
    };
    if found.len() > 1 && prompter.term().is_none() {
        out.line("Several engines answer; using the first (name one with --engine-url).");
    }
    Ok(found.into_iter().nth(chosen).expect("an index of found"))
}

/// The loopback ports probed for an engine.
fn probe_ports() -> Vec<u16> {
    let from_env = crate::env_vars::non_empty(EnvVars::CCR_SETUP_ENGINE_PORTS).map(|v| {
        v.split(',')
            .filter_map(|p| p.trim().parse().ok())
            .collect::<Vec<u16>>()
    });
    from_env.unwrap_or_else(|| EngineKind::ALL.iter().map(|k| k.default_port()).collect())
}

fn describe(e: &Engine) -> String {
    let mut s = format!("{} at {}", e.kind.name(), e.base);
    if let Some(m) = &e.model {
        s.push_str(&format!(" serving {m}"));
    }
    if let Some(w) = e.context_window {
        s.push_str(&format!(", {w}-token context per request"));
    }
    if let Some(n) = e.slots {
        s.push_str(&format!(", {n} slot{}", if n == 1 { "" } else { "s" }));
    }
    s
}

/// The Caddyfile beside the config: (path, text, mode).
fn caddyfile(
    prompter: &Prompter,
    args: &InitArgs,
    config_path: &std::path::Path,
    port: u16,
) -> anyhow::Result<(std::path::PathBuf, String, u32)> {
    let mode = match (args.tls, &args.domain) {
        (Some(TlsChoice::Internal), _) | (None, None) => TlsMode::Internal,
        (Some(TlsChoice::Acme), _) | (None, Some(_)) => TlsMode::Acme,
    };
    // A team server is a Linux box: its name is in /proc (or /etc/hostname).
    let hostname = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| {
            let name = std::fs::read_to_string(p).ok()?.trim().to_owned();
            (!name.is_empty()).then_some(name)
        })
        .unwrap_or_else(|| "localhost".into());
    let domain = match (&args.domain, prompter.term()) {
        (Some(d), _) => d.clone(),
        (None, _) if mode == TlsMode::Acme => {
            return Err(Diagnostic::new("--tls acme needs the public name laptops use")
                .with_hint("add --domain team.example.com (it must resolve to this box, with ports 80 and 443 reachable), or use --tls internal")
                .into())
        }
        (None, Some(term)) => dialoguer::Input::with_theme(&ColorfulTheme::default())
            .with_prompt("Name (or IP) laptops reach this server by")
            .default(hostname)
            .interact_text_on(term)?,
        (None, None) => hostname,
    };
    let path = config_path.with_file_name("Caddyfile");
    let text = caddy::render(&domain, &mode, port, &path).map_err(|e| {
        Diagnostic::new(e.to_string()).with_hint("pass --domain with a host name or IP address")
    })?;
    Ok((path, text, 0o644))
}

/// The proxy's service unit, when a service manager is in use.
fn unit(
    ctx: &Context,
    args: &InitArgs,
) -> anyhow::Result<Option<(std::path::PathBuf, String, u32)>> {
    let Some(manager) = resolve_manager(args.service_manager) else {
        return Ok(None);
    };
    let exe = std::env::current_exe().context("cannot locate the ccr-setup binary")?;
    let config = std::path::absolute(&ctx.config_path).unwrap_or(ctx.config_path.clone());
    let r = service::render(
        manager,
        &Layout::current(),
        &ServiceSpec::server_proxy(&exe, &config),
    )?;
    Ok(Some((r.path, r.contents, 0o644)))
}

fn print_plan(
    out: &Printer,
    config: &ConfigFile,
    existing: Option<&ConfigFile>,
    caddyfile: &(std::path::PathBuf, String, u32),
    unit: Option<&(std::path::PathBuf, String, u32)>,
) {
    let config_change = match existing {
        None => Change::Create,
        Some(f) if f.doc == config.doc => Change::Unchanged,
        Some(_) => Change::Update,
    };
    out.line("Plan:");
    out.line("  Write:");
    out.line(&format!(
        "    {:<9} {} (router config, server mode)",
        config_change.word(),
        tilde(&config.path)
    ));
    for (path, text, _) in [Some(caddyfile), unit].into_iter().flatten() {
        out.line(&format!(
            "    {:<9} {}",
            Change::of(path, text.as_bytes()).word(),
            tilde(path)
        ));
    }
    if unit.is_none() {
        out.line("  No service manager: run `ccr-setup proxy` under your own supervisor (--service-manager systemd writes a unit).");
    }
}

fn next_steps(out: &Printer, caddyfile: &std::path::Path, unit: bool, a: &ServerAnswers) {
    out.line(&format!(
        "\nDone: the proxy will serve {} from {} to the team, on 127.0.0.1:{} behind Caddy.",
        a.model,
        a.engine.kind.name(),
        a.port
    ));
    out.line("Next:");
    out.line("  1. ccr-setup clients add alice        (one key per person; printed once)");
    out.line(&format!(
        "  2. sudo cp {} /etc/caddy/Caddyfile && sudo systemctl reload caddy",
        caddyfile.display()
    ));
    if unit {
        out.line("  3. systemctl --user enable --now ccr-setup-proxy.service   (and `sudo loginctl enable-linger $USER` so it runs without a login)");
    } else {
        out.line("  3. ccr-setup proxy   (under your own supervisor)");
    }
    out.line("  4. on each laptop: ccr-setup init --join https://NAME   (docs/team.md)");
}
