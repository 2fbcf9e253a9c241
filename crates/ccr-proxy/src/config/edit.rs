//! Reading and editing the config document as written, for the few callers that cannot
//! wait for a full [`super::Config`]: `up` recording the effective context, and the
//! readers (`doctor`, `stats`) that must still work when some other part of the file is
//! invalid. All raw JSON access outside `config/` goes through here.

use serde_json::{json, Value};
use url::Url;

use super::{is_loopback_host, is_loopback_url, same_server, ConfigFile};
use crate::fsutil::WriteOutcome;

/// What [`ConfigFile::set_context_window`] did.
#[derive(Debug)]
pub enum ContextWindowEdit {
    /// The provider already had this `context_window`; nothing was written.
    Unchanged { provider: String },
    /// Written (atomically, with a backup of the old file).
    Recorded {
        provider: String,
        write: WriteOutcome,
    },
}

impl ConfigFile {
    /// The index of the provider whose endpoint is the server at `base` (see
    /// [`same_server`]), else one named `ollama`.
    pub fn provider_index_for_url(&self, base: &Url) -> Option<usize> {
        let providers = self.doc.get("Providers")?.as_array()?;
        providers
            .iter()
            .position(|p| {
                p.get("api_base_url")
                    .and_then(Value::as_str)
                    .and_then(|u| Url::parse(u).ok())
                    .is_some_and(|u| same_server(&u, base))
            })
            .or_else(|| {
                providers
                    .iter()
                    .position(|p| p.get("name").and_then(Value::as_str) == Some("ollama"))
            })
    }

    /// Point provider `index` at `base` when it is a loopback provider aimed at another
    /// local port (the config was written for the default `OLLAMA_HOST`, Ollama now
    /// runs elsewhere). Only edits the document; the caller saves. Returns the old URL.
    pub fn repoint_local_provider(&mut self, index: usize, base: &Url) -> Option<String> {
        let provider = self.doc.get_mut("Providers")?.get_mut(index)?;
        let old = provider.get("api_base_url")?.as_str()?.to_owned();
        let url = Url::parse(&old).ok()?;
        if same_server(&url, base) || !is_loopback_url(&url) || !is_loopback_url(base) {
            return None;
        }
        let new = super::ollama_chat_url(base);
        provider["api_base_url"] = json!(new);
        Some(old)
    }

    /// Record `window` as `context_window` on provider `index` and save, unless it is
    /// already there. Other keys are kept; the old file is backed up.
    pub fn set_context_window(
        &mut self,
        index: usize,
        window: u64,
    ) -> std::io::Result<ContextWindowEdit> {
        let provider = &mut self.doc["Providers"][index];
        let name = provider
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        if provider.get("context_window").and_then(Value::as_u64) == Some(window) {
            return Ok(ContextWindowEdit::Unchanged { provider: name });
        }
        provider["context_window"] = json!(window);
        let write = self.save()?;
        Ok(ContextWindowEdit::Recorded {
            provider: name,
            write,
        })
    }

