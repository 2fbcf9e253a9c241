//! Steps `tools`, `chat`, `tool-call`, `proxy-chat` and `proxy-tool`: the smoke test,
//! direct to Ollama and then through the in-process proxy.

use std::time::Instant;

use serde_json::{json, Value};
use url::Url;

use super::{Step, Stop, Up};
use crate::diagnostic::{one_line, Diagnostic};
use crate::humanize;
use crate::ollama::lifecycle::display_url;
use crate::ollama::OllamaClient;
use crate::smoke::{probes, ChatMetrics, LocalProxy, SmokeError};

/// The fix for a failed request through the proxy.
const PROXY_HINT: &str = "run `ccr-setup proxy -v` in one terminal and `ccr-setup code` in another to see the failing request";

impl Up<'_> {
    pub(super) async fn check_tools(&self, client: &OllamaClient) -> Result<(), Stop> {
        let start = Instant::now();
        let model = &self.settings.model;
        let d = probes::check_tools(client, model).await.map_err(|e| {
            let d = Diagnostic::new(format!("smoke test: {}", one_line(&e)))
                .with_hint("set Ollama.model in the config (or --model) to a model with tools");
            self.fail(Step::Tools, &d, start)
        })?;
        let trained = d
            .trained_context
            .map(|t| format!(", trained context {t}"))
            .unwrap_or_default();
        self.ok(
            Step::Tools,
            &format!("{model} supports tools{trained}"),
            start,
            json!({"capabilities": d.capabilities, "trained_context": d.trained_context}),
        );
        Ok(())
    }

    pub(super) async fn smoke_direct(&self, client: &OllamaClient, base: &Url) -> Result<(), Stop> {
        let model = &self.settings.model;
        let url = openai_url(base);
        let start = Instant::now();
        let m = probes::chat_probe(client.http(), url.clone(), model)
            .await
            .map_err(|e| {
                let d = Diagnostic::new(format!(
                    "smoke test, chat completion direct to Ollama: {}",
                    one_line(&e)
                ))
                .with_hint(format!(
                    "see {}",
                    crate::ollama::serve::log_path().display()
                ));
                self.fail(Step::Chat, &d, start)
            })?;
        self.ok(
            Step::Chat,
            &metrics_text(&m, "direct to Ollama"),
            start,
            metrics_json(&m),
        );
        let start = Instant::now();
        probes::tool_probe(client.http(), url, model)
            .await
            .map_err(|e| {
                let d = Diagnostic::new(format!(
                    "smoke test, tool call direct to Ollama: {}",
                    one_line(&e)
                ))
                .with_hint("Claude Code cannot work without tool calls: update Ollama, or choose a model that calls tools reliably");
                self.fail(Step::ToolCall, &d, start)
            })?;
        self.ok(
            Step::ToolCall,
            "get_time called (direct to Ollama)",
            start,
            json!({}),
        );
        Ok(())
    }

    /// The same two requests through the bundled proxy, started in-process with the
    /// user's config (explicit `provider,model` routing, so the requests go to this
    /// Ollama whatever the Router says).
    pub(super) async fn smoke_proxy(&self, base: &Url) -> Result<(), Stop> {
        let start = Instant::now();
        let (Some(file), Some(config)) = (self.file.as_ref(), self.config.as_ref()) else {
            self.skip(
                Step::ProxyChat,
                &format!(
                    "not run: no config at {} (run `ccr-setup init`)",
                    self.config_path.display()
                ),
            );
            return Ok(());
        };
        let Some(idx) = file.provider_index_for_url(base) else {
            self.skip(
                Step::ProxyChat,
                &format!(
                    "not run: no provider in {} points at {}",
                    file.path.display(),
                    display_url(base)
                ),
            );
            return Ok(());
        };
        let model = format!("{},{}", config.providers[idx].name, self.settings.model);
        let proxy = LocalProxy::start(config).await.map_err(|e| {
            let d = Diagnostic::new(format!("smoke test through the proxy: {}", one_line(&e)))
                .with_hint(
                    "run `ccr-setup proxy -v` and `ccr-setup doctor` to see why the proxy fails",
                );
            self.fail(Step::ProxyChat, &d, start)
        })?;
        let result = self
            .probe_proxy(&proxy.messages_url, &model, config.api_key.as_deref())
            .await;
        proxy.stop().await;
        result
    }

    async fn probe_proxy(&self, url: &Url, model: &str, key: Option<&str>) -> Result<(), Stop> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("static client");
        let fail = |step: Step, what: &str, e: &SmokeError, start: Instant| {
            let d = Diagnostic::new(format!(
                "smoke test, {what} through the proxy: {}",
                one_line(e)
            ))
            .with_hint(PROXY_HINT);
            self.fail(step, &d, start)
        };
        let start = Instant::now();
        let m = probes::messages_chat_probe(&http, url.clone(), model, key)
            .await
            .map_err(|e| fail(Step::ProxyChat, "chat", &e, start))?;
        self.ok(
            Step::ProxyChat,
            &metrics_text(&m, "through the proxy"),
            start,
            metrics_json(&m),
        );
        let start = Instant::now();
        probes::messages_tool_probe(&http, url.clone(), model, key)
            .await
            .map_err(|e| fail(Step::ProxyTool, "tool call", &e, start))?;
        self.ok(
            Step::ProxyTool,
            "get_time called (through the proxy)",
            start,
            json!({}),
        );
        Ok(())
    }
}

fn openai_url(base: &Url) -> Url {
    let mut u = base.clone();
    let prefix = u.path().trim_end_matches('/').to_owned();
    u.set_path(&format!("{prefix}/v1/chat/completions"));
    u
}

fn metrics_text(m: &ChatMetrics, via: &str) -> String {
    let speed = m
        .tokens_per_second()
        .map(|t| format!(", {t:.1} tok/s"))
        .unwrap_or_default();
    format!(
        "answered ({via}): first token {}, {} tokens{speed}",
        humanize::duration(m.time_to_first_token),
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
