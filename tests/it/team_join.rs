//! `init --join` on a laptop, in a sandbox, against a fake team server's usage
//! endpoint (http on loopback is allowed; `http://10.0.0.5` is refused): the key stored
//! in the secrets store and not in the config, and `env`, `code`, `up`, `doctor`,
//! `stats` and the status line of the joined laptop.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::routed_http::{fake_team_server, RoutedHttp};
use crate::support::sandbox::{run_expect, Sandbox};
use crate::support::unbound_port;

const KEY: &str = "ccr_test_0123456789abcdef0123456789abcdef";

fn ccr(sb: &Sandbox, args: &[&str]) -> Command {
    let config = sb.config_path();
    let mut all = vec!["--config", config.to_str().unwrap()];
    all.extend_from_slice(args);
    let mut c = sb.cmd(&all);
    c.env("CCR_SETUP_PLATFORM", "linux");
    c
}

/// A laptop joined to `server` with [`KEY`] given in the environment.
fn joined(server: &RoutedHttp) -> Sandbox {
    let sb = Sandbox::new();
    let mut cmd = ccr(&sb, &["init", "--join", &server.base(), "--yes"]);
    cmd.env("CCR_SETUP_CLIENT_KEY", KEY);
    let (stdout, stderr) = run_expect(cmd, 0);
    assert!(
        !stdout.contains(KEY) && !stderr.contains(KEY),
        "the key is never printed"
    );
    assert!(stdout.contains("accepts the key: client alice"), "{stdout}");
    sb
}

/// The status line a joined laptop prints for Claude Code session `session_id`.
fn statusline_of(sb: &Sandbox, session_id: &str) -> String {
    let mut cmd = ccr(sb, &["statusline"]);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let input = serde_json::json!({ "session_id": session_id }).to_string();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn team_join_stores_the_key_outside_the_config_and_runs_no_local_services() {
    let server = fake_team_server(200);
    let sb = joined(&server);
    let text = std::fs::read_to_string(sb.config_path()).unwrap();
    assert!(!text.contains(KEY), "{text}");
    let doc = sb.config_doc();
    assert_eq!(doc["Join"]["url"], server.base());
    assert_eq!(doc["Join"]["key"], "$CCR_SETUP_CLIENT_KEY");
    let secrets = sb.config_path().with_file_name("secrets.env");
    let stored = std::fs::read_to_string(&secrets).unwrap();
    assert!(stored.contains(&format!("CCR_SETUP_CLIENT_KEY={KEY}")));
    let mode = std::fs::metadata(&secrets).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // The check sent the key to the server, in a header.
    let reqs = server.requests();
    assert!(reqs[0].starts_with("GET /v1/ccr/usage "), "{reqs:?}");
    assert!(reqs[0]
        .to_ascii_lowercase()
        .contains(&format!("x-api-key: {KEY}").to_ascii_lowercase()));
    // No Ollama or proxy service was written.
    assert!(!sb.home.join(".config/systemd/user").exists());
    assert!(!sb.home.join("Library/LaunchAgents").exists());
    // `up` has nothing to start.
    let (stdout, _) = run_expect(ccr(&sb, &["up"]), 0);
    assert!(stdout.contains("nothing to start locally"), "{stdout}");
    assert!(sb.serve_starts().is_empty());
}

#[test]
fn team_joined_env_and_code_point_claude_at_the_server_with_the_key() {
    let server = fake_team_server(200);
    let sb = joined(&server);
    let (stdout, _) = run_expect(ccr(&sb, &["env"]), 0);
    assert!(
        stdout.contains(&format!("export ANTHROPIC_BASE_URL='{}'", server.base())),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("export ANTHROPIC_AUTH_TOKEN='{KEY}'")),
        "{stdout}"
    );
    // `code` execs claude with that environment and starts no proxy.
    let env_log = sb.root.path().join("claude-env");
    sb.fakes
        .add_script("claude", &format!("env > '{}'", env_log.display()));
    let before = server.requests().len();
    run_expect(ccr(&sb, &["code", "--", "-p", "hi"]), 0);
    let env = std::fs::read_to_string(&env_log).unwrap();
    assert!(
        env.contains(&format!("ANTHROPIC_BASE_URL={}\n", server.base())),
        "{env}"
    );
    assert!(
        env.contains(&format!("ANTHROPIC_AUTH_TOKEN={KEY}\n")),
        "{env}"
    );
    assert!(!sb.home.join(".claude-code-router/run/proxy.pid").exists());
    assert_eq!(
        server.requests().len(),
        before,
        "code needs no request of its own"
    );
}

