//! `ccr-setup up` end to end: the real binary, a temporary HOME, a fake `ollama` on
//! PATH (for the runs where `up` starts the server) or the in-process fake Ollama (for
//! servers someone else runs), and a config pointing at it.

use crate::support;

use std::process::Output;

use support::fake_ollama::{FakeConfig, FakeModel, FakeOllama};
use support::sandbox::Sandbox;

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Run `up` against an in-process fake (a server we do not own).
pub(crate) fn up_against(fake: &FakeOllama, args: &[&str]) -> (Sandbox, Output) {
    let home = Sandbox::up_home(&fake.host_port());
    let mut cmd = home.up(args);
    cmd.env("CCR_SETUP_OLLAMA_REGISTRY", fake.url());
    let out = cmd.output().unwrap();
    (home, out)
}

#[test]
fn fresh_start_spawns_ollama_with_the_tuned_environment() {
    let home = Sandbox::up_home_free_port();
    let mut cmd = home.up(&["--no-exec"]);
    cmd.env("FAKE_OLLAMA_INSTALLED", "gpt-oss:20b");
    let out = cmd.output().unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("✓ ollama") && t.contains("started `ollama serve`"),
        "{t}"
    );
    // The smoke test ran direct and through the bundled proxy.
    for step in ["✓ chat", "✓ tool-call", "✓ proxy-chat", "✓ proxy-tool"] {
        assert!(t.contains(step), "missing {step}: {t}");
    }

    let starts = home.serve_starts();
    assert_eq!(starts.len(), 1, "{t}");
    let env = &starts[0]["env"];
    assert_eq!(env["OLLAMA_CONTEXT_LENGTH"], "32768");
    assert_eq!(env["OLLAMA_NUM_PARALLEL"], "1");
    assert_eq!(env["OLLAMA_MAX_LOADED_MODELS"], "1");
    assert_eq!(env["OLLAMA_KEEP_ALIVE"], "30m");
    assert_eq!(env["OLLAMA_HOST"], home.ollama_host.as_str());
    assert_eq!(starts[0]["argv"][1], "serve");

    // The pid file names the child, and the effective context is recorded in the config.
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(home.pid_file()).unwrap()).unwrap();
    assert_eq!(record["pid"].as_i64(), starts[0]["pid"].as_i64());
    // ... with the exact command line it was started with.
    assert_eq!(
        record["argv"],
        serde_json::json!([home.ollama_exe().display().to_string(), "serve"])
    );
    let doc = home.config_doc();
    assert_eq!(doc["Providers"][0]["context_window"], 32768);
    assert_eq!(doc["Providers"][0]["my_own_key"], "kept");
    // Output goes to the log file, not the terminal.
    assert!(home
        .home
        .join(".claude-code-router/logs/ollama.log")
        .exists());
}

#[test]
fn a_second_up_does_no_work() {
    let home = Sandbox::up_home_free_port();
    let mut first = home.up(&["--no-exec"]);
    first.env("FAKE_OLLAMA_INSTALLED", "");
    // The manifest from the fake itself (4 MB), so the disk check passes on a full disk.
    first.env(
        "CCR_SETUP_OLLAMA_REGISTRY",
        format!("http://{}", home.ollama_host),
    );
    let out = first.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(home.served().iter().any(|r| r == "POST /api/pull"));
    let backups = home.config_backups();
    let served_before = home.served().len();

    let out = home.up(&["--no-exec"]).output().unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("running at") && t.contains("(ours, pid"), "{t}");
    assert!(t.contains("context_window 32768 already recorded"), "{t}");
    assert_eq!(
        home.serve_starts().len(),
        1,
        "no second `ollama serve`: {t}"
    );
    let second: Vec<String> = home.served()[served_before..].to_vec();
    assert!(!second.iter().any(|r| r == "POST /api/pull"), "{second:?}");
    assert_eq!(home.config_backups(), backups, "config not rewritten");
}

