//! `ccr-setup up`: find or start Ollama with the configured context, pull the model,
//! smoke-test it, record the effective context, then exec into the proxy.
//!
//! Every step prints one line (`✓`/`✗`, what happened, how long it took), or one JSON
//! object per line with `--json`. The work lives in `crate::ollama` (server lifecycle,
//! context policy, pull), `crate::smoke` and `crate::config`; this module runs the
//! typed [`Step`]s in order and prints their results.

mod model;
mod proxy;
mod pull_view;
mod smoke;

use std::time::Instant;

use anyhow::Context as _;
use serde_json::{json, Value};
use url::Url;

use super::{Context, Outcome};
use crate::cli::UpArgs;
use crate::config::{Config, ConfigError, ConfigFile, ContextWindowEdit, OllamaSettings};
use crate::diagnostic::Diagnostic;
use crate::humanize;
use crate::ollama::context::{self, Verdict};
use crate::ollama::lifecycle::{self, display_url, HowReady, Ready};
use crate::ollama::owner::Owner;
use crate::ollama::{self as ol, OllamaClient};
use crate::output::Printer;
use crate::provision::Platform;

/// The steps of `up`, in order; each prints under its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Ollama,
    Version,
    Model,
    Disk,
    Pull,
    Tools,
    Load,
    Context,
    Smoke,
    Chat,
    ToolCall,
    ProxyChat,
    ProxyTool,
    Config,
    Proxy,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Ollama => "ollama",
            Step::Version => "version",
            Step::Model => "model",
            Step::Disk => "disk",
            Step::Pull => "pull",
            Step::Tools => "tools",
            Step::Load => "load",
            Step::Context => "context",
            Step::Smoke => "smoke",
            Step::Chat => "chat",
            Step::ToolCall => "tool-call",
            Step::ProxyChat => "proxy-chat",
            Step::ProxyTool => "proxy-tool",
            Step::Config => "config",
            Step::Proxy => "proxy",
        }
    }
}

/// Stop the run: the step already printed why.
struct Stop;

pub fn run(ctx: &Context, args: UpArgs) -> anyhow::Result<Outcome> {
    let out = ctx.out;
    if let Some(join) = super::shared::joined(&ctx.config_path)? {
        out.line(&format!("This laptop is joined to the team server at {}: nothing to start locally (no Ollama, no proxy). Run `ccr-setup code`.", join.url));
        return Ok(Outcome::Success);
    }
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
        out,
        file,
        config: config.clone(),
        config_path: ctx.config_path.clone(),
    };
    let outcome = rt.block_on(up.run());
    drop(rt);
    if outcome != Outcome::Success || args.no_exec {
        return Ok(outcome);
    }
    if let Some(outcome) = proxy::restart_service(config.as_ref(), &out) {
        return Ok(outcome);
    }
    proxy::exec(ctx, &out)
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

struct Up<'a> {
    args: &'a UpArgs,
    settings: OllamaSettings,
    out: Printer,
    file: Option<ConfigFile>,
    config: Option<Config>,
    config_path: std::path::PathBuf,
}