#[test]
fn team_joined_stats_statusline_and_doctor_read_the_server() {
    let server = fake_team_server(200);
    let sb = joined(&server);
    let (stdout, _) = run_expect(ccr(&sb, &["stats"]), 0);
    assert!(
        stdout.contains("client alice, 2026-12-07 (UTC)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("requests today  12 (limit 500)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("cloud spend     $0.50 (limit $5.00)"),
        "{stdout}"
    );
    let (json, _) = run_expect(ccr(&sb, &["stats", "--json"]), 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["today"]["requests"], 12);

    let line = statusline_of(&sb, "sess-1");
    assert!(
        line.starts_with("ccr · team alice · openai/gpt-oss-20b · session 3 req"),
        "{line}"
    );
    let last = server.requests().pop().unwrap();
    assert!(
        last.starts_with("GET /v1/ccr/usage?session=sess-1 "),
        "{last}"
    );

    sb.fakes.add_script("claude", "exit 0");
    let (stdout, _) = run_expect(ccr(&sb, &["doctor"]), 0);
    assert!(stdout.contains("✓ team.server"), "{stdout}");
    assert!(stdout.contains("client alice"), "{stdout}");
    assert!(!stdout.contains("ollama"), "{stdout}");
}

#[test]
fn team_joined_statusline_falls_back_fast_when_the_server_is_gone() {
    let server = fake_team_server(200);
    let sb = joined(&server);
    drop(server);
    let started = Instant::now();
    let (stdout, _) = run_expect(ccr(&sb, &["statusline"]), 0);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        stdout.trim(),
        "ccr · team server not answering (ccr-setup doctor)"
    );
    let (stdout, _) = run_expect(ccr(&sb, &["doctor"]), 1);
    assert!(
        stdout.contains("✗ team.server      cannot reach the team server"),
        "{stdout}"
    );
}

#[test]
fn team_join_refuses_plain_http_beyond_loopback_and_bad_keys() {
    let sb = Sandbox::new();
    let mut cmd = ccr(&sb, &["init", "--join", "http://10.0.0.5:3456", "--yes"]);
    cmd.env("CCR_SETUP_CLIENT_KEY", KEY);
    let (_, stderr) = run_expect(cmd, 1);
    assert!(stderr.contains("unencrypted"), "{stderr}");
    assert!(
        stderr.contains("hint: use the server's https://"),
        "{stderr}"
    );

    for (status, says) in [
        (401, "refused the client key (HTTP 401)"),
        (403, "HTTP 403"),
    ] {
        let server = fake_team_server(status);
        let mut cmd = ccr(&sb, &["init", "--join", &server.base(), "--yes"]);
        cmd.env("CCR_SETUP_CLIENT_KEY", KEY);
        let (stdout, stderr) = run_expect(cmd, 1);
        assert!(stderr.contains(says), "{stderr}");
        assert!(!stdout.contains(KEY) && !stderr.contains(KEY));
    }
    let mut cmd = ccr(
        &sb,
        &[
            "init",
            "--join",
            &format!("http://127.0.0.1:{}", unbound_port()),
            "--yes",
        ],
    );
    cmd.env("CCR_SETUP_CLIENT_KEY", KEY);
    let (_, stderr) = run_expect(cmd, 1);
    assert!(stderr.contains("cannot reach the team server"), "{stderr}");
    // Without a key and without a terminal: a clear error, not a hang.
    let mut cmd = crate::support::command_without_terminal(env!("CARGO_BIN_EXE_ccr-setup"));
    cmd.env_clear()
        .env("HOME", &sb.home)
        .env("CCR_SETUP_PLATFORM", "linux")
        .args(["--config", sb.config_path().to_str().unwrap()])
        .args(["init", "--join", "https://team.example.com", "--yes"])
        .stdin(Stdio::null());
    let (_, stderr) = run_expect(cmd, 1);
    assert!(stderr.contains("no client key"), "{stderr}");
    assert!(!sb.config_path().exists(), "nothing was written");
    assert!(!sb.config_path().with_file_name("secrets.env").exists());
}

