//! `ccr-setup up`: find or start Ollama with the configured context, pull the model,
//! smoke-test it, record the effective context, then exec into the proxy.
//!
//! Every step prints one line (`✓`/`✗`, what happened, how long it took), or one JSON
//! object per line with `--json`. The work itself lives in `crate::ollama`; this file
//! only sequences the steps and prints.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};
use url::Url;

use super::{Context, Outcome};
use crate::cli::UpArgs;
use crate::config::{Config, ConfigError, ConfigFile, OllamaSettings};
use crate::ollama::disk::{self, human_bytes, SizeSource};
use crate::ollama::owner::{self, Owner};
use crate::ollama::pull::{self, PullEvent, PullOptions};
use crate::ollama::serve;
use crate::ollama::smoke::{self, ChatMetrics};
use crate::ollama::{self as ol, OllamaClient};
use crate::service;

/// How long a freshly started `ollama serve` may take to answer `/api/version`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub fn run(ctx: &Context, args: UpArgs) -> anyhow::Result<Outcome> {
    let out = Printer {
        json: args.json,
        quiet: ctx.quiet,
    };
    let (file, config, mut settings) = load_settings(ctx)?;
    if let Some(m) = &args.model {
        settings.model = m.clone();
    }
    if let Some(c) = args.context_length {
        settings.context_length = c;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let up = Up {
        args: &args,
        settings,
        out: &out,
        file,
        config: config.clone(),
        config_path: ctx.config_path.clone(),
    };
    let outcome = rt.block_on(up.run())?;
    drop(rt);
    if outcome != Outcome::Success || args.no_exec {
        return Ok(outcome);
    }
    if let Some(outcome) = restart_proxy_service(config.as_ref(), &out) {
        return Ok(outcome);
    }
    exec_proxy(ctx, &out)
}

/// The config file (when there is one) and the Ollama settings it gives.
fn load_settings(
    ctx: &Context,
) -> anyhow::Result<(Option<ConfigFile>, Option<Config>, OllamaSettings)> {
    match ConfigFile::load(&ctx.config_path) {
        Ok(file) => {
            let cfg = file.resolve()?;
            let settings = cfg.ollama.clone();
            Ok((Some(file), Some(cfg), settings))
        }
        Err(ConfigError::NotFound { .. }) => Ok((None, None, OllamaSettings::default())),
        Err(e) => Err(e.into()),
    }
}

/// Prints step lines as text or JSON.
struct Printer {
    json: bool,
    quiet: bool,
}

impl Printer {
    fn ok(&self, step: &str, detail: &str, took: Duration, extra: Value) {
        if self.json {
            self.json_line(step, true, detail, took, extra);
        } else if !self.quiet {
            println!("✓ {step:<10} {detail} ({})", secs(took));
        }
    }

    /// A step that was deliberately not done; never shown as success.
    fn skip(&self, step: &str, detail: &str) {
        if self.json {
            println!(
                "{}",
                json!({"step": step, "ok": Value::Null, "skipped": true, "detail": detail})
            );
        } else if !self.quiet {
            println!("– {step:<10} {detail}");
        }
    }

    fn fail(&self, step: &str, detail: &str, fix: &str, took: Duration) {
        if self.json {
            self.json_line(step, false, detail, took, json!({"fix": fix}));
        } else {
            println!("✗ {step:<10} {detail} ({})", secs(took));
            if !fix.is_empty() {
                println!("    fix: {fix}");
            }
        }
    }

    fn line(&self, text: &str) {
        if !self.json {
            println!("{text}");
        }
    }

    fn json_line(&self, step: &str, ok: bool, detail: &str, took: Duration, extra: Value) {
        let mut v = json!({"step": step, "ok": ok, "detail": detail, "seconds": (took.as_secs_f64() * 1000.0).round() / 1000.0});
        if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), extra) {
            obj.extend(more);
        }
        println!("{v}");
    }
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 60.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!("{s:.2}s")
    }
}

struct Up<'a> {
    args: &'a UpArgs,
    settings: OllamaSettings,
    out: &'a Printer,
    file: Option<ConfigFile>,
    config: Option<Config>,
    config_path: std::path::PathBuf,
}

/// Stop the run: the step already printed why.
struct Stop;

