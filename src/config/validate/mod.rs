//! Validation: turn an interpolated JSON tree into a [`Config`], collecting every
//! problem (path, message, fix) instead of stopping at the first.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Map, Value};

use super::model::*;
use super::Problem;

mod proxy;
mod quality;
pub use proxy::DEFAULT_MAX_REQUESTS_IN_FLIGHT;

/// Is `host` a loopback address or name? Only then may the proxy run without `APIKEY`.
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim().trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>, fix: impl Into<String>) {
        self.problems.push(Problem {
            path: path.into(),
            message: message.into(),
            fix: fix.into(),
        });
    }

    fn opt_str(&mut self, obj: &Map<String, Value>, key: &str, path: &str) -> Option<String> {
        match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.add(
                    path,
                    format!("expected a string, found {}", kind_of(other)),
                    format!("write it as a quoted string, e.g. \"{key}\": \"…\""),
                );
                None
            }
        }
    }

    /// A non-negative integer, also accepted as a numeric string (claude-code-router
    /// users often write `"PORT": "3456"`).
    fn opt_u64(&mut self, obj: &Map<String, Value>, key: &str, path: &str) -> Option<u64> {
        match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64(),
            Some(Value::String(s)) if s.trim().parse::<u64>().is_ok() => s.trim().parse().ok(),
            Some(other) => {
                self.add(
                    path,
                    format!("expected a whole number, found {}", compact(other)),
                    format!("write a number without quotes, e.g. \"{key}\": 1000"),
                );
                None
            }
        }
    }

    fn opt_bool(&mut self, obj: &Map<String, Value>, key: &str, path: &str) -> Option<bool> {
        match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => {
                self.add(
                    path,
                    format!("expected true or false, found {}", compact(other)),
                    format!("write \"{key}\": true or \"{key}\": false"),
                );
                None
            }
        }
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn compact(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 40 {
        format!("{}…", &s[..s.floor_char_boundary(40)])
    } else {
        s
    }
}

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

/// Build the typed config from an interpolated tree. `unset` lists the variables that
/// interpolation could not resolve, with their paths.
pub(super) fn build(doc: &Value, unset: &[(String, String)]) -> Result<Config, Vec<Problem>> {
    let mut c = Checker {
        problems: Vec::new(),
    };
    // A provider key set nowhere disables that provider (the proxy says so once and
    // answers requests routed to it with the fix); anything else unset is a problem.
    let mut keyless = BTreeMap::new();
    for (path, var) in unset {
        if let Some(name) = provider_of_key_path(doc, path) {
            keyless.insert(name, var.clone());
            continue;
        }
        c.add(
            path.clone(),
            format!("uses ${var}, which is not set in the environment or the secrets store"),
            format!("export {var}=… in the environment that runs ccr-setup, or write the value directly"),
        );
    }
    let Some(root) = doc.as_object() else {
        c.add(
            "$",
            format!("the config must be an object, found {}", kind_of(doc)),
            "start the file with { and end it with }",
        );
        return Err(c.problems);
    };

    let mut providers = build_providers(&mut c, root);
    for p in providers
        .iter_mut()
        .filter(|p| keyless.contains_key(&p.name))
    {
        // Interpolation left the `$VAR` text; it must never go upstream as a key.
        p.api_key = None;
    }
    let host = c
        .opt_str(root, "HOST", "HOST")
        .unwrap_or_else(|| DEFAULT_HOST.to_owned());
    let api_key = c
        .opt_str(root, "APIKEY", "APIKEY")
        .filter(|k| !k.is_empty());
    if !is_loopback_host(&host) && api_key.is_none() {
        c.add(
            "HOST",
            format!("\"{host}\" is reachable from other machines, but APIKEY is empty, so anyone on the network could use your models and keys"),
            "set \"APIKEY\" to a long random secret, or set \"HOST\": \"127.0.0.1\"",
        );
    }
    let port = match c.opt_u64(root, "PORT", "PORT") {
        None => DEFAULT_PORT,
        Some(p) if (1..=65535).contains(&p) => p as u16,
        Some(p) => {
            c.add(
                "PORT",
                format!("{p} is not a valid port"),
                "use a port between 1 and 65535, e.g. 3456",
            );
            DEFAULT_PORT
        }
    };
    let log = c.opt_bool(root, "LOG", "LOG").unwrap_or(false);
    let log_level = c
        .opt_str(root, "LOG_LEVEL", "LOG_LEVEL")
        .unwrap_or_else(|| "info".to_owned());
    let api_timeout_ms = positive_ms(&mut c, root, "API_TIMEOUT_MS", DEFAULT_API_TIMEOUT_MS);
    let connect_timeout_ms = positive_ms(
        &mut c,
        root,
        "CONNECT_TIMEOUT_MS",
        DEFAULT_CONNECT_TIMEOUT_MS,
    );
    let stream_idle_timeout_ms = positive_ms(
        &mut c,
        root,
        "STREAM_IDLE_TIMEOUT_MS",
        DEFAULT_STREAM_IDLE_TIMEOUT_MS,
    );

    let (allowed_origins, max_requests_in_flight) = proxy::build_guard(&mut c, root);
    let router = build_router(&mut c, root, &providers);
    let fallback = build_fallback(&mut c, root, &providers);
    let quality = quality::build_quality(&mut c, root);
    let ollama = build_ollama(&mut c, root);

    if !c.problems.is_empty() {
        return Err(c.problems);
    }
    Ok(Config {
        providers,
        router: router.expect("router is Some when there are no problems"),
        api_key,
        host,
        port,
        log,
        log_level,
        api_timeout_ms,
        connect_timeout_ms,
        stream_idle_timeout_ms,
        allowed_origins,
        max_requests_in_flight,
        fallback,
        quality,
        ollama,
        keyless,
        raw: doc.clone(),
    })
}

