//! Where the Ollama server is: `OLLAMA_HOST`, read exactly as Ollama's own CLI reads it
//! (`envconfig.Host()`), so `ccr-setup` talks to the same server `ollama run` would.
//!
//! Ollama's rules: surrounding quotes and spaces are ignored; the scheme is optional
//! (http by default, and then the default port is 11434; an explicit `http://` without
//! a port means port 80 and `https://` means 443); a bare host or IP gets the default
//! port; an unparseable port falls back to the default. As `envconfig.ConnectableHost()`
//! does for a client, an unspecified bind address (`0.0.0.0`, `::`) means "every
//! interface", reached through loopback; and an empty host (`:8080`, which Go's
//! `net.SplitHostPort` accepts) is dialled on this machine, so it is loopback too.

use std::net::IpAddr;

use url::Url;

/// Ollama's default address.
pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:11434";
/// Ollama's default port.
pub const DEFAULT_PORT: u16 = 11434;

/// The base URL of the Ollama server named by `OLLAMA_HOST` in this process's environment.
pub fn base_url_from_env() -> Url {
    parse_ollama_host(
        std::env::var(crate::env_vars::EnvVars::OLLAMA_HOST)
            .ok()
            .as_deref(),
    )
}

/// Parse an `OLLAMA_HOST` value (None or empty: the default) into a client base URL.
pub fn parse_ollama_host(value: Option<&str>) -> Url {
    let raw = value
        .unwrap_or("")
        .trim()
        .trim_matches(|c| c == '"' || c == '\'')
        .trim();
    let (scheme, hostport, default_port) = match raw.split_once("://") {
        None if raw == "ollama.com" => ("https", "ollama.com:443", 443),
        None => ("http", raw, DEFAULT_PORT),
        Some(("https", rest)) => ("https", rest, 443),
        Some(("http", rest)) => ("http", rest, 80),
        // Ollama keeps an unknown scheme with the default port; so do we.
        Some((other, rest)) => (other, rest, DEFAULT_PORT),
    };
    let (hostport, path) = match hostport.split_once('/') {
        Some((hp, p)) => (hp, p),
        None => (hostport, ""),
    };
    let (host, port) = match split_host_port(hostport) {
        // Go dials an empty host (`:8080`) on the local system.
        Some(("", p)) => ("127.0.0.1".to_owned(), go_port(p, default_port)),
        Some((h, p)) => (h.to_owned(), go_port(p, default_port)),
        None => {
            let bare = hostport.trim_start_matches('[').trim_end_matches(']');
            let host = if bare.is_empty() {
                "127.0.0.1".to_owned()
            } else {
                bare.to_owned()
            };
            (host, default_port)
        }
    };
    let host = connectable_host(&host);
    let host_part = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    let text = format!("{scheme}://{host_part}:{port}/{path}");
    Url::parse(&text).unwrap_or_else(|_| Url::parse(DEFAULT_BASE_URL).expect("valid default"))
}

/// Go's `strconv.ParseInt(port, 10, 32)` kept only within 0..=65535, else the default.
fn go_port(port: &str, default_port: u16) -> u16 {
    port.parse::<i64>()
        .ok()
        .and_then(|n| u16::try_from(n).ok())
        .unwrap_or(default_port)
}

/// Go's `net.SplitHostPort`: `host:port` or `[v6]:port`; None when there is no port.
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        return Some((host, port));
    }
    let (host, port) = s.rsplit_once(':')?;
    if host.contains(':') {
        return None; // a bare IPv6 address without brackets has no port
    }
    Some((host, port))
}

/// A bind-everywhere address is reached through loopback by a client.
fn connectable_host(host: &str) -> String {
    match host.parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_owned(),
        Ok(ip) if ip.is_unspecified() => "::1".to_owned(),
        Ok(ip) => ip.to_string(),
        Err(_) => host.to_owned(),
    }
}

