//! One error from each command, as the user sees it: `error: …`, then `  caused by: …`
//! per cause, then `hint: …`, each said once, all rendered by `output::render_error`.
//! (`status`, `stop`, `completions` and `config path` report problems in their output;
//! what they can fail on is an output that cannot be written.)

use std::path::{Path, PathBuf};
use std::process::Command;

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn config(&self) -> PathBuf {
        self.path().join(".claude-code-router/config.json")
    }

    fn write_config(&self, text: &str) {
        std::fs::create_dir_all(self.config().parent().unwrap()).unwrap();
        std::fs::write(self.config(), text).unwrap();
    }

    /// `ccr-setup args…` with this HOME, an empty PATH directory and no terminal.
    fn cmd(&self, args: &[&str]) -> Command {
        let bin = self.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let mut c = Command::new(env!("CARGO_BIN_EXE_ccr-setup"));
        c.args(args)
            .env("HOME", self.path())
            .env("PATH", &bin)
            .env("NO_COLOR", "1")
            .env("OLLAMA_HOST", "127.0.0.1:9")
            .env_remove("CCR_SETUP_CONFIG")
            .env_remove("CCR_SETUP_PLATFORM")
            .env_remove("ANTHROPIC_API_KEY")
            .stdin(std::process::Stdio::null());
        // No controlling terminal, so nothing can open /dev/tty to ask.
        use std::os::unix::process::CommandExt;
        unsafe {
            c.pre_exec(|| {
                let _ = nix::unistd::setsid();
                Ok(())
            });
        }
        c
    }
}

/// Run, expect exit 1, and return stderr after checking the form: the first line is
/// `error: …`, then only `  caused by: …` lines, then at most one `hint: …`, where a
/// message's own continuation lines are indented by four spaces; no line is said twice.
fn error_of(mut cmd: Command) -> String {
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.starts_with("    ")).collect();
    assert!(lines[0].starts_with("error: "), "{err}");
    let hint_at = lines.iter().position(|l| l.starts_with("hint: "));
    let causes = &lines[1..hint_at.unwrap_or(lines.len())];
    assert!(
        causes.iter().all(|l| l.starts_with("  caused by: ")),
        "{err}"
    );
    if let Some(h) = hint_at {
        assert!(lines[h + 1..].iter().all(|l| l.starts_with(' ')), "{err}");
    }
    let mut said: Vec<&str> = lines
        .iter()
        .map(|l| {
            l.trim_start_matches("error: ")
                .trim_start_matches("  caused by: ")
        })
        .collect();
    let n = said.len();
    said.sort();
    said.dedup();
    assert_eq!(said.len(), n, "a line is repeated:\n{err}");
    err.trim_end().to_owned()
}

#[test]
fn config_show_without_a_config() {
    let h = Home::new();
    let err = error_of(h.cmd(&["config", "show"]));
    assert_eq!(
        err,
        format!(
            "error: no config at {}\nhint: run `ccr-setup init` to create one",
            h.config().display()
        )
    );
}

#[test]
fn env_and_proxy_without_a_config() {
    let h = Home::new();
    let want = format!(
        "error: no config at {}\nhint: run `ccr-setup init` to create one",
        h.config().display()
    );
    assert_eq!(error_of(h.cmd(&["env"])), want);
    assert_eq!(error_of(h.cmd(&["proxy", "--port", "0"])), want);
}

#[test]
fn code_without_claude_on_path() {
    let h = Home::new();
    h.write_config(
        r#"{"Providers": [{"name": "ollama", "api_base_url": "http://127.0.0.1:11434/v1/chat/completions", "api_key": "", "models": ["m"]}],
            "Router": {"default": "ollama,m"}}"#,
    );
    assert_eq!(
        error_of(h.cmd(&["code"])),
        "error: Claude Code (`claude`) is not on PATH\n\
         hint: run `ccr-setup init`, or `npm install -g @anthropic-ai/claude-code`"
    );
}

