//! `ccr-setup doctor`: print every check (✓ / ! / ✗) with the fix under each problem,
//! or a JSON list with `--json`; `--fix` runs the safe fixes after showing them.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::{Context, Outcome};
use crate::cli::DoctorArgs;
use crate::diagnostic::Diagnostic;
use crate::doctor::{self, Check, DoctorEnv, Status};
use crate::output::Palette;

pub fn run(ctx: &Context, args: DoctorArgs) -> anyhow::Result<Outcome> {
    let mut env = DoctorEnv::current(ctx.config_path.clone());
    // The same hooks as `init`, so both judge the same platform and system files.
    env.platform = crate::provision::Platform::from_env()?;
    env.root = crate::paths::system_root();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;

    let out = ctx.out;
    let started = Instant::now();
    // A laptop joined to a team server runs no Ollama or proxy: check the server.
    if let Some(checks) = rt.block_on(doctor::team::checks(&ctx.config_path)) {
        if args.json {
            out.document(&format!("{}\n", serde_json::to_string_pretty(&checks)?));
        } else {
            print_report(ctx, &checks, started.elapsed());
        }
        return Ok(outcome(&checks));
    }
    let mut checks = rt.block_on(doctor::run(&env));
    let mut elapsed = started.elapsed();

    if args.fix {
        if !args.json {
            print_report(ctx, &checks, elapsed);
        }
        if run_fixes(ctx, &env, &checks, args.yes)? {
            let again = Instant::now();
            checks = rt.block_on(doctor::run(&env));
            elapsed = again.elapsed();
            if !args.json {
                out.err_line("");
                out.err_line("After the fixes:");
            }
        } else if !args.json {
            return Ok(outcome(&checks));
        }
    }
    // A stuck probe must not hold the exit; every probe has its own timeout anyway.
    rt.shutdown_timeout(Duration::from_millis(100));

    if args.json {
        out.document(&format!("{}\n", serde_json::to_string_pretty(&checks)?));
    } else {
        print_report(ctx, &checks, elapsed);
    }
    Ok(outcome(&checks))
}

fn outcome(checks: &[Check]) -> Outcome {
    if doctor::any_failed(checks) {
        Outcome::Failed
    } else {
        Outcome::Success
    }
}

fn indent(text: &str, prefix: &str) -> String {
    text.lines()
        .map(|l| format!("{prefix}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn print_report(ctx: &Context, checks: &[Check], elapsed: Duration) {
    let out = ctx.out;
    let p = Palette::new(ctx.out.color);
    let width = checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
    for c in checks {
        let (mark, style) = match c.status {
            Status::Ok => ("✓", &p.ok),
            Status::Warn => ("!", &p.warn),
            Status::Fail => ("✗", &p.fail),
        };
        if ctx.out.quiet && c.status == Status::Ok {
            continue;
        }
        out.line(&format!(
            "{} {} {}",
            style.apply_to(mark),
            p.dim.apply_to(format!("{:width$}", c.id)),
            c.summary
        ));
        let show_detail = c.status != Status::Ok || ctx.verbose > 0;
        if let (true, Some(d)) = (show_detail, &c.detail) {
            out.line(&p.dim.apply_to(indent(d, "      ")).to_string());
        }
        if let (true, Some(fix)) = (c.status != Status::Ok, &c.fix) {
            out.line(&out.hint_text(fix, "    "));
        }
    }
    let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
    out.line(&format!(
        "{} ok, {} warning(s), {} failed ({} ms)",
        count(Status::Ok),
        count(Status::Warn),
        count(Status::Fail),
        elapsed.as_millis()
    ));
}

/// Show the safe fixes, ask (unless `yes`), run them. Returns whether any ran.
fn run_fixes(ctx: &Context, env: &DoctorEnv, checks: &[Check], yes: bool) -> anyhow::Result<bool> {
    let out = ctx.out;
    let actions: Vec<_> = checks
        .iter()
        .filter(|c| c.status != Status::Ok)
        .filter_map(|c| c.action.as_ref().map(|a| (c.id, a)))
        .collect();
    if actions.is_empty() {
        out.err_line(
            "Nothing here that `doctor --fix` can fix safely; the fixes above are for you to run.",
        );
        return Ok(false);
    }
    out.err_line("`doctor --fix` will:");
    for (i, (id, a)) in actions.iter().enumerate() {
        out.err_line(&format!("  {}. [{id}] {}", i + 1, a.describe(&env.home)));
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(Diagnostic::new("not asking without a terminal")
                .with_hint("re-run with `ccr-setup doctor --fix --yes` to apply these fixes")
                .into());
        }
        let go = dialoguer::Confirm::new()
            .with_prompt("Apply these fixes?")
            .default(true)
            .interact()
            .context("cannot read the answer")?;
        if !go {
            out.err_line("Nothing changed.");
            return Ok(false);
        }
    }
    let p = Palette::new(ctx.out.color);
    let mut failed = 0;
    for (id, a) in &actions {
        match doctor::fix::apply(a, &env.home) {
            Ok(()) => out.err_line(&format!(
                "{} [{id}] {}",
                p.ok.apply_to("fixed"),
                a.describe(&env.home)
            )),
            Err(e) => {
                failed += 1;
                out.err_line(&format!("{} [{id}] {e}", p.fail.apply_to("could not fix")));
            }
        }
    }
    if failed > 0 {
        out.err_line(&format!("{failed} fix(es) failed; see above."));
    }
    Ok(true)
}
