//! `ccr-setup init --yes` against fake launchctl/systemctl/brew/npm/curl on PATH: the
//! exact command sequences, idempotent re-runs, preserved user config, and no-TTY runs.

use crate::support;

use serde_json::{json, Value};
use support::sandbox::{run_expect, Sandbox};

fn uid() -> u32 {
    nix::unistd::getuid().as_raw()
}

fn read_json(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn macos_sandbox() -> Sandbox {
    let sb = Sandbox::new();
    sb.fakes.add_brew();
    sb.fakes.add_npm();
    sb.fakes.add("curl");
    sb.fakes.add_launchctl(&sb.state_dir());
    sb
}

#[test]
fn macos_init_yes_installs_writes_and_bootstraps_then_reruns_as_a_no_op() {
    let sb = macos_sandbox();
    let mut cmd = sb.cmd(&["init", "--yes", "--service-manager", "launchd"]);
    cmd.env("CCR_SETUP_PLATFORM", "macos");
    let (out, _) = run_expect(cmd, 0);
    let agents = sb.home.join("Library/LaunchAgents");
    let u = uid();
    let fake = sb.fakes.dir.display();
    assert_eq!(
        sb.actions(),
        vec![
            format!("launchctl print gui/{u}/dev.ccr-setup.ollama"),
            format!("launchctl print gui/{u}/dev.ccr-setup.proxy"),
            "brew install ollama".to_owned(),
            "npm install -g @anthropic-ai/claude-code".to_owned(),
            format!(
                "launchctl bootstrap gui/{u} {}",
                agents.join("dev.ccr-setup.ollama.plist").display()
            ),
            format!(
                "launchctl bootstrap gui/{u} {}",
                agents.join("dev.ccr-setup.proxy.plist").display()
            ),
        ],
        "stdout:\n{out}"
    );
    // The service runs the Ollama that brew just installed, with the tuned environment.
    let plist = plist::Value::from_file(agents.join("dev.ccr-setup.ollama.plist")).unwrap();
    let d = plist.as_dictionary().unwrap();
    assert_eq!(
        d["ProgramArguments"].as_array().unwrap()[0]
            .as_string()
            .unwrap(),
        format!("{fake}/ollama")
    );
    let env = d["EnvironmentVariables"].as_dictionary().unwrap();
    assert_eq!(env["OLLAMA_CONTEXT_LENGTH"].as_string(), Some("32768"));
    assert_eq!(env["OLLAMA_HOST"].as_string(), Some("127.0.0.1:11434"));
    assert!(sb.home.join("Library/Logs/ccr-setup").is_dir());

    let cfg = read_json(&sb.config_path());
    assert_eq!(cfg["Router"]["default"], "ollama,gpt-oss:20b");
    // No cloud backup: two slots when this machine holds their KV cache (24 GB does),
    // so a subagent does not evict the main conversation's cached prompt.
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| ccr_setup::doctor::probe::parse_meminfo_total(&m))
        .unwrap();
    let slots = ccr_setup::models::advise_slots_unpulled("gpt-oss:20b", memory, 32_768)
        .unwrap()
        .slots;
    assert_eq!(
        cfg["Ollama"],
        json!({"model": "gpt-oss:20b", "context_length": 32768, "num_parallel": slots})
    );
    assert!(
        out.contains(&format!("Note: Ollama will run {slots} parallel slot")),
        "{out}"
    );
    assert_eq!(
        env["OLLAMA_NUM_PARALLEL"].as_string(),
        Some(slots.to_string().as_str())
    );
    assert_eq!(
        read_json(&sb.home.join(".claude.json"))["hasCompletedOnboarding"],
        true
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(sb.config_path())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);

    // Same answers again: nothing installed, written or loaded.
    sb.fakes.clear();
    let before = std::fs::read(sb.config_path()).unwrap();
    let mut again = sb.cmd(&["init", "--yes", "--service-manager", "launchd"]);
    again.env("CCR_SETUP_PLATFORM", "macos");
    let (out, _) = run_expect(again, 0);
    assert!(out.contains("Nothing to change"), "{out}");
    assert_eq!(
        sb.actions(),
        [
            format!("launchctl print gui/{u}/dev.ccr-setup.ollama"),
            format!("launchctl print gui/{u}/dev.ccr-setup.proxy"),
        ]
    );
    assert_eq!(std::fs::read(sb.config_path()).unwrap(), before);
    assert!(ccr_setup::fsutil::list_backups(&sb.config_path())
        .unwrap()
        .is_empty());
}

