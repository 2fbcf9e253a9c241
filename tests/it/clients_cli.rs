//! `ccr-setup clients add|list|remove`, `stats --by client`, and the `proxy` binary in
//! team mode: server mode without clients, a client added while it runs, and the
//! dashboard refusing client keys.

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use ccr_setup::config::client_keys::{format_hash, hash_key};
use serde_json::{json, Value};
use support::sandbox::{run_expect, Sandbox};

fn base_config() -> Value {
    json!({
        "Providers": [
            {"name": "ollama", "api_base_url": "http://127.0.0.1:11434/v1/chat/completions", "api_key": "", "models": ["gpt-oss:20b"]},
            {"name": "anthropic", "api_base_url": "https://api.anthropic.com/v1/messages", "api_key": "sk-test", "models": ["claude-sonnet-4-5"], "transformer": {"use": ["Anthropic"]}}
        ],
        "Router": {"default": "ollama,gpt-oss:20b"},
        "Pricing": {"claude-sonnet-4-5": {"input": 3, "output": 15}},
        "my_own_key": "kept"
    })
}

fn clients(sb: &Sandbox, args: &[&str]) -> std::process::Command {
    let config = sb.config_path();
    let mut c = sb.cmd(&["--config", config.to_str().unwrap(), "clients"]);
    c.args(args);
    c
}

#[test]
fn add_prints_the_key_once_and_stores_only_its_hash() {
    let sb = Sandbox::new();
    sb.write_config(&base_config());
    let (stdout, stderr) = run_expect(
        clients(
            &sb,
            &[
                "add",
                "alice",
                "--daily-requests",
                "500",
                "--daily-cloud-usd",
                "2.5",
            ],
        ),
        0,
    );
    // stdout is the key and nothing else.
    let key = stdout.trim();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(key.starts_with("ccr_") && key.len() == 47, "{key}");
    assert!(stderr.contains("added client alice"), "{stderr}");
    assert!(!stderr.contains(key), "the key is printed once");

    let text = std::fs::read_to_string(sb.config_path()).unwrap();
    assert!(!text.contains(key), "the key itself is in the config");
    let doc = sb.config_doc();
    assert_eq!(
        doc["Clients"],
        json!([{"name": "alice", "key_hash": format_hash(&hash_key(key)), "daily_requests": 500, "daily_cloud_usd": 2.5}])
    );
    assert_eq!(doc["my_own_key"], "kept");
    assert_eq!(sb.config_backups(), 1);
    let mode = std::fs::metadata(sb.config_path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // --json: one object on stdout, with the key.
    let (stdout, _) = run_expect(clients(&sb, &["add", "bob", "--json"]), 0);
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["name"], "bob");
    assert_eq!(
        v["key_hash"].as_str().unwrap(),
        format_hash(&hash_key(v["key"].as_str().unwrap()))
    );
    assert_eq!(v["daily_requests"], Value::Null);

    // A taken name, a bad name and a negative budget are refused, naming the fix.
    let (_, stderr) = run_expect(clients(&sb, &["add", "alice"]), 1);
    assert!(
        stderr.contains("already exists") && stderr.contains("clients remove alice"),
        "{stderr}"
    );
    let (_, stderr) = run_expect(clients(&sb, &["add", "a b"]), 1);
    assert!(stderr.contains("not a usable client name"), "{stderr}");
    let (_, stderr) = run_expect(clients(&sb, &["add", "carol", "--daily-cloud-usd=-1"]), 2);
    assert!(stderr.contains("USD >= 0"), "{stderr}");
    assert_eq!(sb.config_doc()["Clients"].as_array().unwrap().len(), 2);
}

/// A ledger row: (client, provider, model, local, input, output).
type Row<'a> = (Option<&'a str>, &'a str, &'a str, bool, i64, i64);

/// Today: alice a million prompt tokens in the cloud ($3) and as many locally (saving
/// $3), bob and the admin one small local request each.
const FIXTURE: &[Row<'static>] = &[
    (
        Some("alice"),
        "anthropic",
        "claude-sonnet-4-5",
        false,
        1_000_000,
        0,
    ),
    (Some("alice"), "ollama", "gpt-oss:20b", true, 1_000_000, 0),
    (Some("bob"), "ollama", "gpt-oss:20b", true, 100, 10),
    (None, "ollama", "gpt-oss:20b", true, 100, 10),
];