/// The provider whose `api_key` is at `path` (`Providers[3].api_key`), if any.
fn provider_of_key_path(doc: &Value, path: &str) -> Option<String> {
    let index: usize = path
        .strip_prefix("Providers[")?
        .strip_suffix("].api_key")?
        .parse()
        .ok()?;
    doc.get("Providers")?
        .get(index)?
        .get("name")?
        .as_str()
        .map(str::to_owned)
}

fn positive_ms(c: &mut Checker, root: &Map<String, Value>, key: &str, default: u64) -> u64 {
    match c.opt_u64(root, key, key) {
        None => default,
        Some(0) => {
            c.add(
                key,
                "0 would time out every request",
                format!("remove \"{key}\" for the default ({default}) or give milliseconds > 0"),
            );
            default
        }
        Some(v) => v,
    }
}

fn build_providers(c: &mut Checker, root: &Map<String, Value>) -> Vec<Provider> {
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
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, item) in list.iter().enumerate() {
        let path = format!("Providers[{i}]");
        let Some(obj) = item.as_object() else {
            c.add(
                &path,
                format!("expected an object, found {}", kind_of(item)),
                "each provider is {\"name\": …, \"api_base_url\": …, \"models\": […]}",
            );
            continue;
        };
        let name = match c.opt_str(obj, "name", &format!("{path}.name")) {
            Some(n) if !n.trim().is_empty() => n,
            Some(_) | None => {
                c.add(
                    format!("{path}.name"),
                    "missing",
                    "give the provider a short name such as \"ollama\"; Router entries refer to it",
                );
                continue;
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
        let url = match c.opt_str(obj, "api_base_url", &format!("{path}.api_base_url")) {
            Some(u) if !u.trim().is_empty() => u.trim().to_owned(),
            _ => {
                c.add(
                    format!("{path}.api_base_url"),
                    format!("provider \"{name}\" has no api_base_url"),
                    "set the full endpoint URL, e.g. \"http://127.0.0.1:11434/v1/chat/completions\" or \"https://api.anthropic.com/v1/messages\"",
                );
                String::new()
            }
        };
        if !url.is_empty() && !url.contains('$') {
            match url::Url::parse(&url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                Ok(u) => c.add(
                    format!("{path}.api_base_url"),
                    format!("\"{url}\" uses scheme \"{}\"", u.scheme()),
                    "use an http:// or https:// URL",
                ),
                Err(e) => c.add(
                    format!("{path}.api_base_url"),
                    format!("\"{url}\" is not a valid URL ({e})"),
                    "write a full URL such as \"http://127.0.0.1:11434/v1/chat/completions\"",
                ),
            }
        }
        let api_key = c
            .opt_str(obj, "api_key", &format!("{path}.api_key"))
            .filter(|k| !k.is_empty());
        let models = match obj.get("models") {
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
        };
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
        let local = c.opt_bool(obj, "local", &format!("{path}.local"));
        out.push(Provider {
            kind: provider_kind(&url, transformer.as_ref()),
            name,
            api_base_url: url,
            api_key,
            models,
            transformer,
            context_window,
            max_tokens,
            reasoning_in_history,
            local,
        });
    }
    out
}

/// Check a `"provider,model"` entry against the providers.
fn model_ref(c: &mut Checker, raw: &Value, path: &str, providers: &[Provider]) -> Option<ModelRef> {
    let Some(s) = raw.as_str() else {
        c.add(
            path,
            format!("expected \"provider,model\", found {}", compact(raw)),
            "write it as \"provider,model\", e.g. \"ollama,gpt-oss:20b\"",
        );
        return None;
    };
    let Some(r) = ModelRef::parse(s) else {
        c.add(
            path,
            format!("\"{s}\" is not \"provider,model\""),
            "write it as \"provider,model\", e.g. \"ollama,gpt-oss:20b\"",
        );
        return None;
    };
    match providers.iter().find(|p| p.name == r.provider) {
        None => {
            let known: Vec<&str> = providers.iter().map(|p| p.name.as_str()).collect();
            c.add(path, format!("unknown provider \"{}\"", r.provider), format!("use one of the providers defined in Providers ({}) or add a provider named \"{}\"", known.join(", "), r.provider));
        }
        Some(p) if !p.models.is_empty() && !p.models.contains(&r.model) => {
            c.add(
                path,
                format!(
                    "model \"{}\" is not listed for provider \"{}\"",
                    r.model, p.name
                ),
                format!(
                    "add \"{}\" to that provider's \"models\" (it has: {})",
                    r.model,
                    p.models.join(", ")
                ),
            );
        }
        Some(p) if p.models.is_empty() => {
            c.add(
                path,
                format!("provider \"{}\" lists no models", p.name),
                format!(
                    "add \"models\": [\"{}\"] to provider \"{}\"",
                    r.model, p.name
                ),
            );
        }
        Some(_) => {}
    }
    Some(r)
}

fn build_router(
    c: &mut Checker,
    root: &Map<String, Value>,
    providers: &[Provider],
) -> Option<Router> {
    let example = providers
        .first()
        .and_then(|p| p.models.first().map(|m| format!("{},{}", p.name, m)))
        .unwrap_or_else(|| "ollama,gpt-oss:20b".to_owned());
    let obj = match root.get("Router") {
        Some(Value::Object(o)) => o,
        None | Some(Value::Null) => {
            c.add(
                "Router",
                "missing",
                format!("add \"Router\": {{\"default\": \"{example}\"}}"),
            );
            return None;
        }
        Some(other) => {
            c.add(
                "Router",
                format!("expected an object, found {}", kind_of(other)),
                format!("write \"Router\": {{\"default\": \"{example}\"}}"),
            );
            return None;
        }
    };
    let default = match obj.get("default") {
        None | Some(Value::Null) => {
            c.add(
                "Router.default",
                "missing: every request that matches no other rule goes to the default model",
                format!("set \"Router\": {{\"default\": \"{example}\", …}}"),
            );
            None
        }
        Some(Value::String(s)) if s.is_empty() => {
            c.add(
                "Router.default",
                "is empty",
                format!("set it to \"{example}\""),
            );
            None
        }
        Some(v) => model_ref(c, v, "Router.default", providers),
    };
    let mut scenario = |key: &str| match obj.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(v) => model_ref(c, v, &format!("Router.{key}"), providers),
    };
    let background = scenario("background");
    let think = scenario("think");
    let long_context = scenario("longContext");
    let web_search = scenario("webSearch");
    let image = scenario("image");
    let long_context_threshold =
        match c.opt_u64(obj, "longContextThreshold", "Router.longContextThreshold") {
            None => DEFAULT_LONG_CONTEXT_THRESHOLD,
            Some(0) => {
                c.add(
                    "Router.longContextThreshold",
                    "0 would send every request to longContext",
                    "remove it for the default (60000) or give a token count > 0",
                );
                DEFAULT_LONG_CONTEXT_THRESHOLD
            }
            Some(v) => v,
        };
    Some(Router {
        default: default?,
        background,
        think,
        long_context,
        long_context_threshold,
        web_search,
        image,
    })
}