#[test]
fn linux_init_yes_runs_the_official_script_and_enables_user_units() {
    let sb = Sandbox::new();
    sb.fakes.add_curl();
    sb.fakes.add_npm();
    sb.fakes.add_systemctl(&sb.state_dir());
    let mut cmd = sb.cmd(&[
        "init",
        "--yes",
        "--service-manager",
        "systemd",
        "--cloud-fallback",
    ]);
    cmd.env("CCR_SETUP_PLATFORM", "linux");
    let (out, _) = run_expect(cmd, 0);
    assert!(out.contains("uses sudo"), "{out}");
    let script = sb
        .home
        .join(".claude-code-router/run/installers/ollama-install.sh");
    assert_eq!(
        sb.actions(),
        vec![
            "systemctl --user is-active ccr-setup-ollama.service".to_owned(),
            "systemctl --user is-active ccr-setup-proxy.service".to_owned(),
            format!(
                "curl -fsSL https://ollama.com/install.sh -o {}",
                script.display()
            ),
            "npm install -g @anthropic-ai/claude-code".to_owned(),
            "systemctl --user daemon-reload".to_owned(),
            "systemctl --user enable --now ccr-setup-ollama.service ccr-setup-proxy.service"
                .to_owned(),
        ],
        "stdout:\n{out}"
    );
    let unit = std::fs::read_to_string(
        sb.home
            .join(".config/systemd/user/ccr-setup-ollama.service"),
    )
    .unwrap();
    assert!(
        unit.contains(&format!(
            "ExecStart=\"{}/ollama\" \"serve\"",
            sb.fakes.dir.display()
        )),
        "{unit}"
    );
    assert!(
        unit.contains("Environment=\"OLLAMA_CONTEXT_LENGTH=32768\""),
        "{unit}"
    );
    let proxy =
        std::fs::read_to_string(sb.home.join(".config/systemd/user/ccr-setup-proxy.service"))
            .unwrap();
    assert!(proxy.contains("\"proxy\""), "{proxy}");
    // Cloud fallback references the key; it is never written into the config.
    let cfg = read_json(&sb.config_path());
    assert_eq!(cfg["Providers"][1]["api_key"], "$ANTHROPIC_API_KEY");
    // The catalogue's current Sonnet, the model `stats` compares against too.
    let cloud = format!("anthropic,{}", ccr_setup::catalogue::default_cloud_model());
    assert_eq!(cfg["Router"]["think"], cloud);
    assert_eq!(cfg["fallback"]["default"], json!([cloud]));

    sb.fakes.clear();
    let mut again = sb.cmd(&[
        "init",
        "--yes",
        "--service-manager",
        "systemd",
        "--cloud-fallback",
    ]);
    again.env("CCR_SETUP_PLATFORM", "linux");
    let (out, _) = run_expect(again, 0);
    assert!(out.contains("Nothing to change"), "{out}");
    assert!(
        sb.actions().iter().all(|c| c.contains("is-active")),
        "{:?}",
        sb.actions()
    );
}

#[test]
fn existing_config_keeps_the_users_provider_and_is_backed_up() {
    let sb = Sandbox::new();
    sb.fakes.add("ollama");
    sb.fakes.add("claude");
    let path = sb.config_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        r#"{
  // my own setup
  "APIKEY": "my-proxy-key",
  "Providers": [{"name": "openrouter", "api_base_url": "https://openrouter.ai/api/v1/chat/completions", "api_key": "sk-or-1", "models": ["x/y"]}],
  "Router": {"default": "openrouter,x/y", "background": "openrouter,x/y"},
  "StatusLine": {"enabled": true},
}"#,
    )
    .unwrap();
    let (out, _) = run_expect(
        sb.cmd(&[
            "init",
            "--yes",
            "--service-manager",
            "none",
            "--model",
            "qwen3:8b",
            "--context-length",
            "16384",
            "--port",
            "4567",
        ]),
        0,
    );
    assert!(out.contains("update"), "{out}");
    let cfg = read_json(&path);
    assert_eq!(cfg["Providers"][0]["name"], "openrouter");
    assert_eq!(cfg["Providers"][0]["api_key"], "sk-or-1");
    assert_eq!(cfg["APIKEY"], "my-proxy-key");
    assert_eq!(cfg["StatusLine"], json!({"enabled": true}));
    assert_eq!(cfg["Router"]["background"], "openrouter,x/y");
    assert_eq!(cfg["Router"]["default"], "ollama,qwen3:8b");
    assert_eq!(cfg["PORT"], 4567);
    assert_eq!(cfg["Providers"][1]["context_window"], 16384);
    let backups = ccr_setup::fsutil::list_backups(&path).unwrap();
    assert_eq!(backups.len(), 1);
    assert!(std::fs::read_to_string(&backups[0])
        .unwrap()
        .contains("// my own setup"));
    // The config validates through the real loader.
    ccr_setup::config::load(&path).unwrap();
    // Nothing was installed: both tools were present.
    assert!(sb.actions().is_empty(), "{:?}", sb.actions());
}

