//! Validation: turn an interpolated JSON tree into a [`Config`], collecting every
//! problem (path, message, fix) instead of stopping at the first.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Map, Value};

use super::model::*;
use super::Problem;

mod clients;
mod fallback;
mod listen;
mod ollama;
mod providers;
mod proxy;
mod quality;
mod router;
mod team;

pub use clients::parse_offset;
use fallback::build_fallback;
use listen::build_listen;
use ollama::build_ollama;
use providers::build_providers;
pub use proxy::DEFAULT_MAX_REQUESTS_IN_FLIGHT;
use router::build_router;

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

    /// `obj[key]` read by `read`; absent or null is None, and so is a value `read`
    /// refuses, which is a problem at `path` saying what was `expected` and `fix`.
    fn opt<T>(
        &mut self,
        obj: &Map<String, Value>,
        (key, path): (&str, &str),
        read: impl Fn(&Value) -> Option<T>,
        expected: impl FnOnce(&Value) -> String,
        fix: String,
    ) -> Option<T> {
        let value = obj.get(key).filter(|v| !v.is_null())?;
        let read = read(value);
        if read.is_none() {
            self.add(path, expected(value), fix);
        }
        read
    }

    /// The object at `root[key]` (a config section); absent or null is None, and so is
    /// any other value, which is a problem saying how to write the section (`fix`).
    fn opt_object<'a>(
        &mut self,
        root: &'a Map<String, Value>,
        key: &str,
        fix: impl Into<String>,
    ) -> Option<&'a Map<String, Value>> {
        match root.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Object(o)) => Some(o),
            Some(other) => {
                let found = format!("expected an object, found {}", kind_of(other));
                self.add(key, found, fix);
                None
            }
        }
    }

    fn opt_str(&mut self, obj: &Map<String, Value>, key: &str, path: &str) -> Option<String> {
        self.opt(
            obj,
            (key, path),
            |v| v.as_str().map(str::to_owned),
            |v| format!("expected a string, found {}", kind_of(v)),
            format!("write it as a quoted string, e.g. \"{key}\": \"…\""),
        )
    }

    /// A non-negative integer, also accepted as a numeric string (claude-code-router
    /// users often write `"PORT": "3456"`).
    fn opt_u64(&mut self, obj: &Map<String, Value>, key: &str, path: &str) -> Option<u64> {
        self.opt(
            obj,
            (key, path),
            |v| v.as_u64().or_else(|| v.as_str()?.trim().parse().ok()),
            |v| format!("expected a whole number, found {}", compact(v)),
            format!("write a number without quotes, e.g. \"{key}\": 1000"),
        )
    }

    fn opt_bool(&mut self, obj: &Map<String, Value>, key: &str, path: &str) -> Option<bool> {
        self.opt(
            obj,
            (key, path),
            Value::as_bool,
            |v| format!("expected true or false, found {}", compact(v)),
            format!("write \"{key}\": true or \"{key}\": false"),
        )
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

/// Build the typed config from an interpolated tree. `unset` lists the variables that
/// interpolation could not resolve, with their paths.
pub(super) fn build(doc: &Value, unset: &[(String, String)]) -> Result<Config, Vec<Problem>> {
    let mut c = Checker {
        problems: Vec::new(),
    };
    let keyless = keyless_providers(&mut c, doc, unset);
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
    let listen = build_listen(&mut c, root);
    let (allowed_origins, max_requests_in_flight) = proxy::build_guard(&mut c, root);
    let router = build_router(&mut c, root, &providers);
    let fallback = build_fallback(&mut c, root, &providers);
    let quality = quality::build_quality(&mut c, root);
    let ollama = build_ollama(&mut c, root);
    let team = clients::build_team(&mut c, root);
    team::check_team(&mut c, root);

    if !c.problems.is_empty() {
        return Err(c.problems);
    }
    Ok(Config {
        providers,
        router: router.expect("router is Some when there are no problems"),
        api_key: listen.api_key,
        host: listen.host,
        port: listen.port,
        log: listen.log,
        log_level: listen.log_level,
        api_timeout_ms: listen.api_timeout_ms,
        connect_timeout_ms: listen.connect_timeout_ms,
        stream_idle_timeout_ms: listen.stream_idle_timeout_ms,
        allowed_origins,
        max_requests_in_flight,
        fallback,
        quality,
        ollama,
        keyless,
        clients: team.clients,
        clients_timezone: team.timezone,
        server_mode: team.server_mode,
        raw: doc.clone(),
    })
}

/// A provider key set nowhere disables that provider (the proxy says so once and
/// answers requests routed to it with the fix): provider name to the variable. Anything
/// else unset is a problem.
fn keyless_providers(
    c: &mut Checker,
    doc: &Value,
    unset: &[(String, String)],
) -> BTreeMap<String, String> {
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
    keyless
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
    fn api_base_url_may_list_replicas_each_checked() {
        let mut doc = good();
        let (a, b) = (
            "http://10.0.0.2:8000/v1/chat/completions",
            "http://10.0.0.3:8000/v1/chat/completions",
        );
        doc["Providers"][0]["api_base_url"] = json!([a, b]);
        doc["Providers"][0]["replica_max_in_flight"] = json!(4);
        let cfg = build(&doc, &[]).unwrap();
        let p = &cfg.providers[0];
        assert_eq!(
            p.api_base_url, a,
            "the first URL, for every existing reader"
        );
        let urls: Vec<&str> = p.replicas.iter().map(|r| r.url.as_str()).collect();
        assert_eq!(urls, [a, b]);
        assert_eq!(p.replica_max_in_flight, Some(4));
        assert_eq!(p.display_urls(), format!("{a} (2 replicas)"));
        // A single URL keeps no replica list.
        assert!(build(&good(), &[]).unwrap().providers[0]
            .replicas
            .is_empty());

        doc["Providers"][0]["api_base_url"] = json!([a, "ftp://x/v1", 3, a]);
        assert_eq!(
            paths(doc.clone()),
            [
                "Providers[0].api_base_url[1]",
                "Providers[0].api_base_url[2]",
                "Providers[0].api_base_url[3]"
            ]
        );
        doc["Providers"][0]["api_base_url"] = json!([a, "http://10.0.0.4:8000/v1/messages"]);
        assert_eq!(paths(doc.clone()), ["Providers[0].api_base_url[1]"]);
        doc["Providers"][0]["api_base_url"] = json!([]);
        assert_eq!(paths(doc.clone()), ["Providers[0].api_base_url"]);
        doc["Providers"][0]["api_base_url"] = json!(a);
        doc["Providers"][0]["replica_max_in_flight"] = json!(0);
        assert_eq!(paths(doc), ["Providers[0].replica_max_in_flight"]);
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
