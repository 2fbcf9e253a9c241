//! The quality fallback's two numbers, which live beside the chains in `fallback`
//! (`fallback.after_local_failures`, `fallback.cloud_requests`): after that many
//! unusable local answers in a session, the session goes to the cloud chain for that
//! many requests, then tries local again.

use serde_json::{Map, Value};

use super::Checker;
use crate::config::QualityFallback;

/// The keys of `fallback` that are numbers, not scenario chains.
pub(super) const QUALITY_KEYS: &[&str] = &["after_local_failures", "cloud_requests"];

pub(super) fn build_quality(c: &mut Checker, root: &Map<String, Value>) -> QualityFallback {
    let mut q = QualityFallback::default();
    let Some(Value::Object(obj)) = root.get("fallback") else {
        return q;
    };
    if let Some(n) = c.opt_u64(obj, "after_local_failures", "fallback.after_local_failures") {
        q.after_local_failures = u32::try_from(n).unwrap_or(u32::MAX);
    }
    match c.opt_u64(obj, "cloud_requests", "fallback.cloud_requests") {
        Some(0) => c.add(
            "fallback.cloud_requests",
            "0 cloud requests would never leave the local model",
            "give a number > 0, or set \"after_local_failures\": 0 to turn the quality fallback off",
        ),
        Some(n) => q.cloud_requests = u32::try_from(n).unwrap_or(u32::MAX),
        None => {}
    }
    q
}

#[cfg(test)]
mod tests {
    use super::super::build;
    use serde_json::json;

    fn doc(fallback: serde_json::Value) -> serde_json::Value {
        json!({
            "Providers": [{"name": "ollama", "api_base_url": "http://127.0.0.1:11434/v1/chat/completions", "models": ["m"]},
                          {"name": "lan", "api_base_url": "http://192.168.1.9:8080/v1/chat/completions", "models": ["m"], "local": true}],
            "Router": {"default": "ollama,m"},
            "fallback": fallback
        })
    }

    #[test]
    fn the_numbers_sit_beside_the_chains_and_are_checked() {
        let cfg = build(&doc(json!({"default": ["ollama,m"]})), &[]).unwrap();
        assert_eq!(cfg.quality.after_local_failures, 2);
        assert_eq!(cfg.quality.cloud_requests, 10);
        assert_eq!(cfg.providers[1].local, Some(true));
        let cfg = build(
            &doc(json!({"default": ["ollama,m"], "after_local_failures": 0, "cloud_requests": 4})),
            &[],
        )
        .unwrap();
        assert_eq!(
            (cfg.quality.after_local_failures, cfg.quality.cloud_requests),
            (0, 4)
        );
        // Not taken for scenario names.
        assert!(cfg.fallback.keys().all(|k| k == "default"));

        let problems = build(
            &doc(json!({"after_local_failures": "two", "cloud_requests": 0})),
            &[],
        )
        .unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            ["fallback.after_local_failures", "fallback.cloud_requests"]
        );
        assert!(
            problems[1].fix.contains("after_local_failures"),
            "{:?}",
            problems[1]
        );
    }
}