#[test]
fn foreign_server_with_small_context_is_left_alone_and_explained() {
    let fake = FakeOllama::start(FakeConfig::default().with_installed(FakeModel::gpt_oss()));
    fake.update(|s| s.config.server_context = 4096);
    let (home, out) = up_against(&fake, &["--no-exec"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("✗ context") && t.contains("4096-token context"),
        "{t}"
    );
    assert!(t.contains("another process"), "{t}");
    assert!(t.contains("OLLAMA_CONTEXT_LENGTH=32768"), "{t}");
    assert!(t.contains("--accept-context"), "{t}");
    assert!(home.serve_starts().is_empty(), "no ollama started");
    // Still running and untouched: it answers, and no config was recorded.
    let before = fake.hits("/api/version");
    let probe = std::net::TcpStream::connect(fake.addr);
    assert!(probe.is_ok());
    assert!(fake.hits("/api/version") >= before);
    assert!(home.config_doc()["Providers"][0]
        .get("context_window")
        .is_none());

    // --accept-context continues and records what the server really gives.
    let mut cmd = home.up(&["--no-exec", "--accept-context"]);
    cmd.env("CCR_SETUP_OLLAMA_REGISTRY", fake.url());
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(home.config_doc()["Providers"][0]["context_window"], 4096);
}

#[test]
fn pull_of_three_layers_reports_progress_every_ten_percent() {
    let fake = FakeOllama::start(FakeConfig::default());
    let (_home, out) = up_against(&fake, &["--no-exec", "--no-smoke"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    for pct in ["  0%", " 10%", " 50%", "100%"] {
        assert!(
            t.contains(&format!("pull gpt-oss:20b: {pct}")),
            "missing {pct}: {t}"
        );
    }
    assert!(
        t.contains("verifying sha256 digest") && t.contains("writing manifest"),
        "{t}"
    );
    assert!(t.contains("✓ pull") && t.contains("3 layer(s)"), "{t}");
    assert!(t.contains("✓ disk"), "{t}");
    assert!(fake.is_installed("gpt-oss:20b"));
    assert_eq!(fake.hits("/api/pull"), 1);
}

#[test]
fn pull_error_line_mid_stream_fails_with_the_message() {
    let mut cfg = FakeConfig::default();
    cfg.pull.error_after = Some(2_000_000);
    let fake = FakeOllama::start(cfg);
    let (_home, out) = up_against(&fake, &["--no-exec"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("✗ pull"), "{t}");
    assert!(
        t.contains("pull model manifest: file does not exist"),
        "{t}"
    );
    assert!(t.contains("hint: check the model name"), "{t}");
    assert!(!fake.is_installed("gpt-oss:20b"));
    assert_eq!(
        fake.hits("/api/pull"),
        1,
        "an error line is final, not retried"
    );
}

#[test]
fn stalled_pull_is_reissued_and_resumes() {
    let mut cfg = FakeConfig::default();
    cfg.pull.stall_after = Some(1_500_000);
    cfg.pull.stall_times = 1;
    let fake = FakeOllama::start(cfg);
    let (_home, out) = up_against(&fake, &["--no-exec", "--no-smoke", "--stall-timeout", "1"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("no progress for 1 s") && t.contains("re-issuing the pull"),
        "{t}"
    );
    assert!(t.contains("resumed after 1 stall"), "{t}");
    assert_eq!(fake.hits("/api/pull"), 2);
    // The second request resumed: its first progress line did not start from zero.
    let first_line = t
        .lines()
        .skip_while(|l| !l.contains("re-issuing"))
        .find(|l| l.contains('%'));
    assert!(first_line.is_none_or(|l| !l.contains(" 0%")), "{t}");
    assert!(fake.is_installed("gpt-oss:20b"));
}

#[test]
fn not_enough_disk_is_refused_before_pulling() {
    // A manifest far larger than any test machine's free space (2 PB).
    let cfg = FakeConfig {
        library: vec![FakeModel {
            layers: vec![2_000_000_000_000_000, 1_000],
            ..FakeModel::gpt_oss()
        }],
        ..FakeConfig::default()
    };
    let fake = FakeOllama::start(cfg);
    let (_home, out) = up_against(&fake, &["--no-exec"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("✗ disk") && t.contains("needs 2000.0 TB (from its manifest)"),
        "{t}"
    );
    assert!(t.contains("free in"), "{t}");
    assert_eq!(fake.hits("/api/pull"), 0, "refused before pulling");
}

#[test]
fn smoke_test_tool_call_failure_names_the_step() {
    let mut cfg = FakeConfig::default().with_installed(FakeModel::gpt_oss());
    cfg.chat.tool_call_fails = true;
    let fake = FakeOllama::start(cfg);
    let (home, out) = up_against(&fake, &["--no-exec"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("✓ chat"), "{t}");
    assert!(
        t.contains("✗ tool-call") && t.contains("smoke test, tool call"),
        "{t}"
    );
    assert!(t.contains("error parsing tool call"), "{t}");
    // Retried once (gpt-oss's sporadic parse failure), then given up.
    let tool_requests = fake
        .bodies("/v1/chat/completions")
        .iter()
        .filter(|b| b.get("tools").is_some())
        .count();
    assert_eq!(tool_requests, 2);
    assert!(home.config_doc()["Providers"][0]
        .get("context_window")
        .is_none());
}

#[test]
fn json_output_is_one_object_per_line() {
    let fake = FakeOllama::start(FakeConfig::default().with_installed(FakeModel::gpt_oss()));
    let (_home, out) = up_against(&fake, &["--no-exec", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let steps: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect(l))
        .collect();
    let names: Vec<&str> = steps.iter().filter_map(|s| s["step"].as_str()).collect();
    for want in [
        "ollama",
        "version",
        "model",
        "tools",
        "load",
        "chat",
        "tool-call",
        "proxy-chat",
        "proxy-tool",
        "config",
    ] {
        assert!(names.contains(&want), "{names:?}");
    }
    let chat = steps.iter().find(|s| s["step"] == "chat").unwrap();
    assert!(chat["ttft_seconds"].as_f64().unwrap() >= 0.0);
}

#[test]
fn our_server_with_another_context_is_restarted_with_the_new_one() {
    let home = Sandbox::up_home_free_port();
    let mut first = home.up(&["--no-exec", "--no-smoke"]);
    first.env("FAKE_OLLAMA_INSTALLED", "gpt-oss:20b");
    let out = first.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));

    let mut second = home.up(&["--no-exec", "--no-smoke", "--context-length", "16384"]);
    second.env("FAKE_OLLAMA_INSTALLED", "gpt-oss:20b");
    let out = second.output().unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let starts = home.serve_starts();
    assert_eq!(starts.len(), 2, "{t}");
    assert!(t.contains("context 16384 tokens"), "{t}");
    assert_eq!(starts[1]["env"]["OLLAMA_CONTEXT_LENGTH"], "16384");
    // The old server (ours, from the pid file) was stopped.
    let old = u32::try_from(starts[0]["pid"].as_u64().unwrap()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        ccr_setup::ollama::serve::process_gone(old),
        "old server still running"
    );
    assert!(t.contains("context 16384 tokens"), "{t}");
    assert_eq!(home.config_doc()["Providers"][0]["context_window"], 16384);
}

/// The old server keeps its port for a moment after the pid we signalled is gone (as a
/// server behind a wrapper script does): the new one must not be started into a port
/// the old one still answers on, with the old context.
#[test]
fn restart_waits_for_the_old_server_to_release_the_port() {
    let home = Sandbox::up_home_free_port();
    let mut first = home.up(&["--no-exec", "--no-smoke"]);
    first
        .env("FAKE_OLLAMA_INSTALLED", "gpt-oss:20b")
        .env("FAKE_OLLAMA_LINGER", "1.5");
    let out = first.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));

    let mut second = home.up(&["--no-exec", "--no-smoke", "--context-length", "16384"]);
    second.env("FAKE_OLLAMA_INSTALLED", "gpt-oss:20b");
    let out = second.output().unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("context 16384 tokens"), "{t}");
    assert_eq!(home.serve_starts().len(), 2, "{t}");
}

#[test]
fn without_a_config_up_uses_defaults_and_cannot_exec_the_proxy() {
    let fake = FakeOllama::start(FakeConfig::default().with_installed(FakeModel::gpt_oss()));
    let home = Sandbox::up_home(&fake.host_port());
    std::fs::remove_file(home.config_path()).unwrap();
    let out = home.up(&["--no-exec", "--no-smoke"]).output().unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("– config") && t.contains("ccr-setup init"),
        "{t}"
    );
    assert!(!home.config_path().exists(), "up does not invent a config");

    let out = home.up(&["--no-smoke"]).output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("✗ proxy") && t.contains("no config at"), "{t}");
}

#[test]
fn foreign_small_context_is_caught_before_a_pull() {
    // Another model is loaded with 4096 tokens although it holds 131072: the server's
    // setting is too small, so pulling gpt-oss:20b first would be wasted.
    let fake =
        FakeOllama::start(FakeConfig::default().with_installed(FakeModel::named("qwen3:8b")));
    fake.update(|s| s.loaded.push(("qwen3:8b".into(), 4096)));
    let (_home, out) = up_against(&fake, &["--no-exec"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("✗ context") && t.contains("qwen3:8b"), "{t}");
    assert_eq!(fake.hits("/api/pull"), 0, "{t}");
}

#[test]
fn stop_all_stops_the_ollama_that_up_started() {
    let home = Sandbox::up_home_free_port();
    let mut cmd = home.up(&["--no-exec", "--no-smoke"]);
    cmd.env("FAKE_OLLAMA_INSTALLED", "gpt-oss:20b");
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let pid = home.serve_starts()[0]["pid"].as_i64().unwrap();

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ccr-setup"))
        .env("HOME", &home.home)
        .args(["--config"])
        .arg(home.config_path())
        .args(["stop", "--all"])
        .output()
        .unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains(&format!("pid {pid}")), "{t}");
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        ccr_setup::ollama::serve::process_gone(pid as u32),
        "still running: {t}"
    );
    assert!(!home.pid_file().exists());
}

