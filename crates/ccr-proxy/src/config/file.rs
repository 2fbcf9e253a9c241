//! The config file on disk: JSON5 in, JSON out, atomic writes with backups.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::secrets::{KeySource, SecretsStore};
use super::{interpolate, validate, Config, ConfigError};
use crate::fsutil::{self, WriteOutcome};

/// The config as the user wrote it: uninterpolated, unknown keys included.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub doc: Value,
}

impl ConfigFile {
    /// Read and parse (JSON5: comments and trailing commas are fine).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ConfigError::NotFound {
                    path: path.to_path_buf(),
                })
            }
            Err(source) => {
                return Err(ConfigError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Ok(ConfigFile {
            path: path.to_path_buf(),
            doc: Self::parse(&text).map_err(|message| ConfigError::Parse {
                path: path.to_path_buf(),
                message,
            })?,
        })
    }

    /// Parse JSON5 text. Plain JSON goes through serde_json first: it is much faster and
    /// keeps large integers exact.
    pub fn parse(text: &str) -> Result<Value, String> {
        serde_json::from_str(text).or_else(|_| json5::from_str(text).map_err(|e| e.to_string()))
    }

    /// A new, empty document that will be written to `path`.
    pub fn new(path: &Path, doc: Value) -> Self {
        ConfigFile {
            path: path.to_path_buf(),
            doc,
        }
    }

    /// Interpolate `$VAR`/`${VAR}` from the process environment, then the secrets store
    /// beside this file, and validate.
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        let store = self.secrets();
        self.resolve_with(&|name| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .or_else(|| store.get(name).ok().flatten().map(|(v, _)| v))
        })
    }

    /// The secrets store that `$VAR` references fall back to.
    pub fn secrets(&self) -> SecretsStore {
        SecretsStore::for_config(&self.path)
    }

    /// Every key in the config (`APIKEY`, `Providers[].api_key`) and where its value
    /// comes from, never the value: for `config show` and `doctor`.
    pub fn key_sources(&self) -> Vec<KeyOrigin> {
        let store = self.secrets();
        let mut keys = Vec::new();
        if let Some(v) = self.doc.get("APIKEY").and_then(Value::as_str) {
            keys.push(("APIKEY".to_owned(), None, v));
        }
        let providers = self.doc.get("Providers").and_then(Value::as_array);
        for (i, p) in providers.into_iter().flatten().enumerate() {
            if let Some(v) = p.get("api_key").and_then(Value::as_str) {
                let name = p.get("name").and_then(Value::as_str).map(str::to_owned);
                keys.push((format!("Providers[{i}].api_key"), name, v));
            }
        }
        keys.into_iter()
            .filter(|(_, _, v)| !v.is_empty())
            .map(|(path, provider, v)| {
                let variable = reference(v);
                let source = match &variable {
                    None => KeySource::Literal,
                    Some(var) if std::env::var(var).is_ok_and(|v| !v.is_empty()) => KeySource::Env,
                    Some(var) => match store.get(var) {
                        Ok(Some((_, from))) => from,
                        _ => KeySource::Unset,
                    },
                };
                KeyOrigin {
                    path,
                    provider,
                    variable,
                    source,
                }
            })
            .collect()
    }

    /// [`resolve`](Self::resolve) with an explicit variable lookup (for tests).
    pub fn resolve_with(
        &self,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let (doc, unset) = interpolate(&self.doc, lookup);
        validate::build(&doc, &unset).map_err(|problems| ConfigError::Invalid {
            path: self.path.clone(),
            problems,
        })
    }

    /// Does the file hold a literal secret (not a `$VAR` reference)? Such a file must be 0600.
    pub fn holds_secret(&self) -> bool {
        fn literal(v: Option<&Value>) -> bool {
            v.and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty() && !s.trim_start().starts_with('$'))
        }
        literal(self.doc.get("APIKEY"))
            || self
                .doc
                .get("Providers")
                .and_then(Value::as_array)
                .is_some_and(|ps| ps.iter().any(|p| literal(p.get("api_key"))))
    }

    /// Write the document atomically, mode 0600, keeping a timestamped backup of the
    /// previous content. Comments in a JSON5 original survive only in that backup.
    pub fn save(&self) -> std::io::Result<WriteOutcome> {
        let mut text = serde_json::to_string_pretty(&self.doc).map_err(std::io::Error::other)?;
        text.push('\n');
        fsutil::write_with_backup(&self.path, text.as_bytes(), 0o600)
    }
}

