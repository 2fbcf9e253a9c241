//! The `Providers` list: names, endpoint URLs, keys, models and the per-provider limits,
//! and the wire kind inferred from each URL.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::super::model::{
    ContextEditing, Provider, ProviderKind, Replica, DEFAULT_CONTEXT_TARGET_PERCENT,
    DEFAULT_OUTPUT_RESERVE, MAX_REPLICAS,
};
use super::{compact, kind_of, Checker};

/// Infer how to talk to a provider from its URL and transformer.
fn provider_kind(url: &str, transformer: Option<&Value>) -> ProviderKind {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .trim_end_matches('/');
    if path.ends_with("/v1/messages") || path.ends_with("/messages") {
        return ProviderKind::Anthropic;
    }
    let uses_only_anthropic = match transformer.and_then(|t| t.get("use")) {
        Some(Value::Array(items)) => {
            items.len() == 1
                && items[0]
                    .as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case("anthropic"))
        }
        Some(Value::String(s)) => s.eq_ignore_ascii_case("anthropic"),
        _ => false,
    };
    if uses_only_anthropic {
        ProviderKind::Anthropic
    } else {
        ProviderKind::OpenAi
    }
}

pub(super) fn build_providers(c: &mut Checker, root: &Map<String, Value>) -> Vec<Provider> {
    let list = match root.get("Providers").or_else(|| root.get("providers")) {
        None => {
            c.add("Providers", "missing", "add \"Providers\": [{\"name\": \"ollama\", \"api_base_url\": \"http://127.0.0.1:11434/v1/chat/completions\", \"models\": [\"gpt-oss:20b\"]}], or run `ccr-setup init`");
            return Vec::new();
        }
        Some(Value::Array(items)) => items,
        Some(other) => {
            c.add(
                "Providers",
                format!("expected a list, found {}", kind_of(other)),
                "make \"Providers\" a list: [ {…}, {…} ]",
            );
            return Vec::new();
        }
    };
    let mut seen = HashSet::new();
    list.iter()
        .enumerate()
        .filter_map(|(i, item)| build_provider(c, i, item, &mut seen))
        .collect()
}

/// One provider entry; `None` when it has no usable name (its other keys are not checked).
fn build_provider(
    c: &mut Checker,
    i: usize,
    item: &Value,
    seen: &mut HashSet<String>,
) -> Option<Provider> {
    let path = format!("Providers[{i}]");
    let Some(obj) = item.as_object() else {
        c.add(
            &path,
            format!("expected an object, found {}", kind_of(item)),
            "each provider is {\"name\": …, \"api_base_url\": …, \"models\": […]}",
        );
        return None;
    };
    let name = provider_name(c, obj, &path, seen)?;
    let (url, replicas) = provider_urls(c, obj, &path, &name);
    let limit_at = format!("{path}.replica_max_in_flight");
    let replica_max_in_flight = match c.opt_u64(obj, "replica_max_in_flight", &limit_at) {
        Some(0) => {
            c.add(
                &limit_at,
                "0 would refuse every request",
                "use the number of parallel slots of one replica (e.g. 4), or remove the key for no limit",
            );
            None
        }
        n => n.map(|v| v.min(u32::MAX as u64) as u32),
    };
    let api_key = c
        .opt_str(obj, "api_key", &format!("{path}.api_key"))
        .filter(|k| !k.is_empty());
    let models = provider_models(c, obj, &path);
    let transformer = obj.get("transformer").filter(|v| !v.is_null()).cloned();
    let context_window = c
        .opt_u64(obj, "context_window", &format!("{path}.context_window"))
        .map(|v| v.min(u32::MAX as u64) as u32);
    let max_tokens = c
        .opt_u64(obj, "max_tokens", &format!("{path}.max_tokens"))
        .map(|v| v.min(u32::MAX as u64) as u32);
    let reasoning_in_history = c
        .opt_bool(
            obj,
            "reasoning_in_history",
            &format!("{path}.reasoning_in_history"),
        )
        .unwrap_or(false);
    let (context_editing, output_reserve, context_target_percent) = context_editing(c, obj, &path);
    // Resolved once here, so the proxy's per-request locality checks parse no URL.
    let local = c
        .opt_bool(obj, "local", &format!("{path}.local"))
        .or_else(|| {
            url::Url::parse(&url)
                .ok()
                .map(|u| crate::config::is_loopback_url(&u))
        });
    let kind = provider_kind(&url, transformer.as_ref());
    // One provider speaks one wire format: every replica must be the same kind.
    for (j, r) in replicas.iter().enumerate().skip(1) {
        if provider_kind(&r.url, transformer.as_ref()) != kind {
            c.add(
                format!("{path}.api_base_url[{j}]"),
                format!(
                    "\"{}\" is not the same kind of endpoint as the first URL",
                    r.url
                ),
                "list replicas of one server kind: all …/v1/chat/completions or all …/v1/messages",
            );
        }
    }
    Some(Provider {
        kind,
        name,
        url_parsed: crate::config::ParsedUrl::new(&url),
        api_base_url: url,
        replicas: replicas.into(),
        replica_max_in_flight,
        api_key,
        models,
        transformer,
        context_window,
        max_tokens,
        reasoning_in_history,
        context_editing,
        output_reserve,
        context_target_percent,
        local,
    })
}

