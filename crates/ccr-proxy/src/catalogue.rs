//! The cloud model catalogue: Anthropic's model ids, display names, context windows and
//! list prices, from one data file (`data/models.json`, embedded at build time, with the
//! date it was checked and its sources).
//!
//! `init` takes its default cloud model from here, and the ledger's prices and `stats`'
//! comparison model come from here too, so the three can never disagree again. A model
//! the catalogue does not know still works everywhere; only its price is "unknown".

use std::sync::OnceLock;

use serde::Deserialize;

const DATA: &str = include_str!("../data/models.json");

/// List prices in USD per million tokens (`cache_write`: the 5-minute write).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, serde::Serialize)]
pub struct ListPrice {
    pub input: f64,
    pub output: f64,
    pub cache_read: f64,
    pub cache_write: f64,
}

/// One model of the catalogue.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CloudModel {
    /// The id (or, for dated models, the family id the dated ids continue:
    /// `claude-haiku-4-5` covers `claude-haiku-4-5-20251001`).
    pub id: String,
    /// "Claude Sonnet 5.5".
    pub name: String,
    /// Tokens of context, when the docs state it.
    pub context_window: Option<u64>,
    pub price: ListPrice,
}

/// The whole data file.
#[derive(Debug, Clone, Deserialize)]
pub struct Catalogue {
    /// When the data was last checked against the sources (YYYY-MM-DD).
    pub checked: String,
    pub sources: Vec<String>,
    /// What `init` writes for cloud fallback, and what `stats` compares against.
    pub default_cloud_model: String,
    /// The model ids Claude Code 2.1.197 sends, each of which must resolve here.
    pub claude_code_2_1_197_sends: Vec<String>,
    pub models: Vec<CloudModel>,
}

/// The embedded catalogue (parsed once; the data file is checked by this module's tests).
pub fn catalogue() -> &'static Catalogue {
    static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();
    CATALOGUE.get_or_init(|| serde_json::from_str(DATA).expect("data/models.json is valid"))
}

/// The current Sonnet: `init`'s default cloud model.
pub fn default_cloud_model() -> &'static str {
    &catalogue().default_cloud_model
}

/// Lowercase, dots as dashes, no `vendor/` prefix (`anthropic/claude-sonnet-4.5` is
/// `claude-sonnet-4-5`).
pub fn normalize(model: &str) -> String {
    let name = model.trim().rsplit('/').next().unwrap_or(model);
    name.to_ascii_lowercase().replace('.', "-")
}

/// Does the (normalized) `name` equal `key` or continue it after `-`, `@`, `[` or `:`
/// (dated ids, `[1m]` variants)?
pub fn matches_key(name: &str, key: &str) -> bool {
    name.strip_prefix(key)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['-', '@', '[', ':']))
}

/// The catalogue entry for a model name as a client or config writes it: the longest
/// matching id wins (`claude-opus-4-1` over `claude-opus-4`). None for unknown models.
pub fn find(model: &str) -> Option<&'static CloudModel> {
    let name = normalize(model);
    catalogue()
        .models
        .iter()
        .filter(|m| matches_key(&name, &m.id))
        .max_by_key(|m| m.id.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_file_is_dated_sourced_and_complete() {
        let c = catalogue();
        assert_eq!(c.checked.len(), 10, "checked is YYYY-MM-DD: {}", c.checked);
        assert!(c.sources.iter().any(|s| s.contains("platform.claude.com")));
        let mut ids: Vec<&str> = c.models.iter().map(|m| m.id.as_str()).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "duplicate ids");
        for m in &c.models {
            assert!(
                m.price.input > 0.0 && m.price.output >= m.price.input,
                "{m:?}"
            );
            assert!(m.name.starts_with("Claude "), "{m:?}");
        }
    }

    #[test]
    fn the_default_is_the_current_sonnet_and_is_in_the_catalogue() {
        assert_eq!(default_cloud_model(), "claude-sonnet-5-5");
        let m = find(default_cloud_model()).expect("default is catalogued");
        assert_eq!(m.name, "Claude Sonnet 5.5");
        assert_eq!(m.context_window, Some(1_000_000));
    }

    #[test]
    fn what_claude_code_2_1_197_sends_resolves() {
        let sent = &catalogue().claude_code_2_1_197_sends;
        assert!(sent.iter().any(|s| s == "claude-opus-4-8"));
        assert!(sent.iter().any(|s| s == "claude-haiku-4-5-20251001"));
        for id in sent {
            assert!(find(id).is_some(), "{id} is not in data/models.json");
        }
        assert_eq!(
            find("claude-haiku-4-5-20251001").unwrap().id,
            "claude-haiku-4-5"
        );
        assert_eq!(
            find("claude-opus-4-1-20250805").unwrap().id,
            "claude-opus-4-1"
        );
        assert_eq!(
            find("Anthropic/Claude-Sonnet-5.5").unwrap().id,
            "claude-sonnet-5-5"
        );
        assert!(find("claude-opus-45").is_none());
        assert!(find("gpt-oss:20b").is_none());
    }
}
