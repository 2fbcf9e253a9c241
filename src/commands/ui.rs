//! `ccr-setup ui`: make sure the proxy runs, then open its dashboard in the browser.
//!
//! With an `APIKEY`, the browser cannot present the key, so this command (which can)
//! asks the proxy for a one-time login ticket and opens a page, private to the user,
//! that posts it: the ticket is in no argv or URL another local user could read and
//! redeem first.

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
    let url = match block_on(login_ticket(&base, cfg.api_key.as_deref()))? {
        None => format!("{base}/ui/"),
        Some(ticket) => login_page(&base, &ticket)?,
    };
    let out = ctx.out;
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

/// Login pages older than this are removed when `ui` runs (their ticket expired long
/// before: [`crate::ui::auth::TICKET_TTL`]).
const LOGIN_PAGE_MAX_AGE: Duration = Duration::from_secs(600);

/// With an `APIKEY`, a one-time login ticket from the proxy (verified by `ensure_proxy`
/// just before); None without a key.
async fn login_ticket(base: &str, api_key: Option<&str>) -> anyhow::Result<Option<String>> {
    let Some(key) = api_key.filter(|k| !k.is_empty()) else {
        return Ok(None);
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
            "the proxy at {base} refused a dashboard login ({status}): {}",
            crate::sanitize::untrusted(message, 300)
        ))
        .with_hint("restart the proxy with this config: `ccr-setup stop`, then `ccr-setup ui`")
        .into());
    }
    let ticket = body["path"]
        .as_str()
        .and_then(|p| p.strip_prefix("/ui/login?ticket="))
        .filter(|t| {
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    match ticket {
        Some(t) => Ok(Some(t.to_owned())),
        None => bail!("the proxy at {base} answered the login request without a ticket"),
    }
}

/// Write the page that posts `ticket` to the proxy's login form, private to the user
/// (0600 in the 0700 `run` folder), and return its `file://` URL. The browser and
/// `xdg-open` get that URL in their argv, which any local user can read
/// (`/proc/*/cmdline`); the ticket itself is only in the file.
fn login_page(base: &str, ticket: &str) -> anyhow::Result<String> {
    let dir = crate::paths::run_dir();
    remove_old_login_pages(&dir);
    let name = format!(
        "ui-login-{}.html",
        crate::proxy::proof::new_nonce().context("no randomness for the login page's name")?
    );
    let path = dir.join(name);
    let page = format!(
        "<!doctype html>\n<meta charset=\"utf-8\"><title>ccr-setup dashboard login</title>\n\
         <form method=\"post\" action=\"{base}/ui/login\"><input type=\"hidden\" name=\"ticket\" value=\"{ticket}\">\
         <button>Open the dashboard</button></form>\n<script>document.forms[0].submit()</script>\n"
    );
    crate::fsutil::create_dir_all(&dir)
        .and_then(|()| crate::fsutil::write_atomic(&path, page.as_bytes(), 0o600))
        .with_context(|| format!("cannot write the login page {}", path.display()))?;
    let url = url::Url::from_file_path(&path)
        .map_err(|()| anyhow::anyhow!("{} is not an absolute path", path.display()))?;
    Ok(url.to_string())
}

/// Remove login pages older than [`LOGIN_PAGE_MAX_AGE`].
fn remove_old_login_pages(dir: &std::path::Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > LOGIN_PAGE_MAX_AGE);
        if old && name.to_string_lossy().starts_with("ui-login-") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