/// `context_editing`, `output_reserve` and `context_target_percent`, with defaults.
fn context_editing(
    c: &mut Checker,
    obj: &Map<String, Value>,
    path: &str,
) -> (ContextEditing, u32, u8) {
    let key = "context_editing";
    let mode = c
        .opt(
            obj,
            (key, &format!("{path}.{key}")),
            |v| ContextEditing::parse(v.as_str()?),
            |v| {
                format!(
                    "expected one of {}, found {}",
                    ContextEditing::NAMES.join(", "),
                    compact(v)
                )
            },
            "write \"context_editing\": \"auto\" (clear old tool results to fit, the default), \"cloud_first\" (Router.longContext first) or \"off\"".to_owned(),
        )
        .unwrap_or_default();
    let reserve_path = format!("{path}.output_reserve");
    let reserve = match c.opt_u64(obj, "output_reserve", &reserve_path) {
        Some(n) if n > u64::from(u32::MAX) => {
            c.add(
                &reserve_path,
                format!("{n} is too large"),
                "use a token count such as 4096",
            );
            DEFAULT_OUTPUT_RESERVE
        }
        Some(n) => n as u32,
        None => DEFAULT_OUTPUT_RESERVE,
    };
    let pct_path = format!("{path}.context_target_percent");
    let percent = match c.opt_u64(obj, "context_target_percent", &pct_path) {
        Some(n @ 10..=95) => n as u8,
        Some(n) => {
            c.add(
                &pct_path,
                format!("{n} is outside 10–95"),
                "use a share of the window between 10 and 95, e.g. 70",
            );
            DEFAULT_CONTEXT_TARGET_PERCENT
        }
        None => DEFAULT_CONTEXT_TARGET_PERCENT,
    };
    (mode, reserve, percent)
}

/// The provider's `name`: present, comma-free (Router entries split on the comma) and unique.
fn provider_name(
    c: &mut Checker,
    obj: &Map<String, Value>,
    path: &str,
    seen: &mut HashSet<String>,
) -> Option<String> {
    let name = match c.opt_str(obj, "name", &format!("{path}.name")) {
        Some(n) if !n.trim().is_empty() => n,
        Some(_) | None => {
            c.add(
                format!("{path}.name"),
                "missing",
                "give the provider a short name such as \"ollama\"; Router entries refer to it",
            );
            return None;
        }
    };
    if name.contains(',') {
        c.add(format!("{path}.name"), format!("\"{name}\" contains a comma, which separates provider from model in Router entries"), "rename the provider without commas");
    }
    if !seen.insert(name.clone()) {
        c.add(
            format!("{path}.name"),
            format!("provider \"{name}\" is defined twice"),
            "give each provider a unique name or merge their models",
        );
    }
    Some(name)
}

