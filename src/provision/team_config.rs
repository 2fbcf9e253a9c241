//! The config edits of team mode, as pure functions on the JSON tree (like
//! [`super::router_config`]): keys the user added survive, and applying the same
//! answers twice changes nothing.
//!
//! * A server (`init --server`): the engine as a provider with `local: true` (a model
//!   server on the LAN is free and counts as local for savings and the quality rules),
//!   the default route to it, `HOST` on loopback (Caddy serves the LAN) and
//!   `ServerMode: true` (the proxy then requires client keys).
//! * A laptop (`init --join`): `Join` with the server's URL and a reference to the
//!   stored key, and the server as an Anthropic-compatible provider, so the file stays
//!   a valid router config.

use serde_json::{json, Map, Value};

use super::engine::Engine;
use super::router_config::{find_provider, object, set_number, EditError};
use crate::config::CLIENT_KEY_VAR;

/// The provider a joined laptop's config names the team server by.
pub const TEAM_PROVIDER: &str = "team";
/// The model name of the team provider: the server routes by its own `Router`.
pub const TEAM_MODEL: &str = "default";

/// What `init --server` writes for the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAnswers {
    pub engine: Engine,
    pub model: String,
    /// The context one request may use (None: the engine did not say and none was given).
    pub context_window: Option<u32>,
    pub port: u16,
}

fn root(doc: &mut Value) -> Result<&mut Map<String, Value>, EditError> {
    if doc.is_null() {
        *doc = super::router_config::template();
    }
    doc.as_object_mut().ok_or(EditError::NotAnObject {
        path: "the config",
        found: "not an object".into(),
    })
}

fn set(map: &mut Map<String, Value>, key: &str, value: Value) {
    if map.get(key) != Some(&value) {
        map.insert(key.to_owned(), value);
    }
}

/// The provider named as `fresh` is, added as `fresh` when the config has none.
fn provider(
    root: &mut Map<String, Value>,
    fresh: Value,
) -> Result<&mut Map<String, Value>, EditError> {
    let name = fresh["name"].as_str().unwrap_or_default().to_owned();
    let list = root
        .entry("Providers")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .ok_or(EditError::ProvidersNotAList)?;
    if find_provider(list, &name).is_none() {
        list.push(fresh);
    }
    Ok(find_provider(list, &name).expect("just added"))
}

/// Make `doc` a team server's config for `a`.
pub fn apply_server(doc: &mut Value, a: &ServerAnswers) -> Result<(), EditError> {
    let root = root(doc)?;
    set(root, "HOST", json!(crate::config::DEFAULT_HOST));
    set_number(root, "PORT", u64::from(a.port));
    set(root, "ServerMode", json!(true));
    let name = a.engine.kind.name();
    let p = provider(root, json!({"name": name, "api_key": ""}))?;
    set(p, "api_base_url", json!(a.engine.chat_url()));
    set(p, "models", json!([a.model]));
    set(p, "local", json!(true));
    match a.context_window {
        Some(w) => set_number(p, "context_window", u64::from(w)),
        None => {
            p.remove("context_window");
        }
    }
    let router = object(root, "Router")?;
    set(router, "default", json!(format!("{name},{}", a.model)));
    Ok(())
}

/// Make `doc` a laptop's config joined to the server at `url` (checked https).
pub fn apply_join(doc: &mut Value, url: &str, ca_cert: Option<&str>) -> Result<(), EditError> {
    let root = root(doc)?;
    let key_ref = format!("${CLIENT_KEY_VAR}");
    let mut join = json!({"url": url, "key": key_ref});
    if let Some(ca) = ca_cert {
        join["ca_cert"] = json!(ca);
    }
    set(root, "Join", join);
    let p = provider(root, json!({"name": TEAM_PROVIDER}))?;
    set(p, "api_base_url", json!(format!("{url}/v1/messages")));
    set(p, "api_key", json!(key_ref));
    set(p, "models", json!([TEAM_MODEL]));
    let router = object(root, "Router")?;
    set(
        router,
        "default",
        json!(format!("{TEAM_PROVIDER},{TEAM_MODEL}")),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigFile, ProviderKind};
    use crate::provision::engine::EngineKind;
    use std::path::Path;

    fn vllm() -> ServerAnswers {
        ServerAnswers {
            engine: Engine {
                kind: EngineKind::Vllm,
                base: "http://127.0.0.1:8000".into(),
                model: Some("openai/gpt-oss-20b".into()),
                context_window: Some(131072),
                slots: None,
            },
            model: "openai/gpt-oss-20b".into(),
            context_window: Some(131072),
            port: 3456,
        }
    }

    #[test]
    fn a_server_config_is_local_on_loopback_in_server_mode_and_stable() {
        let mut doc = json!({"HOST": "0.0.0.0", "APIKEY": "admin", "Mine": 1});
        apply_server(&mut doc, &vllm()).unwrap();
        let once = doc.clone();
        apply_server(&mut doc, &vllm()).unwrap();
        assert_eq!(doc, once);
        assert_eq!(doc["Mine"], 1);
        assert_eq!(doc["HOST"], "127.0.0.1");
        assert_eq!(doc["ServerMode"], true);
        let cfg = ConfigFile::new(Path::new("/c.json"), doc)
            .resolve_with(&|_| None)
            .unwrap();
        let p = cfg.provider("vllm").unwrap();
        assert_eq!(p.api_base_url, "http://127.0.0.1:8000/v1/chat/completions");
        assert_eq!(p.local, Some(true));
        assert_eq!(p.context_window, Some(131072));
        assert_eq!(cfg.router.default.to_string(), "vllm,openai/gpt-oss-20b");
    }

    #[test]
    fn a_joined_config_references_the_key_and_resolves() {
        let mut doc = Value::Null;
        apply_join(&mut doc, "https://team.example.com", None).unwrap();
        let text = doc.to_string();
        assert!(!text.contains("ccr_"), "{text}");
        assert_eq!(doc["Join"]["key"], "$CCR_SETUP_CLIENT_KEY");
        let cfg = ConfigFile::new(Path::new("/c.json"), doc)
            .resolve_with(&|n| (n == CLIENT_KEY_VAR).then(|| "ccr_secret".into()))
            .unwrap();
        let join = crate::config::Join::of(&cfg).unwrap();
        assert_eq!(join.url, "https://team.example.com");
        assert_eq!(join.key, "ccr_secret");
        assert_eq!(
            cfg.provider(TEAM_PROVIDER).unwrap().kind,
            ProviderKind::Anthropic
        );
    }
}
