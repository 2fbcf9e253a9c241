//! `ccr-setup ui`: make sure the proxy runs, then open its dashboard in the browser.
//!
//! With an `APIKEY`, the browser cannot present the key, so this command (which can)
//! asks the proxy for a one-time login ticket and opens the URL that carries it.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context as _};

use super::running_proxy::ensure_proxy;
use super::shared::{block_on, load_client_config};
use super::{Context, Outcome};
use crate::cli::UiArgs;
use crate::diagnostic::Diagnostic;
use crate::service::runtime;

pub fn run(ctx: &Context, args: UiArgs) -> anyhow::Result<Outcome> {
    let cfg = load_client_config(&ctx.config_path)?;
    ensure_proxy(ctx, &cfg)?;
    let base = runtime::proxy_url(&cfg.host, cfg.port);
    let path = block_on(login_path(&base, cfg.api_key.as_deref()))?;
    let url = format!("{base}{path}");
    let out = ctx.printer(false);
    let opener = if args.no_open { None } else { opener() };
    let Some(opener) = opener else {
        if !args.no_open {
            out.progress("No `open` or `xdg-open` here; open this URL in a browser:");
        }
        out.line(&url);
        return Ok(Outcome::Success);
    };
    let status = std::process::Command::new(&opener)
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("cannot run {}", opener.display()))?;
    if !status.success() {
        out.err_line(&format!(
            "{} could not open a browser ({status}); open this URL yourself:",
            opener.display()
        ));
        out.line(&url);
        return Ok(Outcome::Success);
    }
    out.say(&format!("Opened the dashboard: {url}"));
    Ok(Outcome::Success)
}

/// `open` on macOS, `xdg-open` elsewhere (Debian's `open` is `xdg-open` or `openvt`).
fn opener() -> Option<std::path::PathBuf> {
    let name = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    which::which(name).ok()
}

/// The path to open: `/ui/`, or with an `APIKEY` a one-time `/ui/login?ticket=…`.
async fn login_path(base: &str, api_key: Option<&str>) -> anyhow::Result<String> {
    let Some(key) = api_key.filter(|k| !k.is_empty()) else {
        return Ok("/ui/".to_owned());
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()?;
    let resp = client
        .post(format!("{base}/ui/ticket"))
        .header("x-api-key", key)
        .send()
        .await
        .with_context(|| format!("cannot ask the proxy at {base} for a dashboard login"))?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Err(Diagnostic::new(format!(
            "the proxy at {base} has no dashboard (an older ccr-setup is running)"
        ))
        .with_hint("restart it: `ccr-setup stop && ccr-setup ui`")
        .into());
    }
    if !status.is_success() {
        let message = body["error"]["message"].as_str().unwrap_or("no message");
        return Err(Diagnostic::new(format!(
            "the proxy at {base} refused a dashboard login ({status}): {message}"
        ))
        .with_hint("restart the proxy with this config: `ccr-setup stop`, then `ccr-setup ui`")
        .into());
    }
    match body["path"].as_str() {
        Some(path) if path.starts_with("/ui/") => Ok(path.to_owned()),
        _ => bail!("the proxy at {base} answered the login request without a path: {body}"),
    }
}
