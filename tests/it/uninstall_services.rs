//! `ccr-setup uninstall`: the exact unload sequence for launchd and systemd, files
//! removed, config kept (or purged) with a backup, other software untouched.

use crate::support;

use support::sandbox::{run_expect, Sandbox};

fn uid() -> u32 {
    nix::unistd::getuid().as_raw()
}

fn init(sb: &Sandbox, manager: &str, platform: &str) {
    sb.fakes.add("ollama");
    sb.fakes.add("claude");
    let mut cmd = sb.cmd(&["init", "--yes", "--service-manager", manager]);
    cmd.env("CCR_SETUP_PLATFORM", platform);
    run_expect(cmd, 0);
    sb.fakes.clear();
}

#[test]
fn launchd_uninstall_boots_out_and_removes_agents_keeping_the_config() {
    let sb = Sandbox::new();
    sb.fakes.add_launchctl(&sb.state_dir());
    init(&sb, "launchd", "macos");
    let agents = sb.home.join("Library/LaunchAgents");
    assert!(agents.join("dev.ccr-setup.proxy.plist").is_file());
    // Logs and a stale pid file that uninstall must clean up.
    let logs = sb.home.join(".claude-code-router/logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(logs.join("proxy.log.2026-01-01"), "x").unwrap();
    std::fs::write(sb.home.join("Library/Logs/ccr-setup/proxy.out.log"), "x").unwrap();
    let run = sb.home.join(".claude-code-router/run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("proxy.pid"), "999999\n").unwrap();
    let claude_json = std::fs::read(sb.home.join(".claude.json")).unwrap();

    let (out, _) = run_expect(
        sb.cmd(&["uninstall", "--yes", "--service-manager", "launchd"]),
        0,
    );
    let u = uid();
    assert_eq!(
        sb.actions(),
        [
            format!("launchctl print gui/{u}/dev.ccr-setup.ollama"),
            format!("launchctl print gui/{u}/dev.ccr-setup.proxy"),
            format!("launchctl bootout gui/{u}/dev.ccr-setup.ollama"),
            format!("launchctl bootout gui/{u}/dev.ccr-setup.proxy"),
        ],
        "{out}"
    );
    assert!(!agents.join("dev.ccr-setup.ollama.plist").exists());
    assert!(!agents.join("dev.ccr-setup.proxy.plist").exists());
    assert!(!logs.exists() && !run.exists());
    assert!(!sb.home.join("Library/Logs/ccr-setup").exists());
    // Config kept, with a fresh backup; ~/.claude.json and the tools untouched.
    assert!(sb.config_path().is_file());
    assert_eq!(
        ccr_setup::fsutil::list_backups(&sb.config_path())
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        std::fs::read(sb.home.join(".claude.json")).unwrap(),
        claude_json
    );
    assert!(sb.fakes.dir.join("ollama").exists() && sb.fakes.dir.join("claude").exists());
}

#[test]
fn systemd_uninstall_disables_removes_and_reloads_and_purge_removes_the_config() {
    let sb = Sandbox::new();
    sb.fakes.add_systemctl(&sb.state_dir());
    init(&sb, "systemd", "linux");
    let units = sb.home.join(".config/systemd/user");
    assert!(units.join("ccr-setup-ollama.service").is_file());
    // A backup from an earlier change, and a stored key.
    ccr_setup::fsutil::make_backup(&sb.config_path()).unwrap();
    let secrets = sb.home.join(".claude-code-router/secrets.env");
    std::fs::write(&secrets, "ANTHROPIC_API_KEY=sk-ant-x\n").unwrap();

    let (out, _) = run_expect(
        sb.cmd(&[
            "uninstall",
            "--yes",
            "--purge",
            "--service-manager",
            "systemd",
        ]),
        0,
    );
    assert_eq!(
        sb.actions(),
        [
            "systemctl --user disable --now ccr-setup-ollama.service ccr-setup-proxy.service",
            "systemctl --user daemon-reload",
        ],
        "{out}"
    );
    assert!(!units.join("ccr-setup-ollama.service").exists());
    assert!(!units.join("ccr-setup-proxy.service").exists());
    assert!(!sb.config_path().exists(), "--purge removes the config");
    // ... and its backups and the secrets store beside it.
    assert_eq!(
        ccr_setup::fsutil::list_backups(&sb.config_path()).unwrap(),
        Vec::<std::path::PathBuf>::new()
    );
    assert!(!secrets.exists(), "{out}");

    // Nothing left: a second uninstall runs no service commands and succeeds.
    sb.fakes.clear();
    run_expect(
        sb.cmd(&["uninstall", "--yes", "--service-manager", "systemd"]),
        0,
    );
    assert!(sb.actions().is_empty(), "{:?}", sb.actions());
}

#[test]
fn uninstall_without_a_terminal_or_yes_refuses() {
    let sb = Sandbox::new();
    let mut cmd = support::command_without_terminal(env!("CARGO_BIN_EXE_ccr-setup"));
    cmd.args(["uninstall", "--service-manager", "none"])
        .env_clear()
        .env("HOME", &sb.home)
        .env("PATH", sb.fakes.path_env())
        .stdin(std::process::Stdio::null());
    let (_, err) = run_expect(cmd, 1);
    assert!(err.contains("--yes"), "{err}");
}

#[test]
fn stop_never_signals_a_process_that_is_not_ours() {
    let sb = Sandbox::new();
    let run = sb.home.join(".claude-code-router/run");
    std::fs::create_dir_all(&run).unwrap();
    // A live process that is not a ccr-setup proxy, under our pid file's name.
    let mut other = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    std::fs::write(run.join("proxy.pid"), format!("{}\n", other.id())).unwrap();
    let (out, _) = run_expect(sb.cmd(&["stop"]), 0);
    assert!(out.contains("left it alone"), "{out}");
    assert!(
        other.try_wait().unwrap().is_none(),
        "the foreign process still runs"
    );
    assert!(!run.join("proxy.pid").exists());
    other.kill().unwrap();
    let _ = other.wait();
}

#[test]
fn stop_all_leaves_a_process_that_only_mentions_ollama_serve_alone() {
    let sb = Sandbox::new();
    let run = sb.home.join(".claude-code-router/run");
    std::fs::create_dir_all(&run).unwrap();
    // `cat …/ollama serve -`, blocked on its stdin: its command line holds both words
    // (as `tail -f …/ollama serve` would), but it is not the `<path>/ollama serve` the
    // pid file records.
    let ollama = sb.home.join("ollama");
    std::fs::write(&ollama, "").unwrap();
    let mut tail = std::process::Command::new("cat")
        .arg(&ollama)
        .arg("serve")
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let record =
        serde_json::json!({"pid": tail.id(), "argv": [ollama.display().to_string(), "serve"]});
    std::fs::write(run.join("ollama.pid"), record.to_string()).unwrap();
    let (out, _) = run_expect(sb.cmd(&["stop", "--all"]), 0);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let alive = tail.try_wait().unwrap().is_none();
    let _ = tail.kill();
    let _ = tail.wait();
    assert!(alive, "cat was signalled: {out}");
    assert!(out.contains("left it alone"), "{out}");
}
