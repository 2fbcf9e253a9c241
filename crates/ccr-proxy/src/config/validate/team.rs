//! Team mode's keys: `ServerMode` keeps the proxy on loopback (TLS is Caddy's, in front
//! of it, so client keys never cross the LAN in plain text), and a joined laptop's
//! `Join` names an https server and the key's reference.

use serde_json::{Map, Value};

use super::super::join::server_url;
use super::{is_loopback_host, Checker};

pub(super) fn check_team(c: &mut Checker, root: &Map<String, Value>) {
    let server_mode = root.get("ServerMode").and_then(Value::as_bool) == Some(true);
    let host = root.get("HOST").and_then(Value::as_str).unwrap_or("");
    if server_mode && !host.is_empty() && !is_loopback_host(host) {
        c.add(
            "HOST",
            format!("\"{host}\" would serve client keys to the network in plain text: in server mode the proxy listens on loopback and Caddy terminates TLS in front of it"),
            "set \"HOST\": \"127.0.0.1\" and let Caddy serve https (`ccr-setup init --server --domain NAME` writes its Caddyfile; docs/team.md)",
        );
    }
    let Some(join) = c.opt_object(
        root,
        "Join",
        "write it as \"Join\": {\"url\": \"https://team.example.com\", \"key\": \"$CCR_SETUP_CLIENT_KEY\"}, or run `ccr-setup init --join URL`",
    ) else {
        return;
    };
    match join.get("url").and_then(Value::as_str) {
        None => c.add(
            "Join.url",
            "missing: the team server's address",
            "set \"url\": \"https://team.example.com\"",
        ),
        Some(url) => {
            if let Err(e) = server_url(url) {
                c.add("Join.url", e.to_string(), "use the server's https:// address (http:// only to 127.0.0.1, e.g. an SSH tunnel)");
            }
        }
    }
    if join
        .get("key")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        c.add(
            "Join.key",
            "missing: the client key (a reference such as \"$CCR_SETUP_CLIENT_KEY\")",
            "re-run `ccr-setup init --join URL`, which stores the key and writes the reference",
        );
    }
    if let Some(ca) = c.opt_str(join, "ca_cert", "Join.ca_cert") {
        if !std::path::Path::new(&ca).is_absolute() {
            c.add(
                "Join.ca_cert",
                format!("\"{ca}\" is not an absolute path"),
                "give the CA certificate's full path, e.g. \"/home/you/.claude-code-router/team-ca.crt\"",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    fn paths(doc: serde_json::Value) -> Vec<String> {
        match super::super::build(&doc, &[]) {
            Ok(_) => Vec::new(),
            Err(p) => p.into_iter().map(|p| p.path).collect(),
        }
    }

    fn base() -> serde_json::Value {
        json!({
            "Providers": [{"name": "vllm", "api_base_url": "http://127.0.0.1:8000/v1/chat/completions", "models": ["m"], "local": true}],
            "Router": {"default": "vllm,m"},
        })
    }

    #[test]
    fn server_mode_keeps_the_proxy_on_loopback() {
        let mut doc = base();
        doc["ServerMode"] = json!(true);
        doc["APIKEY"] = json!("admin-secret");
        doc["HOST"] = json!("0.0.0.0");
        assert_eq!(paths(doc.clone()), vec!["HOST"]);
        doc["HOST"] = json!("127.0.0.1");
        assert!(paths(doc.clone()).is_empty());
        // Without server mode, a LAN bind with an APIKEY stays the user's choice.
        doc["ServerMode"] = json!(false);
        doc["HOST"] = json!("0.0.0.0");
        assert!(paths(doc).is_empty());
    }

    #[test]
    fn join_needs_an_https_url_and_a_key() {
        let mut doc = base();
        doc["Join"] = json!({"url": "https://team.example.com", "key": "ccr_x"});
        assert!(paths(doc.clone()).is_empty());
        doc["Join"] = json!({"url": "http://10.0.0.5:3456", "key": "ccr_x"});
        assert_eq!(paths(doc.clone()), vec!["Join.url"]);
        doc["Join"] = json!({"url": "http://127.0.0.1:3456"});
        assert_eq!(paths(doc.clone()), vec!["Join.key"]);
        doc["Join"] = json!({"url": "https://t", "key": "k", "ca_cert": "rel.crt"});
        assert_eq!(paths(doc.clone()), vec!["Join.ca_cert"]);
        doc["Join"] = json!("https://t");
        assert_eq!(paths(doc), vec!["Join"]);
    }
}