#[test]
fn dry_run_changes_nothing() {
    let sb = macos_sandbox();
    let mut cmd = sb.cmd(&["init", "--yes", "--dry-run", "--service-manager", "launchd"]);
    cmd.env("CCR_SETUP_PLATFORM", "macos");
    let (out, _) = run_expect(cmd, 0);
    assert!(
        out.contains("brew install ollama") && out.contains("Dry run"),
        "{out}"
    );
    assert!(out.contains("launchctl bootstrap"), "{out}");
    assert!(!sb.config_path().exists());
    assert!(!sb.home.join(".claude.json").exists());
    assert!(!sb.home.join("Library").exists());
    assert!(
        sb.actions()
            .iter()
            .all(|c| c.starts_with("launchctl print")),
        "{:?}",
        sb.actions()
    );
}

#[test]
fn macos_without_homebrew_prints_its_installer_and_stops() {
    let sb = Sandbox::new();
    sb.fakes.add("claude");
    let mut cmd = sb.cmd(&["init", "--yes", "--service-manager", "none"]);
    cmd.env("CCR_SETUP_PLATFORM", "macos");
    let (_, err) = run_expect(cmd, 1);
    assert!(
        err.contains("https://raw.githubusercontent.com/Homebrew/install/HEAD/install.sh"),
        "{err}"
    );
    assert!(!sb.config_path().exists());
}

#[test]
fn failed_installer_stops_with_the_manual_command() {
    let sb = Sandbox::new();
    sb.fakes.add("ollama");
    sb.fakes
        .add_script("npm", "echo 'npm ERR! EACCES' >&2; exit 243");
    let (out, err) = run_expect(sb.cmd(&["init", "--yes", "--service-manager", "none"]), 1);
    assert!(
        out.contains("npm ERR! EACCES"),
        "installer output is streamed: {out}"
    );
    assert!(
        err.contains("npm install -g @anthropic-ai/claude-code") && err.contains("243"),
        "{err}"
    );
    assert!(
        !sb.config_path().exists(),
        "nothing after the failed step is written"
    );
}

/// A sandbox with `ollama` and `claude` on PATH and a fake Ollama holding gpt-oss:20b.
fn with_gpt_oss_pulled() -> (Sandbox, support::fake_ollama::FakeOllama) {
    let sb = Sandbox::new();
    sb.fakes.add("ollama");
    sb.fakes.add("claude");
    let fake = support::fake_ollama::FakeOllama::start(
        support::fake_ollama::FakeConfig::default()
            .with_installed(support::fake_ollama::FakeModel::gpt_oss()),
    );
    (sb, fake)
}

#[test]
fn context_beyond_the_trained_length_is_refused() {
    let (sb, fake) = with_gpt_oss_pulled();
    let mut cmd = sb.cmd(&[
        "init",
        "--yes",
        "--service-manager",
        "none",
        "--context-length",
        "999999",
    ]);
    cmd.env("OLLAMA_HOST", fake.host_port());
    let (_, err) = run_expect(cmd, 1);
    assert!(
        err.contains("--context-length 999999") && err.contains("trained"),
        "{err}"
    );
    assert!(!sb.config_path().exists());
}

/// With the model pulled, `init` recommends a context from `/api/show`'s attention
/// geometry (the fake answers gpt-oss:20b's) and the machine's memory, and says what
/// its KV cache costs; the fake model weighs 4 MB, so 65536 fits on any test machine.
#[test]
fn init_recommends_a_context_and_says_what_it_costs() {
    let (sb, fake) = with_gpt_oss_pulled();
    for (kv_type, cost) in [("", "1.7 GB"), ("q8_0", "861.9 MB")] {
        let mut cmd = sb.cmd(&["init", "--yes", "--dry-run", "--service-manager", "none"]);
        cmd.env("OLLAMA_HOST", fake.host_port())
            .env("OLLAMA_KV_CACHE_TYPE", kv_type);
        let (out, _) = run_expect(cmd, 0);
        let want = format!(
            "Note: context recommended for this machine: 65536 tokens: {cost} of KV cache on top of the 4.0 MB model (fits in 75% of "
        );
        assert!(out.contains(&want), "{want}\n{out}");
    }
    assert!(!sb.config_path().exists());
}

