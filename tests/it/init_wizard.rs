//! The `init` wizard on a real terminal (a PTY via expectrl): the pulled models are
//! listed with sizes, arrow keys pick one, the context length is checked against the
//! model's trained context, and the answers end up in the written config.

use crate::support;

use std::time::Duration;

use expectrl::Session;
use support::fake_ollama::{FakeConfig, FakeModel, FakeOllama};
use support::sandbox::Sandbox;
use support::tiny_http::TinyHttp;

#[test]
fn wizard_picks_a_pulled_model_with_arrow_keys_and_writes_the_answers() {
    let mut qwen = FakeModel::named("qwen3:8b");
    qwen.trained_context = 40_960;
    qwen.layers = vec![5_200_000_000];
    let fake = FakeOllama::start(
        FakeConfig::default()
            .with_installed(FakeModel::gpt_oss())
            .with_installed(qwen),
    );
    let sb = Sandbox::new();
    sb.fakes.add("ollama");
    sb.fakes.add("claude");
    // The key check's `GET /v1/models` goes here.
    let models = TinyHttp::start(0, 200, "application/json", r#"{"data": []}"#);
    let mut cmd = sb.cmd(&["init", "--service-manager", "none"]);
    cmd.env("OLLAMA_HOST", fake.host_port())
        .env(
            "CCR_SETUP_ANTHROPIC_MODELS_URL",
            format!("http://{}/v1/models", models.addr),
        )
        .env("TERM", "xterm-256color");
    let mut s = Session::spawn(cmd).expect("spawn in a pty");
    s.set_expect_timeout(Some(Duration::from_secs(30)));

    s.expect("Ollama model").expect("the model question");
    s.expect("qwen3:8b (5.2 GB)")
        .expect("pulled models with sizes");
    s.send("\x1b[B").unwrap(); // arrow down: from gpt-oss:20b to qwen3:8b
    s.send("\r").unwrap();

    s.expect("trained: 40960")
        .expect("the trained context of the picked model");
    s.send_line("65536").unwrap();
    s.expect("trained on 40960")
        .expect("too long a context is refused");
    // Clear the rejected text before typing the next answer.
    s.send("\x7f".repeat(8)).unwrap();
    s.send_line("16384").unwrap();

    s.expect("Proxy port").expect("the port question");
    s.send_line("4100").unwrap();
    s.expect("cloud fallback").expect("the cloud question");
    s.send("y").unwrap();
    s.expect("Claude API key").expect("the key, asked hidden");
    s.send_line("sk-ant-typed-123").unwrap();
    s.expect("accepted the key").expect("the key check");
    s.expect("Protect the proxy with a random API key")
        .expect("the proxy key question");
    s.send("y").unwrap();

    s.expect("Plan:").expect("the plan");
    s.expect("store     ANTHROPIC_API_KEY")
        .expect("storing the key is planned");
    s.expect("Apply this plan?").expect("one confirmation");
    s.send("y").unwrap();
    s.expect("Done.").expect("applied");
    // Last, the status line, which edits Claude Code's settings: asked, yes.
    s.expect("Claude Code's status line?")
        .expect("the status line offer");
    s.send("y").unwrap();
    s.expect("status line now runs").expect("set");
    let status = s.get_process().wait().unwrap();
    assert_eq!(
        status,
        expectrl::WaitStatus::Exited(s.get_process().pid(), 0)
    );

    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sb.config_path()).unwrap()).unwrap();
    assert_eq!(cfg["Ollama"]["model"], "qwen3:8b");
    assert_eq!(cfg["Ollama"]["context_length"], 16384);
    assert_eq!(cfg["PORT"], 4100);
    assert_eq!(cfg["Router"]["default"], "ollama,qwen3:8b");
    assert_eq!(cfg["Providers"][0]["context_window"], 16384);
    // A random 32-byte proxy key, hex: `code` and `env` hand it to Claude Code.
    let key = cfg["APIKEY"].as_str().unwrap();
    assert!(
        key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()),
        "{key}"
    );
    // The config keeps the reference; the key is in the 0600 store, never in the config.
    assert_eq!(cfg["Providers"][1]["api_key"], "$ANTHROPIC_API_KEY");
    let store = sb.home.join(".claude-code-router/secrets.env");
    let text = std::fs::read_to_string(&store).unwrap();
    assert!(
        text.contains("ANTHROPIC_API_KEY=sk-ant-typed-123"),
        "{text}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&store).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(!std::fs::read_to_string(sb.config_path())
        .unwrap()
        .contains("sk-ant-typed"));
    assert!(fake
        .bodies("/api/show")
        .iter()
        .any(|b| b["model"] == "qwen3:8b"));
    let settings: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(sb.home.join(".claude/settings.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(settings["statusLine"]["command"], "ccr-setup statusline");
}

#[test]
fn declining_the_plan_changes_nothing() {
    let sb = Sandbox::new();
    sb.fakes.add("ollama");
    sb.fakes.add("claude");
    let mut cmd = sb.cmd(&[
        "init",
        "--service-manager",
        "none",
        "--model",
        "gpt-oss:20b",
        "--context-length",
        "8192",
        "--port",
        "3456",
        "--no-cloud-fallback",
        "--no-api-key",
    ]);
    cmd.env("TERM", "xterm-256color");
    let mut s = Session::spawn(cmd).expect("spawn in a pty");
    s.set_expect_timeout(Some(Duration::from_secs(30)));
    s.expect("Apply this plan?")
        .expect("only the confirmation is asked");
    s.send("n").unwrap();
    s.expect("Nothing was changed.").expect("declined");
    let status = s.get_process().wait().unwrap();
    assert_eq!(
        status,
        expectrl::WaitStatus::Exited(s.get_process().pid(), 0)
    );
    assert!(!sb.config_path().exists());
}

#[test]
fn without_a_tty_on_stdin_the_questions_go_to_dev_tty() {
    // As under `curl … | sh`: stdin is not the terminal, but the session has one.
    let sb = Sandbox::new();
    sb.fakes.add("ollama");
    sb.fakes.add("claude");
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(r#"exec "$0" init --service-manager none --no-cloud-fallback < /dev/null"#)
        .arg(env!("CARGO_BIN_EXE_ccr-setup"))
        .env_clear()
        .env("HOME", &sb.home)
        .env("PATH", sb.fakes.path_env())
        .env("OLLAMA_HOST", "127.0.0.1:9")
        .env("TERM", "xterm-256color");
    let mut s = Session::spawn(cmd).expect("spawn in a pty");
    s.set_expect_timeout(Some(Duration::from_secs(30)));
    s.expect("Ollama model").expect("asked on /dev/tty");
    // The menu offers the catalogue's models that fit; the last entry (up from the
    // first wraps to it) takes any other name.
    s.send("\x1b[A").unwrap();
    s.send("\r").unwrap();
    s.expect("Model name").unwrap();
    s.send_line("qwen3:4b").unwrap();
    s.expect("Context length").unwrap();
    s.send_line("").unwrap(); // the default
    s.expect("Proxy port").unwrap();
    s.send_line("").unwrap();
    s.expect("Protect the proxy").unwrap();
    s.send("n").unwrap();
    s.expect("Apply this plan?").unwrap();
    s.send("y").unwrap();
    s.expect("Done.").unwrap();
    s.expect("Claude Code's status line?").unwrap();
    s.send("n").unwrap();
    let status = s.get_process().wait().unwrap();
    assert_eq!(
        status,
        expectrl::WaitStatus::Exited(s.get_process().pid(), 0)
    );
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sb.config_path()).unwrap()).unwrap();
    assert_eq!(cfg["Ollama"]["model"], "qwen3:4b");
    assert_eq!(cfg["Ollama"]["context_length"], 32768);
    assert_eq!(cfg["PORT"], 3456);
    assert!(cfg.get("APIKEY").is_none(), "declined: {cfg}");
    assert!(
        !sb.home.join(".claude/settings.json").exists(),
        "the status line was declined"
    );
}