impl Up<'_> {
    async fn run(mut self) -> anyhow::Result<Outcome> {
        match self.steps().await {
            Ok(()) => Ok(Outcome::Success),
            Err(Stop) => Ok(Outcome::Failed),
        }
    }

    async fn steps(&mut self) -> Result<(), Stop> {
        let base = ol::base_url_from_env();
        let client = OllamaClient::new(base.clone());
        let model = self.settings.model.clone();
        let wanted = self.settings.context_length;

        let (owner, version) = self.ensure_server(&client).await?;
        self.check_version(&version, &model)?;
        if !owner.is_ours() && !self.args.accept_context {
            self.precheck_foreign_context(&client, &owner).await?;
        }
        self.ensure_model(&client, &base).await?;
        if !self.args.no_smoke {
            self.check_tools(&client).await?;
        }
        let effective = self.load_and_check_context(&client, &owner).await?;
        if self.args.no_smoke {
            self.out.skip("smoke", "skipped (--no-smoke)");
        } else {
            self.smoke_direct(&client, &base).await?;
            self.smoke_proxy(&base).await?;
        }
        self.record_context(&base, effective.filter(|_| true), wanted);
        Ok(())
    }

    /// Step 1: a server answering (reuse it, whoever owns it) or start ours.
    async fn ensure_server(&self, client: &OllamaClient) -> Result<(Owner, String), Stop> {
        let start = Instant::now();
        let base = client.base_url().clone();
        let wanted = self.settings.context_length;
        match client.version().await {
            Ok(version) => {
                let owner = owner::detect(&base);
                if let Owner::Ours(ours) = &owner {
                    if ours.context_length != 0 && ours.context_length != wanted {
                        // Ours, started with another context: ours to restart.
                        if !serve::stop_owned(ours, Duration::from_secs(10)).await {
                            self.out.fail(
                                "ollama",
                                &format!(
                                    "our Ollama (pid {}) did not stop to apply the new context",
                                    ours.pid
                                ),
                                "run `ccr-setup stop --all`, then `ccr-setup up` again",
                                start.elapsed(),
                            );
                            return Err(Stop);
                        }
                        return self.start_server(client, start).await;
                    }
                }
                self.out.ok(
                    "ollama",
                    &format!("running at {} ({})", display_url(&base), owner.describe()),
                    start.elapsed(),
                    json!({"url": display_url(&base), "owner": owner.describe(), "started": false}),
                );
                Ok((owner, version))
            }
            Err(e) if e.is_unreachable() && ol::is_local(&base) => {
                // Ours is alive but not answering yet (still starting): wait for it
                // rather than start a second server that would fail on the port.
                if let Some(ours) = serve::owned_server_at(&base) {
                    if let Ok(version) =
                        serve::wait_until_ready(client, Some(ours.pid), READY_TIMEOUT).await
                    {
                        self.out.ok(
                            "ollama",
                            &format!(
                                "running at {} (ours, pid {}, was starting)",
                                display_url(&base),
                                ours.pid
                            ),
                            start.elapsed(),
                            json!({"url": display_url(&base), "owner": "ours", "started": false}),
                        );
                        return Ok((Owner::Ours(ours), version));
                    }
                }
                self.start_server(client, start).await
            }
            Err(e) => {
                let fix = if ol::is_local(&base) {
                    "something answers on Ollama's port but not like Ollama: stop it, or set OLLAMA_HOST to where Ollama runs".to_owned()
                } else {
                    format!(
                        "start Ollama on {} or unset OLLAMA_HOST to use a local one",
                        display_url(&base)
                    )
                };
                self.out
                    .fail("ollama", &e.to_string(), &fix, start.elapsed());
                Err(Stop)
            }
        }
    }

    async fn start_server(
        &self,
        client: &OllamaClient,
        start: Instant,
    ) -> Result<(Owner, String), Stop> {
        let base = client.base_url().clone();
        let mut env: Vec<(String, String)> = self
            .settings
            .tuned_env()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        let host = std::env::var("OLLAMA_HOST")
            .ok()
            .filter(|h| !h.trim().is_empty())
            .unwrap_or_else(|| format!("127.0.0.1:{}", ol::host::DEFAULT_PORT));
        env.push(("OLLAMA_HOST".to_owned(), host));
        if let Some(result) = self.start_our_service(client, start).await {
            return result;
        }
        let owned = match serve::spawn_serve(&env, &base, self.settings.context_length) {
            Ok(c) => c,
            Err(e) => {
                let fix = match e {
                        serve::ServeError::NotInstalled => {
                            "run `ccr-setup init` (it installs Ollama), or see https://ollama.com/download"
                        }
                        _ => "see the error above",
                    };
                self.out.fail(
                    "ollama",
                    &format!("cannot start Ollama: {e}"),
                    fix,
                    start.elapsed(),
                );
                return Err(Stop);
            }
        };
        match serve::wait_until_ready(client, Some(owned.pid), READY_TIMEOUT).await {
            Ok(version) => {
                self.out.ok(
                    "ollama",
                    &format!(
                        "started `ollama serve` at {} (pid {}, OLLAMA_CONTEXT_LENGTH={}), log {}",
                        display_url(&base),
                        owned.pid,
                        owned.context_length,
                        serve::log_path().display()
                    ),
                    start.elapsed(),
                    json!({"url": display_url(&base), "owner": "ours", "started": true, "pid": owned.pid}),
                );
                Ok((Owner::Ours(owned), version))
            }
            Err(e) => {
                self.out.fail(
                    "ollama",
                    &e.to_string(),
                    "read the log above; `ollama serve` must start on its own for `up` to work",
                    start.elapsed(),
                );
                Err(Stop)
            }
        }
    }

    /// Prefer our installed Ollama service (from `init --service`) over a child: it
    /// carries the same tuned environment and survives logout. None when not installed.
    async fn start_our_service(
        &self,
        client: &OllamaClient,
        start: Instant,
    ) -> Option<Result<(Owner, String), Stop>> {
        let manager = service::Manager::detect()?;
        let layout = service::Layout::current();
        let kind = service::ServiceKind::Ollama;
        if !layout.service_file(manager, kind).is_file() {
            return None;
        }
        let name = kind.service_name(manager);
        let commands = service::start_commands(manager, &layout, kind);
        for c in &commands {
            match service::run_command(c) {
                Ok(r) if r.success => {}
                Ok(r) => {
                    self.out.fail(
                        "ollama",
                        &format!("`{c}` failed: {}", r.stderr.trim()),
                        &format!("check the service: `ccr-setup doctor`, or re-run `ccr-setup init` to reinstall {name}"),
                        start.elapsed(),
                    );
                    return Some(Err(Stop));
                }
                Err(e) => {
                    self.out.fail(
                        "ollama",
                        &e.to_string(),
                        "re-run `ccr-setup init`",
                        start.elapsed(),
                    );
                    return Some(Err(Stop));
                }
            }
        }
        Some(
            match serve::wait_until_ready(client, None, READY_TIMEOUT).await {
                Ok(version) => {
                    self.out.ok(
                    "ollama",
                    &format!("started our service {name} at {}", display_url(client.base_url())),
                    start.elapsed(),
                    json!({"url": display_url(client.base_url()), "owner": "our service", "started": true}),
                );
                    Ok((Owner::OurService { unit: name }, version))
                }
                Err(e) => {
                    self.out.fail(
                        "ollama",
                        &e.to_string(),
                        &format!(
                            "see the service's log (`ccr-setup status`); {name} must start Ollama"
                        ),
                        start.elapsed(),
                    );
                    Err(Stop)
                }
            },
        )
    }

    fn check_version(&self, version: &str, model: &str) -> Result<(), Stop> {
        let start = Instant::now();
        match ol::version::check(version, model) {
            Ok(()) => {
                let need = ol::version::minimum_for_model(model)
                    .map(|m| format!(" ({model} needs ≥ {m})"))
                    .unwrap_or_default();
                self.out.ok(
                    "version",
                    &format!("Ollama {version}{need}"),
                    start.elapsed(),
                    json!({"version": version}),
                );
                Ok(())
            }
            Err(min) => {
                self.out.fail(
                    "version",
                    &format!("Ollama {version} is too old: {model} needs ≥ {min}"),
                    "update Ollama: `brew upgrade ollama`, Ollama.app → Check for Updates, or `curl -fsSL https://ollama.com/install.sh | sh`; then `ccr-setup stop --all` and `ccr-setup up`",
                    start.elapsed(),
                );
                Err(Stop)
            }
        }
    }

    /// Step 2: pull the model unless `/api/tags` has it.
    async fn ensure_model(&self, client: &OllamaClient, base: &Url) -> Result<(), Stop> {
        let start = Instant::now();
        let model = &self.settings.model;
        match client.has_model(model).await {
            Ok(true) => {
                self.out.ok(
                    "model",
                    &format!("{model} is installed"),
                    start.elapsed(),
                    json!({}),
                );
                return Ok(());
            }
            Ok(false) => {}
            Err(e) => {
                self.out.fail(
                    "model",
                    &e.to_string(),
                    "check that Ollama is healthy: `ollama list`",
                    start.elapsed(),
                );
                return Err(Stop);
            }
        }
        let expected = if ol::is_local(base) {
            self.check_disk(model).await?
        } else {
            None
        };
        self.pull(client, model, expected).await
    }

    /// Refuse a pull that cannot fit. Returns the manifest's size when known, so the
    /// progress bar shows the whole download from the start (Ollama reports each layer's
    /// total only when it reaches that layer).
    async fn check_disk(&self, model: &str) -> Result<Option<u64>, Stop> {
        let start = Instant::now();
        let dir = disk::models_dir();
        let (probed, free) = match disk::free_bytes(&dir) {
            Ok(x) => x,
            Err(e) => {
                self.out.skip("disk", &format!("not checked: {e}"));
                return Ok(None);
            }
        };
        match disk::required_bytes(model).await {
            Some((need, source)) if need > free => {
                let from = match source {
                    SizeSource::Manifest => "its manifest",
                    SizeSource::KnownDefault => "its known size",
                };
                self.out.fail(
                    "disk",
                    &format!(
                        "{model} needs {} (from {from}) but only {} is free in {}",
                        human_bytes(need),
                        human_bytes(free),
                        probed.display()
                    ),
                    &format!(
                        "free at least {} there, or point OLLAMA_MODELS at a disk with room, then run `ccr-setup up` again",
                        human_bytes(need - free)
                    ),
                    start.elapsed(),
                );
                Err(Stop)
            }
            Some((need, source)) => {
                let from = match source {
                    SizeSource::Manifest => "manifest",
                    SizeSource::KnownDefault => "known size",
                };
                self.out.ok(
                    "disk",
                    &format!(
                        "{} needed ({from}), {} free in {}",
                        human_bytes(need),
                        human_bytes(free),
                        probed.display()
                    ),
                    start.elapsed(),
                    json!({"need_bytes": need, "free_bytes": free}),
                );
                Ok((source == SizeSource::Manifest).then_some(need))
            }
            None => {
                self.out.skip(
                    "disk",
                    &format!(
                        "size of {model} unknown (registry not reachable); {} free in {}",
                        human_bytes(free),
                        probed.display()
                    ),
                );
                Ok(None)
            }
        }
    }

    async fn pull(
        &self,
        client: &OllamaClient,
        model: &str,
        expected_total: Option<u64>,
    ) -> Result<(), Stop> {
        let start = Instant::now();
        let opts = PullOptions {
            stall_timeout: Duration::from_secs(self.args.stall_timeout.max(1)),
            ..PullOptions::default()
        };
        let mut view = PullView::new(model, self.out, opts.stall_timeout, expected_total);
        let result = {
            let mut on_event = |ev: PullEvent| view.event(ev);
            tokio::select! {
                r = pull::pull_model(client, model, opts, &mut on_event) => Some(r),
                _ = tokio::signal::ctrl_c() => None,
            }
        };
        view.finish();
        match result {
            Some(Ok(summary)) => {
                let restarts = match summary.restarts {
                    0 => String::new(),
                    n => format!(", resumed after {n} stall(s)"),
                };
                self.out.ok(
                    "pull",
                    &format!(
                        "{model}: {} in {} layer(s){restarts}",
                        human_bytes(summary.total_bytes),
                        summary.layers
                    ),
                    start.elapsed(),
                    json!({"bytes": summary.total_bytes, "layers": summary.layers, "restarts": summary.restarts}),
                );
                Ok(())
            }
            Some(Err(e)) => {
                self.out
                    .fail("pull", &format!("{model}: {e}"), e.hint(), start.elapsed());
                Err(Stop)
            }
            None => {
                self.out.fail(
                    "pull",
                    &format!("{model}: stopped by Ctrl-C"),
                    "the downloaded part is kept: the next `ccr-setup up` resumes the pull",
                    start.elapsed(),
                );
                Err(Stop)
            }
        }
    }

    async fn check_tools(&self, client: &OllamaClient) -> Result<(), Stop> {
        let start = Instant::now();
        let model = &self.settings.model;
        match smoke::check_tools(client, model).await {
            Ok(d) => {
                let trained = d
                    .trained_context
                    .map(|t| format!(", trained context {t}"))
                    .unwrap_or_default();
                self.out.ok(
                    "tools",
                    &format!("{model} supports tools{trained}"),
                    start.elapsed(),
                    json!({"capabilities": d.capabilities, "trained_context": d.trained_context}),
                );
                Ok(())
            }
            Err(e) => {
                self.out.fail(
                    "tools",
                    &format!("smoke test: {e}"),
                    "set Ollama.model in the config (or --model) to a model with tools",
                    start.elapsed(),
                );
                Err(Stop)
            }
        }
    }

    /// Before pulling gigabytes for a server we do not own: if a model it has loaded
    /// already shows a context below ours while that model could hold more, the
    /// server's setting is too small, and the pull would be wasted. Say so now.
    async fn precheck_foreign_context(
        &self,
        client: &OllamaClient,
        owner: &Owner,
    ) -> Result<(), Stop> {
        let start = Instant::now();
        let wanted = u64::from(self.settings.context_length);
        let Ok(loaded) = client.ps().await else {
            return Ok(());
        };
        for m in loaded {
            let Some(ctx) = m.context_length.filter(|c| *c < wanted) else {
                continue;
            };
            let trained = client
                .show(&m.name)
                .await
                .ok()
                .and_then(|d| d.trained_context);
            if trained.is_some_and(|t| t > ctx) {
                self.out.fail(
                    "context",
                    &format!(
                        "{} runs {} with a {ctx}-token context (the model holds {}), below the configured {wanted}",
                        owner.describe(),
                        m.name,
                        trained.unwrap_or_default()
                    ),
                    &owner.context_fix(ctx, self.settings.context_length),
                    start.elapsed(),
                );
                return Err(Stop);
            }
        }
        Ok(())
    }

    /// Load the model and compare the context that took effect with the configured one.
    async fn load_and_check_context(
        &self,
        client: &OllamaClient,
        owner: &Owner,
    ) -> Result<Option<u64>, Stop> {
        let start = Instant::now();
        let model = &self.settings.model;
        let wanted = self.settings.context_length;
        let (took, effective) =
            match smoke::load_and_read_context(client, model, &self.settings.keep_alive).await {
                Ok(x) => x,
                Err(e) => {
                    self.out.fail(
                        "load",
                        &format!("loading {model}: {e}"),
                        &format!("see `ollama ps` and {}", serve::log_path().display()),
                        start.elapsed(),
                    );
                    return Err(Stop);
                }
            };
        let Some(effective) = effective else {
            self.out.skip(
                "context",
                &format!("{model} loaded in {} but this Ollama does not report its context in /api/ps; cannot verify {wanted}", secs(took)),
            );
            return Ok(None);
        };
        let extra = json!({"load_seconds": took.as_secs_f64(), "context_length": effective, "wanted": wanted});
        if effective >= u64::from(wanted) {
            self.out.ok(
                "load",
                &format!(
                    "{model} loaded in {}, context {effective} tokens (≥ {wanted})",
                    secs(took)
                ),
                start.elapsed(),
                extra,
            );
            return Ok(Some(effective));
        }
        if self.args.accept_context {
            self.out.ok(
                "load",
                &format!("{model} loaded in {}, context {effective} < {wanted} accepted (--accept-context)", secs(took)),
                start.elapsed(),
                extra,
            );
            return Ok(Some(effective));
        }
        let detail = format!(
            "{model} runs with a {effective}-token context on {}, below the configured {wanted}",
            owner.describe()
        );
        let fix = match owner {
            Owner::Ours(_) | Owner::OurService { .. } => format!(
                "{model} is limited to {effective} tokens here (its trained context or memory); set Ollama.context_length to {effective} in {}, or run `ccr-setup up --accept-context`",
                self.config_path.display()
            ),
            other => other.context_fix(effective, wanted),
        };
        self.out.fail("context", &detail, &fix, start.elapsed());
        Err(Stop)
    }

    async fn smoke_direct(&self, client: &OllamaClient, base: &Url) -> Result<(), Stop> {
        let model = &self.settings.model;
        let url = openai_url(base);
        let start = Instant::now();
        match smoke::chat_probe(client.http(), url.clone(), model).await {
            Ok(m) => self
                .out
                .ok("chat", &metrics_text(&m), start.elapsed(), metrics_json(&m)),
            Err(e) => {
                self.out.fail(
                    "chat",
                    &format!("smoke test, chat completion direct to Ollama: {e}"),
                    &format!("see {}", serve::log_path().display()),
                    start.elapsed(),
                );
                return Err(Stop);
            }
        }
        let start = Instant::now();
        match smoke::tool_probe(client.http(), url, model).await {
            Ok(_) => {
                self.out.ok(
                    "tool-call",
                    "get_time called (direct to Ollama)",
                    start.elapsed(),
                    json!({}),
                );
                Ok(())
            }
            Err(e) => {
                self.out.fail(
                    "tool-call",
                    &format!("smoke test, tool call direct to Ollama: {e}"),
                    "Claude Code cannot work without tool calls: update Ollama, or choose a model that calls tools reliably",
                    start.elapsed(),
                );
                Err(Stop)
            }
        }
    }

    /// The same two requests through the bundled proxy, started in-process on a free
    /// loopback port with the user's config (explicit `provider,model` routing, so the
    /// requests go to this Ollama whatever the Router says). The ledger is off: smoke
    /// requests are not usage.
    async fn smoke_proxy(&self, base: &Url) -> Result<(), Stop> {
        use crate::proxy::reload::LiveConfig;
        use crate::proxy::server::{self, AppState, ServerOptions};
        let start = Instant::now();
        let (Some(file), Some(config)) = (self.file.as_ref(), self.config.as_ref()) else {
            self.out.skip(
                "proxy-chat",
                &format!(
                    "not run: no config at {} (run `ccr-setup init`)",
                    self.config_path.display()
                ),
            );
            return Ok(());
        };
        let Some(idx) = ollama_provider_index(&file.doc, base) else {
            self.out.skip(
                "proxy-chat",
                &format!(
                    "not run: no provider in {} points at {}",
                    file.path.display(),
                    display_url(base)
                ),
            );
            return Ok(());
        };
        let provider = config.providers[idx].name.clone();
        let model = format!("{provider},{}", self.settings.model);
        let fail = |step: &str, detail: String| {
            self.out.fail(
                step,
                &detail,
                "run `ccr-setup proxy -v` and `ccr-setup doctor` to see why the proxy fails",
                start.elapsed(),
            );
            Stop
        };
        let state = AppState::new(
            LiveConfig::new(config.clone()),
            crate::ledger::LedgerHandle::disabled(),
            ServerOptions::default(),
        )
        .map_err(|e| fail("proxy-chat", format!("smoke test through the proxy: {e}")))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| {
                fail(
                    "proxy-chat",
                    format!("smoke test through the proxy: cannot listen on loopback: {e}"),
                )
            })?;
        let addr = listener
            .local_addr()
            .map_err(|e| fail("proxy-chat", e.to_string()))?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let _ = axum::serve(server::nodelay_listener(listener), server::app(state))
                .with_graceful_shutdown(async {
                    let _ = stop_rx.await;
                })
                .await;
        });
        let url = Url::parse(&format!("http://{addr}/v1/messages")).expect("valid url");
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("static client");
        let key = config.api_key.as_deref();
        let result = async {
            let t = Instant::now();
            let m = smoke::messages_chat_probe(&http, url.clone(), &model, key)
                .await
                .map_err(|e| {
                    (
                        "proxy-chat",
                        format!("smoke test, chat through the proxy: {e}"),
                        t,
                    )
                })?;
            self.out.ok(
                "proxy-chat",
                &metrics_text(&m).replace("direct to Ollama", "through the proxy"),
                t.elapsed(),
                metrics_json(&m),
            );
            let t = Instant::now();
            smoke::messages_tool_probe(&http, url.clone(), &model, key)
                .await
                .map_err(|e| {
                    (
                        "proxy-tool",
                        format!("smoke test, tool call through the proxy: {e}"),
                        t,
                    )
                })?;
            self.out.ok(
                "proxy-tool",
                "get_time called (through the proxy)",
                t.elapsed(),
                json!({}),
            );
            Ok::<(), (&str, String, Instant)>(())
        }
        .await;
        let _ = stop_tx.send(());
        let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
        result.map_err(|(step, detail, t)| {
            self.out.fail(step, &detail, "run `ccr-setup proxy -v` in one terminal and `ccr-setup code` in another to see the failing request", t.elapsed());
            Stop
        })
    }

    /// Record the effective context as `context_window` on the config's Ollama provider.
    fn record_context(&mut self, base: &Url, effective: Option<u64>, _wanted: u32) {
        let start = Instant::now();
        let Some(effective) = effective else { return };
        let Some(file) = self.file.as_mut() else {
            self.out.skip(
                "config",
                &format!(
                    "no config at {}; run `ccr-setup init` to create one",
                    self.config_path.display()
                ),
            );
            return;
        };
        let Some(idx) = ollama_provider_index(&file.doc, base) else {
            self.out.skip(
                "config",
                &format!(
                    "no provider in {} points at {}; context_window not recorded",
                    file.path.display(),
                    display_url(base)
                ),
            );
            return;
        };
        let provider = &mut file.doc["Providers"][idx];
        if provider.get("context_window").and_then(Value::as_u64) == Some(effective) {
            self.out.ok(
                "config",
                &format!("context_window {effective} already recorded"),
                start.elapsed(),
                json!({"changed": false}),
            );
            return;
        }
        provider["context_window"] = json!(effective);
        let name = provider
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        match file.save() {
            Ok(_) => self.out.ok(
                "config",
                &format!(
                    "recorded context_window {effective} on provider {name} in {}",
                    file.path.display()
                ),
                start.elapsed(),
                json!({"changed": true}),
            ),
            Err(e) => self.out.fail(
                "config",
                &format!("cannot write {}: {e}", file.path.display()),
                "check the file's permissions",
                start.elapsed(),
            ),
        }
    }
}

