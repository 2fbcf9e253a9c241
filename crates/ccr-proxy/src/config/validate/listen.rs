//! Where and how the proxy listens: `HOST`, `PORT`, `APIKEY`, logging and the timeouts.

use serde_json::{Map, Value};

use super::super::model::{
    DEFAULT_API_TIMEOUT_MS, DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_HOST, DEFAULT_PORT,
    DEFAULT_STREAM_IDLE_TIMEOUT_MS,
};
use super::{is_loopback_host, Checker};

/// The top-level server keys, checked; `build` spreads them into `Config`.
pub(super) struct Listen {
    pub host: String,
    pub api_key: Option<String>,
    pub port: u16,
    pub log: bool,
    pub log_level: String,
    pub api_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    pub stream_idle_timeout_ms: u64,
}

pub(super) fn build_listen(c: &mut Checker, root: &Map<String, Value>) -> Listen {
    let host = c
        .opt_str(root, "HOST", "HOST")
        .unwrap_or_else(|| DEFAULT_HOST.to_owned());
    let api_key = c
        .opt_str(root, "APIKEY", "APIKEY")
        .filter(|k| !k.is_empty());
    // Client keys guard the proxy as well as APIKEY does.
    let has_clients = root
        .get("Clients")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if !is_loopback_host(&host) && api_key.is_none() && !has_clients {
        c.add(
            "HOST",
            format!("\"{host}\" is reachable from other machines, but APIKEY is empty and there are no Clients, so anyone on the network could use your models and keys"),
            "set \"APIKEY\" to a long random secret, add client keys (`ccr-setup clients add NAME`), or set \"HOST\": \"127.0.0.1\"",
        );
    }
    let port = match c.opt_u64(root, "PORT", "PORT") {
        None => DEFAULT_PORT,
        Some(p) if (1..=65535).contains(&p) => p as u16,
        Some(p) => {
            c.add(
                "PORT",
                format!("{p} is not a valid port"),
                "use a port between 1 and 65535, e.g. 3456",
            );
            DEFAULT_PORT
        }
    };
    let log = c.opt_bool(root, "LOG", "LOG").unwrap_or(false);
    let log_level = c
        .opt_str(root, "LOG_LEVEL", "LOG_LEVEL")
        .unwrap_or_else(|| "info".to_owned());
    Listen {
        host,
        api_key,
        port,
        log,
        log_level,
        api_timeout_ms: positive_ms(c, root, "API_TIMEOUT_MS", DEFAULT_API_TIMEOUT_MS),
        connect_timeout_ms: positive_ms(c, root, "CONNECT_TIMEOUT_MS", DEFAULT_CONNECT_TIMEOUT_MS),
        stream_idle_timeout_ms: positive_ms(
            c,
            root,
            "STREAM_IDLE_TIMEOUT_MS",
            DEFAULT_STREAM_IDLE_TIMEOUT_MS,
        ),
    }
}

fn positive_ms(c: &mut Checker, root: &Map<String, Value>, key: &str, default: u64) -> u64 {
    match c.opt_u64(root, key, key) {
        None => default,
        Some(0) => {
            c.add(
                key,
                "0 would time out every request",
                format!("remove \"{key}\" for the default ({default}) or give milliseconds > 0"),
            );
            default
        }
        Some(v) => v,
    }
}