/// On a fresh machine (no Ollama answering) the default model is advised from its
/// published size and geometry; another model that is not pulled gets no advice.
#[test]
fn init_advises_the_default_model_before_it_is_pulled() {
    let sb = Sandbox::new();
    sb.fakes.add("ollama");
    sb.fakes.add("claude");
    let dead = format!("127.0.0.1:{}", support::unbound_port());
    let run = |extra: &[&str]| {
        let mut args = vec!["init", "--yes", "--dry-run", "--service-manager", "none"];
        args.extend_from_slice(extra);
        let mut cmd = sb.cmd(&args);
        cmd.env("OLLAMA_HOST", &dead);
        run_expect(cmd, 0).0
    };
    let out = run(&[]);
    let note = out
        .lines()
        .find(|l| l.starts_with("Note: context "))
        .unwrap_or_else(|| panic!("no context advice:\n{out}"));
    assert!(
        note.contains("tokens: ") && note.contains("of KV cache on top of the 13.8 GB model"),
        "{note}"
    );
    assert!(
        note.ends_with(
            "from gpt-oss:20b's published size and attention geometry, as it is not pulled yet"
        ),
        "{note}"
    );
    let out = run(&["--model", "qwen3:8b"]);
    assert!(!out.contains("Note: context "), "{out}");
}

/// `init` in a new session without a controlling terminal (so /dev/tty cannot open),
/// stdin from /dev/null, no `--yes`.
fn init_without_a_terminal(sb: &Sandbox, args: &[&str]) -> std::process::Command {
    let mut cmd = support::command_without_terminal(env!("CARGO_BIN_EXE_ccr-setup"));
    cmd.arg("init")
        .args(args)
        .env_clear()
        .env("HOME", &sb.home)
        .env("PATH", sb.fakes.path_env())
        .env("OLLAMA_HOST", "127.0.0.1:9")
        .env("CCR_SETUP_PLATFORM", "linux")
        .stdin(std::process::Stdio::null());
    cmd
}

#[test]
fn no_terminal_and_no_yes_prints_the_plan_and_exits_2_having_run_and_written_nothing() {
    let sb = Sandbox::new();
    // Ollama and Claude Code are missing: the plan holds both installers.
    sb.fakes.add_curl();
    sb.fakes.add_npm();
    let (out, err) = run_expect(
        init_without_a_terminal(&sb, &["--service-manager", "none", "--model", "qwen3:8b"]),
        2,
    );
    assert!(out.contains("Plan:") && out.contains("Install:"), "{out}");
    assert!(err.contains("nothing was installed or written"), "{err}");
    assert!(
        err.contains("ccr-setup init --yes --model qwen3:8b --context-length 32768 --port 3456 --no-cloud-fallback --service-manager none"),
        "{err}"
    );
    // The fake installers record every call: only the version probes ran.
    let calls = sb.fakes.calls();
    assert!(calls.iter().all(|c| c.ends_with(" --version")), "{calls:?}");
    assert!(!sb.config_path().exists());
    assert!(!sb.home.join(".claude.json").exists());
    assert!(!sb.home.join(".claude-code-router").exists());

    // The printed command applies it.
    let (out, _) = run_expect(
        init_without_a_terminal(
            &sb,
            &[
                "--yes",
                "--model",
                "qwen3:8b",
                "--context-length",
                "32768",
                "--port",
                "3456",
                "--no-cloud-fallback",
                "--service-manager",
                "none",
            ],
        ),
        0,
    );
    assert!(!sb.fakes.calls_of("npm").is_empty(), "{out}");
    let cfg = read_json(&sb.config_path());
    assert_eq!(cfg["Ollama"]["model"], "qwen3:8b");
    assert_eq!(cfg["PORT"], 3456);
}