/// Where one key of the config comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyOrigin {
    /// `APIKEY` or `Providers[1].api_key`.
    pub path: String,
    /// The provider's name, for provider keys.
    pub provider: Option<String>,
    /// The variable a `$VAR` / `${VAR}` value names.
    pub variable: Option<String>,
    pub source: KeySource,
}

impl KeyOrigin {
    /// `key Providers[1].api_key ($ANTHROPIC_API_KEY, provider anthropic): from the …`,
    /// with the fix when the key is set nowhere. Never the value.
    pub fn describe(&self) -> String {
        let mut what = Vec::new();
        if let Some(v) = &self.variable {
            what.push(format!("${v}"));
        }
        if let Some(p) = &self.provider {
            what.push(format!("provider {p}"));
        }
        let what = if what.is_empty() {
            String::new()
        } else {
            format!(" ({})", what.join(", "))
        };
        match (&self.source, &self.variable) {
            (KeySource::Unset, Some(v)) => format!(
                "key {}{what}: not set in the environment or the secrets store, so this provider is disabled; run `ccr-setup init` (it asks for the key and stores it) or export {v}",
                self.path
            ),
            (source, _) => format!("key {}{what}: from the {source}", self.path),
        }
    }
}

/// The variable a whole-value reference names: `$NAME` or `${NAME}`.
fn reference(v: &str) -> Option<String> {
    let v = v.trim();
    let name = v
        .strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
        .or_else(|| v.strip_prefix('$'))?;
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then(|| name.to_owned())
}

/// A copy of `doc` with secrets replaced, for display (`config show`, the dashboard's
/// Setup page). A secret is found by its key's name (`api_key`, `token`,
/// `Authorization`…), by where it sits (every value of a `headers` object, every string
/// option of a transformer) and by its shape (a URL's userinfo and query values, a
/// `Bearer …` credential). `$VAR` references are shown as written: they are not secrets.
pub fn redacted(doc: &Value) -> Value {
    redact_in(doc, Place::Plain)
}

/// Where a value sits, for the redaction by place.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Plain,
    /// Inside a `headers` object or a transformer's options: every string is hidden.
    AllSecret,
    /// Inside a `transformer`: names are shown, option objects are [`Place::AllSecret`].
    Transformer,
}

const REDACTED: &str = "<redacted>";

fn is_secret_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    k == "apikey"
        || k == "key"
        || [
            "api_key",
            "api-key",
            "token",
            "secret",
            "password",
            "authorization",
            "cookie",
            "credential",
        ]
        .iter()
        .any(|s| k.contains(s))
}

fn redact_in(v: &Value, place: Place) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let lower = k.to_ascii_lowercase();
                    let inner = match place {
                        Place::AllSecret => Place::AllSecret,
                        _ if lower == "headers" => Place::AllSecret,
                        Place::Transformer => Place::Transformer,
                        _ if lower == "transformer" => Place::Transformer,
                        Place::Plain => Place::Plain,
                    };
                    let v = match v {
                        Value::String(s) if is_secret_key(k) => redact_string(s, Place::AllSecret),
                        other => redact_in(other, inner),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        // In a transformer's `use` list, an object is the options of the name before it.
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| match (place, i) {
                    (Place::Transformer, Value::Object(_)) => redact_in(i, Place::AllSecret),
                    _ => redact_in(i, place),
                })
                .collect(),
        ),
        Value::String(s) => redact_string(s, place),
        other => other.clone(),
    }
}

