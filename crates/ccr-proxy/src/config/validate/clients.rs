//! Team mode's keys: `Clients` (named client keys, as hashes, with daily limits),
//! `ClientsTimezone` (the offset their days are counted in) and `ServerMode`.

use std::collections::BTreeSet;

use chrono::FixedOffset;
use serde_json::{Map, Value};

use super::{compact, kind_of, Checker};
use crate::config::client_keys::{parse_hash, valid_client_name};
use crate::config::Client;

/// What `build` spreads into `Config`.
pub(super) struct Team {
    pub clients: Vec<Client>,
    pub timezone: FixedOffset,
    pub server_mode: bool,
}

pub(super) fn build_team(c: &mut Checker, root: &Map<String, Value>) -> Team {
    let clients = match root.get("Clients") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            let mut names = BTreeSet::new();
            items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| client(c, i, item, &mut names))
                .collect()
        }
        Some(other) => {
            c.add(
                "Clients",
                format!("expected a list of clients, found {}", kind_of(other)),
                "write it as a list, or add one with `ccr-setup clients add NAME`",
            );
            Vec::new()
        }
    };
    let timezone = match c.opt_str(root, "ClientsTimezone", "ClientsTimezone") {
        None => utc(),
        Some(text) => parse_offset(&text).unwrap_or_else(|| {
            c.add(
                "ClientsTimezone",
                format!("\"{text}\" is not a UTC offset"),
                "write \"UTC\" or an offset such as \"+02:00\" or \"-05:30\"",
            );
            utc()
        }),
    };
    let server_mode = c
        .opt_bool(root, "ServerMode", "ServerMode")
        .unwrap_or(false);
    Team {
        clients,
        timezone,
        server_mode,
    }
}

fn utc() -> FixedOffset {
    FixedOffset::east_opt(0).expect("0 is a valid offset")
}