#[test]
fn ollama_app_gets_no_competing_service_and_the_choice_is_explained() {
    let sb = macos_sandbox();
    sb.fakes.add("ollama");
    sb.fakes.add("claude");
    std::fs::create_dir_all(sb.home.join("Applications/Ollama.app")).unwrap();
    let mut cmd = sb.cmd(&["init", "--yes", "--service-manager", "launchd"]);
    cmd.env("CCR_SETUP_PLATFORM", "macos");
    let (out, _) = run_expect(cmd, 0);
    assert!(
        out.contains("Ollama.app") && out.contains("installs no Ollama service"),
        "{out}"
    );
    let agents = sb.home.join("Library/LaunchAgents");
    assert!(!agents.join("dev.ccr-setup.ollama.plist").exists());
    assert!(agents.join("dev.ccr-setup.proxy.plist").is_file());
    let u = uid();
    assert_eq!(
        sb.actions(),
        [
            format!("launchctl print gui/{u}/dev.ccr-setup.proxy"),
            format!(
                "launchctl bootstrap gui/{u} {}",
                agents.join("dev.ccr-setup.proxy.plist").display()
            ),
        ]
    );
}

#[test]
fn a_home_with_spaces_ampersand_and_angle_brackets_gets_valid_services() {
    let sb = Sandbox::with_home_name("Jane & <Co> home");
    sb.fakes.add("ollama");
    sb.fakes.add("claude");
    sb.fakes.add_launchctl(&sb.state_dir());
    sb.fakes.add_systemctl(&sb.state_dir());
    for (manager, platform) in [("launchd", "macos"), ("systemd", "linux")] {
        let mut cmd = sb.cmd(&["init", "--yes", "--service-manager", manager]);
        cmd.env("CCR_SETUP_PLATFORM", platform);
        run_expect(cmd, 0);
    }
    let plist = plist::Value::from_file(
        sb.home
            .join("Library/LaunchAgents/dev.ccr-setup.proxy.plist"),
    )
    .unwrap();
    let env = plist.as_dictionary().unwrap()["EnvironmentVariables"]
        .as_dictionary()
        .unwrap()
        .clone();
    assert_eq!(
        env["CCR_SETUP_CONFIG"].as_string().unwrap(),
        sb.config_path().to_str().unwrap()
    );
    let unit =
        std::fs::read_to_string(sb.home.join(".config/systemd/user/ccr-setup-proxy.service"))
            .unwrap();
    assert!(
        unit.contains(&format!(
            "Environment=\"CCR_SETUP_CONFIG={}\"",
            sb.config_path().display()
        )),
        "{unit}"
    );
}

#[test]
fn system_ollama_unit_gets_a_dropin_instead_of_a_second_server() {
    let sb = Sandbox::new();
    sb.fakes.add("ollama");
    sb.fakes.add("claude");
    sb.fakes.add("sudo");
    sb.fakes.add("install");
    sb.fakes.add_systemctl(&sb.state_dir());
    let root = sb.root.path().join("sysroot");
    let unit = root.join("etc/systemd/system/ollama.service");
    std::fs::create_dir_all(unit.parent().unwrap()).unwrap();
    std::fs::write(&unit, "[Service]\nExecStart=/usr/local/bin/ollama serve\n").unwrap();
    let mut cmd = sb.cmd(&[
        "init",
        "--yes",
        "--service-manager",
        "systemd",
        "--context-length",
        "16384",
    ]);
    cmd.env("CCR_SETUP_PLATFORM", "linux")
        .env("CCR_SETUP_SYSTEM_ROOT", &root);
    let (out, _) = run_expect(cmd, 0);
    // The file is shown before anything runs with sudo.
    let shown = out
        .find("Environment=\"OLLAMA_CONTEXT_LENGTH=16384\"")
        .expect(&out);
    let ran = out.find("$ ").unwrap();
    assert!(shown < ran, "{out}");
    assert!(out.contains("installs no second server"), "{out}");
    assert!(!sb
        .home
        .join(".config/systemd/user/ccr-setup-ollama.service")
        .exists());
    assert!(sb
        .home
        .join(".config/systemd/user/ccr-setup-proxy.service")
        .is_file());
    let staged = sb.home.join(".claude-code-router/run/ccr-setup.conf");
    let target = root.join("etc/systemd/system/ollama.service.d/ccr-setup.conf");
    let sudo = if nix::unistd::geteuid().is_root() {
        ""
    } else {
        "sudo "
    };
    assert_eq!(
        sb.actions(),
        vec![
            "systemctl --user is-active ccr-setup-proxy.service".to_owned(),
            "systemctl --user daemon-reload".to_owned(),
            "systemctl --user enable --now ccr-setup-proxy.service".to_owned(),
            format!(
                "{sudo}install -D -m 0644 {} {}",
                staged.display(),
                target.display()
            ),
            format!("{sudo}systemctl daemon-reload"),
            format!("{sudo}systemctl restart ollama.service"),
        ],
        "{out}"
    );
}

