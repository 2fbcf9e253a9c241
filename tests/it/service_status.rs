//! `ccr-setup status`: Ollama, the proxy (from its /health) and the config on one
//! screen, and the same as JSON.

use crate::support;

use std::io::{Read, Write};
use std::net::TcpListener;

use support::fake_bin::{run_expect, Sandbox};
use support::fake_ollama::{FakeConfig, FakeModel, FakeOllama};

fn health_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = r#"{"status":"ok","version":"9.8.7","providers":["ollama"],"uptime_secs":125,"requests":42}"#;
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

fn config(sb: &Sandbox, port: u16) {
    let path = sb.config_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        format!(r#"{{"PORT": {port}, "Providers": [{{"name": "ollama", "api_base_url": "http://127.0.0.1:11434/v1/chat/completions", "models": ["gpt-oss:20b"]}}], "Router": {{"default": "ollama,gpt-oss:20b"}}}}"#),
    )
    .unwrap();
}

#[test]
fn status_reports_ollama_the_proxy_and_the_config() {
    let fake = FakeOllama::start(FakeConfig::default().with_installed(FakeModel::gpt_oss()));
    fake.update(|st| st.loaded.push(("gpt-oss:20b".into(), 32768)));
    let sb = Sandbox::new();
    let port = health_server();
    config(&sb, port);

    let mut cmd = sb.cmd(&["status", "--json"]);
    cmd.env("OLLAMA_HOST", fake.host_port());
    let (out, _) = run_expect(cmd, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ollama"]["up"], true);
    assert_eq!(v["ollama"]["version"], "0.12.3");
    assert_eq!(v["ollama"]["loaded"][0]["name"], "gpt-oss:20b");
    assert_eq!(v["ollama"]["loaded"][0]["context_length"], 32768);
    assert_eq!(v["proxy"]["up"], true);
    assert_eq!(v["proxy"]["port"], port);
    assert_eq!(v["proxy"]["health"]["version"], "9.8.7");
    assert_eq!(v["config"]["valid"], true);

    let mut cmd = sb.cmd(&["status"]);
    cmd.env("OLLAMA_HOST", fake.host_port());
    let (out, _) = run_expect(cmd, 0);
    assert!(
        out.contains("Ollama   up") && out.contains("version 0.12.3"),
        "{out}"
    );
    assert!(out.contains("loaded: gpt-oss:20b (context 32768)"), "{out}");
    assert!(
        out.contains(&format!(
            "Proxy    up at http://127.0.0.1:{port}, version 9.8.7, up 2m5s, 42 requests served"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("Config   {}", sb.config_path().display())),
        "{out}"
    );
}

#[test]
fn status_with_nothing_running_says_down_and_exits_0() {
    let sb = Sandbox::new();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    config(&sb, port);
    let (out, _) = run_expect(sb.cmd(&["status"]), 0);
    assert!(
        out.contains("Ollama   down") && out.contains("Proxy    down"),
        "{out}"
    );
    std::fs::remove_file(sb.config_path()).unwrap();
    let (out, _) = run_expect(sb.cmd(&["status"]), 0);
    assert!(out.contains("missing: run `ccr-setup init`"), "{out}");
}