/// The whole loop on real parts: a server-mode proxy (`ServerMode`, a key from
/// `clients add`), one request through it as that client, then a laptop joined to it
/// whose `stats --json` and status line read the client's own use from the real
/// `/v1/ccr/usage` (the fakes above only follow the contract).
#[tokio::test]
async fn team_a_joined_laptop_reads_its_use_from_a_real_server_mode_proxy() {
    use crate::support::openai_upstream::{FakeUpstream, Reply};
    use serde_json::json;

    let engine = FakeUpstream::start(vec![Reply::json(&json!({
        "id": "c1", "object": "chat.completion", "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 40, "completion_tokens": 3, "total_tokens": 43}
    }))])
    .await;
    let server = Sandbox::new();
    let port = crate::support::claude_code::unbound_port();
    server.write_config(&json!({
        "Providers": [{"name": "llama-server", "api_base_url": engine.url("/v1/chat/completions"),
                       "api_key": "", "models": ["m"], "local": true}],
        "Router": {"default": "llama-server,m"},
        "HOST": "127.0.0.1", "PORT": port, "APIKEY": "admin-secret", "ServerMode": true,
    }));
    let (key, _) = run_expect(
        ccr(
            &server,
            &["clients", "add", "alice", "--daily-requests", "5"],
        ),
        0,
    );
    let key = key.trim().to_owned();
    let _proxy = crate::support::claude_code::spawn_proxy(
        &server.config_path(),
        &server.home,
        port,
        Stdio::null(),
    )
    .await;
    let base = format!("http://127.0.0.1:{port}");
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/messages"))
        .header("x-api-key", &key)
        .json(
            &json!({"model": "claude-sonnet-4-5", "max_tokens": 16, "stream": false,
                      "metadata": {"user_id": "user_x_account__session_laptop-s1"},
                      "messages": [{"role": "user", "content": "hello"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());

    let laptop = Sandbox::new();
    let mut cmd = ccr(&laptop, &["init", "--join", &base, "--yes"]);
    cmd.env("CCR_SETUP_CLIENT_KEY", &key);
    let (stdout, _) = run_expect(cmd, 0);
    assert!(stdout.contains("client alice"), "{stdout}");
    let (json_out, _) = run_expect(ccr(&laptop, &["stats", "--json"]), 0);
    let v: serde_json::Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(v["client"], "alice", "{v}");
    assert_eq!(v["today"]["requests"], 1, "{v}");
    assert_eq!(v["limits"]["daily_requests"], 5, "{v}");

    let line = statusline_of(&laptop, "laptop-s1");
    assert!(line.starts_with("ccr · team alice · "), "{line}");
    assert!(line.contains("session 1 req"), "{line}");
}

/// `stats` flags that need the ledger (which is the server's) are not silently dropped
/// on a joined laptop: `--since`/`--by` get a note, `--csv` an error with the way out.
#[test]
fn team_joined_stats_says_which_flags_do_not_apply() {
    let server = fake_team_server(200);
    let sb = joined(&server);
    let (stdout, stderr) = run_expect(ccr(&sb, &["stats", "--by", "client", "--since", "30d"]), 0);
    assert!(stdout.contains("requests today  12"), "{stdout}");
    assert!(
        stderr.contains("note: --since, --by not applied"),
        "{stderr}"
    );
    let (_, stderr) = run_expect(ccr(&sb, &["stats", "--csv"]), 1);
    assert!(stderr.contains("--csv needs the ledger"), "{stderr}");
    assert!(
        stderr.contains("hint: use `ccr-setup stats --json`"),
        "{stderr}"
    );
}
