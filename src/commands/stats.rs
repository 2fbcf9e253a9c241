//! `ccr-setup stats`: usage, local share, cloud spend and savings from the ledger.
//!
//! A missing ledger is not an error: a fresh install has simply recorded nothing yet, so
//! the command says so on stderr and prints an all-zero report (exit 0), which keeps
//! scripts reading `--json`/`--csv` simple.

use std::fmt::Write as _;

use anyhow::Context as _;
use chrono::{DateTime, Local};

use super::{Context, Outcome};
use crate::cli::{StatsArgs, StatsGroup};
use crate::config::{Config, ConfigError, ConfigFile};
use crate::diagnostic::Diagnostic;
use crate::humanize::{tokens, usd};
use crate::ledger::{self, Group, Report, StatsOptions, Totals};
use crate::sanitize::field;

pub fn run(ctx: &Context, args: StatsArgs) -> anyhow::Result<Outcome> {
    if let Some(join) = super::shared::joined(&ctx.config_path)? {
        return team_stats(ctx, &join, &args);
    }
    let now_ms = chrono::Utc::now().timestamp_millis();
    let since_ms = parse_since(&args.since)?.map(|window_ms| now_ms - window_ms);

    let (config, file) = load_config(ctx)?;
    let base = StatsOptions::from_config(config.as_ref(), file.as_ref()).map_err(|problems| {
        anyhow::anyhow!(
            "{} has {} problem(s) in Pricing:\n{}",
            ctx.config_path.display(),
            problems.len(),
            problems
                .iter()
                .map(|p| format!("  - {p}"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    })?;
    let options = StatsOptions {
        since_ms,
        group_by: args.by.map(|g| match g {
            StatsGroup::Day => Group::Day,
            StatsGroup::Model => Group::Model,
            StatsGroup::Route => Group::Route,
            StatsGroup::Client => Group::Client,
        }),
        compare_to: args
            .compare_to
            .clone()
            .unwrap_or_else(|| base.compare_to.clone()),
        ..base
    };

    let path = crate::paths::ledger_path();
    let report = if path.exists() {
        let conn = ledger::open_for_reading(&path)?;
        ledger::report(&conn, &options)?
    } else {
        ctx.out.err_line(&format!(
            "No usage recorded yet: {} does not exist. The proxy creates it with its first \
             request (`ccr-setup up` or `ccr-setup proxy`).",
            path.display()
        ));
        ledger::summarize(&[], &options)?
    };

    let out = if args.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else if args.csv {
        render_csv(&report)
    } else {
        render_table(&report, &args.since, since_ms)
    };
    let printer = ctx.out;
    printer.document(&out);
    if !args.json && !args.csv && !report.unpriced_models.is_empty() {
        printer.progress(&format!(
            "warning: price unknown for {} (not in the model catalogue); their cost is \
             counted as $0. Add them under `Pricing` in {} (USD per million tokens).",
            report.unpriced_models.join(", "),
            ctx.config_path.display()
        ));
    }
    Ok(Outcome::Success)
}

/// `--since`: `all`, or a number followed by `h` (hours), `d` (days) or `w` (weeks).
/// Returns the window length in milliseconds, None for `all`.
pub fn parse_since(since: &str) -> anyhow::Result<Option<i64>> {
    let s = since.trim().to_ascii_lowercase();
    if s == "all" {
        return Ok(None);
    }
    let bad = || {
        anyhow::Error::from(
            Diagnostic::new(format!("--since {since:?} is not a period"))
                .with_hint("use all, or a number with h, d or w (24h, 7d, 30d, 2w)"),
        )
    };
    let unit_ms: i64 = match s.chars().last() {
        Some('h') => 3_600_000,
        Some('d') => 86_400_000,
        Some('w') => 7 * 86_400_000,
        _ => return Err(bad()),
    };
    let n: i64 = s[..s.len() - 1].parse().map_err(|_| bad())?;
    if n <= 0 || n > 100 * 365 * 24 {
        return Err(bad());
    }
    Ok(Some(n * unit_ms))
}

/// The validated config when it resolves, and the file as written either way (for
/// `Pricing`). A config that does not resolve in this shell (for example an API key
/// variable only the service sets) still lets `stats` run, with a warning.
fn load_config(ctx: &Context) -> anyhow::Result<(Option<Config>, Option<ConfigFile>)> {
    let file = match ConfigFile::load(&ctx.config_path) {
        Ok(f) => f,
        Err(ConfigError::NotFound { .. }) => {
            ctx.out.note(&format!(
                "no config at {}; using built-in prices",
                ctx.config_path.display()
            ));
            return Ok((None, None));
        }
        Err(e) => return Err(e).context("cannot read the config for prices"),
    };
    match file.resolve() {
        Ok(config) => Ok((Some(config), Some(file))),
        Err(e) => {
            ctx.out.note(&format!(
                "the config does not resolve here ({}); providers are classified \
                 from the file as written",
                first_line(&e.to_string())
            ));
            Ok((None, Some(file)))
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

fn period_label(since_arg: &str, since_ms: Option<i64>) -> String {
    match since_ms.and_then(DateTime::from_timestamp_millis) {
        None => "all time".into(),
        Some(t) => format!(
            "last {} (since {})",
            since_arg.trim(),
            t.with_timezone(&Local).format("%Y-%m-%d %H:%M")
        ),
    }
}

/// The human table.
/// The tool-call quality lines: per model, repairs made and calls that could not be.
fn render_tool_calls(r: &Report, o: &mut String) {
    if r.tool_calls.is_empty() {
        return;
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "  tool calls");
    for q in &r.tool_calls {
        let kinds: Vec<String> = q
            .repairs_by_kind
            .iter()
            .map(|(kind, n)| format!("{} {n}", field(kind)))
            .collect();
        let _ = writeln!(
            o,
            "    {}: {} answer(s) repaired{}; {} call(s) could not be repaired",
            field(&q.model),
            q.repaired,
            if kinds.is_empty() {
                String::new()
            } else {
                format!(" ({})", kinds.join(", "))
            },
            q.unrepaired
        );
    }
}

pub fn render_table(r: &Report, since_arg: &str, since_ms: Option<i64>) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "Usage, {}", period_label(since_arg, since_ms));
    let _ = writeln!(o);
    for (label, value) in summary_rows(r) {
        let _ = writeln!(o, "  {label:<16} {value}");
    }
    render_tool_calls(r, &mut o);
    render_providers(r, &mut o);
    render_groups(r, &mut o);
    let _ = writeln!(o);
    o.push_str(&savings_chart(r));
    o
}

/// The totals, one labelled line each.
fn summary_rows(r: &Report) -> Vec<(&'static str, String)> {
    let t = &r.totals;
    let p = &r.compare_to_price;
    let mut rows = vec![
        (
            "requests",
            format!(
                "{}  (ok {}, upstream errors {}, cancelled {}, rejected {})",
                t.requests, t.ok, t.upstream_errors, t.client_cancelled, t.rejected
            ),
        ),
        (
            "local share",
            format!(
                "{}  ({} local, {} cloud)",
                pct(t.local_share),
                t.local_requests,
                t.cloud_requests
            ),
        ),
        (
            "tokens in / out",
            format!(
                "{} / {}  (cache read {}, cache write {}{})",
                tokens(t.input_tokens),
                tokens(t.output_tokens),
                tokens(t.cache_read_tokens),
                tokens(t.cache_write_tokens),
                if t.estimated_token_requests > 0 {
                    format!("; {} request(s) estimated", t.estimated_token_requests)
                } else {
                    String::new()
                }
            ),
        ),
        ("cloud spend", usd(t.cloud_cost_usd)),
        (
            "local cost",
            if r.local_per_hour_usd > 0.0 {
                format!(
                    "{}  (electricity at {}/hour)",
                    usd(t.local_cost_usd),
                    usd(r.local_per_hour_usd)
                )
            } else {
                format!(
                    "{}  (set Pricing.local_per_hour to count electricity)",
                    usd(0.0)
                )
            },
        ),
        (
            "would have cost",
            format!(
                "{}  (local requests at {}: ${}/${} per Mtok in/out)",
                usd(t.would_have_cost_usd),
                r.compare_to,
                p.input,
                p.output
            ),
        ),
        ("savings", usd(t.savings_usd)),
        (
            "local failures",
            format!(
                "{} of {} attempts ({}); fallbacks {} ({} from local){}",
                t.local_failures,
                t.local_attempts,
                pct(t.local_failure_rate),
                t.fallbacks,
                t.fallbacks_from_local,
                if t.context_overflows > 0 {
                    format!(
                        "; context overflowed {} times (the server dropped the oldest messages: /compact, or raise the context)",
                        t.context_overflows
                    )
                } else {
                    String::new()
                },
            ) + &if t.quality_fallbacks > 0 {
                format!(
                    "; {} request(s) sent to the cloud for quality (fallback.after_local_failures)",
                    t.quality_fallbacks
                )
            } else {
                String::new()
            },
        ),
    ];
    rows.extend(context_editing_row(t));
    rows
}

/// What context editing did, when it did anything.
fn context_editing_row(t: &Totals) -> Option<(&'static str, String)> {
    (t.context_edited_requests > 0).then(|| {
        (
            "context editing",
            format!(
                "{} request(s) fitted to the local window: {} old tool result(s) cleared, {} prompt tokens in all",
                t.context_edited_requests,
                t.context_cleared_blocks,
                tokens(t.context_cleared_tokens)
            ),
        )
    })
}

/// Per provider: local or cloud, requests, median time to first token, tokens/s.
fn render_providers(r: &Report, o: &mut String) {
    if !r.providers.is_empty() {
        let _ = writeln!(o);
        let names: Vec<_> = r.providers.iter().map(|p| field(&p.provider)).collect();
        let width = names
            .iter()
            .map(|n| n.chars().count())
            .max()
            .unwrap_or(0)
            .max("provider".len());
        let _ = writeln!(
            o,
            "  {:<width$}  {:<5}  {:>8}  {:>11}  {:>8}",
            "provider", "where", "requests", "median TTFT", "tokens/s"
        );
        for (p, name) in r.providers.iter().zip(&names) {
            let _ = writeln!(
                o,
                "  {:<width$}  {:<5}  {:>8}  {:>11}  {:>8}",
                name,
                if p.local { "local" } else { "cloud" },
                p.requests,
                p.median_ttft_ms
                    .map(|v| format!("{v:.0} ms"))
                    .unwrap_or_else(|| "-".into()),
                p.tokens_per_second
                    .map(|v| format!("{v:.1}"))
                    .unwrap_or_else(|| "-".into()),
            );
        }
    }
}

/// The `--by day|model|route|client` table.
fn render_groups(r: &Report, o: &mut String) {
    if let Some(group) = r.group_by {
        let _ = writeln!(o);
        let name = match group {
            Group::Day => "day",
            Group::Model => "model",
            Group::Route => "route",
            Group::Client => "client",
        };
        let keys: Vec<_> = r.groups.iter().map(|g| field(&g.key)).collect();
        let width = keys
            .iter()
            .map(|k| k.chars().count())
            .max()
            .unwrap_or(0)
            .max(name.len());
        let _ = writeln!(
            o,
            "  {name:<width$}  {:>8}  {:>6}  {:>8}  {:>8}  {:>10}  {:>10}  {:>10}  {:>8}",
            "requests", "local", "in", "out", "cloud", "would-have", "savings", "failures"
        );
        for (g, key) in r.groups.iter().zip(&keys) {
            let t = &g.totals;
            let _ = writeln!(
                o,
                "  {:<width$}  {:>8}  {:>6}  {:>8}  {:>8}  {:>10}  {:>10}  {:>10}  {:>8}",
                key,
                t.requests,
                pct(t.local_share),
                tokens(t.input_tokens),
                tokens(t.output_tokens),
                usd(t.cloud_cost_usd),
                usd(t.would_have_cost_usd),
                usd(t.savings_usd),
                t.local_failures,
            );
        }
    }
}

/// Daily savings as bars, the last 14 days that have data, scaled to the best day.
fn savings_chart(r: &Report) -> String {
    const WIDTH: f64 = 30.0;
    let days = &r.daily_savings[r.daily_savings.len().saturating_sub(14)..];
    if days.is_empty() {
        return "  daily savings: no requests in this period\n".into();
    }
    let max = days.iter().map(|d| d.savings_usd).fold(0.0_f64, f64::max);
    let mut o = String::from("  daily savings\n");
    for d in days {
        let cells = if max > 0.0 && d.savings_usd > 0.0 {
            ((d.savings_usd / max) * WIDTH).round().max(1.0) as usize
        } else {
            0
        };
        let _ = writeln!(
            o,
            "  {}  {:<30}  {}",
            d.day,
            "█".repeat(cells),
            usd(d.savings_usd)
        );
    }
    o
}

const CSV_HEADER: &str = "group,requests,ok,upstream_errors,client_cancelled,rejected,\
local_requests,cloud_requests,local_share,input_tokens,output_tokens,cache_read_tokens,\
cache_write_tokens,cloud_cost_usd,local_cost_usd,would_have_cost_usd,savings_usd,\
local_attempts,local_failures,local_failure_rate,fallbacks,fallbacks_from_local";

/// One line per `--by` group, then a `total` line; the columns never change order.
pub fn render_csv(r: &Report) -> String {
    let mut o = String::from(CSV_HEADER);
    o.push('\n');
    for g in &r.groups {
        csv_line(&mut o, &g.key, &g.totals);
    }
    csv_line(&mut o, "total", &r.totals);
    o
}

fn csv_line(o: &mut String, key: &str, t: &Totals) {
    let key = field(key);
    let key = if key.contains([',', '"', '\n']) {
        format!("\"{}\"", key.replace('"', "\"\""))
    } else {
        key.into_owned()
    };
    let _ = writeln!(
        o,
        "{key},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
        t.requests,
        t.ok,
        t.upstream_errors,
        t.client_cancelled,
        t.rejected,
        t.local_requests,
        t.cloud_requests,
        t.local_share,
        t.input_tokens,
        t.output_tokens,
        t.cache_read_tokens,
        t.cache_write_tokens,
        t.cloud_cost_usd,
        t.local_cost_usd,
        t.would_have_cost_usd,
        t.savings_usd,
        t.local_attempts,
        t.local_failures,
        t.local_failure_rate,
        t.fallbacks,
        t.fallbacks_from_local,
    );
}

/// `stats` on a laptop joined to a team server: the client's own use today, as the
/// server reports it (the ledger is the server's; `--since` and `--by` do not apply).
fn team_stats(
    ctx: &Context,
    join: &crate::config::Join,
    args: &StatsArgs,
) -> anyhow::Result<Outcome> {
    let json = args.json;
    if args.csv {
        anyhow::bail!(Diagnostic::new(
            "--csv needs the ledger, which is on the team server, not on this joined laptop"
        )
        .with_hint(
            "use `ccr-setup stats --json` here, or run `ccr-setup stats --csv` on the server"
        ));
    }
    let ignored: Vec<&str> = [
        (args.since != "7d", "--since"),
        (args.by.is_some(), "--by"),
        (args.compare_to.is_some(), "--compare-to"),
    ]
    .into_iter()
    .filter_map(|(given, flag)| given.then_some(flag))
    .collect();
    let out = ctx.out;
    if !ignored.is_empty() {
        out.note(&format!(
            "{} not applied: a joined laptop shows today's use as the team server reports it (the ledger is the server's; run `ccr-setup stats` there for periods and groups)",
            ignored.join(", ")
        ));
    }
    let usage = super::shared::block_on(crate::team::fetch_usage(
        join,
        None,
        std::time::Duration::from_secs(10),
    ))?;
    if json {
        out.document(&format!("{}\n", serde_json::to_string_pretty(&usage)?));
    } else {
        for line in crate::team::report::stats_lines(&join.url, &usage) {
            out.line(&line);
        }
    }
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_periods() {
        assert_eq!(parse_since("all").unwrap(), None);
        assert_eq!(parse_since("24h").unwrap(), Some(86_400_000));
        assert_eq!(parse_since("7d").unwrap(), Some(7 * 86_400_000));
        assert_eq!(parse_since("2w").unwrap(), Some(14 * 86_400_000));
        for bad in ["", "7", "d", "-1d", "0d", "7x", "1.5d"] {
            let e = parse_since(bad).unwrap_err().to_string();
            assert!(e.contains("--since"), "{bad}: {e}");
        }
    }

    #[test]
    fn money_and_token_formats() {
        assert_eq!(usd(0.0), "$0.00");
        assert_eq!(usd(0.00425), "$0.0043");
        assert_eq!(usd(12.345), "$12.35");
        assert_eq!(usd(-0.5), "-$0.5000");
        assert_eq!(tokens(950), "950");
        assert_eq!(tokens(12_345), "12.3k");
        assert_eq!(tokens(4_560_000), "4.56M");
    }
}
