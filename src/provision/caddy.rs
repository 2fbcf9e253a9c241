//! The Caddyfile `init --server` writes beside the config.
//!
//! TLS for team mode is a Caddy reverse proxy in front of the ccr-setup proxy, not
//! rustls inside it: Caddy obtains and renews certificates itself (ACME for a public
//! name, its own CA for `tls internal`), which keeps certificate issuance, renewal
//! and reloading out of our code, and the proxy keeps listening on loopback only, so
//! nothing on the LAN can reach it except through TLS.

use std::path::Path;

const TEMPLATE: &str = include_str!("../../templates/Caddyfile");

/// Where the certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// Let's Encrypt / ZeroSSL through ACME: the name must resolve to this box
    /// publicly and ports 80 and 443 be reachable.
    Acme,
    /// Caddy's own CA: laptops trust its root certificate (`init --join --ca-cert`).
    Internal,
}

/// Why the Caddyfile could not be rendered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{domain:?} is not a host name or IP address Caddy can serve")]
pub struct BadDomain {
    pub domain: String,
}

/// The Caddyfile for `domain` (a host name or IP, optionally `:PORT`) in front of the
/// proxy on `127.0.0.1:port`; `path` is where it is written (for the install line).
pub fn render(domain: &str, tls: &TlsMode, port: u16, path: &Path) -> Result<String, BadDomain> {
    let ok = !domain.is_empty()
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        && !domain.starts_with(['-', '.', ':']);
    if !ok {
        return Err(BadDomain {
            domain: domain.to_owned(),
        });
    }
    let (tls_line, note) = match tls {
        TlsMode::Acme => (String::new(), "a public certificate through ACME"),
        TlsMode::Internal => (
            "\ttls internal\n".to_owned(),
            "Caddy's own CA: laptops trust its root.crt",
        ),
    };
    Ok(TEMPLATE
        .replace("{{tls_note}}", note)
        .replace("{{path}}", &path.display().to_string())
        .replace("{{site}}", domain)
        .replace("{{tls}}", &tls_line)
        .replace("{{port}}", &port.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_site_the_tls_and_the_loopback_upstream() {
        let p = Path::new("/home/a/.claude-code-router/Caddyfile");
        let acme = render("team.example.com", &TlsMode::Acme, 3456, p).unwrap();
        assert!(acme.contains("team.example.com {\n\treverse_proxy 127.0.0.1:3456 {"));
        assert!(!acme.contains("tls internal"));
        let internal = render("gpu-box", &TlsMode::Internal, 4000, p).unwrap();
        assert!(internal.contains("gpu-box {\n\ttls internal\n\treverse_proxy 127.0.0.1:4000"));
        for bad in ["", "a b", "x{y}", "-x", "team.example.com\nimport evil"] {
            assert!(render(bad, &TlsMode::Acme, 1, p).is_err(), "{bad:?}");
        }
    }
}
