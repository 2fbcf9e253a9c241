//! Is there room for the model? Checked before a pull, because Ollama only notices a
//! full disk after downloading gigabytes (`no space left on device` mid-stream).
//!
//! The size comes from the model's registry manifest (sum of layer sizes); when the
//! registry cannot be asked, the default model's known size is used (15 GB: gpt-oss:20b
//! is about 13.8 GB plus headroom); for other models the check is skipped and says so.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::config::DEFAULT_MODEL;

/// The known size used for the default model when the manifest is unavailable.
pub const DEFAULT_MODEL_BYTES: u64 = 15_000_000_000;

/// Registry base URL override, **for tests only** (they point it at the fake Ollama,
/// which serves manifests too). Users never need it.
pub const REGISTRY_ENV: &str = crate::env_vars::EnvVars::CCR_SETUP_OLLAMA_REGISTRY;
const DEFAULT_REGISTRY: &str = "https://registry.ollama.ai";

/// Where Ollama keeps models: `OLLAMA_MODELS`, else `~/.ollama/models`.
pub fn models_dir() -> PathBuf {
    match std::env::var_os(crate::env_vars::EnvVars::OLLAMA_MODELS).filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => crate::paths::home_dir().join(".ollama").join("models"),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("cannot read free space of {path}")]
    Statvfs {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
}

/// Bytes available to us on the filesystem holding `path` (or its nearest existing
/// ancestor: the models directory may not exist before the first pull).
pub fn free_bytes(path: &Path) -> Result<(PathBuf, u64), DiskError> {
    let mut probe = path.to_path_buf();
    while !probe.exists() {
        match probe.parent() {
            Some(p) => probe = p.to_path_buf(),
            None => break,
        }
    }
    let st = nix::sys::statvfs::statvfs(&probe).map_err(|source| DiskError::Statvfs {
        path: probe.clone(),
        source,
    })?;
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    let free = st.blocks_available() as u64 * st.fragment_size() as u64;
    Ok((probe, free))
}

/// Where the size we check against came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeSource {
    Manifest,
    KnownDefault,
}

/// The bytes `model` needs: its manifest's layer sizes, else the default model's known
/// size, else None (unknown).
pub async fn required_bytes(model: &str) -> Option<(u64, SizeSource)> {
    if let Some(n) = manifest_size(model).await {
        return Some((n, SizeSource::Manifest));
    }
    (model == DEFAULT_MODEL).then_some((DEFAULT_MODEL_BYTES, SizeSource::KnownDefault))
}

/// `(registry base, repository path, tag)` for a model name, as Ollama resolves it:
/// `gpt-oss:20b` → library/gpt-oss, tag 20b; `user/m` → user/m, tag latest;
/// `host.tld/ns/m:t` → https://host.tld, ns/m, t.
fn manifest_location(model: &str) -> (String, String, String) {
    let (name, tag) = match model.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, t),
        _ => (model, "latest"),
    };
    let parts: Vec<&str> = name.split('/').collect();
    let default_registry =
        std::env::var(REGISTRY_ENV).unwrap_or_else(|_| DEFAULT_REGISTRY.to_owned());
    let (base, repo) = match parts.as_slice() {
        [n] => (default_registry, format!("library/{n}")),
        [ns, n] => (default_registry, format!("{ns}/{n}")),
        [host, rest @ ..] => (format!("https://{host}"), rest.join("/")),
        [] => (default_registry, format!("library/{name}")),
    };
    (base, repo, tag.to_owned())
}

/// Sum of the layer (and config) sizes in the registry manifest, or None when the
/// registry does not answer within a few seconds.
pub async fn manifest_size(model: &str) -> Option<u64> {
    let (base, repo, tag) = manifest_location(model);
    let url = format!("{}/v2/{repo}/manifests/{tag}", base.trim_end_matches('/'));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .ok()?;
    let resp = http
        .get(&url)
        .header(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .send()
        .await
        .ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let v: Value = resp.json().await.ok()?;
    let layers = v.get("layers")?.as_array()?;
    let mut total: u64 = layers
        .iter()
        .filter_map(|l| l.get("size").and_then(Value::as_u64))
        .sum();
    total += v
        .pointer("/config/size")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_locations_follow_ollama_naming() {
        let (_, repo, tag) = manifest_location("gpt-oss:20b");
        assert_eq!((repo.as_str(), tag.as_str()), ("library/gpt-oss", "20b"));
        let (_, repo, tag) = manifest_location("me/model");
        assert_eq!((repo.as_str(), tag.as_str()), ("me/model", "latest"));
        let (base, repo, tag) = manifest_location("hf.co/org/repo:Q4");
        assert_eq!(base, "https://hf.co");
        assert_eq!((repo.as_str(), tag.as_str()), ("org/repo", "Q4"));
    }

    #[test]
    fn free_space_of_a_missing_dir_uses_its_ancestor() {
        let dir = tempfile::tempdir().unwrap();
        let (probed, free) = free_bytes(&dir.path().join("not/yet/there")).unwrap();
        assert_eq!(probed, dir.path());
        assert!(free > 0);
    }
}