fn seed_ledger(sb: &Sandbox, rows: &[Row<'_>]) {
    let path = sb.home.join(".claude-code-router/ledger.sqlite");
    let conn = ccr_setup::ledger::open_for_writing(&path).unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    for (client, provider, model, local, input, output) in rows {
        conn.execute(
            "INSERT INTO requests (started_at_ms, session_id, scenario, provider, model,
                input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                tokens_estimated, duration_ms, outcome, http_status, stream, provider_local,
                client)
             VALUES (?1, 's', 'default', ?2, ?3, ?4, ?5, 0, 0, 0, 100, 'ok', 200, 1, ?6, ?7)",
            rusqlite::params![now - 1000, provider, model, input, output, local, client],
        )
        .unwrap();
    }
}

#[test]
fn list_shows_limits_and_todays_use_and_remove_revokes() {
    let sb = Sandbox::new();
    sb.write_config(&base_config());
    run_expect(clients(&sb, &["add", "alice", "--daily-requests", "10"]), 0);
    run_expect(clients(&sb, &["add", "bob", "--daily-cloud-usd", "1"]), 0);
    seed_ledger(&sb, FIXTURE);
    let (stdout, _) = run_expect(clients(&sb, &["list", "--json"]), 0);
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["clients"][0]["name"], "alice");
    assert_eq!(v["clients"][0]["daily_requests"], 10);
    assert_eq!(v["clients"][0]["today"]["requests"], 2);
    assert_eq!(v["clients"][0]["today"]["cloud_usd"], 3.0);
    assert_eq!(v["clients"][1]["daily_cloud_usd"], 1.0);
    assert_eq!(v["clients"][1]["today"]["requests"], 1);
    assert_eq!(v["admin_today"]["requests"], 1);
    let (stdout, _) = run_expect(clients(&sb, &["list"]), 0);
    assert!(
        stdout.contains("alice") && stdout.contains("$3.00"),
        "{stdout}"
    );

    let (_, stderr) = run_expect(clients(&sb, &["remove", "alice"]), 0);
    assert!(stderr.contains("removed client alice"), "{stderr}");
    let names: Vec<String> = sb.config_doc()["Clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["bob"]);
    let (_, stderr) = run_expect(clients(&sb, &["remove", "alice"]), 1);
    assert!(stderr.contains("no client named \"alice\""), "{stderr}");
}

#[test]
fn stats_by_client_shows_each_client_and_the_admin() {
    let sb = Sandbox::new();
    sb.write_config(&base_config());
    seed_ledger(&sb, FIXTURE);
    let stats = |json: bool| {
        let config = sb.config_path();
        let mut args = vec![
            "--config",
            config.to_str().unwrap(),
            "stats",
            "--by",
            "client",
        ];
        if json {
            args.push("--json");
        }
        run_expect(sb.cmd(&args), 0).0
    };
    let stdout = stats(true);
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["group_by"], "client");
    let group = |key: &str| {
        v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["key"] == key)
            .unwrap_or_else(|| panic!("no group {key}: {v}"))
            .clone()
    };
    let alice = group("alice");
    assert_eq!(alice["requests"], 2);
    assert_eq!(alice["input_tokens"], 2_000_000);
    assert_eq!(alice["cloud_cost_usd"], 3.0);
    assert_eq!(
        alice["savings_usd"], 3.0,
        "a local million prompt tokens at $3"
    );
    assert_eq!(group("bob")["requests"], 1);
    assert_eq!(group("(admin)")["requests"], 1);
    let stdout = stats(false);
    assert!(
        stdout.contains("client") && stdout.contains("(admin)"),
        "{stdout}"
    );
}

#[test]
fn server_mode_without_clients_does_not_start() {
    let sb = Sandbox::new();
    let mut doc = base_config();
    doc["ServerMode"] = json!(true);
    doc["PORT"] = json!(support::net::unbound_port());
    sb.write_config(&doc);
    let config = sb.config_path();
    let (_, stderr) = run_expect(sb.cmd(&["--config", config.to_str().unwrap(), "proxy"]), 1);
    assert!(stderr.contains("server mode"), "{stderr}");
    assert!(stderr.contains("ccr-setup clients add NAME"), "{stderr}");
}

