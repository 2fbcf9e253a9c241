//! `ccr-setup code` and `env`: the proxy health check, the exec of `claude` with the
//! full environment and every argument intact.

use crate::support;

use std::io::{Read, Write};
use std::net::TcpListener;

use support::sandbox::{run_expect, Sandbox};

/// A minimal stand-in for the proxy's `GET /health`: answers every connection with 200
/// and counts the requests.
fn health_server() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    health_server_with(200)
}

/// [`health_server`] whose other paths (`/v1/models`) answer `models_status`.
fn health_server_with(models_status: u16) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            if String::from_utf8_lossy(&buf[..n]).starts_with("GET /health") {
                h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            // The shape of the real proxy's /health (`proxy::health::Health`).
            let health = String::from_utf8_lossy(&buf[..n]).starts_with("GET /health");
            let (status, body) = if health {
                (
                    200,
                    r#"{"status":"ok","version":"0.1.0","providers":[{"name":"ollama","kind":"openai"}]}"#,
                )
            } else {
                (
                    models_status,
                    r#"{"type":"error","error":{"type":"authentication_error","message":"bad key"}}"#,
                )
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, hits)
}

fn write_config(sb: &Sandbox, port: u16, extra: &str) {
    let path = sb.config_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        format!(
            r#"{{
  "PORT": {port},
  {extra}
  "API_TIMEOUT_MS": 900000,
  "Ollama": {{"model": "gpt-oss:20b", "context_length": 32768}},
  "Providers": [
    {{"name": "ollama", "api_base_url": "http://127.0.0.1:11434/v1/chat/completions", "api_key": "", "models": ["gpt-oss:20b"], "context_window": 32768}},
    {{"name": "anthropic", "api_base_url": "https://api.anthropic.com/v1/messages", "api_key": "$ANTHROPIC_API_KEY", "models": ["claude-sonnet-4-5"]}}
  ],
  "Router": {{"default": "ollama,gpt-oss:20b", "think": "anthropic,claude-sonnet-4-5"}}
}}"#
        ),
    )
    .unwrap();
}

/// A fake `claude` that records its argv (one per line) and its environment.
fn add_fake_claude(sb: &Sandbox) -> (std::path::PathBuf, std::path::PathBuf) {
    let argv = sb.root.path().join("claude.argv");
    let env = sb.root.path().join("claude.env");
    sb.fakes.add_script(
        "claude",
        &format!(
            "for a in \"$@\"; do printf '%s\\n' \"$a\"; done > '{}'\nexport -p > '{}'\nexit 7",
            argv.display(),
            env.display()
        ),
    );
    (argv, env)
}

#[test]
fn code_execs_claude_with_the_environment_and_arguments_intact() {
    let sb = Sandbox::new();
    let (port, hits) = health_server();
    write_config(&sb, port, "");
    let (argv, env) = add_fake_claude(&sb);
    let mut cmd = sb.cmd(&["code", "--", "-p", "hi there", "--model", "x;y $z"]);
    // A key in the user's shell must not reach Claude Code as x-api-key.
    cmd.env("ANTHROPIC_API_KEY", "sk-user-shell");
    // exec: the exit code is claude's own.
    run_expect(cmd, 7);
    assert!(
        hits.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "health-checked first"
    );
    assert_eq!(
        std::fs::read_to_string(&argv).unwrap(),
        "-p\nhi there\n--model\nx;y $z\n"
    );
    let env = std::fs::read_to_string(&env).unwrap();
    for expected in [
        format!("ANTHROPIC_BASE_URL='http://127.0.0.1:{port}'"),
        "ANTHROPIC_AUTH_TOKEN='ccr-setup-local'".to_owned(),
        "ANTHROPIC_API_KEY=''".to_owned(),
        "API_TIMEOUT_MS='900000'".to_owned(),
        "DISABLE_TELEMETRY='1'".to_owned(),
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC='1'".to_owned(),
        "CLAUDE_CODE_ATTRIBUTION_HEADER='0'".to_owned(),
    ] {
        assert!(
            env.lines().any(|l| l.ends_with(&expected)),
            "missing {expected} in:\n{env}"
        );
    }
    // Claude Code raises a 32k compact window to its 100k floor and warns about it.
    assert!(!env.contains("CLAUDE_CODE_AUTO_COMPACT_WINDOW"), "{env}");
    // The status line Claude Code runs as its child reads this session's config.
    let config = sb.config_path();
    assert!(
        env.lines().any(
            |l| l.ends_with(&format!("CCR_SETUP_CONFIG='{}'", config.display()))
                || l.ends_with(&format!("CCR_SETUP_CONFIG=\"{}\"", config.display()))
        ),
        "the config path reaches Claude Code: {env}"
    );
    // No proxy was started: it was already up.
    assert!(!sb.home.join(".claude-code-router/run/proxy.pid").exists());
}

