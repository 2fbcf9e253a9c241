//! The checks every request meets first (all routes but `GET|HEAD /`), because loopback
//! is not a wall: any web page the user opens can send requests to the proxy.
//!
//! | check | refused with |
//! | --- | --- |
//! | `Host` is not a loopback name or address, nor the configured `HOST` (DNS rebinding) | 403 `permission_error` |
//! | `Origin` is present and neither the proxy's own origin nor in `ALLOWED_ORIGINS` | 403 `permission_error` |
//! | a `POST` body that is not `application/json` (a page's `no-cors` `text/plain` post) | 415 `invalid_request_error` |
//!
//! Claude Code, `ccr-setup` and curl send no `Origin` and a loopback `Host`, so they pass.
//! The limit on requests in flight sits with the API routes ([`super::layers`]).

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::config::Config;
use crate::proxy::error::{ErrorKind, ProxyError};

/// The dashboard's login form, posted by the local page `ccr-setup ui` writes: a
/// `file://` page, so `Origin: null` and a form body. Only the Host check applies (the
/// ticket it carries is single-use and unguessable, so a forged post gains nothing).
const LOGIN_FORM_PATH: &str = "/ui/login";

/// Run [`check`]; `GET|HEAD /` (the liveness answer) is never checked.
pub(super) async fn request_checks(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let root_probe = req.uri().path() == "/" && matches!(*req.method(), Method::GET | Method::HEAD);
    if !root_probe {
        let authority = req.uri().authority().map(|a| a.as_str());
        let login_form = req.uri().path() == LOGIN_FORM_PATH && req.method() == Method::POST;
        let checked = if login_form {
            host_check(&state.config.current(), req.headers(), authority).map(|_| ())
        } else {
            check(
                &state.config.current(),
                req.method(),
                req.headers(),
                authority,
            )
        };
        if let Err(e) = checked {
            super::refusals::log(req.method(), req.uri().path(), &e.message);
            return e.into_response();
        }
    }
    next.run(req).await
}

/// Host, then Origin, then Content-Type. `authority` is the request URI's: HTTP/2
/// carries the host there (`:authority`) and sends no `Host` header, and an HTTP/1
/// request in absolute form names one there too; each one present is checked.
pub(super) fn check(
    config: &Config,
    method: &Method,
    headers: &HeaderMap,
    authority: Option<&str>,
) -> Result<(), ProxyError> {
    let host = host_check(config, headers, authority)?;
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !origin_allowed(config, origin, host) {
            return Err(forbidden(format!(
                "requests from the web page at {origin:?} are refused; add the origin to \"ALLOWED_ORIGINS\" in the config if it should use the proxy"
            )));
        }
    }
    if method == Method::POST && !json_body(headers) {
        return Err(ProxyError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::InvalidRequest,
            "the request body must be sent with Content-Type: application/json",
        ));
    }
    Ok(())
}

/// The `Host` header and the URI's authority, each one present, must name this proxy;
/// the host to compare an `Origin` with.
fn host_check<'h>(
    config: &Config,
    headers: &'h HeaderMap,
    authority: Option<&'h str>,
) -> Result<Option<&'h str>, ProxyError> {
    let host_header = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if host_header.is_none() && headers.contains_key(header::HOST) {
        return Err(forbidden("the Host header is not valid text".to_owned()));
    }
    for host in [host_header, authority].into_iter().flatten() {
        if !host_allowed(config, host) {
            return Err(forbidden(format!(
                "Host {host:?} is not this proxy's address; only loopback names (localhost, 127.0.0.1, [::1]) or the configured HOST are served (a web page may be trying DNS rebinding)"
            )));
        }
    }
    Ok(host_header.or(authority))
}

fn forbidden(message: String) -> ProxyError {
    ProxyError::new(StatusCode::FORBIDDEN, ErrorKind::Permission, message)
}

/// The host part of a `Host` value (`[::1]:3456` → `::1`, `Localhost.:80` →
/// `localhost`).
fn host_name(host: &str) -> String {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _port)| name),
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn is_loopback_name(name: &str) -> bool {
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Loopback always; the configured `HOST` too; any name when `HOST` is a wildcard bind
/// (then `APIKEY` is required, and clients use whatever name reaches the machine).
fn host_allowed(config: &Config, host: &str) -> bool {
    let wildcard = config
        .host
        .trim_matches(['[', ']'])
        .parse::<IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified());
    let name = host_name(host);
    wildcard || is_loopback_name(&name) || name == host_name(&config.host)
}

/// The proxy's own pages (same origin as the `Host` asked for), or one the user listed.
fn origin_allowed(config: &Config, origin: &str, host: Option<&str>) -> bool {
    let origin = origin.trim_end_matches('/').to_ascii_lowercase();
    let same_origin = host.is_some_and(|h| {
        let h = h.to_ascii_lowercase();
        origin == format!("http://{h}") || origin == format!("https://{h}")
    });
    same_origin || config.allowed_origins.contains(&origin)
}