/// Scenario names `fallback` may key on: the Router's scenarios (the names the routing
/// rules log).
const FALLBACK_SCENARIOS: &[&str] = &[
    "default",
    "background",
    "think",
    "longContext",
    "webSearch",
    "image",
];

fn build_fallback(
    c: &mut Checker,
    root: &Map<String, Value>,
    providers: &[Provider],
) -> BTreeMap<String, Vec<ModelRef>> {
    let mut out = BTreeMap::new();
    let obj = match root.get("fallback") {
        None | Some(Value::Null) => return out,
        Some(Value::Object(o)) => o,
        Some(other) => {
            c.add(
                "fallback",
                format!("expected an object, found {}", kind_of(other)),
                "write \"fallback\": {\"default\": [\"provider,model\", …]}",
            );
            return out;
        }
    };
    for (scenario, list) in obj {
        if quality::QUALITY_KEYS.contains(&scenario.as_str()) {
            continue;
        }
        let path = format!("fallback.{scenario}");
        if !FALLBACK_SCENARIOS.contains(&scenario.as_str()) {
            // A typo would otherwise silently fall back to the default chain.
            c.add(
                &path,
                format!("\"{scenario}\" is not a routing scenario"),
                format!("use one of: {}", FALLBACK_SCENARIOS.join(", ")),
            );
        }
        let Some(items) = list.as_array() else {
            c.add(
                &path,
                format!("expected a list, found {}", kind_of(list)),
                format!("write \"{scenario}\": [\"provider,model\", …]"),
            );
            continue;
        };
        let refs = items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| model_ref(c, v, &format!("{path}[{i}]"), providers))
            .collect();
        out.insert(scenario.clone(), refs);
    }
    out
}