impl Up<'_> {
    fn ok(&self, step: Step, detail: &str, start: Instant, extra: Value) {
        self.out
            .step_ok(step.name(), detail, start.elapsed(), extra);
    }

    fn skip(&self, step: Step, detail: &str) {
        self.out.step_skip(step.name(), detail);
    }

    /// Print the failure and stop the run.
    fn fail(&self, step: Step, failure: &Diagnostic, start: Instant) -> Stop {
        self.out.step_fail(step.name(), failure, start.elapsed());
        Stop
    }

    async fn run(mut self) -> Outcome {
        match self.steps().await {
            Ok(()) => Outcome::Success,
            Err(Stop) => Outcome::Failed,
        }
    }

    async fn steps(&mut self) -> Result<(), Stop> {
        let base = ol::base_url_from_env();
        let client = OllamaClient::new(base.clone());
        let ready = self.ensure_server(&client).await?;
        // Before anything goes through the proxy, started by us or not.
        self.repoint_provider(&base)?;
        self.check_version(&ready)?;
        if !ready.owner.is_ours() && !self.args.accept_context {
            let start = Instant::now();
            context::precheck_foreign(&client, &ready.owner, self.settings.context_length)
                .await
                .map_err(|d| self.fail(Step::Context, &d, start))?;
        }
        self.ensure_model(&client, &base).await?;
        if !self.args.no_smoke {
            self.check_tools(&client).await?;
        }
        let effective = self.load_and_check_context(&client, &ready.owner).await?;
        if self.args.no_smoke {
            self.skip(Step::Smoke, "skipped (--no-smoke)");
        } else {
            self.smoke_direct(&client, &base).await?;
            self.smoke_proxy(&base).await?;
        }
        if let Some(effective) = effective {
            self.record_context(&base, effective);
        }
        Ok(())
    }

    /// Step 1: a server answering (reuse it, whoever owns it) or start ours.
    async fn ensure_server(&self, client: &OllamaClient) -> Result<Ready, Stop> {
        let start = Instant::now();
        let ready = lifecycle::ensure_server(client, &self.settings)
            .await
            .map_err(|d| self.fail(Step::Ollama, &d, start))?;
        let url = display_url(client.base_url());
        let (detail, extra) = match &ready.how {
            HowReady::Running => (
                format!("running at {url} ({})", ready.owner.describe()),
                json!({"url": url, "owner": ready.owner.describe(), "started": false}),
            ),
            HowReady::WasStarting { pid } => (
                format!("running at {url} (ours, pid {pid}, was starting)"),
                json!({"url": url, "owner": "ours", "started": false}),
            ),
            HowReady::Started {
                pid,
                context_length,
            } => (
                format!(
                    "started `ollama serve` at {url} (pid {pid}, OLLAMA_CONTEXT_LENGTH={context_length}), log {}",
                    ol::serve::log_path().display()
                ),
                json!({"url": url, "owner": "ours", "started": true, "pid": pid}),
            ),
            HowReady::StartedService { unit } => (
                format!("started our service {unit} at {url}"),
                json!({"url": url, "owner": "our service", "started": true}),
            ),
        };
        self.ok(Step::Ollama, &detail, start, extra);
        Ok(ready)
    }

    fn check_version(&self, ready: &Ready) -> Result<(), Stop> {
        let start = Instant::now();
        let (version, model) = (&ready.version, &self.settings.model);
        if let Err(min) = ol::version::check(version, model) {
            let platform = Platform::from_env().unwrap_or_else(|_| Platform::current());
            let d = ol::advice::too_old(version, model, min, platform, &ready.owner);
            return Err(self.fail(Step::Version, &d, start));
        }
        let need = ol::version::minimum_for_model(model)
            .map(|m| format!(" ({model} needs ≥ {m})"))
            .unwrap_or_default();
        self.ok(
            Step::Version,
            &format!("Ollama {version}{need}"),
            start,
            json!({"version": version}),
        );
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
            crate::smoke::probes::load_and_read_context(client, model, &self.settings.keep_alive)
                .await
                .map_err(|e| {
                    let hint = ol::kv::KvCacheType::from_env()
                        .refusal()
                        .unwrap_or_else(|| {
                            format!("see `ollama ps` and {}", ol::serve::log_path().display())
                        });
                    let d = Diagnostic::new(format!(
                        "loading {model}: {}",
                        crate::diagnostic::one_line(&e)
                    ))
                    .with_hint(hint);
                    self.fail(Step::Load, &d, start)
                })?;
        let took_text = humanize::duration(took);
        let Some(effective) = effective else {
            self.skip(
                Step::Context,
                &format!("{model} loaded in {took_text} but this Ollama does not report its context in /api/ps; cannot verify {wanted}"),
            );
            return Ok(None);
        };
        let extra = json!({"load_seconds": took.as_secs_f64(), "context_length": effective, "wanted": wanted});
        let accept = self.args.accept_context;
        let detail = match context::judge(model, effective, wanted, owner, accept, &self.config_path)
        {
            Verdict::Enough => format!(
                "{model} loaded in {took_text}, context {effective} tokens (≥ {wanted})"
            ),
            Verdict::Accepted => format!(
                "{model} loaded in {took_text}, context {effective} < {wanted} accepted (--accept-context)"
            ),
            Verdict::TooSmall(d) => return Err(self.fail(Step::Context, &d, start)),
        };
        self.ok(Step::Load, &detail, start, extra);
        Ok(Some(effective))
    }

    /// Ollama runs at `OLLAMA_HOST`; a local provider aimed elsewhere (the config was
    /// written for the default port) would send the proxy's requests, the smoke test's
    /// included, to nothing or to another server: point it at `OLLAMA_HOST`, keeping a
    /// backup of the file, and use the edited config from here on.
    fn repoint_provider(&mut self, base: &Url) -> Result<(), Stop> {
        let start = Instant::now();
        let explicit_host =
            crate::env_vars::non_empty(crate::env_vars::EnvVars::OLLAMA_HOST).is_some();
        let Some(file) = self.file.as_mut().filter(|_| explicit_host) else {
            return Ok(());
        };
        let Some(idx) = file.provider_index_for_url(base) else {
            return Ok(());
        };
        let Some(old) = file.repoint_local_provider(idx, base) else {
            return Ok(());
        };
        if let Err(e) = file.save() {
            let d = cannot_write(&file.path, &e);
            return Err(self.fail(Step::Config, &d, start));
        }
        self.config = file.resolve().ok().or(self.config.take());
        let detail = format!(
            "pointed the Ollama provider at {} (OLLAMA_HOST) instead of {old}",
            display_url(base)
        );
        self.ok(Step::Config, &detail, start, json!({"repointed": true}));
        Ok(())
    }

    /// Record the effective context as `context_window` on the config's Ollama provider.
    fn record_context(&mut self, base: &Url, effective: u64) {
        let start = Instant::now();
        let Some(file) = self.file.as_mut() else {
            self.out.step_skip(
                Step::Config.name(),
                &format!(
                    "no config at {}; run `ccr-setup init` to create one",
                    self.config_path.display()
                ),
            );
            return;
        };
        let Some(idx) = file.provider_index_for_url(base) else {
            let detail = format!(
                "no provider in {} points at {}; context_window not recorded",
                file.path.display(),
                display_url(base)
            );
            self.out.step_skip(Step::Config.name(), &detail);
            return;
        };
        let took = || start.elapsed();
        match file.set_context_window(idx, effective) {
            Ok(ContextWindowEdit::Unchanged { .. }) => self.out.step_ok(
                Step::Config.name(),
                &format!("context_window {effective} already recorded"),
                took(),
                json!({"changed": false}),
            ),
            Ok(ContextWindowEdit::Recorded { provider, .. }) => self.out.step_ok(
                Step::Config.name(),
                &format!(
                    "recorded context_window {effective} on provider {provider} in {}",
                    file.path.display()
                ),
                took(),
                json!({"changed": true}),
            ),
            Err(e) => {
                let d = cannot_write(&file.path, &e);
                self.out.step_fail(Step::Config.name(), &d, took());
            }
        }
    }
}

/// The config could not be saved.
fn cannot_write(path: &std::path::Path, e: &std::io::Error) -> Diagnostic {
    Diagnostic::new(format!("cannot write {}: {e}", path.display()))
        .with_hint("check the file's permissions")
}