/// The index of the provider whose endpoint is the Ollama at `base` (same host and
/// port; `localhost` and `127.0.0.1` count as the same), else one named `ollama`.
fn ollama_provider_index(doc: &Value, base: &Url) -> Option<usize> {
    let providers = doc.get("Providers")?.as_array()?;
    let norm = |h: &str| {
        if h == "localhost" {
            "127.0.0.1".to_owned()
        } else {
            h.to_owned()
        }
    };
    let want = (base.host_str().map(norm), base.port_or_known_default());
    providers
        .iter()
        .position(|p| {
            p.get("api_base_url")
                .and_then(Value::as_str)
                .and_then(|u| Url::parse(u).ok())
                .is_some_and(|u| (u.host_str().map(norm), u.port_or_known_default()) == want)
        })
        .or_else(|| {
            providers
                .iter()
                .position(|p| p.get("name").and_then(Value::as_str) == Some("ollama"))
        })
}

fn openai_url(base: &Url) -> Url {
    let mut u = base.clone();
    let prefix = u.path().trim_end_matches('/').to_owned();
    u.set_path(&format!("{prefix}/v1/chat/completions"));
    u
}

fn display_url(u: &Url) -> String {
    u.as_str().trim_end_matches('/').to_owned()
}

fn metrics_text(m: &ChatMetrics) -> String {
    let speed = m
        .tokens_per_second()
        .map(|t| format!(", {t:.1} tok/s"))
        .unwrap_or_default();
    format!(
        "answered (direct to Ollama): first token {}, {} tokens{speed}",
        secs(m.time_to_first_token),
        m.output_tokens
    )
}

