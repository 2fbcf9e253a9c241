//! What each configured provider answers to "which models do you serve?", for the
//! `config.providers` check: every replica of a provider whose `api_base_url` lists
//! several, Ollama's answers reused for the Ollama server.

use std::time::Duration;

use serde_json::Value;
use url::Url;

use super::probe;
use crate::config::{Config, ProviderKind};

/// One provider's reachability and model list.
#[derive(Debug, Clone)]
pub struct ProviderProbe {
    pub index: usize,
    pub name: String,
    pub url: String,
    /// How many URLs `api_base_url` lists (1 for a single URL); each was asked.
    pub replicas: usize,
    /// Served by the Ollama server at `OLLAMA_HOST` (its models come from `/api/tags`).
    pub is_ollama: bool,
    /// Used by `Router.default` (problems here fail; elsewhere they warn).
    pub is_default: bool,
    pub models: Vec<String>,
    /// Ok(Some(ids)): reachable, with its model list; Ok(None): reachable, no list.
    pub answer: Result<Option<Vec<String>>, String>,
}

/// The URL that lists an OpenAI-compatible server's models: `…/v1/chat/completions` →
/// `…/v1/models`.
pub fn openai_models_url(api_base_url: &str) -> String {
    with_path(api_base_url, |path| {
        let base = path.trim_end_matches('/');
        let base = base.strip_suffix("/chat/completions").unwrap_or(base);
        let base = base.strip_suffix("/completions").unwrap_or(base);
        format!("{base}/models")
    })
}

/// Anthropic lists models at `<origin>/v1/models`.
pub fn anthropic_models_url(api_base_url: &str) -> String {
    with_path(api_base_url, |path| {
        let base = path.trim_end_matches('/');
        let base = base.strip_suffix("/messages").unwrap_or(base);
        let base = base.strip_suffix("/v1").unwrap_or(base);
        format!("{base}/v1/models")
    })
}

/// `url` with its path rewritten by `edit`; the query (which may hold a key) stays a
/// query, after the new path, never inside it.
fn with_path(url: &str, edit: impl Fn(&str) -> String) -> String {
    match Url::parse(url) {
        Ok(mut parsed) => {
            let path = edit(parsed.path());
            parsed.set_path(&path);
            parsed.to_string()
        }
        Err(_) => edit(url),
    }
}