fn build_ollama(c: &mut Checker, root: &Map<String, Value>) -> OllamaSettings {
    let mut s = OllamaSettings::default();
    let obj = match root.get("Ollama") {
        None | Some(Value::Null) => return s,
        Some(Value::Object(o)) => o,
        Some(other) => {
            c.add(
                "Ollama",
                format!("expected an object, found {}", kind_of(other)),
                "write \"Ollama\": {\"model\": \"gpt-oss:20b\", \"context_length\": 32768}",
            );
            return s;
        }
    };
    if let Some(m) = c.opt_str(obj, "model", "Ollama.model") {
        s.model = m;
    }
    if let Some(v) = c.opt_u64(obj, "context_length", "Ollama.context_length") {
        if (512..=u32::MAX as u64).contains(&v) {
            s.context_length = v as u32;
        } else {
            c.add(
                "Ollama.context_length",
                format!("{v} is not a usable context length"),
                "use at least 512 tokens; 32768 is the recommended value for Claude Code",
            );
        }
    }
    if let Some(v) = c.opt_u64(obj, "num_parallel", "Ollama.num_parallel") {
        s.num_parallel = v.clamp(1, 64) as u32;
    }
    if let Some(v) = c.opt_u64(obj, "max_loaded_models", "Ollama.max_loaded_models") {
        s.max_loaded_models = v.clamp(1, 64) as u32;
    }
    if let Some(v) = c.opt_bool(obj, "flash_attention", "Ollama.flash_attention") {
        s.flash_attention = Some(v);
    }
    if let Some(v) = c.opt_str(obj, "keep_alive", "Ollama.keep_alive") {
        s.keep_alive = v;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn good() -> Value {
        json!({
            "Providers": [
                {"name": "ollama", "api_base_url": "http://127.0.0.1:11434/v1/chat/completions", "models": ["gpt-oss:20b"]},
                {"name": "anthropic", "api_base_url": "https://api.anthropic.com/v1/messages", "api_key": "sk-ant", "models": ["claude-sonnet-4-5"]}
            ],
            "Router": {"default": "ollama,gpt-oss:20b", "think": "anthropic,claude-sonnet-4-5"},
            "fallback": {"default": ["anthropic,claude-sonnet-4-5"]}
        })
    }

    fn problems(doc: Value) -> Vec<Problem> {
        build(&doc, &[]).expect_err("expected problems")
    }

    fn paths(doc: Value) -> Vec<String> {
        problems(doc).into_iter().map(|p| p.path).collect()
    }

    #[test]
    fn good_config_resolves_with_kinds_and_defaults() {
        let cfg = build(&good(), &[]).unwrap();
        assert_eq!(cfg.providers[0].kind, ProviderKind::OpenAi);
        assert_eq!(cfg.providers[1].kind, ProviderKind::Anthropic);
        assert_eq!(cfg.port, 3456);
        assert_eq!(cfg.host, "127.0.0.1");
        assert_eq!(cfg.router.long_context_threshold, 60_000);
        assert_eq!(cfg.fallback_for("think")[0].provider, "anthropic");
        // A local provider without api_key is valid, not skipped.
        assert!(cfg.providers[0].api_key.is_none());
    }

    #[test]
    fn anthropic_transformer_marks_provider_anthropic() {
        let mut doc = good();
        doc["Providers"][0]["transformer"] = json!({"use": ["Anthropic"]});
        doc["Providers"][0]["api_base_url"] = json!("http://127.0.0.1:8080/anthropic");
        assert_eq!(
            build(&doc, &[]).unwrap().providers[0].kind,
            ProviderKind::Anthropic
        );
    }

    #[test]
    fn router_entry_with_unknown_provider() {
        let mut doc = good();
        doc["Router"]["think"] = json!("nope,model");
        let p = problems(doc);
        assert_eq!(p[0].path, "Router.think");
        assert!(p[0].message.contains("unknown provider \"nope\""));
        assert!(p[0].fix.contains("ollama, anthropic"));
    }

    #[test]
    fn router_entry_with_unlisted_model() {
        let mut doc = good();
        doc["Router"]["default"] = json!("ollama,qwen3:8b");
        let p = problems(doc);
        assert_eq!(p[0].path, "Router.default");
        assert!(p[0].message.contains("not listed"), "{}", p[0].message);
    }

    #[test]
    fn provider_without_api_base_url() {
        let mut doc = good();
        doc["Providers"][0]
            .as_object_mut()
            .unwrap()
            .remove("api_base_url");
        assert_eq!(paths(doc), vec!["Providers[0].api_base_url"]);
    }

    #[test]
    fn bad_url() {
        let mut doc = good();
        doc["Providers"][1]["api_base_url"] = json!("not a url");
        assert_eq!(paths(doc.clone()), vec!["Providers[1].api_base_url"]);
        doc["Providers"][1]["api_base_url"] = json!("ftp://host/v1/messages");
        assert_eq!(paths(doc), vec!["Providers[1].api_base_url"]);
    }

    #[test]
    fn port_out_of_range() {
        for bad in [json!(0), json!(70000), json!("http")] {
            let mut doc = good();
            doc["PORT"] = bad;
            assert_eq!(paths(doc), vec!["PORT"]);
        }
        let mut doc = good();
        doc["PORT"] = json!("8080");
        assert_eq!(build(&doc, &[]).unwrap().port, 8080);
    }

    #[test]
    fn non_loopback_host_without_apikey_is_refused() {
        let mut doc = good();
        doc["HOST"] = json!("0.0.0.0");
        assert_eq!(paths(doc.clone()), vec!["HOST"]);
        doc["APIKEY"] = json!("");
        assert_eq!(paths(doc.clone()), vec!["HOST"]);
        doc["APIKEY"] = json!("a-long-secret");
        assert!(build(&doc, &[]).is_ok());
        for lo in ["localhost", "127.0.0.2", "::1", "[::1]"] {
            let mut doc = good();
            doc["HOST"] = json!(lo);
            assert!(build(&doc, &[]).is_ok(), "{lo}");
        }
    }

    #[test]
    fn unset_provider_key_disables_the_provider_and_other_unset_variables_are_problems() {
        let cfg = build(
            &good(),
            &[("Providers[1].api_key".into(), "ANTHROPIC_API_KEY".into())],
        )
        .unwrap();
        let name = good()["Providers"][1]["name"].as_str().unwrap().to_owned();
        assert_eq!(cfg.missing_key(&name), Some("ANTHROPIC_API_KEY"));
        let mut doc = good();
        doc["Providers"][1]["api_key"] = json!("$ANTHROPIC_API_KEY");
        let cfg = build(
            &doc,
            &[("Providers[1].api_key".into(), "ANTHROPIC_API_KEY".into())],
        )
        .unwrap();
        assert_eq!(cfg.providers[1].api_key, None);
        let p = build(&good(), &[("APIKEY".into(), "PROXY_KEY".into())]).unwrap_err();
        assert_eq!(p[0].path, "APIKEY");
        assert!(p[0].message.contains("$PROXY_KEY"));
        assert!(p[0].fix.contains("export PROXY_KEY"));
    }

    #[test]
    fn missing_router_default() {
        let mut doc = good();
        doc["Router"].as_object_mut().unwrap().remove("default");
        let p = problems(doc);
        assert_eq!(p[0].path, "Router.default");
        assert!(p[0].fix.contains("ollama,gpt-oss:20b"));
    }

    #[test]
    fn missing_router_is_an_error_not_a_crash() {
        let mut doc = good();
        doc.as_object_mut().unwrap().remove("Router");
        assert_eq!(paths(doc), vec!["Router"]);
    }

    #[test]
    fn fallback_entries_are_checked() {
        let mut doc = good();
        doc["fallback"]["default"] = json!(["anthropic,claude-sonnet-4-5", "ghost,x"]);
        assert_eq!(paths(doc), vec!["fallback.default[1]"]);
    }

    #[test]
    fn fallback_scenario_names_are_checked() {
        let mut doc = good();
        doc["fallback"]["longcontext"] = json!(["anthropic,claude-sonnet-4-5"]);
        let p = problems(doc);
        assert_eq!(p[0].path, "fallback.longcontext");
        assert!(p[0].fix.contains("longContext"), "{}", p[0].fix);
    }

    #[test]
    fn every_problem_is_listed_not_just_the_first() {
        let mut doc = good();
        doc["PORT"] = json!(0);
        doc["Router"]["default"] = json!("ghost,x");
        doc["Providers"][1]["api_base_url"] = json!("::");
        let mut got = paths(doc);
        got.sort();
        assert_eq!(
            got,
            vec!["PORT", "Providers[1].api_base_url", "Router.default"]
        );
    }

    #[test]
    fn ollama_settings_override_tuned_env() {
        let mut doc = good();
        doc["Ollama"] =
            json!({"context_length": 65536, "keep_alive": "1h", "flash_attention": false});
        let cfg = build(&doc, &[]).unwrap();
        let env: BTreeMap<_, _> = cfg.ollama.tuned_env().into_iter().collect();
        assert_eq!(env["OLLAMA_CONTEXT_LENGTH"], "65536");
        assert_eq!(env["OLLAMA_KEEP_ALIVE"], "1h");
        assert_eq!(env["OLLAMA_FLASH_ATTENTION"], "0");
        assert_eq!(env["OLLAMA_NUM_PARALLEL"], "1");
        // Unset by default: Ollama decides ("automatic").
        let cfg = build(&good(), &[]).unwrap();
        let env: BTreeMap<_, _> = cfg.ollama.tuned_env().into_iter().collect();
        assert!(!env.contains_key("OLLAMA_FLASH_ATTENTION"), "{env:?}");
    }
}
