//! `Join`: a laptop's config records the team server it joined, and that server's
//! URL as the laptop may use it.
//!
//! ```json5
//! "Join": {"url": "https://team.example.com", "key": "$CCR_SETUP_CLIENT_KEY",
//!          "ca_cert": "/path/to/root.crt"}   // ca_cert: only for a private CA
//! ```
//!
//! The key is a reference: `init --join` stores the value in the secrets store
//! (Keychain or `secrets.env`), never in the config. The client key travels in every
//! request's header, so it must never cross the network in plain text: the URL is
//! `https://` always, `http://` only to a loopback address (an SSH tunnel, or a test).

use url::Url;

use super::is_loopback_host;

/// The variable the client key is stored under (and referenced as, `$CCR_SETUP_CLIENT_KEY`).
pub const CLIENT_KEY_VAR: &str = crate::env_vars::EnvVars::CCR_SETUP_CLIENT_KEY;

/// A joined laptop's team server, read from a validated config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Join {
    /// The server's base URL (no trailing slash).
    pub url: String,
    /// The client key, resolved from the environment or the secrets store.
    pub key: String,
    /// A CA certificate (PEM) to trust for the server, e.g. Caddy's `tls internal` root.
    pub ca_cert: Option<std::path::PathBuf>,
}

impl Join {
    /// The config's `Join`, when it has one (validation already checked its shape).
    pub fn of(cfg: &super::Config) -> Option<Join> {
        let j = cfg.raw.get("Join")?;
        Some(Join {
            url: server_url(j.get("url")?.as_str()?).ok()?,
            key: j.get("key")?.as_str()?.to_owned(),
            ca_cert: j
                .get("ca_cert")
                .and_then(serde_json::Value::as_str)
                .map(std::path::PathBuf::from),
        })
    }

    /// Is this config a joined laptop's? Read from the file as written, so it answers
    /// even when the key is not set yet.
    pub fn is_joined(doc: &serde_json::Value) -> bool {
        doc.get("Join").is_some_and(|j| !j.is_null())
    }
}

/// Why a team server URL was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ServerUrlError {
    #[error("{url:?} is not a URL")]
    NotAUrl { url: String },
    #[error("{url} uses plain http to {host}, which would send the client key across the network unencrypted")]
    PlainHttp { url: String, host: String },
    #[error("{url} is not an https:// URL")]
    Scheme { url: String },
    #[error("{url} carries a path, a query or credentials; the server URL is only scheme, host and port")]
    NotABase { url: String },
}

impl crate::diagnostic::Hint for ServerUrlError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            ServerUrlError::PlainHttp { .. } | ServerUrlError::Scheme { .. } => {
                "use the server's https:// address (its Caddy terminates TLS; see docs/team.md), or http://127.0.0.1:PORT through an SSH tunnel".into()
            }
            ServerUrlError::NotAUrl { .. } | ServerUrlError::NotABase { .. } => {
                "give it as https://team.example.com (optionally with :PORT)".into()
            }
        })
    }
}

/// Check a team server URL and return it without a trailing slash.
pub fn server_url(text: &str) -> Result<String, ServerUrlError> {
    let trimmed = text.trim();
    let url = Url::parse(trimmed).map_err(|_| ServerUrlError::NotAUrl {
        url: trimmed.to_owned(),
    })?;
    let host = url.host_str().unwrap_or("").to_owned();
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(&host) => {}
        "http" => {
            return Err(ServerUrlError::PlainHttp {
                url: trimmed.to_owned(),
                host,
            })
        }
        _ => {
            return Err(ServerUrlError::Scheme {
                url: trimmed.to_owned(),
            })
        }
    }
    if host.is_empty()
        || !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.path().trim_end_matches('/').is_empty()
    {
        return Err(ServerUrlError::NotABase {
            url: trimmed.to_owned(),
        });
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_and_http_only_on_loopback() {
        assert_eq!(
            server_url("https://team.example.com/").unwrap(),
            "https://team.example.com"
        );
        assert_eq!(
            server_url("https://10.0.0.5:8443").unwrap(),
            "https://10.0.0.5:8443"
        );
        assert_eq!(
            server_url("http://127.0.0.1:3456").unwrap(),
            "http://127.0.0.1:3456"
        );
        assert!(server_url("http://localhost:3456").is_ok());
        assert!(server_url("http://[::1]:3456").is_ok());
        assert_eq!(
            server_url("http://10.0.0.5:3456"),
            Err(ServerUrlError::PlainHttp {
                url: "http://10.0.0.5:3456".into(),
                host: "10.0.0.5".into()
            })
        );
        assert!(matches!(
            server_url("http://team.example.com"),
            Err(ServerUrlError::PlainHttp { .. })
        ));
        assert!(matches!(
            server_url("ftp://team.example.com"),
            Err(ServerUrlError::Scheme { .. })
        ));
        assert!(matches!(
            server_url("team.example.com"),
            Err(ServerUrlError::NotAUrl { .. })
        ));
        for not_base in [
            "https://team.example.com/v1/messages",
            "https://u:p@team.example.com",
            "https://team.example.com/?key=x",
        ] {
            assert!(
                matches!(server_url(not_base), Err(ServerUrlError::NotABase { .. })),
                "{not_base}"
            );
        }
    }
}
