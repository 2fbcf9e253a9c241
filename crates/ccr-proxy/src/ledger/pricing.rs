//! Prices, and which providers are local.
//!
//! Prices are USD per million tokens, as Anthropic lists them. The built-in prices are
//! the model catalogue's (`data/models.json`, see [`crate::catalogue`]); the config's
//! `Pricing` object adds models or overrides them:
//!
//! ```json5
//! "Pricing": {
//!   "claude-sonnet-4-5": {"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75},
//!   "deepseek-chat": {"input": 0.27, "output": 1.1},   // cache prices default to 0.1× / 1.25× input
//!   "local_per_hour": 0.06                              // electricity, USD per hour of local generation
//! }
//! ```
//!
//! A model name matches a key when it equals the key or continues it after a `-`, `@`
//! or `[` (so the dated `claude-haiku-4-5-20251001` and `claude-sonnet-4-6[1m]` resolve);
//! the longest matching key wins, and the config's keys win over the built-in ones.
//! Names are compared lowercased, with dots read as dashes and a `vendor/` prefix
//! dropped (`anthropic/claude-sonnet-4.5` is `claude-sonnet-4-5`).

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::config::{Config, ConfigFile, Provider, ProviderKind};

/// Prices in USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    pub cache_read: f64,
    pub cache_write: f64,
}

impl Price {
    const fn new(input: f64, output: f64, cache_read: f64, cache_write: f64) -> Price {
        Price {
            input,
            output,
            cache_read,
            cache_write,
        }
    }

    /// What these tokens cost at this price, in USD.
    pub fn cost(&self, input: u64, output: u64, cache_read: u64, cache_write: u64) -> f64 {
        (input as f64 * self.input
            + output as f64 * self.output
            + cache_read as f64 * self.cache_read
            + cache_write as f64 * self.cache_write)
            / 1_000_000.0
    }
}

/// The model `stats` prices local requests at when nothing else says: the catalogue's
/// current Sonnet, the same model `init` writes for cloud fallback.
pub fn fallback_compare_to() -> &'static str {
    crate::catalogue::default_cloud_model()
}

impl From<crate::catalogue::ListPrice> for Price {
    fn from(p: crate::catalogue::ListPrice) -> Price {
        Price::new(p.input, p.output, p.cache_read, p.cache_write)
    }
}

/// A bad `Pricing` entry: where, what, and the fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {message}\n    hint: {fix}")]
pub struct PricingError {
    pub path: String,
    pub message: String,
    pub fix: String,
}

/// The prices `stats` uses: the config's entries first, then the built-in ones.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceTable {
    user: BTreeMap<String, Price>,
    /// USD per hour of local generation (the sum of local requests' durations).
    pub local_per_hour: f64,
}

impl Default for PriceTable {
    fn default() -> Self {
        PriceTable::builtin()
    }
}

impl PriceTable {
    /// Only the built-in prices; local requests cost nothing.
    pub fn builtin() -> PriceTable {
        PriceTable {
            user: BTreeMap::new(),
            local_per_hour: 0.0,
        }
    }

    /// The built-in prices plus the `Pricing` object of a config document (absent is
    /// fine). Reports every bad entry, each with its JSON path.
    pub fn from_config(raw: &Value) -> Result<PriceTable, Vec<PricingError>> {
        let mut table = PriceTable::builtin();
        let Some(pricing) = raw.get("Pricing") else {
            return Ok(table);
        };
        let mut problems = Vec::new();
        let Some(entries) = pricing.as_object() else {
            return Err(vec![PricingError {
                path: "Pricing".into(),
                message: "must be an object".into(),
                fix: r#"write it as {"model-name": {"input": 3, "output": 15}, ...}"#.into(),
            }]);
        };
        for (key, value) in entries {
            if key == "local_per_hour" {
                match value.as_f64().filter(|v| v.is_finite() && *v >= 0.0) {
                    Some(rate) => table.local_per_hour = rate,
                    None => problems.push(PricingError {
                        path: "Pricing.local_per_hour".into(),
                        message: format!("must be a number >= 0, found {value}"),
                        fix: "set the electricity cost of running the local model, in USD per \
                              hour, e.g. 0.06"
                            .into(),
                    }),
                }
                continue;
            }
            match parse_price(key, value) {
                Ok(price) => {
                    table.user.insert(normalize(key), price);
                }
                Err(mut e) => problems.append(&mut e),
            }
        }
        if problems.is_empty() {
            Ok(table)
        } else {
            Err(problems)
        }
    }