/// A string shown as is, as a redacted URL, or as `<redacted>`.
fn redact_string(s: &str, place: Place) -> Value {
    if s.is_empty() || reference(s).is_some() {
        return Value::String(s.to_owned());
    }
    if place == Place::AllSecret || looks_like_credential(s) {
        return Value::String(REDACTED.to_owned());
    }
    let url_with_secrets = url::Url::parse(s).is_ok_and(|u| {
        u.has_host() && (!u.username().is_empty() || u.password().is_some() || u.query().is_some())
    });
    if url_with_secrets {
        return Value::String(super::redact_url(s));
    }
    Value::String(s.to_owned())
}

/// `Bearer …`/`Basic …` credentials and the common API-key prefixes.
fn looks_like_credential(s: &str) -> bool {
    let lower = s.trim().to_ascii_lowercase();
    lower.starts_with("bearer ")
        || lower.starts_with("basic ")
        || (["sk-", "sk_", "ghp_", "xoxb-", "aiza"]
            .iter()
            .any(|p| lower.starts_with(p))
            && s.len() >= 20
            && !s.contains(char::is_whitespace))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const JSON5: &str = r#"{
        // local first
        "Providers": [
            {name: "ollama", api_base_url: "http://127.0.0.1:11434/v1/chat/completions", models: ["gpt-oss:20b"], "my_note": "keep me",},
        ],
        "Router": {"default": "ollama,gpt-oss:20b", "customThing": [1, 2],},
        "StatusLine": {"enabled": true},
    }"#;

    #[test]
    fn json5_round_trip_keeps_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, JSON5).unwrap();
        let mut file = ConfigFile::load(&path).unwrap();
        file.resolve_with(&|_| None).unwrap();
        file.doc["PORT"] = json!(4000);
        file.save().unwrap();

        let again = ConfigFile::load(&path).unwrap();
        assert_eq!(again.doc["StatusLine"], json!({"enabled": true}));
        assert_eq!(again.doc["Router"]["customThing"], json!([1, 2]));
        assert_eq!(again.doc["Providers"][0]["my_note"], "keep me");
        assert_eq!(again.doc["PORT"], 4000);
        assert_eq!(again.resolve_with(&|_| None).unwrap().port, 4000);
        // The JSON5 original, comments included, is in the backup.
        let backups = fsutil::list_backups(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&backups[0]).unwrap(), JSON5);
    }

    #[test]
    fn parse_error_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, "{ \"Router\": ").unwrap();
        let err = ConfigFile::load(&path).unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
        assert!(err.to_string().contains("config.json"));
    }

    #[test]
    fn interpolation_happens_on_resolve_not_on_disk() {
        let doc = json!({
            "APIKEY": "${PROXY_KEY}",
            "Providers": [{"name": "a", "api_base_url": "https://api.anthropic.com/v1/messages", "api_key": "$ANTHROPIC_API_KEY", "models": ["m"]}],
            "Router": {"default": "a,m"}
        });
        let file = ConfigFile::new(Path::new("/nonexistent/config.json"), doc.clone());
        let cfg = file
            .resolve_with(&|n| Some(format!("value-of-{n}")))
            .unwrap();
        assert_eq!(cfg.api_key.as_deref(), Some("value-of-PROXY_KEY"));
        assert_eq!(
            cfg.providers[0].api_key.as_deref(),
            Some("value-of-ANTHROPIC_API_KEY")
        );
        assert_eq!(file.doc, doc);
        assert!(!file.holds_secret());
    }

    #[test]
    fn a_key_missing_from_the_environment_comes_from_the_store_and_its_source_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let var = "CCR_TEST_STORE_ONLY_KEY_7F3A";
        let doc = json!({
            "APIKEY": "proxy-secret",
            "Providers": [
                {"name": "ollama", "api_base_url": "http://127.0.0.1:11434/v1/chat/completions", "models": ["m"]},
                {"name": "cloud", "api_base_url": "https://api.anthropic.com/v1/messages", "api_key": format!("${var}"), "models": ["c"]},
                {"name": "other", "api_base_url": "https://api.anthropic.com/v1/messages", "api_key": "${CCR_TEST_NOWHERE_KEY_7F3A}", "models": ["c"]}
            ],
            "Router": {"default": "ollama,m"}
        });
        let file = ConfigFile::new(&path, doc);
        let cfg = file.resolve().unwrap();
        assert_eq!(cfg.missing_key("cloud"), Some(var));
        assert_eq!(cfg.provider("cloud").unwrap().api_key, None);

        file.secrets().set(var, "sk-ant-stored").unwrap();
        let cfg = file.resolve().unwrap();
        assert_eq!(cfg.missing_key("cloud"), None);
        assert_eq!(
            cfg.provider("cloud").unwrap().api_key.as_deref(),
            Some("sk-ant-stored")
        );
        assert_eq!(cfg.missing_key("other"), Some("CCR_TEST_NOWHERE_KEY_7F3A"));

        let sources: Vec<(String, Option<String>, KeySource)> = file
            .key_sources()
            .into_iter()
            .map(|k| (k.path, k.variable, k.source))
            .collect();
        assert_eq!(
            sources,
            vec![
                ("APIKEY".to_owned(), None, KeySource::Literal),
                (
                    "Providers[1].api_key".to_owned(),
                    Some(var.to_owned()),
                    KeySource::File(dir.path().join("secrets.env"))
                ),
                (
                    "Providers[2].api_key".to_owned(),
                    Some("CCR_TEST_NOWHERE_KEY_7F3A".to_owned()),
                    KeySource::Unset
                ),
            ]
        );
    }

    #[test]
    fn redaction_hides_literal_keys_only() {
        let doc = json!({"APIKEY": "s3cret", "Providers": [{"api_key": "sk-1"}, {"api_key": "$KEY"}], "HOST": "127.0.0.1"});
        let r = redacted(&doc);
        assert_eq!(r["APIKEY"], "<redacted>");
        assert_eq!(r["Providers"][0]["api_key"], "<redacted>");
        assert_eq!(r["Providers"][1]["api_key"], "$KEY");
        assert_eq!(r["HOST"], "127.0.0.1");
        assert!(ConfigFile::new(Path::new("x"), doc).holds_secret());
    }

    #[test]
    fn redaction_by_value_shape_and_place() {
        let doc = json!({"Providers": [{
            "name": "gw",
            "api_base_url": "https://user:pa55@gw.example/v1/chat/completions?key=sk-in-query",
            "headers": {"Authorization": "Bearer abc", "X-Org": "org-secret"},
            "transformer": {"use": ["openrouter", ["maxtoken", {"max_tokens": 1024, "apiKey": "t1", "extra": "t2"}]]},
            "models": ["m"],
            "note": "Bearer zzz",
            "misc": "sk-abcdefghijklmnopqrstuvwx"
        }], "HOST": "127.0.0.1", "local": "http://127.0.0.1:11434/v1/chat/completions"});
        let r = redacted(&doc);
        let shown = r.to_string();
        for secret in [
            "pa55",
            "sk-in-query",
            "abc",
            "org-secret",
            "t1",
            "t2",
            "zzz",
            "sk-abcdef",
        ] {
            assert!(!shown.contains(secret), "{secret} shown: {shown}");
        }
        let p = &r["Providers"][0];
        assert_eq!(
            p["api_base_url"],
            "https://***@gw.example/v1/chat/completions?key=***"
        );
        assert_eq!(p["transformer"]["use"][0], "openrouter");
        assert_eq!(p["transformer"]["use"][1][0], "maxtoken");
        assert_eq!(p["transformer"]["use"][1][1]["max_tokens"], 1024);
        assert_eq!(p["models"][0], "m");
        assert_eq!(r["local"], "http://127.0.0.1:11434/v1/chat/completions");
        assert_eq!(r["HOST"], "127.0.0.1");
    }
}