#[test]
fn up_execs_into_the_proxy_in_the_same_process() {
    let fake = FakeOllama::start(FakeConfig::default().with_installed(FakeModel::gpt_oss()));
    let home = Sandbox::up_home(&fake.host_port());
    let port = support::unbound_port();
    let mut doc = home.config_doc();
    doc["PORT"] = serde_json::json!(port);
    std::fs::write(home.config_path(), doc.to_string()).unwrap();

    let mut cmd = home.up(&["--no-smoke"]);
    cmd.env("CCR_SETUP_OLLAMA_REGISTRY", fake.url());
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut health = String::new();
    while std::time::Instant::now() < deadline {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
            let _ = s.read_to_string(&mut health);
            if health.contains("200") {
                break;
            }
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let still_running = child.try_wait().unwrap().is_none();
    // /proc on Linux, `ps` on macOS.
    let cmdline = ccr_setup::service::runtime::command_line(child.id()).unwrap_or_default();
    let _ = nix::sys::signal::kill(
        ccr_setup::service::runtime::nix_pid(child.id()).unwrap(),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    assert!(still_running, "up exited instead of becoming the proxy");
    assert!(health.contains("200"), "{health}");
    assert!(
        cmdline.contains("proxy --config"),
        "same pid now runs the proxy: {cmdline}"
    );
}

#[test]
fn quiet_pull_prints_only_the_ten_percent_lines_on_stderr() {
    let fake = FakeOllama::start(FakeConfig::default());
    let (_home, out) = up_against(&fake, &["--no-exec", "--no-smoke", "-q"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stdout}{stderr}");
    assert_eq!(stdout, "", "-q with nothing failed leaves stdout empty");
    assert!(stderr.contains("pull gpt-oss:20b: 100%"), "{stderr}");
    assert!(!stderr.contains("✓"), "-q hides the step lines: {stderr}");
    assert!(
        !stderr.contains("verifying"),
        "-q hides the phases: {stderr}"
    );
    assert!(stderr.lines().all(|l| l.contains('%')), "{stderr}");
}

#[test]
fn too_old_ollama_is_refused_naming_the_minimum() {
    let mut cfg = FakeConfig::default().with_installed(FakeModel::gpt_oss());
    cfg.version = "0.10.1".into();
    let fake = FakeOllama::start(cfg);
    let (_home, out) = up_against(&fake, &["--no-exec"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("✗ version") && t.contains("0.10.1 is too old"),
        "{t}"
    );
    assert!(t.contains("needs ≥ 0.11.0"), "{t}");
    assert_eq!(fake.hits("/api/pull"), 0);
}

#[test]
fn ollama_not_installed_says_how_to_get_it() {
    if which_ollama_in_system_path() {
        eprintln!("SKIPPED: an ollama is installed in /usr/bin or /bin");
        return;
    }
    let home = Sandbox::up_home_free_port();
    std::fs::remove_file(home.ollama_exe()).unwrap();
    let mut cmd = home.up(&["--no-exec"]);
    // Only the system directories, where no `ollama` lives on a test machine.
    cmd.env("PATH", "/usr/bin:/bin");
    let out = cmd.output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("✗ ollama") && t.contains("not installed"), "{t}");
    assert!(t.contains("ccr-setup init"), "{t}");
}

fn which_ollama_in_system_path() -> bool {
    ["/usr/bin/ollama", "/bin/ollama"]
        .iter()
        .any(|p| std::path::Path::new(p).exists())
}

#[test]
fn our_server_still_starting_is_waited_for_not_started_twice() {
    let home = Sandbox::up_home_free_port();
    // `ollama serve` that we started earlier and that takes a moment to listen.
    let mut child = std::process::Command::new(home.ollama_exe())
        .arg("serve")
        .env("OLLAMA_HOST", &home.ollama_host)
        .env("FAKE_OLLAMA_RECORD", home.record_path())
        .env("FAKE_OLLAMA_INSTALLED", "gpt-oss:20b")
        .env("FAKE_OLLAMA_START_DELAY", "1.5")
        .env("OLLAMA_CONTEXT_LENGTH", "32768")
        .env("FAKE_OLLAMA_LIFETIME", "60")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let run = home.home.join(".claude-code-router/run");
    std::fs::create_dir_all(&run).unwrap();
    let record = serde_json::json!({"pid": child.id(), "argv": [home.ollama_exe().display().to_string(), "serve"]});
    std::fs::write(home.pid_file(), record.to_string()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300)); // bound, not yet answering

    let out = home.up(&["--no-exec", "--no-smoke"]).output().unwrap();
    let t = text(&out);
    let starts = home.serve_starts().len();
    let _ = child.kill();
    let _ = child.wait();
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("(ours, pid") && t.contains("was starting"),
        "{t}"
    );
    assert_eq!(starts, 1, "no second server: {t}");
}

/// A starting Ollama binds its port at once and answers only after GPU discovery (up to
/// 90 s): the `ollama serve` that `up` started is waited for, not taken for a stranger.
#[test]
fn up_waits_through_a_20s_bind_then_delay_start() {
    let home = Sandbox::up_home_free_port();
    let mut cmd = home.up(&["--no-exec", "--no-smoke"]);
    cmd.env("FAKE_OLLAMA_INSTALLED", "gpt-oss:20b")
        .env("FAKE_OLLAMA_START_DELAY", "20");
    let out = cmd.output().unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("✓ ollama"), "{t}");
    assert_eq!(home.serve_starts().len(), 1, "one `ollama serve`: {t}");
}

