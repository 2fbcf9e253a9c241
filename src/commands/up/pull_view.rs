//! Pull progress, all of it on stderr so stdout keeps only the step lines: a bar when
//! the printer draws one (stderr a terminal, no `-q`/`--json`); otherwise a line per
//! 10 %, so logs and CI output stay short (`-q` keeps only those lines). With `--json`
//! the progress is JSON events on stdout instead.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::humanize::bytes as human_bytes;
use crate::ollama::pull::PullEvent;
use crate::output::Printer;

/// Pull progress: a bar on a terminal's stderr; otherwise (or with -q) a line per 10 %.
pub(super) struct PullView {
    model: String,
    out: Printer,
    bar: Option<ProgressBar>,
    last_decile: Option<u64>,
    stall: Duration,
    /// The manifest's size, when the disk check read it.
    expected_total: u64,
}

impl PullView {
    pub(super) fn new(
        model: &str,
        out: Printer,
        stall: Duration,
        expected_total: Option<u64>,
    ) -> Self {
        let bar = out.progress_bar(expected_total.unwrap_or(0)).inspect(|bar| {
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

    pub(super) fn event(&mut self, ev: PullEvent) {
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
                        self.out.event(&json!({"step": "pull", "event": "progress", "percent": decile * 10, "completed": completed, "total": total}));
                    } else {
                        // Shown with -q too: a long download still says it is alive.
                        self.out.err_line(&format!(
                            "  pull {}: {:>3}% ({} of {})",
                            self.model,
                            decile * 10,
                            human_bytes(completed),
                            human_bytes(total)
                        ));
                    }
                }
            }
            PullEvent::Phase(phase) => match &self.bar {
                Some(bar) => bar.set_message(phase),
                None if self.out.json => {
                    self.out
                        .event(&json!({"step": "pull", "event": "phase", "phase": phase}));
                }
                // -q keeps only the 10 % lines.
                None => self
                    .out
                    .progress(&format!("  pull {}: {phase}", self.model)),
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
                    None if self.out.json => self.out.event(&json!({"step": "pull", "event": "restart", "attempt": attempt, "max": max, "completed": completed})),
                    None => self.out.err_line(&text),
                }
            }
        }
    }

    pub(super) fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
