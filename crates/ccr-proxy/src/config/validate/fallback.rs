//! The `fallback` object: per routing scenario, the models tried in order when the
//! routed one fails.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::super::model::{ModelRef, Provider};
use super::router::model_ref;
use super::{kind_of, Checker};

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

pub(super) fn build_fallback(
    c: &mut Checker,
    root: &Map<String, Value>,
    providers: &[Provider],
) -> BTreeMap<String, Vec<ModelRef>> {
    let mut out = BTreeMap::new();
    let fix = "write \"fallback\": {\"default\": [\"provider,model\", …]}";
    let Some(obj) = c.opt_object(root, "fallback", fix) else {
        return out;
    };
    for (scenario, list) in obj {
        if super::quality::QUALITY_KEYS.contains(&scenario.as_str()) {
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