/// Is `url`'s host this machine (so its disk, processes and pid files are ours to inspect)?
pub fn is_local(url: &Url) -> bool {
    crate::config::is_loopback_url(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &str) -> String {
        parse_ollama_host(Some(v)).to_string()
    }

    #[test]
    fn follows_ollamas_conventions() {
        assert_eq!(parse_ollama_host(None).as_str(), "http://127.0.0.1:11434/");
        assert_eq!(p(""), "http://127.0.0.1:11434/");
        assert_eq!(p("  \"127.0.0.1:9000\" "), "http://127.0.0.1:9000/");
        assert_eq!(p("example.com"), "http://example.com:11434/");
        assert_eq!(p("example.com:1234"), "http://example.com:1234/");
        assert_eq!(p("http://example.com"), "http://example.com/"); // port 80
        assert_eq!(p("https://example.com"), "https://example.com/"); // port 443
        assert_eq!(
            p("https://example.com:8443/ollama"),
            "https://example.com:8443/ollama"
        );
        assert_eq!(p("10.0.0.5"), "http://10.0.0.5:11434/");
        assert_eq!(p("[::1]:5000"), "http://[::1]:5000/");
        assert_eq!(p("::1"), "http://[::1]:11434/");
        assert_eq!(p("example.com:notaport"), "http://example.com:11434/");
        assert_eq!(p("ollama.com"), "https://ollama.com/");
    }

    /// The forms of `OLLAMA_HOST`, each as Ollama's `envconfig.Host()` reads it
    /// (envconfig/config.go, v0.33.0-rc2) and `ConnectableHost()` dials it.
    #[test]
    fn every_form_reads_as_ollama_reads_it() {
        let table = [
            // `:PORT`: empty host, which Go dials locally.
            (":8080", "http://127.0.0.1:8080/"),
            ("\":8080\"", "http://127.0.0.1:8080/"),
            ("http://:9000", "http://127.0.0.1:9000/"),
            // Bare host or IP: the default port.
            ("localhost", "http://localhost:11434/"),
            ("192.168.1.20", "http://192.168.1.20:11434/"),
            // Scheme: http → 80, https → 443 when no port; unknown → 11434.
            ("http://box", "http://box/"),
            ("https://box:8443", "https://box:8443/"),
            ("ftp://box", "ftp://box:11434/"),
            // IPv6: bracketed with a port, or bare without one.
            ("[::1]:11500", "http://[::1]:11500/"),
            ("[fe80::1]", "http://[fe80::1]:11434/"),
            ("fe80::1", "http://[fe80::1]:11434/"),
            // Bind-everywhere addresses: loopback for a client.
            ("0.0.0.0", "http://127.0.0.1:11434/"),
            ("0.0.0.0:11500", "http://127.0.0.1:11500/"),
            ("[::]", "http://[::1]:11434/"),
            // Ports Go's ParseInt rejects or that are out of range: the default.
            ("box:99999", "http://box:11434/"),
            ("box:", "http://box:11434/"),
            ("box:+8080", "http://box:8080/"),
        ];
        for (value, expected) in table {
            assert_eq!(p(value), expected, "OLLAMA_HOST={value}");
        }
    }

    #[test]
    fn bind_everywhere_means_loopback() {
        assert_eq!(p("0.0.0.0"), "http://127.0.0.1:11434/");
        assert_eq!(p("0.0.0.0:8080"), "http://127.0.0.1:8080/");
        assert_eq!(p("http://0.0.0.0:8080"), "http://127.0.0.1:8080/");
        assert_eq!(p("[::]:8080"), "http://[::1]:8080/");
    }

    #[test]
    fn locality() {
        assert!(is_local(&parse_ollama_host(None)));
        assert!(is_local(&parse_ollama_host(Some("localhost:1"))));
        assert!(is_local(&parse_ollama_host(Some("[::1]:1"))));
        assert!(!is_local(&parse_ollama_host(Some("10.1.2.3"))));
    }
}