/// The provider's `api_base_url`: one URL, or a list of URLs serving the same model
/// (replicas). Returns the first URL and, for a list, every URL.
fn provider_urls(
    c: &mut Checker,
    obj: &Map<String, Value>,
    path: &str,
    name: &str,
) -> (String, Vec<Replica>) {
    let at = format!("{path}.api_base_url");
    let Some(Value::Array(items)) = obj.get("api_base_url") else {
        return (
            provider_url(c, obj.get("api_base_url"), &at, name),
            Vec::new(),
        );
    };
    if items.is_empty() || items.len() > MAX_REPLICAS {
        c.add(
            &at,
            format!("lists {} URLs", items.len()),
            format!("list 1 to {MAX_REPLICAS} URLs of servers running the same model, e.g. [\"http://10.0.0.2:8000/v1/chat/completions\", \"http://10.0.0.3:8000/v1/chat/completions\"]"),
        );
        return (String::new(), Vec::new());
    }
    let urls: Vec<String> = items
        .iter()
        .enumerate()
        .map(|(j, item)| provider_url(c, Some(item), &format!("{at}[{j}]"), name))
        .collect();
    let mut seen = HashSet::new();
    for (j, url) in urls.iter().enumerate() {
        if !url.is_empty() && !seen.insert(url.as_str()) {
            c.add(
                format!("{at}[{j}]"),
                format!("\"{url}\" is listed twice"),
                "list each replica once",
            );
        }
    }
    let first = urls[0].clone();
    (first, urls.into_iter().map(Replica::new).collect())
}

/// One `api_base_url` (or one item of the list at `at`), trimmed; an http(s) URL with
/// a host unless it still holds an unresolved `$VAR`.
fn provider_url(c: &mut Checker, value: Option<&Value>, at: &str, name: &str) -> String {
    let url = match value {
        Some(Value::String(u)) if !u.trim().is_empty() => u.trim().to_owned(),
        None | Some(Value::Null) | Some(Value::String(_)) => {
            c.add(
                at,
                format!("provider \"{name}\" has no api_base_url"),
                "set the full endpoint URL, e.g. \"http://127.0.0.1:11434/v1/chat/completions\" or \"https://api.anthropic.com/v1/messages\"",
            );
            String::new()
        }
        Some(other) => {
            c.add(
                at,
                format!("expected a URL, found {}", kind_of(other)),
                "write the URL as a quoted string, or a list of them for replicas",
            );
            String::new()
        }
    };
    if !url.is_empty() && !url.contains('$') {
        match url::Url::parse(&url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            Ok(u) => c.add(
                at,
                format!("\"{url}\" uses scheme \"{}\"", u.scheme()),
                "use an http:// or https:// URL",
            ),
            Err(e) => c.add(
                at,
                format!("\"{url}\" is not a valid URL ({e})"),
                "write a full URL such as \"http://127.0.0.1:11434/v1/chat/completions\"",
            ),
        }
    }
    url
}

/// The provider's `models`: a list of non-empty names, trimmed.
fn provider_models(c: &mut Checker, obj: &Map<String, Value>, path: &str) -> Vec<String> {
    match obj.get("models") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(ms)) => ms
            .iter()
            .enumerate()
            .filter_map(|(j, m)| match m.as_str() {
                Some(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
                _ => {
                    c.add(
                        format!("{path}.models[{j}]"),
                        format!("expected a model name, found {}", compact(m)),
                        "list model names as strings, e.g. [\"gpt-oss:20b\"]",
                    );
                    None
                }
            })
            .collect(),
        Some(other) => {
            c.add(
                format!("{path}.models"),
                format!("expected a list, found {}", kind_of(other)),
                "write \"models\": [\"model-a\", \"model-b\"]",
            );
            Vec::new()
        }
    }
}