    /// A top-level string as written (`HOST`, `APIKEY`), empty when absent.
    pub fn raw_str(&self, key: &str) -> &str {
        self.doc
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// `PORT` as written (a number or a numeric string), so a port check still works
    /// when another part of the config is invalid.
    pub fn raw_port(&self) -> Option<u16> {
        match self.doc.get("PORT")? {
            Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// Provider name → does its endpoint run on this machine, read from the document
    /// (for a config that does not resolve in this shell).
    pub fn raw_provider_locality(&self) -> Vec<(String, bool)> {
        self.doc
            .get("Providers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let name = p.get("name")?.as_str()?.to_owned();
                let local = Url::parse(p.get("api_base_url")?.as_str()?)
                    .ok()?
                    .host_str()
                    .map(is_loopback_host)?;
                Some((name, local))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn file(doc: Value) -> ConfigFile {
        ConfigFile::new(Path::new("/c.json"), doc)
    }

    #[test]
    fn finds_the_provider_serving_this_ollama() {
        let doc = file(json!({"Providers": [
            {"name": "cloud", "api_base_url": "https://api.anthropic.com/v1/messages"},
            {"name": "local", "api_base_url": "http://localhost:11434/v1/chat/completions"}
        ]}));
        let base = Url::parse("http://127.0.0.1:11434/").unwrap();
        assert_eq!(doc.provider_index_for_url(&base), Some(1));
        let other = Url::parse("http://127.0.0.1:9999/").unwrap();
        assert_eq!(doc.provider_index_for_url(&other), None);
        let named = file(
            json!({"Providers": [{"name": "ollama", "api_base_url": "http://10.0.0.2:11434/v1/chat/completions"}]}),
        );
        assert_eq!(named.provider_index_for_url(&other), Some(0));
    }

    #[test]
    fn any_loopback_address_is_this_machine_s_ollama() {
        let doc = file(json!({"Providers": [
            {"name": "cloud", "api_base_url": "https://api.anthropic.com/v1/messages"},
            {"name": "local", "api_base_url": "http://[::1]:11434/v1/chat/completions"}
        ]}));
        let base = Url::parse("http://127.0.0.1:11434/").unwrap();
        assert_eq!(doc.provider_index_for_url(&base), Some(1));
        // Already aimed at this server: nothing to re-point.
        let mut doc = doc;
        assert_eq!(doc.repoint_local_provider(1, &base), None);
    }

    #[test]
    fn context_window_is_written_once_with_other_keys_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let mut f = ConfigFile::new(
            &path,
            json!({"Custom": 1, "Providers": [{"name": "ollama", "extra": true}]}),
        );
        f.save().unwrap();
        assert!(matches!(
            f.set_context_window(0, 32768).unwrap(),
            ContextWindowEdit::Recorded { ref provider, .. } if provider == "ollama"
        ));
        assert!(matches!(
            f.set_context_window(0, 32768).unwrap(),
            ContextWindowEdit::Unchanged { .. }
        ));
        let back = ConfigFile::load(&path).unwrap();
        assert_eq!(back.doc["Providers"][0]["context_window"], 32768);
        assert_eq!(back.doc["Providers"][0]["extra"], true);
        assert_eq!(back.doc["Custom"], 1);
    }

    #[test]
    fn raw_readers_survive_an_invalid_config() {
        let f = file(json!({"PORT": "4000", "HOST": "0.0.0.0", "Router": 7,
            "Providers": [{"name": "l", "api_base_url": "http://127.0.0.1:8080/v1/chat/completions"},
                          {"name": "c", "api_base_url": "https://api.example.com/v1"}]}));
        assert_eq!(f.raw_port(), Some(4000));
        assert_eq!(f.raw_str("HOST"), "0.0.0.0");
        assert_eq!(f.raw_str("APIKEY"), "");
        assert_eq!(
            f.raw_provider_locality(),
            vec![("l".to_owned(), true), ("c".to_owned(), false)]
        );
    }
}

/// Why `clients add|remove` could not edit the document.
#[derive(Debug, thiserror::Error)]
pub enum ClientEdit {
    #[error("\"{0}\" is not a usable client name")]
    BadName(String),
    #[error("a client named \"{0}\" already exists")]
    Exists(String),
    #[error("no client named \"{0}\"")]
    Missing(String),
    #[error("the config's \"Clients\" is not a list")]
    NotAList,
    #[error("cannot write the config")]
    Write(#[source] std::io::Error),
}

impl crate::diagnostic::Hint for ClientEdit {
    fn hint(&self) -> Option<String> {
        Some(match self {
            ClientEdit::BadName(_) => "use 1 to 64 letters, digits, '.', '_' or '-', e.g. alice".into(),
            ClientEdit::Exists(name) => format!("pick another name, or `ccr-setup clients remove {name}` first (that revokes its key)"),
            ClientEdit::Missing(_) => "`ccr-setup clients list` shows the names".into(),
            ClientEdit::NotAList => "fix \"Clients\" in the config (a list of {\"name\", \"key_hash\"}), then retry".into(),
            ClientEdit::Write(_) => return None,
        })
    }
}

impl ConfigFile {
    /// Append a `Clients[]` entry with the key's hash (never the key) and its limits,
    /// and save (atomically, 0600, with a backup; other keys kept).
    pub fn add_client(
        &mut self,
        name: &str,
        key_hash: &str,
        daily_requests: Option<u64>,
        daily_cloud_usd: Option<f64>,
    ) -> Result<WriteOutcome, ClientEdit> {
        if !super::client_keys::valid_client_name(name) {
            return Err(ClientEdit::BadName(name.to_owned()));
        }
        let root = self.doc.as_object_mut().ok_or(ClientEdit::NotAList)?;
        let list = root.entry("Clients").or_insert_with(|| json!([]));
        if list.is_null() {
            *list = json!([]);
        }
        let list = list.as_array_mut().ok_or(ClientEdit::NotAList)?;
        if list
            .iter()
            .any(|c| c.get("name").and_then(Value::as_str) == Some(name))
        {
            return Err(ClientEdit::Exists(name.to_owned()));
        }
        let mut entry = json!({"name": name, "key_hash": key_hash});
        if let Some(n) = daily_requests {
            entry["daily_requests"] = json!(n);
        }
        if let Some(usd) = daily_cloud_usd {
            entry["daily_cloud_usd"] = json!(usd);
        }
        list.push(entry);
        self.save().map_err(ClientEdit::Write)
    }

    /// Remove the `Clients[]` entry named `name` (its key stops working at the proxy's
    /// next reload) and save.
    pub fn remove_client(&mut self, name: &str) -> Result<WriteOutcome, ClientEdit> {
        let list = match self.doc.get_mut("Clients") {
            None | Some(Value::Null) => return Err(ClientEdit::Missing(name.to_owned())),
            Some(Value::Array(list)) => list,
            Some(_) => return Err(ClientEdit::NotAList),
        };
        let before = list.len();
        list.retain(|c| c.get("name").and_then(Value::as_str) != Some(name));
        if list.len() == before {
            return Err(ClientEdit::Missing(name.to_owned()));
        }
        self.save().map_err(ClientEdit::Write)
    }
}
