//! The `Router` object: the default model and the per-scenario models, each a
//! `"provider,model"` entry checked against the providers.

use serde_json::{Map, Value};

use super::super::model::{ModelRef, Provider, Router, DEFAULT_LONG_CONTEXT_THRESHOLD};
use super::{compact, Checker};

/// Check a `"provider,model"` entry against the providers.
pub(super) fn model_ref(
    c: &mut Checker,
    raw: &Value,
    path: &str,
    providers: &[Provider],
) -> Option<ModelRef> {
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

pub(super) fn build_router(
    c: &mut Checker,
    root: &Map<String, Value>,
    providers: &[Provider],
) -> Option<Router> {
    let example = providers
        .first()
        .and_then(|p| p.models.first().map(|m| format!("{},{}", p.name, m)))
        .unwrap_or_else(|| "ollama,gpt-oss:20b".to_owned());
    if root.get("Router").is_none_or(Value::is_null) {
        c.add(
            "Router",
            "missing",
            format!("add \"Router\": {{\"default\": \"{example}\"}}"),
        );
        return None;
    }
    let fix = format!("write \"Router\": {{\"default\": \"{example}\"}}");
    let obj = c.opt_object(root, "Router", fix)?;
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
