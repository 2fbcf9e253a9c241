//! `config.keys`: where each provider key comes from (environment, secrets store,
//! Keychain, literal), never its value; a key set nowhere is a warning naming the
//! provider it disables and the fix; a secrets file others can read is a failure.

use super::facts::Facts;
use super::fix::FixAction;
use super::Check;
use crate::config::{KeyOrigin, KeySource};

pub fn config_keys(f: &Facts) -> Check {
    let c = &f.config;
    if let Some((path, mode)) = &c.secrets_too_open {
        return Check::fail(
            "config.keys",
            format!(
                "{} holds keys but its mode is {mode:04o}: other users can read them",
                path.display()
            ),
            format!("`chmod 600 {}`", path.display()),
        )
        .with_action(FixAction::Chmod600(path.clone()))
        .with_detail(details(&c.keys));
    }
    let unset: Vec<&KeyOrigin> = c
        .keys
        .iter()
        .filter(|k| k.source == KeySource::Unset)
        .collect();
    if let Some(first) = unset.first() {
        let names: Vec<String> = unset
            .iter()
            .map(|k| {
                format!(
                    "{} (${})",
                    k.provider.as_deref().unwrap_or(&k.path),
                    k.variable.as_deref().unwrap_or("?")
                )
            })
            .collect();
        let var = first.variable.as_deref().unwrap_or("the variable");
        return Check::warn(
            "config.keys",
            format!(
                "disabled until its key is set: {}; the other providers work",
                names.join(", ")
            ),
            format!(
                "`ccr-setup init` (it asks for the key, checks it and stores it where the proxy service finds it), or export {var}=… in the proxy's environment"
            ),
        )
        .with_detail(details(&c.keys));
    }
    if c.keys.is_empty() {
        return Check::ok("config.keys", "no keys in the config");
    }
    let sources: Vec<String> = c
        .keys
        .iter()
        .map(|k| format!("{} from the {}", k.path, k.source))
        .collect();
    Check::ok("config.keys", sources.join("; ")).with_detail(details(&c.keys))
}

fn details(keys: &[KeyOrigin]) -> String {
    keys.iter()
        .map(KeyOrigin::describe)
        .collect::<Vec<_>>()
        .join("\n")
}