#[test]
fn linux_installer_that_creates_a_system_service_switches_to_the_dropin() {
    let sb = Sandbox::new();
    sb.fakes.add("claude");
    sb.fakes.add("sudo");
    sb.fakes.add("install");
    sb.fakes.add_systemctl(&sb.state_dir());
    let root = sb.root.path().join("sysroot");
    // Ollama's script installs the binary and a system-wide ollama.service.
    let installer = format!(
        "printf '#!/bin/sh\\necho 0.12.3\\n' > '{bin}/ollama'; chmod 755 '{bin}/ollama'; mkdir -p '{etc}'; : > '{etc}/ollama.service'",
        bin = sb.fakes.dir.display(),
        etc = root.join("etc/systemd/system").display()
    );
    sb.fakes.add_script(
        "curl",
        &format!(
            "out=''; while [ $# -gt 0 ]; do [ \"$1\" = -o ] && out=\"$2\"; shift; done\ncat > \"$out\" <<'SCRIPT'\n{installer}\nSCRIPT"
        ),
    );
    let mut cmd = sb.cmd(&["init", "--yes", "--service-manager", "systemd"]);
    cmd.env("CCR_SETUP_PLATFORM", "linux")
        .env("CCR_SETUP_SYSTEM_ROOT", &root);
    let (out, _) = run_expect(cmd, 0);
    assert!(out.contains("installs no second server"), "{out}");
    assert!(!sb
        .home
        .join(".config/systemd/user/ccr-setup-ollama.service")
        .exists());
    let actions = sb.actions();
    assert_eq!(
        actions[..5],
        [
            "systemctl --user is-active ccr-setup-ollama.service".to_owned(),
            "systemctl --user is-active ccr-setup-proxy.service".to_owned(),
            format!(
                "curl -fsSL https://ollama.com/install.sh -o {}",
                sb.home
                    .join(".claude-code-router/run/installers/ollama-install.sh")
                    .display()
            ),
            "systemctl --user daemon-reload".to_owned(),
            "systemctl --user enable --now ccr-setup-proxy.service".to_owned(),
        ],
        "{out}"
    );
    assert!(
        actions[5].ends_with("ollama.service.d/ccr-setup.conf"),
        "{actions:?}"
    );
}

/// `--statusline` sets Claude Code's status line, keeping its other settings; a status
/// line the user already has is kept (with --yes nobody agreed to replace it), and
/// without the flag the settings are not touched.
#[test]
fn statusline_flag_sets_claude_codes_status_line_and_keeps_the_users() {
    let sb = macos_sandbox();
    let settings = sb.home.join(".claude/settings.json");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    std::fs::write(
        &settings,
        r#"{"model": "opus", "permissions": {"allow": ["Bash"]}}"#,
    )
    .unwrap();
    let init = |extra: &[&str]| {
        let mut args = vec!["init", "--yes", "--service-manager", "launchd"];
        args.extend_from_slice(extra);
        let mut cmd = sb.cmd(&args);
        cmd.env("CCR_SETUP_PLATFORM", "macos");
        run_expect(cmd, 0).0
    };
    init(&[]);
    assert_eq!(
        read_json(&settings).get("statusLine"),
        None,
        "not without the flag"
    );

    let out = init(&["--statusline"]);
    let v = read_json(&settings);
    assert_eq!(v["statusLine"]["command"], "ccr-setup statusline", "{out}");
    assert_eq!(v["model"], "opus");
    assert_eq!(v["permissions"]["allow"][0], "Bash");
    assert!(!ccr_setup::fsutil::list_backups(&settings)
        .unwrap()
        .is_empty());

    std::fs::write(
        &settings,
        r#"{"statusLine": {"type": "command", "command": "my-line.sh"}}"#,
    )
    .unwrap();
    let out = init(&["--statusline"]);
    assert!(
        out.contains("Kept your status line (`my-line.sh`)"),
        "{out}"
    );
    assert_eq!(read_json(&settings)["statusLine"]["command"], "my-line.sh");
}
