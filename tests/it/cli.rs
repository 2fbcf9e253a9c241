//! The CLI surface: help, exit codes, global flags and the `config` subcommands.

use std::path::Path;
use std::process::{Command, Output};

fn ccr(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ccr-setup"))
        .args(args)
        .env("HOME", home)
        .env_remove("CCR_SETUP_CONFIG")
        .env("NO_COLOR", "1")
        .output()
        .expect("run ccr-setup")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn help_lists_every_subcommand() {
    let home = tempfile::tempdir().unwrap();
    let out = ccr(home.path(), &["--help"]);
    assert!(out.status.success());
    let help = text(&out);
    for sub in [
        "init",
        "doctor",
        "up",
        "proxy",
        "code",
        "env",
        "status",
        "stop",
        "uninstall",
        "stats",
        "config",
        "completions",
    ] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(sub)),
            "--help does not list `{sub}`:\n{help}"
        );
    }
}

#[test]
fn quiet_is_explained_in_help_and_the_guide() {
    let home = tempfile::tempdir().unwrap();
    let help = text(&ccr(home.path(), &["--help"]));
    let quiet = help
        .split("-q, --quiet")
        .nth(1)
        .unwrap_or_else(|| panic!("--help names -q:\n{help}"));
    let quiet = quiet.split("--no-color").next().unwrap();
    assert!(quiet.contains("no progress"), "{quiet}");
    let guide =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/guide.md")).unwrap();
    assert!(
        guide.contains("## Output: stdout, stderr, `-q`, `--json`")
            && guide.contains("- `-q`/`--quiet` (any command)"),
        "docs/guide.md explains -q"
    );
}

#[test]
fn usage_errors_exit_2() {
    let home = tempfile::tempdir().unwrap();
    assert_eq!(
        ccr(home.path(), &["no-such-command"]).status.code(),
        Some(2)
    );
    assert_eq!(
        ccr(home.path(), &["stats", "--by", "planet"]).status.code(),
        Some(2)
    );
}

#[test]
fn completions_are_generated() {
    let home = tempfile::tempdir().unwrap();
    let out = ccr(home.path(), &["completions", "bash"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("ccr-setup"));
}

const BROKEN: &str = r#"{
  // a JSON5 comment is fine
  "PORT": 99999,
  "HOST": "0.0.0.0",
  "Providers": [
    {"name": "ollama", "models": ["gpt-oss:20b"]},
  ],
  "Router": {"default": "ollama,gpt-oss:20b", "think": "cloud,claude-sonnet-4-5"},
}"#;

#[test]
fn config_validate_lists_every_problem_with_its_path_and_exits_1() {
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("broken.json");
    std::fs::write(&cfg, BROKEN).unwrap();
    // The global flag is accepted after the subcommand too.
    let out = ccr(
        home.path(),
        &["config", "validate", "--config", cfg.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = text(&out);
    for path in [
        "PORT:",
        "HOST:",
        "Providers[0].api_base_url:",
        "Router.think:",
    ] {
        assert!(report.contains(path), "missing {path} in:\n{report}");
    }
    assert!(report.contains("4 problem(s)"), "{report}");
    assert!(report.contains("hint:"), "{report}");
}

#[test]
fn config_validate_accepts_a_good_file_via_env_var() {
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("good.json");
    std::fs::write(
        &cfg,
        r#"{"Providers": [{"name": "ollama", "api_base_url": "http://127.0.0.1:11434/v1/chat/completions", "models": ["gpt-oss:20b"]}], "Router": {"default": "ollama,gpt-oss:20b"}}"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ccr-setup"))
        .args(["config", "validate"])
        .env("HOME", home.path())
        .env("CCR_SETUP_CONFIG", &cfg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("default route ollama,gpt-oss:20b"));
}

#[test]
fn config_show_redacts_secrets_and_missing_config_names_the_fix() {
    let home = tempfile::tempdir().unwrap();
    let out = ccr(home.path(), &["config", "show"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("ccr-setup init"), "{}", text(&out));

    let dir = home.path().join(".claude-code-router");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        r#"{"APIKEY": "super-secret-value", "Providers": [{"name": "a", "api_key": "sk-ant-secret", "api_base_url": "https://api.anthropic.com/v1/messages", "models": ["m"]}], "Router": {"default": "a,m"}}"#,
    )
    .unwrap();
    let out = ccr(home.path(), &["config", "show"]);
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    assert!(!shown.contains("super-secret-value") && !shown.contains("sk-ant-secret"));
    assert!(shown.contains("<redacted>"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("key APIKEY: from the config itself (a literal value)"),
        "{err}"
    );

    // A `$VAR` key: where it comes from (the store here), never its value.
    std::fs::write(
        dir.join("config.json"),
        r#"{"Providers": [{"name": "a", "api_key": "$CCR_TEST_SHOW_KEY", "api_base_url": "https://api.anthropic.com/v1/messages", "models": ["m"]}, {"name": "b", "api_key": "${CCR_TEST_SHOW_UNSET}", "api_base_url": "https://api.anthropic.com/v1/messages", "models": ["m"]}], "Router": {"default": "a,m"}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("secrets.env"),
        "CCR_TEST_SHOW_KEY=sk-ant-stored-value\n",
    )
    .unwrap();
    let out = ccr(home.path(), &["config", "show"]);
    assert!(out.status.success(), "{}", text(&out));
    let all = text(&out);
    assert!(!all.contains("sk-ant-stored-value"), "{all}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "key Providers[0].api_key ($CCR_TEST_SHOW_KEY, provider a): from the secrets store {}",
            dir.join("secrets.env").display()
        )),
        "{err}"
    );
    assert!(
        err.contains("key Providers[1].api_key ($CCR_TEST_SHOW_UNSET, provider b): not set"),
        "{err}"
    );
    let out = ccr(home.path(), &["config", "path"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        dir.join("config.json").to_str().unwrap()
    );
}