/// `{"data":[{"id":…}]}` → ids.
fn model_ids(body: &str) -> Option<Vec<String>> {
    let v: Value = serde_json::from_str(body).ok()?;
    let data = v.get("data").or_else(|| v.get("models"))?.as_array()?;
    Some(
        data.iter()
            .filter_map(|m| {
                m.get("id")
                    .or_else(|| m.get("name"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect(),
    )
}

/// What the provider answers: every replica is asked when `api_base_url` lists
/// several, and the first that fails is the answer (a team's sessions on it fail).
async fn provider_answer(
    p: &crate::config::Provider,
    http: &reqwest::Client,
    timeout: Duration,
) -> Result<Option<Vec<String>>, String> {
    if p.replicas.len() < 2 {
        return endpoint_answer(p, &p.api_base_url, http, timeout).await;
    }
    let asks = p
        .replicas
        .iter()
        .map(|r| endpoint_answer(p, &r.url, http, timeout));
    let answers = futures_util::future::join_all(asks).await;
    let n = answers.len();
    let mut first = None;
    for (j, answer) in answers.into_iter().enumerate() {
        match answer {
            Err(e) => return Err(format!("replica {} of {n}: {e}", j + 1)),
            Ok(models) => {
                first.get_or_insert(models);
            }
        }
    }
    Ok(first.flatten())
}

async fn endpoint_answer(
    p: &crate::config::Provider,
    endpoint: &str,
    http: &reqwest::Client,
    timeout: Duration,
) -> Result<Option<Vec<String>>, String> {
    let key = p.api_key.as_deref().filter(|k| !k.is_empty());
    let (url, headers): (String, Vec<(&str, String)>) = match p.kind {
        ProviderKind::OpenAi => (
            openai_models_url(endpoint),
            key.map(|k| vec![("authorization", format!("Bearer {k}"))])
                .unwrap_or_default(),
        ),
        ProviderKind::Anthropic => {
            let mut h = vec![("anthropic-version", "2023-06-01".to_owned())];
            if let Some(k) = key {
                h.push(("x-api-key", k.to_owned()));
            }
            (anthropic_models_url(endpoint), h)
        }
    };
    let hdrs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let answer = probe::http_get(http, &url, &hdrs, timeout).await;
    let url = crate::config::redact_url(&url);
    let answer = answer.map_err(|e| format!("{url}: {e}"))?;
    match answer.status {
        200..=299 => Ok(model_ids(&answer.body)),
        401 | 403 => Err(format!(
            "{url} answered HTTP {}: the API key was rejected",
            answer.status
        )),
        // Reachable, but it does not list models (some servers lack /models).
        404 | 405 => Ok(None),
        300..=399 => Err(format!(
            "{url} answered HTTP {} (a redirect, not followed: it would carry the key elsewhere); set api_base_url to the address it redirects to if you trust it",
            answer.status
        )),
        s => Err(format!(
            "{url} answered HTTP {s}: {}",
            crate::sanitize::untrusted(&crate::ollama::client::error_text(&answer.body), 300)
        )),
    }
}

/// Every provider's answer. `ollama` is the Ollama server's URL and what it answered
/// (its `/api/tags`), reused for a provider on that server.
pub(super) async fn providers(
    config: Option<&Config>,
    ollama: &(&Url, Result<Option<Vec<String>>, String>),
    http: &reqwest::Client,
    timeout: Duration,
) -> Vec<ProviderProbe> {
    let Some(cfg) = config else {
        return Vec::new();
    };
    let futures = cfg
        .providers
        .iter()
        .enumerate()
        .map(|(index, p)| async move {
            let is_ollama = p.kind == ProviderKind::OpenAi
                && Url::parse(&p.api_base_url)
                    .is_ok_and(|u| crate::config::same_server(&u, ollama.0));
            let answer = if is_ollama {
                ollama.1.clone()
            } else {
                provider_answer(p, http, timeout).await
            };
            ProviderProbe {
                index,
                name: p.name.clone(),
                url: p.api_base_url.clone(),
                replicas: p.replicas.len().max(1),
                is_ollama,
                is_default: cfg.router.default.provider == p.name,
                models: p.models.clone(),
                answer,
            }
        });
    futures_util::future::join_all(futures).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_urls() {
        assert_eq!(
            openai_models_url("http://127.0.0.1:8080/v1/chat/completions"),
            "http://127.0.0.1:8080/v1/models"
        );
        assert_eq!(
            openai_models_url("https://api.deepseek.com/chat/completions"),
            "https://api.deepseek.com/models"
        );
        assert_eq!(
            anthropic_models_url("https://api.anthropic.com/v1/messages"),
            "https://api.anthropic.com/v1/models"
        );
        // A key in the query stays in the query (it was `…?key=SECRET/models`).
        assert_eq!(
            openai_models_url("https://gw.example/v1/chat/completions?key=SECRET"),
            "https://gw.example/v1/models?key=SECRET"
        );
        assert_eq!(
            anthropic_models_url("https://gw.example/v1/messages?key=SECRET"),
            "https://gw.example/v1/models?key=SECRET"
        );
        assert_eq!(
            openai_models_url("https://gw.example/openai/?key=S"),
            "https://gw.example/openai/models?key=S"
        );
    }

    #[test]
    fn model_lists_from_openai_and_anthropic_shapes() {
        assert_eq!(
            model_ids(r#"{"object":"list","data":[{"id":"a"},{"id":"b"}]}"#),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(model_ids("not json"), None);
    }
}