#[test]
fn env_prints_the_same_variables_with_the_apikey_as_token() {
    let sb = Sandbox::new();
    write_config(&sb, 3999, r#""APIKEY": "proxy-secret","#);
    let (out, _) = run_expect(sb.cmd(&["env"]), 0);
    assert!(
        out.contains("export ANTHROPIC_BASE_URL='http://127.0.0.1:3999'\n"),
        "{out}"
    );
    assert!(
        out.contains("export ANTHROPIC_AUTH_TOKEN='proxy-secret'\n"),
        "{out}"
    );
    assert!(out.contains("export ANTHROPIC_API_KEY=''\n"), "{out}");
    assert!(!out.contains("CLAUDE_CODE_AUTO_COMPACT_WINDOW"), "{out}");
    let (fish, _) = run_expect(sb.cmd(&["env", "--shell", "fish"]), 0);
    assert!(
        fish.contains("set -gx ANTHROPIC_AUTH_TOKEN 'proxy-secret';\n"),
        "{fish}"
    );
    // eval'd by a real shell, the values come back exactly.
    let script = format!("{out}printf '%s|%s' \"$ANTHROPIC_AUTH_TOKEN\" \"$DISABLE_TELEMETRY\"");
    let o = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "proxy-secret|1");
}

#[test]
fn code_without_a_config_says_to_run_init() {
    let sb = Sandbox::new();
    add_fake_claude(&sb);
    let (_, err) = run_expect(sb.cmd(&["code"]), 1);
    assert!(err.contains("ccr-setup init"), "{err}");
}

#[test]
fn code_starts_a_detached_proxy_when_none_answers_and_stop_stops_it() {
    let sb = Sandbox::new();
    // A free port nobody listens on.
    let port = support::unbound_port();
    write_config(&sb, port, "");
    let (argv, env) = add_fake_claude(&sb);
    let mut cmd = sb.cmd(&["code", "--", "-p", "hi"]);
    // The proxy (started detached) resolves $ANTHROPIC_API_KEY from this environment.
    cmd.env("ANTHROPIC_API_KEY", "sk-test");
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(7), "claude ran: {err}");
    assert!(err.contains("Started the proxy in the background"), "{err}");
    assert_eq!(std::fs::read_to_string(&argv).unwrap(), "-p\nhi\n");
    assert!(std::fs::read_to_string(&env)
        .unwrap()
        .contains("ANTHROPIC_API_KEY=''"));
    let pid_file = sb.home.join(".claude-code-router/run/proxy.pid");
    let record = std::fs::read_to_string(&pid_file).unwrap();
    // The pid file records the exact command line: this binary, `proxy`.
    let rec: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert_eq!(rec["argv"][1], "proxy", "{record}");
    let pid = rec["pid"].to_string();

    // It really is the proxy: status sees it up and started by us.
    let (status, _) = run_expect(sb.cmd(&["status", "--json"]), 0);
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(v["proxy"]["up"], true, "{status}");
    assert_eq!(
        v["proxy"]["started_by_ccr_setup"]["pid"].to_string(),
        pid.trim()
    );

    // A second `code` finds it healthy and starts nothing.
    let mut again = sb.cmd(&["code", "--", "-p", "again"]);
    again.env("ANTHROPIC_API_KEY", "sk-test");
    let out = again.output().unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("Started the proxy"));
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), record);

    let (said, _) = run_expect(sb.cmd(&["stop"]), 0);
    assert!(said.contains(&format!("pid {}", pid.trim())), "{said}");
    assert!(!pid_file.exists());
    let (status, _) = run_expect(sb.cmd(&["status", "--json"]), 0);
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(v["proxy"]["up"], false, "{status}");
}

#[test]
fn code_reports_a_proxy_that_dies_at_once_with_its_log() {
    let sb = Sandbox::new();
    // The port is held by a listener that never answers: the proxy cannot bind it. (An
    // unset cloud key no longer stops the proxy; it only disables that provider.)
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    write_config(&sb, port, "");
    let (argv, _) = add_fake_claude(&sb);
    let started = std::time::Instant::now();
    let (_, err) = run_expect(sb.cmd(&["code", "--", "-p", "hi"]), 1);
    drop(holder);
    assert!(
        err.contains("proxy exited") && err.contains("proxy.out.log"),
        "{err}"
    );
    assert!(
        err.contains(&port.to_string()),
        "the log tail says why: {err}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "fails fast"
    );
    assert!(!argv.exists(), "claude must not run without a proxy");
    assert!(!sb.home.join(".claude-code-router/run/proxy.pid").exists());
}

#[test]
fn code_refuses_a_stranger_on_the_port_and_a_proxy_that_refuses_our_key() {
    let sb = Sandbox::new();
    let (argv, _) = add_fake_claude(&sb);
    // Any 2xx JSON is not enough: it must be ccr-setup's /health.
    let stranger =
        support::tiny_http::TinyHttp::start(0, 200, "application/json", r#"{"ok": true}"#);
    write_config(&sb, stranger.port(), "");
    let (_, err) = run_expect(sb.cmd(&["code", "--", "-p", "hi"]), 1);
    assert!(err.contains("it is not ccr-setup's proxy"), "{err}");
    assert!(!argv.exists(), "claude must not run against a stranger");
    assert!(!sb.home.join(".claude-code-router/run/proxy.pid").exists());

    // Our proxy's shape, but no proof of our APIKEY: another config's proxy (or a
    // program imitating ours); the key is not sent to find out.
    let (port, _) = health_server_with(401);
    write_config(&sb, port, r#""APIKEY": "proxy-secret-of-this-config","#);
    let (_, err) = run_expect(sb.cmd(&["code", "--", "-p", "hi"]), 1);
    assert!(
        err.contains("cannot prove it holds this config's APIKEY"),
        "{err}"
    );
    assert!(err.contains("the APIKEY was not sent"), "{err}");
    assert!(!err.contains("proxy-secret-of-this-config"), "{err}");
    assert!(!argv.exists());
}