    /// The price of `model` and the key it matched, or None when no key matches.
    pub fn lookup(&self, model: &str) -> Option<(String, Price)> {
        let name = normalize(model);
        let user = self
            .user
            .iter()
            .filter(|(key, _)| matches_key(&name, key))
            .max_by_key(|(key, _)| key.len())
            .map(|(key, price)| (key.clone(), *price));
        user.or_else(|| crate::catalogue::find(model).map(|m| (m.id.clone(), m.price.into())))
    }
}

fn parse_price(key: &str, value: &Value) -> Result<Price, Vec<PricingError>> {
    let path = format!("Pricing.{key}");
    let Some(obj) = value.as_object() else {
        return Err(vec![PricingError {
            path,
            message: format!("must be an object, found {value}"),
            fix: r#"write {"input": <USD per million>, "output": <USD per million>}"#.into(),
        }]);
    };
    let mut problems = Vec::new();
    let mut field = |name: &str, required: bool| -> Option<f64> {
        match obj.get(name) {
            None if !required => None,
            None => {
                problems.push(PricingError {
                    path: format!("{path}.{name}"),
                    message: "is missing".into(),
                    fix: format!("add \"{name}\": <USD per million tokens>"),
                });
                None
            }
            Some(v) => match v.as_f64().filter(|x| x.is_finite() && *x >= 0.0) {
                Some(x) => Some(x),
                None => {
                    problems.push(PricingError {
                        path: format!("{path}.{name}"),
                        message: format!("must be a number >= 0, found {v}"),
                        fix: "write the price in USD per million tokens, e.g. 3".into(),
                    });
                    None
                }
            },
        }
    };
    let input = field("input", true);
    let output = field("output", true);
    let cache_read = field("cache_read", false);
    let cache_write = field("cache_write", false);
    match (input, output) {
        (Some(input), Some(output)) if problems.is_empty() => Ok(Price {
            input,
            output,
            // Anthropic's multipliers: a cache hit costs 0.1× input, a 5-minute write 1.25×.
            cache_read: cache_read.unwrap_or(input * 0.1),
            cache_write: cache_write.unwrap_or(input * 1.25),
        }),
        _ => Err(problems),
    }
}

use crate::catalogue::{matches_key, normalize};

/// Whether a provider runs on this machine: its `local` key, else (resolved when the
/// config is validated) whether its `api_base_url` host is loopback (`localhost`,
/// `127.0.0.0/8`, `::1`). Anything else, even on the LAN, is cloud unless marked.
pub fn is_local_provider(provider: &Provider) -> bool {
    provider.local.unwrap_or_else(|| {
        url::Url::parse(&provider.api_base_url).is_ok_and(|u| crate::config::is_loopback_url(&u))
    })
}

/// Provider name → local, from the resolved config or, when the config does not
/// resolve in this environment, from the file as written.
pub fn provider_locality(
    config: Option<&Config>,
    file: Option<&ConfigFile>,
) -> HashMap<String, bool> {
    match (config, file) {
        (Some(config), _) => config
            .providers
            .iter()
            .map(|p| (p.name.clone(), is_local_provider(p)))
            .collect(),
        (None, Some(file)) => file.raw_provider_locality().into_iter().collect(),
        (None, None) => HashMap::new(),
    }
}

/// The default `--compare-to`: the first priced model of the first anthropic-kind
/// provider that is not local, else [`fallback_compare_to`]. A cloud model nobody priced
/// (not in the catalogue, not under `Pricing`) is skipped, so `stats` still works.
pub fn default_compare_to(config: Option<&Config>, prices: &PriceTable) -> String {
    config
        .and_then(|c| {
            c.providers
                .iter()
                .filter(|p| p.kind == ProviderKind::Anthropic && !is_local_provider(p))
                .find_map(|p| {
                    p.models
                        .iter()
                        .find(|m| prices.lookup(m).is_some())
                        .cloned()
                })
        })
        .unwrap_or_else(|| fallback_compare_to().to_owned())
}