#[test]
fn offline_pull_says_there_is_no_network() {
    let fake = FakeOllama::start(FakeConfig::default().offline());
    let (_home, out) = up_against(&fake, &["--no-exec"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("no such host"), "Ollama's own text: {t}");
    let hint = t.to_lowercase();
    assert!(
        hint.contains("network") || hint.contains("internet") || hint.contains("offline"),
        "a hint naming the network: {t}"
    );
}

#[test]
fn fresh_start_leaves_flash_attention_to_ollama() {
    let home = Sandbox::up_home_free_port();
    let mut cmd = home.up(&["--no-exec", "--no-smoke"]);
    cmd.env("FAKE_OLLAMA_INSTALLED", "gpt-oss:20b");
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let starts = home.serve_starts();
    assert!(
        starts[0]["env"].get("OLLAMA_FLASH_ATTENTION").is_none(),
        "{}",
        starts[0]["env"]
    );
}

/// `init --yes` (no cloud, no service, no install, no key) on a home without a config;
/// its output.
fn init_fresh(home: &Sandbox) -> String {
    std::fs::remove_file(home.config_path()).unwrap();
    let config = home.config_path();
    let init = home.cmd(&[
        "--config",
        config.to_str().unwrap(),
        "init",
        "--yes",
        "--no-cloud-fallback",
        "--service-manager",
        "none",
        "--no-install",
        "--no-api-key",
    ]);
    support::sandbox::run_expect(init, 0).0
}

/// With `OLLAMA_HOST` on another port, `init` points the `ollama` provider there and
/// `up` starts Ollama there and records its context on that provider.
#[test]
fn init_then_up_follow_a_non_default_ollama_host() {
    let home = Sandbox::up_home_free_port();
    let out = init_fresh(&home);
    let url = format!("http://{}/v1/chat/completions", home.ollama_host);
    assert_eq!(
        home.config_doc()["Providers"][0]["api_base_url"],
        url,
        "{out}"
    );
    let mut up = home.up(&["--no-exec", "--no-smoke"]);
    up.env("FAKE_OLLAMA_INSTALLED", "gpt-oss:20b");
    let out = up.output().unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert_eq!(home.serve_starts().len(), 1, "{t}");
    let doc = home.config_doc();
    assert_eq!(doc["Providers"][0]["api_base_url"], url);
    assert_eq!(doc["Providers"][0]["context_window"], 32768, "{t}");
}

/// The config was written for the default port, but OLLAMA_HOST says Ollama runs
/// elsewhere: `up` points the local provider at it (with a backup, other keys kept),
/// so the proxy calls the Ollama that `up` started.
#[test]
fn up_repoints_a_local_provider_at_ollama_host() {
    let home = Sandbox::up_home_free_port();
    let mut doc = home.config_doc();
    doc["Providers"][0]["api_base_url"] = "http://127.0.0.1:11434/v1/chat/completions".into();
    home.write_config(&doc);
    let mut up = home.up(&["--no-exec", "--no-smoke"]);
    up.env("FAKE_OLLAMA_INSTALLED", "gpt-oss:20b");
    let out = up.output().unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let doc = home.config_doc();
    let p = &doc["Providers"][0];
    assert_eq!(
        p["api_base_url"],
        format!("http://{}/v1/chat/completions", home.ollama_host),
        "{t}"
    );
    assert_eq!(p["my_own_key"], "kept");
    assert_eq!(p["context_window"], 32768);
    assert!(home.config_backups() >= 1, "a backup of the old config");
    assert!(t.contains("OLLAMA_HOST"), "{t}");
}

/// Ollama already runs at a non-default `OLLAMA_HOST` with the model loaded, and the
/// config's provider is still at 11434: `up` points the provider at `OLLAMA_HOST`
/// before the smoke test through the proxy, so that test reaches this Ollama and `up`
/// succeeds (issue #27; it used to exit 1 with the provider never re-pointed).
#[test]
fn up_against_a_running_ollama_at_ollama_host_repoints_before_the_proxy_smoke_test() {
    let fake = FakeOllama::start(FakeConfig::default().with_installed(FakeModel::gpt_oss()));
    let home = Sandbox::up_home(&fake.host_port());
    let mut doc = home.config_doc();
    doc["Providers"][0]["api_base_url"] = "http://127.0.0.1:11434/v1/chat/completions".into();
    home.write_config(&doc);
    let mut cmd = home.up(&["--no-exec"]);
    cmd.env("CCR_SETUP_OLLAMA_REGISTRY", fake.url());
    let out = cmd.output().unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    for step in ["✓ proxy-chat", "✓ proxy-tool"] {
        assert!(t.contains(step), "missing {step}: {t}");
    }
    let doc = home.config_doc();
    assert_eq!(
        doc["Providers"][0]["api_base_url"],
        format!("http://{}/v1/chat/completions", fake.host_port()),
        "{t}"
    );
    assert!(home.config_backups() >= 1, "a backup of the old config");
    // The proxy's smoke requests reached this Ollama, with thinking as Claude Code
    // sends it.
    let sent = fake.bodies("/v1/chat/completions");
    assert!(
        sent.iter().any(|b| b["reasoning_effort"] == "medium"),
        "{sent:?}"
    );
}

/// `OLLAMA_HOST=:PORT` is port PORT on this machine (Go dials the empty host locally):
/// `init` points the provider there, `up` starts Ollama there and reaches it, and
/// `doctor` finds it (issue #27; it used to fall back to 11434).
#[test]
fn ollama_host_colon_port_works_for_init_up_and_doctor() {
    let port = support::net::unbound_port();
    let home = Sandbox::up_home_free_port().with_ollama_host(&format!(":{port}"));
    let out = init_fresh(&home);
    let url = format!("http://127.0.0.1:{port}/v1/chat/completions");
    assert_eq!(
        home.config_doc()["Providers"][0]["api_base_url"],
        url,
        "{out}"
    );
    let mut up = home.up(&["--no-exec"]);
    up.env("FAKE_OLLAMA_INSTALLED", "gpt-oss:20b");
    let out = up.output().unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains(&format!("127.0.0.1:{port}")), "{t}");
    assert!(t.contains("✓ proxy-chat"), "{t}");
    let config = home.config_path();
    let mut doctor = home.cmd(&["--config", config.to_str().unwrap(), "doctor", "--json"]);
    let out = doctor.output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let server = report
        .as_array()
        .and_then(|c| c.iter().find(|c| c["id"] == "ollama.server"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(server["status"], "ok", "{}", text(&out));
}

/// `OLLAMA_KV_CACHE_TYPE` is passed to Ollama's runner unvalidated; one it does not take
/// stops every load. `up` fails at the load and says which setting to fix.
#[test]
fn an_unusable_kv_cache_type_is_named_when_the_load_fails() {
    let home = Sandbox::up_home_free_port();
    let mut up = home.up(&["--no-exec", "--no-smoke"]);
    up.env("FAKE_OLLAMA_INSTALLED", "gpt-oss:20b")
        .env("OLLAMA_KV_CACHE_TYPE", "q3_k");
    let out = up.output().unwrap();
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("Unsupported cache type: q3_k"), "{t}");
    assert!(
        t.contains("OLLAMA_KV_CACHE_TYPE=q3_k"),
        "the hint names the setting: {t}"
    );
}
