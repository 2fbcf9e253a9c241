//! `init`'s cloud key step: take the key from the environment or ask for it (hidden),
//! check it with the provider, and plan to store it where a service can read it.

use console::Term;
use dialoguer::theme::ColorfulTheme;

use super::shared::block_on;
use crate::config::{KeySource, SecretsStore};
use crate::output::Printer;
use crate::provision::cloud_key::{self, KeyCheck};
use crate::provision::router_config::ANTHROPIC_KEY_VAR;

/// The key `init` will store, if any.
#[derive(Debug, Clone)]
pub(crate) enum CloudKey {
    /// A new value (from the environment or typed) and where it goes.
    Store { value: String, to: KeySource },
    /// The environment or the store already serves the same value: nothing to write.
    Present(KeySource),
    /// No key anywhere: the cloud provider stays disabled until one is set.
    Missing,
}

impl CloudKey {
    /// The plan line, when the key is to be written.
    pub(crate) fn plan_line(&self) -> Option<String> {
        match self {
            CloudKey::Store { to, .. } => Some(format!(
                "    store     {ANTHROPIC_KEY_VAR} in the {to} (the config keeps the reference ${ANTHROPIC_KEY_VAR})"
            )),
            _ => None,
        }
    }
}

/// Find, ask for and check the cloud key. `term` is None with `--yes` or no terminal.
pub(crate) fn gather(
    term: Option<&Term>,
    store: &SecretsStore,
    check: bool,
    out: &Printer,
) -> anyhow::Result<CloudKey> {
    let stored = store.get(ANTHROPIC_KEY_VAR)?;
    let from_env = std::env::var(ANTHROPIC_KEY_VAR)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty());
    let value = match (from_env, &stored, term) {
        (Some(v), _, _) => v,
        (None, Some((_, from)), _) => return Ok(CloudKey::Present(from.clone())),
        (None, None, None) => return Ok(CloudKey::Missing),
        (None, None, Some(t)) => {
            let typed = dialoguer::Password::with_theme(&ColorfulTheme::default())
                .with_prompt(format!(
                    "Claude API key for cloud fallback (hidden; stored in the {}; empty to skip)",
                    store.destination()
                ))
                .allow_empty_password(true)
                .interact_on(t)?;
            let typed = typed.trim().to_owned();
            if typed.is_empty() {
                return Ok(CloudKey::Missing);
            }
            typed
        }
    };
    if check {
        verify(out, &value)?;
    }
    if stored.as_ref().is_some_and(|(v, _)| *v == value) {
        return Ok(CloudKey::Present(stored.expect("checked").1));
    }
    Ok(CloudKey::Store {
        value,
        to: store.destination(),
    })
}

/// One `GET /v1/models` with the key. A refusal stops `init` before anything is
/// written; no network is a warning.
fn verify(out: &Printer, key: &str) -> anyhow::Result<()> {
    let url = cloud_key::models_url();
    match block_on(cloud_key::check(&url, key, cloud_key::CHECK_TIMEOUT)) {
        KeyCheck::Accepted => out.err_line("The Claude API accepted the key."),
        KeyCheck::Refused { status, message } => {
            let message = if message.is_empty() {
                String::new()
            } else {
                format!(": {message}")
            };
            return Err(crate::diagnostic::Diagnostic::new(format!(
                "the Claude API refused {ANTHROPIC_KEY_VAR} (HTTP {status}{message})"
            ))
            .with_hint("check the key at https://console.anthropic.com/settings/keys and re-run, or pass --no-key-check to store it anyway")
            .into());
        }
        KeyCheck::Unreachable(why) => out.err_line(&format!(
            "warning: could not check the key ({url}: {why}); it is stored unchecked and the proxy will report a refusal"
        )),
        KeyCheck::Inconclusive { status } => out.err_line(&format!(
            "warning: the key check got HTTP {status} from {url}; the key is stored unchecked"
        )),
    }
    Ok(())
}

/// Store the key (after consent).
pub(crate) fn apply(store: &SecretsStore, key: &CloudKey) -> anyhow::Result<Option<String>> {
    match key {
        CloudKey::Store { value, .. } => {
            let to = store.set(ANTHROPIC_KEY_VAR, value)?;
            Ok(Some(format!("Stored {ANTHROPIC_KEY_VAR} in the {to}")))
        }
        CloudKey::Present(from) => Ok(Some(format!(
            "{ANTHROPIC_KEY_VAR} for cloud fallback: from the {from}"
        ))),
        CloudKey::Missing => Ok(Some(format!(
            "Note: {ANTHROPIC_KEY_VAR} is neither set nor stored, so the cloud provider stays disabled and the local model serves everything. To enable it, re-run `ccr-setup init` in a terminal (it asks for the key), or `export {ANTHROPIC_KEY_VAR}=…` and re-run."
        ))),
    }
}
