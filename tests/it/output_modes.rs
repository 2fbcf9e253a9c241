//! The run's one printer, seen from outside: stdout carries only what a command is for
//! (step lines, JSON), progress goes to stderr (a bar only when stderr is a terminal),
//! and a stderr that cannot be written does not crash a command.

use crate::support;
use crate::up_flow::up_against;
use crate::up_pty::{slow_fake, BAR};

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use expectrl::{Eof, Session};
use support::fake_ollama::{FakeConfig, FakeOllama};
use support::sandbox::Sandbox;

/// Bytes only a drawn progress bar writes: carriage returns, escape sequences, the bar.
fn has_bar_bytes(s: &str) -> bool {
    s.contains('\r') || s.contains('\x1b') || s.contains("pulling gpt-oss:20b [")
}

/// `up`'s step lines start with their mark (done, skipped, failed, exec).
fn is_step_line(line: &str) -> bool {
    ["✓ ", "– ", "✗ ", "→ "].iter().any(|m| line.starts_with(m))
}

/// The same command with its stdout sent to `file` and stderr left as it is (the PTY
/// when spawned in one), so a test sees the two streams apart.
fn stdout_to_file(cmd: &Command, file: &Path) -> Command {
    let mut sh = Command::new("/bin/sh");
    sh.arg("-c")
        .arg(r#"out="$1"; shift; exec "$@" > "$out""#)
        .arg("sh")
        .arg(file)
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .env_clear();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            sh.env(k, v);
        }
    }
    sh.env("TERM", "xterm-256color");
    sh
}

/// `up` (pulling the model) with stderr on a PTY and stdout in a file: the PTY's text
/// and the file's.
fn up_with_terminal_stderr(args: &[&str]) -> (String, String) {
    let fake = slow_fake(20);
    let home = Sandbox::up_home(&fake.host_port());
    let file = home.root.path().join("stdout.txt");
    let mut cmd = home.up(args);
    cmd.env("CCR_SETUP_OLLAMA_REGISTRY", fake.url());
    let mut s = Session::spawn(stdout_to_file(&cmd, &file)).expect("spawn in a pty");
    s.set_expect_timeout(Some(Duration::from_secs(30)));
    let seen = s.expect(Eof).expect("up runs to its end");
    let terminal = String::from_utf8_lossy(seen.get(0).unwrap_or_default()).into_owned();
    let status = s.get_process().wait().unwrap();
    assert_eq!(
        status,
        expectrl::WaitStatus::Exited(s.get_process().pid(), 0),
        "{terminal}"
    );
    assert!(fake.is_installed("gpt-oss:20b"));
    (terminal, std::fs::read_to_string(&file).unwrap())
}

#[test]
fn up_without_a_terminal_prints_no_progress_on_stdout() {
    let fake = FakeOllama::start(FakeConfig::default());
    let (_home, out) = up_against(&fake, &["--no-exec", "--no-smoke"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("✓ pull"), "{stdout}");
    for line in stdout.lines() {
        assert!(
            is_step_line(line),
            "not a step line on stdout: {line:?}\n{stdout}"
        );
    }
    assert!(
        !has_bar_bytes(&stdout) && !has_bar_bytes(&stderr),
        "{stdout}{stderr}"
    );
    // The progress went to stderr, as lines.
    assert!(
        stderr.contains("pull gpt-oss:20b: 100%") && stderr.contains("verifying sha256 digest"),
        "{stderr}"
    );
}

#[test]
fn pull_bar_draws_on_a_terminal_stderr_and_never_on_stdout() {
    let (terminal, stdout) = up_with_terminal_stderr(&["--no-exec", "--no-smoke"]);
    assert!(
        regex_automata::meta::Regex::new(BAR)
            .unwrap()
            .is_match(&terminal),
        "a bar on the terminal: {terminal:?}"
    );
    assert!(stdout.contains("✓ pull"), "{stdout}");
    assert!(!has_bar_bytes(&stdout), "{stdout:?}");
    assert!(stdout.lines().all(is_step_line), "{stdout}");
}

#[test]
fn json_up_with_a_terminal_stderr_draws_no_bar_and_stdout_is_only_json() {
    let (terminal, stdout) = up_with_terminal_stderr(&["--no-exec", "--no-smoke", "--json"]);
    assert!(
        !has_bar_bytes(&terminal),
        "no bar with --json: {terminal:?}"
    );
    assert!(!terminal.contains("pull gpt-oss"), "{terminal:?}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect(l))
        .collect();
    let progress = lines
        .iter()
        .filter(|l| l["step"] == "pull" && l["event"] == "progress");
    assert!(progress.clone().any(|l| l["percent"] == 100), "{stdout}");
    assert!(
        lines.iter().any(|l| l["step"] == "pull" && l["ok"] == true),
        "{stdout}"
    );
}

#[test]
fn quiet_up_with_a_terminal_stderr_draws_no_bar_and_leaves_stdout_empty() {
    let (terminal, stdout) = up_with_terminal_stderr(&["--no-exec", "--no-smoke", "-q"]);
    assert_eq!(stdout, "");
    assert!(
        !regex_automata::meta::Regex::new(BAR)
            .unwrap()
            .is_match(&terminal),
        "no bar with -q: {terminal:?}"
    );
    assert!(terminal.contains("pull gpt-oss:20b: 100%"), "{terminal:?}");
}

#[test]
fn a_stderr_that_cannot_be_written_does_not_crash_a_command() {
    // No config and no ledger: `stats` says both on stderr, then prints its table.
    let home = Sandbox::new();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = home
        .cmd(&["stats"])
        .stderr(Stdio::from(full))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("local share"), "the table: {stdout}");
}
