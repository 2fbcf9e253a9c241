//! `ccr-setup status`: Ollama, the proxy (from its /health) and the config on one
//! screen, and the same as JSON.

use crate::support;

use support::fake_ollama::{FakeConfig, FakeModel, FakeOllama};
use support::proxy_app::ProxyApp;
use support::sandbox::{run_expect, Sandbox};

/// The real proxy app on a free port, served from a thread of its own, after it has
/// finished `requests` requests (refused ones: no upstream is needed).
fn real_proxy(requests: usize) -> u16 {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let app = ProxyApp::start(&serde_json::json!({
                "Providers": [{"name": "ollama", "api_base_url": "http://127.0.0.1:9/v1/chat/completions", "models": ["gpt-oss:20b"]}],
                "Router": {"default": "ollama,gpt-oss:20b"}
            }))
            .await;
            for _ in 0..requests {
                let resp = reqwest::Client::new()
                    .post(app.url("/v1/messages"))
                    .header("content-type", "application/json")
                    .body("not json")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 400);
            }
            let port = app.base.rsplit(':').next().unwrap().parse::<u16>().unwrap();
            tx.send(port).unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap()
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
    let port = real_proxy(2);
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
    assert_eq!(v["proxy"]["health"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["proxy"]["health"]["requests"], 2);
    assert!(v["proxy"]["health"]["uptime_secs"].is_u64(), "{out}");
    assert_eq!(v["config"]["valid"], true);

    // Every figure of the text form is what the same proxy's /health sends, read just
    // before and just after (a second may tick over in between).
    let rt = tokio::runtime::Runtime::new().unwrap();
    let health = || -> serde_json::Value {
        rt.block_on(async {
            let url = format!("http://127.0.0.1:{port}/health");
            reqwest::get(url).await.unwrap().json().await.unwrap()
        })
    };
    let before = health();
    let mut cmd = sb.cmd(&["status"]);
    cmd.env("OLLAMA_HOST", fake.host_port());
    let (out, _) = run_expect(cmd, 0);
    let after = health();
    assert!(
        out.contains("Ollama   up") && out.contains("version 0.12.3"),
        "{out}"
    );
    assert!(out.contains("loaded: gpt-oss:20b (context 32768)"), "{out}");
    let proxy_line = |h: &serde_json::Value| {
        let up = h["uptime_secs"].as_u64().unwrap();
        assert!(up < 3600, "{h}");
        format!(
            "Proxy    up at http://127.0.0.1:{port}, version {}, up {}m{}s, {} requests served",
            h["version"].as_str().unwrap(),
            up / 60,
            up % 60,
            h["requests"]
        )
    };
    assert_eq!(after["requests"], 2, "{after}");
    assert_eq!(after["version"], env!("CARGO_PKG_VERSION"));
    // No session is on the cloud for quality, so the line does not mention it.
    assert_eq!(after["quality_fallback_sessions"], 0, "{after}");
    assert!(
        out.lines()
            .any(|l| l == proxy_line(&before) || l == proxy_line(&after)),
        "{out}\n/health: {before} / {after}"
    );
    let ledger = &after["ledger"];
    let ledger_line = if ledger["enabled"] == true {
        format!(
            "Ledger   {} rows written, {} dropped",
            ledger["written"], ledger["dropped"]
        )
    } else {
        "Ledger   off (LEDGER: false in the config)".to_owned()
    };
    assert!(
        out.lines().any(|l| l == ledger_line),
        "{out}\n/health: {after}"
    );
    assert!(
        out.contains(&format!("Config   {}", sb.config_path().display())),
        "{out}"
    );
}

#[test]
fn status_with_nothing_running_says_down_and_exits_0() {
    let sb = Sandbox::new();
    let port = support::unbound_port();
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