#[test]
fn up_with_a_config_that_does_not_parse() {
    let h = Home::new();
    h.write_config("{ not json");
    let err = error_of(h.cmd(&["up", "--no-exec"]));
    let want_start = format!("error: {} is not valid JSON5: ", h.config().display());
    assert!(err.starts_with(&want_start), "{err}");
    assert!(
        err.ends_with(
            "\nhint: fix the syntax at that position (JSON5: comments and trailing commas are fine)"
        ),
        "{err}"
    );
}

#[test]
fn init_with_a_config_it_cannot_read_shows_every_cause() {
    let h = Home::new();
    // A directory where the config file should be: reading it fails.
    std::fs::create_dir_all(h.config()).unwrap();
    let err = error_of(h.cmd(&["init", "--yes", "--no-install", "--service-manager", "none"]));
    assert_eq!(
        err,
        format!(
            "error: init will not overwrite a config it cannot read\n  \
             caused by: cannot read {}\n  \
             caused by: Is a directory (os error 21)\n\
             hint: fix it or move it away, then re-run `ccr-setup init`",
            h.config().display()
        )
    );
}

#[test]
fn doctor_with_an_unknown_platform_override() {
    let h = Home::new();
    let mut cmd = h.cmd(&["doctor"]);
    cmd.env("CCR_SETUP_PLATFORM", "beos");
    assert_eq!(
        error_of(cmd),
        "error: CCR_SETUP_PLATFORM=\"beos\" is not a platform\n\
         hint: set CCR_SETUP_PLATFORM=macos or linux, or unset it"
    );
}

#[test]
fn stats_with_a_bad_period() {
    let h = Home::new();
    assert_eq!(
        error_of(h.cmd(&["stats", "--since", "3x"])),
        "error: --since \"3x\" is not a period\n\
         hint: use all, or a number with h, d or w (24h, 7d, 30d, 2w)"
    );
}

#[test]
fn uninstall_without_a_terminal_or_yes() {
    let h = Home::new();
    let err = error_of(h.cmd(&["uninstall", "--service-manager", "none"]));
    assert!(
        err.ends_with(
            "error: no terminal to confirm the uninstall on\n\
             hint: re-run with `ccr-setup uninstall --yes`"
        ),
        "{err}"
    );
}

#[test]
fn statusline_install_over_settings_that_are_not_an_object() {
    let h = Home::new();
    let settings = h.path().join(".claude/settings.json");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    std::fs::write(&settings, "[1, 2]").unwrap();
    assert_eq!(
        error_of(h.cmd(&["statusline", "--install"])),
        format!(
            "error: {} is not a JSON object (it holds JSON that is not an object)\n\
             hint: fix the file (Claude Code's settings are one JSON object) or move it away, then run this again",
            settings.display()
        )
    );
    assert_eq!(
        std::fs::read_to_string(&settings).unwrap(),
        "[1, 2]",
        "left as it was"
    );
}

#[test]
fn config_validate_without_a_config() {
    let h = Home::new();
    assert_eq!(
        error_of(h.cmd(&["config", "validate"])),
        format!(
            "error: no config at {}\nhint: run `ccr-setup init` to create one",
            h.config().display()
        )
    );
}

/// `ui` (and `code`) will not send anything to a stranger holding the proxy's port.
#[test]
fn ui_with_a_stranger_on_the_proxy_port() {
    let h = Home::new();
    let stranger = crate::support::tiny_http::TinyHttp::start(0, 200, "text/plain", "hello");
    let port = stranger.addr.port();
    h.write_config(&format!(
        r#"{{"Providers": [{{"name": "ollama", "api_base_url": "http://127.0.0.1:11434/v1/chat/completions", "api_key": "", "models": ["m"]}}],
            "Router": {{"default": "ollama,m"}}, "PORT": {port}}}"#
    ));
    // The owner is this test process, as `port_owner` finds it.
    let owner = ccr_setup::port_owner::listening_owner(port)
        .map(|o| format!(" Port {port} is held by {o}."))
        .unwrap_or_default();
    assert_eq!(
        error_of(h.cmd(&["ui", "--no-open"])),
        format!(
            "error: http://127.0.0.1:{port} answers, but it is not ccr-setup's proxy (HTTP 200 on /health: hello); Claude Code's requests would go to it.{owner}\n\
             hint: if that is not your proxy, stop it or set another PORT in {}; if it is an older or differently configured ccr-setup proxy, `ccr-setup stop` and run this again",
            h.config().display()
        )
    );
}

