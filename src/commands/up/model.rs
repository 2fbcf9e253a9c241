//! Steps `model`, `disk` and `pull`: make sure the model is on the server, refusing a
//! pull that cannot fit and showing its progress.

use std::time::{Duration, Instant};

use serde_json::json;
use url::Url;

use super::pull_view::PullView;
use super::{Step, Stop, Up};
use crate::diagnostic::{one_line, Diagnostic};
use crate::humanize::bytes as human_bytes;
use crate::ollama::disk::{self, SizeSource};
use crate::ollama::pull::{self, PullEvent, PullOptions};
use crate::ollama::{self as ol, OllamaClient};

impl Up<'_> {
    /// Pull the model unless `/api/tags` has it.
    pub(super) async fn ensure_model(&self, client: &OllamaClient, base: &Url) -> Result<(), Stop> {
        let start = Instant::now();
        let model = &self.settings.model;
        match client.has_model(model).await {
            Ok(true) => {
                self.ok(
                    Step::Model,
                    &format!("{model} is installed"),
                    start,
                    json!({}),
                );
                return Ok(());
            }
            Ok(false) => {}
            Err(e) => {
                let d = Diagnostic::new(one_line(&e))
                    .with_hint("check that Ollama is healthy: `ollama list`");
                return Err(self.fail(Step::Model, &d, start));
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
                self.skip(Step::Disk, &format!("not checked: {}", one_line(&e)));
                return Ok(None);
            }
        };
        let Some((need, source)) = disk::required_bytes(model).await else {
            self.skip(
                Step::Disk,
                &format!(
                    "size of {model} unknown (registry not reachable); {} free in {}",
                    human_bytes(free),
                    probed.display()
                ),
            );
            return Ok(None);
        };
        let (from, short) = match source {
            SizeSource::Manifest => ("its manifest", "manifest"),
            SizeSource::KnownDefault => ("its known size", "known size"),
        };
        if need > free {
            let d = Diagnostic::new(format!(
                "{model} needs {} (from {from}) but only {} is free in {}",
                human_bytes(need),
                human_bytes(free),
                probed.display()
            ))
            .with_hint(format!(
                "free at least {} there, or point OLLAMA_MODELS at a disk with room, then run `ccr-setup up` again",
                human_bytes(need - free)
            ));
            return Err(self.fail(Step::Disk, &d, start));
        }
        self.ok(
            Step::Disk,
            &format!(
                "{} needed ({short}), {} free in {}",
                human_bytes(need),
                human_bytes(free),
                probed.display()
            ),
            start,
            json!({"need_bytes": need, "free_bytes": free}),
        );
        Ok((source == SizeSource::Manifest).then_some(need))
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
        let summary = match result {
            Some(Ok(summary)) => summary,
            Some(Err(e)) => {
                let d = Diagnostic::new(format!("{model}: {}", one_line(&e))).with_hint(e.hint());
                return Err(self.fail(Step::Pull, &d, start));
            }
            None => {
                let d = Diagnostic::new(format!("{model}: stopped by Ctrl-C")).with_hint(
                    "the downloaded part is kept: the next `ccr-setup up` resumes the pull",
                );
                return Err(self.fail(Step::Pull, &d, start));
            }
        };
        let restarts = match summary.restarts {
            0 => String::new(),
            n => format!(", resumed after {n} stall(s)"),
        };
        self.ok(
            Step::Pull,
            &format!(
                "{model}: {} in {} layer(s){restarts}",
                human_bytes(summary.total_bytes),
                summary.layers
            ),
            start,
            json!({"bytes": summary.total_bytes, "layers": summary.layers, "restarts": summary.restarts}),
        );
        Ok(())
    }
}