/// `UTC`, `Z` or `±HH:MM` (within ±23:59).
pub fn parse_offset(text: &str) -> Option<FixedOffset> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("utc") || t == "Z" {
        return Some(utc());
    }
    let (sign, rest) = match t.as_bytes().first()? {
        b'+' => (1, &t[1..]),
        b'-' => (-1, &t[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if h > 23 || m > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

fn client(c: &mut Checker, i: usize, item: &Value, names: &mut BTreeSet<String>) -> Option<Client> {
    let path = format!("Clients[{i}]");
    let Some(obj) = item.as_object() else {
        c.add(
            &path,
            format!("expected an object, found {}", kind_of(item)),
            "add clients with `ccr-setup clients add NAME`, which writes {\"name\", \"key_hash\"}",
        );
        return None;
    };
    let name = c.opt_str(obj, "name", &format!("{path}.name"));
    let name = match name {
        Some(n) if valid_client_name(&n) => Some(n),
        Some(n) => {
            let shown: String = n.chars().take(40).collect();
            c.add(
                format!("{path}.name"),
                format!("\"{shown}\" is not a usable client name"),
                "use 1 to 64 letters, digits, '.', '_' or '-', e.g. \"alice\"",
            );
            None
        }
        None => {
            c.add(
                format!("{path}.name"),
                "is missing",
                "give the client a name, e.g. \"name\": \"alice\"",
            );
            None
        }
    };
    if let Some(n) = &name {
        if !names.insert(n.clone()) {
            c.add(
                format!("{path}.name"),
                format!("\"{n}\" is used by an earlier client too"),
                format!("give each client its own name, or remove one with `ccr-setup clients remove {n}`"),
            );
        }
    }
    let hash = match obj.get("key_hash") {
        Some(Value::String(text)) => parse_hash(text).or_else(|| {
            c.add(
                format!("{path}.key_hash"),
                "is not \"sha256:\" followed by 64 hex digits",
                "the config holds only the key's hash: remove this client and run `ccr-setup clients add NAME`, which prints a new key and writes its hash",
            );
            None
        }),
        _ => {
            c.add(
                format!("{path}.key_hash"),
                "is missing (or not a string)",
                "run `ccr-setup clients add NAME`: it prints a new key and writes its hash here",
            );
            None
        }
    };
    let daily_requests = c.opt(
        obj,
        ("daily_requests", &format!("{path}.daily_requests")),
        Value::as_u64,
        |v| format!("expected a whole number >= 0, found {}", compact(v)),
        "write the number of requests allowed per day, e.g. \"daily_requests\": 2000, or remove it for no limit".into(),
    );
    let daily_cloud_usd = c.opt(
        obj,
        ("daily_cloud_usd", &format!("{path}.daily_cloud_usd")),
        |v| v.as_f64().filter(|x| x.is_finite() && *x >= 0.0),
        |v| format!("expected an amount in USD >= 0, found {}", compact(v)),
        "write the USD of cloud use allowed per day, e.g. \"daily_cloud_usd\": 5, or remove it for no limit".into(),
    );
    Some(Client {
        name: name?,
        key_hash: hash?,
        daily_requests,
        daily_cloud_usd,
    })
}

#[cfg(test)]
mod tests {
    use super::super::build;
    use super::*;
    use crate::config::client_keys::{format_hash, hash_key};
    use serde_json::json;

    fn doc(extra: Value) -> Value {
        let mut d = json!({
            "Providers": [{"name": "ollama", "api_base_url": "http://127.0.0.1:11434/v1/chat/completions", "models": ["m"]}],
            "Router": {"default": "ollama,m"}
        });
        for (k, v) in extra.as_object().unwrap() {
            d[k] = v.clone();
        }
        d
    }

    #[test]
    fn clients_resolve_with_limits_and_timezone() {
        let h = format_hash(&hash_key("ccr_alice"));
        let cfg = build(
            &doc(json!({
                "Clients": [{"name": "alice", "key_hash": h, "daily_requests": 10, "daily_cloud_usd": 2.5},
                            {"name": "bob", "key_hash": format_hash(&hash_key("ccr_bob"))}],
                "ClientsTimezone": "+02:00",
                "ServerMode": true,
                "HOST": "127.0.0.1"
            })),
            &[],
        )
        .unwrap();
        assert_eq!(cfg.clients.len(), 2);
        assert_eq!(cfg.clients[0].key_hash, hash_key("ccr_alice"));
        assert_eq!(cfg.clients[0].daily_requests, Some(10));
        assert_eq!(cfg.clients[0].daily_cloud_usd, Some(2.5));
        assert_eq!(cfg.clients[1].daily_requests, None);
        assert_eq!(cfg.clients_timezone.local_minus_utc(), 7200);
        assert!(cfg.server_mode && cfg.auth_required() && cfg.api_key.is_none());
        // Outside server mode, client keys satisfy the key rule for a LAN bind (server
        // mode keeps the proxy on loopback behind Caddy: validate::team).
        let lan = build(
            &doc(json!({"Clients": [{"name": "alice", "key_hash": h}], "HOST": "0.0.0.0"})),
            &[],
        )
        .unwrap();
        assert!(lan.auth_required() && lan.api_key.is_none());
        let cfg = build(&doc(json!({})), &[]).unwrap();
        assert!(cfg.clients.is_empty() && !cfg.server_mode && !cfg.auth_required());
        assert_eq!(cfg.clients_timezone.local_minus_utc(), 0);
    }

    #[test]
    fn bad_clients_are_named_with_the_fix() {
        let h = format_hash(&hash_key("k"));
        let problems = build(
            &doc(json!({
                "Clients": [{"name": "alice", "key_hash": h},
                            {"name": "alice", "key_hash": h},
                            {"name": "b ob", "key_hash": "sha256:abc"},
                            {"key_hash": h, "daily_requests": -1, "daily_cloud_usd": -2}],
                "ClientsTimezone": "Europe/Paris",
                "ServerMode": "yes"
            })),
            &[],
        )
        .unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "Clients[1].name",
                "Clients[2].name",
                "Clients[2].key_hash",
                "Clients[3].name",
                "Clients[3].daily_requests",
                "Clients[3].daily_cloud_usd",
                "ClientsTimezone",
                "ServerMode"
            ]
        );
        assert!(
            problems[0].fix.contains("clients remove alice"),
            "{:?}",
            problems[0]
        );
        assert!(problems[2].fix.contains("clients add"), "{:?}", problems[2]);
        assert!(problems[6].fix.contains("+02:00"), "{:?}", problems[6]);
        let problems = build(&doc(json!({"Clients": {"alice": 1}})), &[]).unwrap_err();
        assert_eq!(problems[0].path, "Clients");
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("UTC").unwrap().local_minus_utc(), 0);
        assert_eq!(parse_offset("-05:30").unwrap().local_minus_utc(), -19800);
        assert!(parse_offset("+24:00").is_none());
        assert!(parse_offset("2:00").is_none());
        assert!(parse_offset("+2").is_none());
    }

    #[test]
    fn clients_are_enough_to_listen_beyond_loopback() {
        let h = format_hash(&hash_key("k"));
        assert!(build(&doc(json!({"HOST": "0.0.0.0"})), &[]).is_err());
        assert!(build(
            &doc(json!({"HOST": "0.0.0.0", "Clients": [{"name": "a", "key_hash": h}]})),
            &[]
        )
        .is_ok());
    }
}