/// Commands whose output is their whole point fail, never panic, when it cannot be
/// written (`println!` panicked here before).
#[test]
fn status_stop_completions_and_config_path_into_a_full_disk() {
    let full = Path::new("/dev/full");
    if !full.exists() {
        eprintln!("SKIPPED: no /dev/full on this system");
        return;
    }
    let h = Home::new();
    for args in [
        &["status"][..],
        &["stop"],
        &["completions", "zsh"],
        &["config", "path"],
    ] {
        let mut cmd = h.cmd(args);
        cmd.stdout(std::fs::OpenOptions::new().write(true).open(full).unwrap());
        assert_eq!(
            error_of(cmd),
            "error: cannot write to standard output\n  \
             caused by: No space left on device (os error 28)\n\
             hint: the output was cut short; send it where it can be written (a file on a disk with room, a terminal)",
            "{args:?}"
        );
    }
}

/// `init` prints its recommendation first; what ends the run is one error in the form.
#[test]
fn init_with_a_cloud_model_that_is_not_one_id() {
    let h = Home::new();
    let out = h
        .cmd(&[
            "init",
            "--yes",
            "--no-install",
            "--service-manager",
            "none",
            "--cloud-model",
            "a,b",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let tail = &err[err.find("error: ").expect("an error line")..];
    assert_eq!(
        tail.trim_end(),
        format!(
            "error: --cloud-model \"a,b\" is not one model id\n\
             hint: give one model id, e.g. --cloud-model {}",
            ccr_setup::catalogue::default_cloud_model()
        )
    );
    assert!(!h.config().exists(), "nothing written");
}

#[test]
fn statusline_install_over_settings_it_cannot_read() {
    let h = Home::new();
    let settings = h.path().join(".claude/settings.json");
    std::fs::create_dir_all(&settings).unwrap();
    assert_eq!(
        error_of(h.cmd(&["statusline", "--install"])),
        format!(
            "error: cannot read {}\n  \
             caused by: Is a directory (os error 21)\n\
             hint: check the file's permissions, then run this again",
            settings.display()
        )
    );
}

#[test]
fn clients_add_twice_and_proxy_in_server_mode_without_clients() {
    let h = Home::new();
    h.write_config(
        r#"{"Providers": [{"name": "ollama", "api_base_url": "http://127.0.0.1:11434/v1/chat/completions", "api_key": "", "models": ["m"]}],
            "Router": {"default": "ollama,m"}, "ServerMode": true, "PORT": 9}"#,
    );
    assert_eq!(
        error_of(h.cmd(&["proxy"])),
        "error: this config is in server mode (\"ServerMode\": true) but has no client keys, so nobody could use it and the admin APIKEY would be shared\n\
         hint: add a key per user with `ccr-setup clients add NAME`, then start the proxy again"
    );
    let out = h.cmd(&["clients", "add", "alice"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        error_of(h.cmd(&["clients", "add", "alice"])),
        "error: a client named \"alice\" already exists\n\
         hint: pick another name, or `ccr-setup clients remove alice` first (that revokes its key)"
    );
    assert_eq!(
        error_of(h.cmd(&["clients", "remove", "bob"])),
        "error: no client named \"bob\"\nhint: `ccr-setup clients list` shows the names"
    );
}