async fn status_of(url: &str, key: &str, post: bool) -> (u16, Value) {
    let client = reqwest::Client::new();
    let req = if post {
        client.post(url)
    } else {
        client.get(url)
    };
    let resp = req.header("x-api-key", key).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_running_proxy_takes_a_new_client_and_keeps_it_off_the_dashboard() {
    let sb = Sandbox::new();
    let port = support::claude_code::unbound_port();
    let mut doc = base_config();
    doc["PORT"] = json!(port);
    doc["APIKEY"] = json!("admin-secret");
    doc["Clients"] = json!([{"name": "alice", "key_hash": format_hash(&hash_key("ccr_alice"))}]);
    sb.write_config(&doc);
    let _proxy =
        support::claude_code::spawn_proxy(&sb.config_path(), &sb.home, port, Stdio::null()).await;
    let base = format!("http://127.0.0.1:{port}");

    // Client keys: the API yes, the dashboard and its ticket no (403, not 401).
    assert_eq!(
        status_of(&format!("{base}/v1/models"), "ccr_alice", false)
            .await
            .0,
        200
    );
    for (path, post) in [
        ("/ui/", false),
        ("/ui/api/overview", false),
        ("/ui/api/setup", false),
        ("/ui/ticket", true),
    ] {
        let (status, body) = status_of(&format!("{base}{path}"), "ccr_alice", post).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(body["error"]["type"], "permission_error", "{path}");
    }
    assert_eq!(
        status_of(&format!("{base}/ui/ticket"), "admin-secret", true)
            .await
            .0,
        200
    );

    // `clients add` while it runs: the new key works within the reload's seconds.
    let (stdout, _) = run_expect(clients(&sb, &["add", "carol"]), 0);
    let key = stdout.trim().to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if status_of(&format!("{base}/v1/models"), &key, false).await.0 == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new client's key was not accepted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let usage = status_of(&format!("{base}/v1/ccr/usage"), &key, false).await;
    assert_eq!(usage.1["client"], "carol");
    // And `clients remove` revokes it.
    run_expect(clients(&sb, &["remove", "carol"]), 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while status_of(&format!("{base}/v1/models"), &key, false).await.0 != 401 {
        assert!(
            Instant::now() < deadline,
            "the removed client's key still works"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn without_an_apikey_client_keys_leave_the_dashboard_shut() {
    let sb = Sandbox::new();
    let port = support::claude_code::unbound_port();
    let mut doc = base_config();
    doc["PORT"] = json!(port);
    doc["Clients"] = json!([{"name": "alice", "key_hash": format_hash(&hash_key("ccr_alice"))}]);
    sb.write_config(&doc);
    let _proxy =
        support::claude_code::spawn_proxy(&sb.config_path(), &sb.home, port, Stdio::null()).await;
    let base = format!("http://127.0.0.1:{port}");
    for (path, post) in [("/ui/", false), ("/ui/ticket", true)] {
        for key in ["ccr_alice", ""] {
            let (status, body) = status_of(&format!("{base}{path}"), key, post).await;
            assert_eq!(status, 403, "{path} {key:?}: {body}");
            assert!(body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("APIKEY"));
        }
    }
    assert_eq!(
        status_of(&format!("{base}/v1/models"), "", false).await.0,
        401
    );
    assert_eq!(
        status_of(&format!("{base}/v1/models"), "ccr_alice", false)
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn a_restarted_proxy_counts_the_days_requests_from_the_ledger() {
    let sb = Sandbox::new();
    let port = support::claude_code::unbound_port();
    let mut doc = base_config();
    doc["PORT"] = json!(port);
    doc["Clients"] = json!([{"name": "alice", "key_hash": format_hash(&hash_key("ccr_alice")), "daily_requests": 2}]);
    sb.write_config(&doc);
    // Alice used her two requests today, before this proxy started.
    seed_ledger(&sb, FIXTURE);
    let _proxy =
        support::claude_code::spawn_proxy(&sb.config_path(), &sb.home, port, Stdio::null()).await;
    let base = format!("http://127.0.0.1:{port}");
    let (status, usage) = status_of(&format!("{base}/v1/ccr/usage"), "ccr_alice", false).await;
    assert_eq!(status, 200);
    assert_eq!(usage["today"]["requests"], 2, "{usage}");
    assert_eq!(usage["today"]["cloud_usd"], 3.0, "{usage}");
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/messages"))
        .header("x-api-key", "ccr_alice")
        .json(&json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(resp.headers()["x-should-retry"], "false");
}