fn metrics_json(m: &ChatMetrics) -> Value {
    json!({
        "ttft_seconds": m.time_to_first_token.as_secs_f64(),
        "output_tokens": m.output_tokens,
        "tokens_per_second": m.tokens_per_second(),
    })
}

/// Pull progress: an indicatif bar on a terminal; otherwise (or with -q) a line per 10%.
struct PullView<'a> {
    model: String,
    out: &'a Printer,
    bar: Option<ProgressBar>,
    last_decile: Option<u64>,
    stall: Duration,
    /// The manifest's size, when the disk check read it.
    expected_total: u64,
}

impl<'a> PullView<'a> {
    fn new(model: &str, out: &'a Printer, stall: Duration, expected_total: Option<u64>) -> Self {
        let tty = std::io::stdout().is_terminal();
        let bar = (tty && !out.quiet && !out.json).then(|| {
            let bar = ProgressBar::with_draw_target(Some(expected_total.unwrap_or(0)), ProgressDrawTarget::stdout());
            bar.set_style(
                ProgressStyle::with_template(
                    "  {spinner} {prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}\n    {msg}",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            bar.set_prefix(format!("pulling {model}"));
            bar.set_message("pulling manifest");
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        PullView {
            model: model.to_owned(),
            out,
            bar,
            last_decile: None,
            stall,
            expected_total: expected_total.unwrap_or(0),
        }
    }

    fn event(&mut self, ev: PullEvent) {
        match ev {
            PullEvent::Progress { completed, total } => {
                if let Some(bar) = &self.bar {
                    bar.set_length(total.max(self.expected_total));
                    bar.set_position(completed);
                    bar.set_message("downloading layers");
                    return;
                }
                if total == 0 {
                    return;
                }
                let decile = completed * 10 / total;
                if self.last_decile.is_none_or(|d| decile > d) {
                    self.last_decile = Some(decile);
                    if self.out.json {
                        println!(
                            "{}",
                            json!({"step": "pull", "event": "progress", "percent": decile * 10, "completed": completed, "total": total})
                        );
                    } else {
                        println!(
                            "  pull {}: {:>3}% ({} of {})",
                            self.model,
                            decile * 10,
                            human_bytes(completed),
                            human_bytes(total)
                        );
                    }
                    let _ = std::io::stdout().flush();
                }
            }
            PullEvent::Phase(phase) => match &self.bar {
                Some(bar) => bar.set_message(phase),
                None if self.out.json => {
                    println!(
                        "{}",
                        json!({"step": "pull", "event": "phase", "phase": phase})
                    )
                }
                // -q keeps only the 10 % lines.
                None if self.out.quiet => {}
                None => self.out.line(&format!("  pull {}: {phase}", self.model)),
            },
            PullEvent::Restarting {
                attempt,
                max,
                completed,
            } => {
                let text = format!(
                    "  pull {}: no progress for {} s at {}; re-issuing the pull, which resumes ({attempt}/{max})",
                    self.model,
                    self.stall.as_secs(),
                    human_bytes(completed)
                );
                match &self.bar {
                    Some(bar) => bar.println(text),
                    None if self.out.json => println!(
                        "{}",
                        json!({"step": "pull", "event": "restart", "attempt": attempt, "max": max, "completed": completed})
                    ),
                    None => self.out.line(&text),
                }
            }
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// Step 4 when `init` installed our proxy service: restart it (so it serves with the
/// current config) instead of running a second proxy here. None when not installed.
fn restart_proxy_service(config: Option<&Config>, out: &Printer) -> Option<Outcome> {
    let manager = service::Manager::detect()?;
    let layout = service::Layout::current();
    let kind = service::ServiceKind::Proxy;
    if !layout.service_file(manager, kind).is_file() {
        return None;
    }
    let start = Instant::now();
    let name = kind.service_name(manager);
    // systemd's `start` leaves a running unit alone; `restart` picks up the new config.
    let commands = match manager {
        service::Manager::Systemd => vec![service::ServiceCommand::new(
            "systemctl",
            &["--user", "restart", &name],
        )],
        service::Manager::Launchd => service::start_commands(manager, &layout, kind),
    };
    for c in &commands {
        let failed = match service::run_command(c) {
            Ok(r) if r.success => None,
            Ok(r) => Some(r.stderr.trim().to_owned()),
            Err(e) => Some(e.to_string()),
        };
        if let Some(why) = failed {
            out.fail(
                "proxy",
                &format!("`{c}` failed: {why}"),
                &format!("check {name} with `ccr-setup doctor`, or run `ccr-setup proxy` in the foreground"),
                start.elapsed(),
            );
            return Some(Outcome::Failed);
        }
    }
    let listen = config
        .map(|c| format!("http://{}:{}", c.host, c.port))
        .unwrap_or_else(|| "its configured address".to_owned());
    out.ok(
        "proxy",
        &format!("restarted our service {name}; it listens on {listen}"),
        start.elapsed(),
        json!({"service": name, "listen": listen}),
    );
    Some(Outcome::Success)
}

/// Step 4: replace this process with the proxy (same pid), as `ccr-setup proxy` would run.
fn exec_proxy(ctx: &Context, out: &Printer) -> anyhow::Result<Outcome> {
    use std::os::unix::process::CommandExt;
    if !ctx.config_path.exists() {
        out.fail(
            "proxy",
            &format!("no config at {}", ctx.config_path.display()),
            "run `ccr-setup init` to write one, or pass --no-exec",
            Duration::ZERO,
        );
        return Ok(Outcome::Failed);
    }
    let exe = std::env::current_exe().context("cannot find our own executable")?;
    out.line(&format!(
        "→ proxy      exec `{} proxy --config {}`",
        exe.display(),
        ctx.config_path.display()
    ));
    let _ = std::io::stdout().flush();
    let err = std::process::Command::new(&exe)
        .arg("proxy")
        .arg("--config")
        .arg(&ctx.config_path)
        .exec();
    Err(anyhow::anyhow!("cannot exec {}: {err}", exe.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_provider_serving_this_ollama() {
        let doc = json!({"Providers": [
            {"name": "cloud", "api_base_url": "https://api.anthropic.com/v1/messages"},
            {"name": "local", "api_base_url": "http://localhost:11434/v1/chat/completions"}
        ]});
        let base = Url::parse("http://127.0.0.1:11434/").unwrap();
        assert_eq!(ollama_provider_index(&doc, &base), Some(1));
        let other = Url::parse("http://127.0.0.1:9999/").unwrap();
        assert_eq!(ollama_provider_index(&doc, &other), None);
        let named = json!({"Providers": [{"name": "ollama", "api_base_url": "http://10.0.0.2:11434/v1/chat/completions"}]});
        assert_eq!(ollama_provider_index(&named, &other), Some(0));
    }
}