/// `LEDGER: false` in the config turns the usage ledger off (default on).
pub fn ledger_enabled(raw: &Value) -> bool {
    raw.get("LEDGER").and_then(Value::as_bool).unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dated_and_variant_ids_resolve_to_their_family() {
        let t = PriceTable::builtin();
        let key = |m: &str| t.lookup(m).map(|(k, _)| k);
        assert_eq!(
            key("claude-haiku-4-5-20251001").as_deref(),
            Some("claude-haiku-4-5")
        );
        assert_eq!(
            key("claude-opus-4-20250514").as_deref(),
            Some("claude-opus-4")
        );
        assert_eq!(
            key("claude-opus-4-5-20251101").as_deref(),
            Some("claude-opus-4-5")
        );
        assert_eq!(
            key("claude-sonnet-4-6[1m]").as_deref(),
            Some("claude-sonnet-4-6")
        );
        assert_eq!(
            key("anthropic/Claude-Sonnet-4.5").as_deref(),
            Some("claude-sonnet-4-5")
        );
        assert_eq!(key("claude-opus-4-8").as_deref(), Some("claude-opus-4-8"));
        // No match across a word boundary, and unknown models are unpriced.
        assert_eq!(key("claude-opus-45"), None);
        assert_eq!(key("gpt-oss:20b"), None);
        assert_eq!(key("claude-opus-9"), None);
    }

    #[test]
    fn builtin_prices_are_the_list_prices() {
        let t = PriceTable::builtin();
        assert_eq!(
            t.lookup("claude-sonnet-4-5").unwrap().1,
            Price::new(3.0, 15.0, 0.3, 3.75)
        );
        assert_eq!(
            t.lookup("claude-opus-4-8").unwrap().1,
            Price::new(5.0, 25.0, 0.5, 6.25)
        );
        let p = t.lookup("claude-haiku-4-5-20251001").unwrap().1;
        // 1M input + 1M output + 1M cache read + 1M cache write.
        assert!((p.cost(1_000_000, 1_000_000, 1_000_000, 1_000_000) - 7.35).abs() < 1e-9);
    }

    #[test]
    fn config_entries_override_and_extend() {
        let raw = json!({"Pricing": {
            "claude-sonnet-4-5": {"input": 1, "output": 2, "cache_read": 0.5, "cache_write": 0.75},
            "deepseek-chat": {"input": 0.2, "output": 1.0},
            "local_per_hour": 0.06
        }});
        let t = PriceTable::from_config(&raw).unwrap();
        assert_eq!(t.local_per_hour, 0.06);
        assert_eq!(
            t.lookup("claude-sonnet-4-5-20250929").unwrap().1,
            Price::new(1.0, 2.0, 0.5, 0.75)
        );
        let ds = t.lookup("deepseek-chat").unwrap().1;
        assert!((ds.cache_read - 0.02).abs() < 1e-12);
        assert!((ds.cache_write - 0.25).abs() < 1e-12);
        // Built-ins still there.
        assert!(t.lookup("claude-haiku-4-5").is_some());
    }

    #[test]
    fn bad_entries_are_all_reported_with_paths() {
        let raw = json!({"Pricing": {
            "a": {"input": "3"},
            "b": 7,
            "local_per_hour": -1
        }});
        let errs = PriceTable::from_config(&raw).unwrap_err();
        let paths: Vec<_> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "Pricing.a.input",
                "Pricing.a.output",
                "Pricing.b",
                "Pricing.local_per_hour"
            ]
        );
        assert!(errs[0].to_string().contains("hint:"));
    }

    #[test]
    fn ledger_switch() {
        assert!(ledger_enabled(&json!({})));
        assert!(ledger_enabled(&json!({"LEDGER": true})));
        assert!(!ledger_enabled(&json!({"LEDGER": false})));
    }
}