/// `application/json`, with or without parameters; a POST without a body and without
/// a type (`ccr-setup ui` asking for a ticket) is fine too.
fn json_body(headers: &HeaderMap) -> bool {
    match headers.get(header::CONTENT_TYPE) {
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|t| t.split(';').next())
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json")),
        // Without a type, only a request without a body passes: `Content-Length: 0`,
        // or neither a length nor chunked encoding (HTTP/1.1 then means no body).
        None => {
            let length = headers
                .get(header::CONTENT_LENGTH)
                .map(|v| v.to_str().ok().and_then(|t| t.trim().parse::<u64>().ok()));
            !headers.contains_key(header::TRANSFER_ENCODING)
                && matches!(length, None | Some(Some(0)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn config(host: &str, origins: &[&str]) -> Config {
        let mut extra = serde_json::json!({"HOST": host, "ALLOWED_ORIGINS": origins});
        if host != "127.0.0.1" {
            extra["APIKEY"] = "k".into();
        }
        crate::proxy::test_support::config_with(
            serde_json::json!({"default": "ollama,gpt-oss:20b"}),
            extra,
        )
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn status(c: &Config, method: Method, pairs: &[(&'static str, &str)]) -> u16 {
        match check(c, &method, &headers(pairs), None) {
            Ok(()) => 200,
            Err(e) => e.status.as_u16(),
        }
    }

    #[test]
    fn host_must_be_loopback_or_the_configured_host() {
        let c = config("127.0.0.1", &[]);
        for ok in [
            "127.0.0.1:3456",
            "localhost:3456",
            "LOCALHOST",
            "[::1]:3456",
            "127.0.0.2",
        ] {
            assert_eq!(status(&c, Method::GET, &[("host", ok)]), 200, "{ok}");
        }
        for bad in [
            "evil.example:3456",
            "127.0.0.1.evil.example",
            "192.168.1.5:3456",
        ] {
            assert_eq!(status(&c, Method::GET, &[("host", bad)]), 403, "{bad}");
        }
        let lan = config("192.168.1.5", &[]);
        assert_eq!(
            status(&lan, Method::GET, &[("host", "192.168.1.5:3456")]),
            200
        );
        assert_eq!(status(&lan, Method::GET, &[("host", "evil.example")]), 403);
        let any6 = config("::", &[]);
        assert_eq!(
            status(&any6, Method::GET, &[("host", "[fe80::1]:3456")]),
            200
        );
        let any = config("0.0.0.0", &[]);
        assert_eq!(
            status(&any, Method::GET, &[("host", "mybox.lan:3456")]),
            200
        );
    }

    /// HTTP/2 sends no `Host`; its `:authority` is the request URI's authority.
    #[test]
    fn the_uri_authority_is_checked_like_host() {
        let c = config("127.0.0.1", &[]);
        let h2 = |authority: &str| {
            check(&c, &Method::GET, &HeaderMap::new(), Some(authority)).map_err(|e| e.status)
        };
        assert_eq!(h2("evil.example:3456"), Err(StatusCode::FORBIDDEN));
        assert_eq!(h2("127.0.0.1:3456"), Ok(()));
        // Absolute form with a loopback Host header: the URI's authority still counts.
        let loopback = headers(&[("host", "127.0.0.1:3456")]);
        assert!(check(&c, &Method::GET, &loopback, Some("evil.example")).is_err());
        // Same-origin pages on HTTP/2 are recognised by the authority.
        let page = headers(&[("origin", "http://localhost:3456")]);
        assert!(check(&c, &Method::GET, &page, Some("localhost:3456")).is_ok());
    }

    #[test]
    fn origin_must_be_our_own_or_listed() {
        let c = config("127.0.0.1", &["http://localhost:5173"]);
        let host = ("host", "127.0.0.1:3456");
        assert_eq!(status(&c, Method::GET, &[host]), 200);
        assert_eq!(
            status(&c, Method::GET, &[host, ("origin", "https://evil.example")]),
            403
        );
        assert_eq!(status(&c, Method::GET, &[host, ("origin", "null")]), 403);
        assert_eq!(
            status(
                &c,
                Method::GET,
                &[host, ("origin", "http://127.0.0.1:3456")]
            ),
            200
        );
        assert_eq!(
            status(
                &c,
                Method::GET,
                &[host, ("origin", "http://127.0.0.1:9999")]
            ),
            403
        );
        assert_eq!(
            status(
                &c,
                Method::GET,
                &[host, ("origin", "http://LOCALHOST:5173")]
            ),
            200
        );
    }

    #[test]
    fn post_bodies_must_be_json() {
        let c = config("127.0.0.1", &[]);
        let post = |pairs: &[(&'static str, &str)]| status(&c, Method::POST, pairs);
        assert_eq!(post(&[("content-type", "application/json")]), 200);
        assert_eq!(
            post(&[("content-type", "Application/JSON; charset=utf-8")]),
            200
        );
        assert_eq!(post(&[("content-type", "text/plain")]), 415);
        assert_eq!(
            post(&[("content-type", "application/x-www-form-urlencoded")]),
            415
        );
        assert_eq!(post(&[("content-length", "12")]), 415);
        assert_eq!(post(&[("content-length", "0")]), 200);
        assert_eq!(
            post(&[]),
            200,
            "no body at all (`ccr-setup ui` asking for a ticket)"
        );
        assert_eq!(post(&[("transfer-encoding", "chunked")]), 415);
        assert_eq!(status(&c, Method::GET, &[]), 200);
    }
}
