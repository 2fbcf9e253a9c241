//! The install plan (what is missing and how it gets installed on each platform) and
//! running installers with their output streamed to a callback.
//!
//! Sources, as the upstream projects document them:
//! * Ollama on macOS: `brew install ollama` (Homebrew is never installed silently);
//! * Ollama on Linux: the official script <https://ollama.com/install.sh> (it uses sudo);
//! * Claude Code: `npm install -g @anthropic-ai/claude-code` when npm exists, else
//!   Anthropic's native installer <https://claude.ai/install.sh>.
//!
//! Scripts are downloaded to a file and run as a separate step rather than piped, so a
//! failed download is an exit code and not an empty script that "succeeds".

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use serde::Serialize;

use super::{Platform, Probes};

pub const HOMEBREW_INSTALL: &str = r#"/bin/bash -c "$(curl -fsSL https://raw.githubusercontent.com/Homebrew/install/HEAD/install.sh)""#;
pub const OLLAMA_SCRIPT_URL: &str = "https://ollama.com/install.sh";
pub const CLAUDE_SCRIPT_URL: &str = "https://claude.ai/install.sh";
pub const CLAUDE_NPM_PACKAGE: &str = "@anthropic-ai/claude-code";

/// What an install step provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Software {
    Ollama,
    ClaudeCode,
}

impl Software {
    pub fn name(self) -> &'static str {
        match self {
            Software::Ollama => "Ollama",
            Software::ClaudeCode => "Claude Code",
        }
    }
}

/// One installation: the commands run in order, and the one-liner a user would run by
/// hand if it fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstallStep {
    pub software: Software,
    /// argv of each command (program first).
    pub commands: Vec<Vec<String>>,
    /// The installer asks for sudo (the user will see a password prompt).
    pub uses_sudo: bool,
    /// The command to run by hand.
    pub manual: String,
}

/// Why no plan could be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("Ollama on macOS is installed with Homebrew, which is missing")]
    HomebrewMissing,
    #[error("{software} needs curl to download its installer, and curl is missing")]
    CurlMissing {
        software: &'static str,
        manual: String,
    },
}

/// Why an installer failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("cannot start `{command}`")]
    Spawn {
        software: &'static str,
        command: String,
        manual: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status})")]
    Failed {
        software: &'static str,
        command: String,
        status: String,
        manual: String,
    },
}

impl crate::diagnostic::Hint for PlanError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            PlanError::HomebrewMissing => format!(
                "install Homebrew first:\n  {HOMEBREW_INSTALL}\nthen re-run `ccr-setup init` (or install Ollama from https://ollama.com/download)"
            ),
            PlanError::CurlMissing { manual, .. } => format!(
                "install curl (e.g. `sudo apt-get install curl`) and re-run `ccr-setup init`, or run by hand: {manual}"
            ),
        })
    }
}

impl crate::diagnostic::Hint for InstallError {
    fn hint(&self) -> Option<String> {
        let (InstallError::Spawn {
            software, manual, ..
        }
        | InstallError::Failed {
            software, manual, ..
        }) = self;
        Some(format!(
            "install {software} by hand: {manual}; nothing after this step was changed, so re-run `ccr-setup init` afterwards"
        ))
    }
}

/// Plan the installs for what is missing. `scratch` is a directory for downloaded
/// installer scripts.
pub fn plan_installs(
    platform: Platform,
    probes: &Probes,
    scratch: &Path,
) -> Result<Vec<InstallStep>, PlanError> {
    let mut steps = Vec::new();
    if probes.ollama.is_none() {
        steps.push(ollama_step(platform, probes, scratch)?);
    }
    if probes.claude.is_none() {
        steps.push(claude_step(probes, scratch)?);
    }
    Ok(steps)
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn ollama_step(
    platform: Platform,
    probes: &Probes,
    scratch: &Path,
) -> Result<InstallStep, PlanError> {
    match platform {
        Platform::MacOs => {
            let brew = probes.brew.as_ref().ok_or(PlanError::HomebrewMissing)?;
            Ok(InstallStep {
                software: Software::Ollama,
                commands: vec![vec![s(&brew.path), "install".into(), "ollama".into()]],
                uses_sudo: false,
                manual: "brew install ollama".into(),
            })
        }
        Platform::Linux => {
            let manual = format!("curl -fsSL {OLLAMA_SCRIPT_URL} | sh");
            let curl = probes.curl.as_ref().ok_or_else(|| PlanError::CurlMissing {
                software: "Ollama",
                manual: manual.clone(),
            })?;
            let script = scratch.join("ollama-install.sh");
            Ok(InstallStep {
                software: Software::Ollama,
                commands: download_and_run(&curl.path, OLLAMA_SCRIPT_URL, &script, "/bin/sh"),
                uses_sudo: true,
                manual,
            })
        }
    }
}

fn claude_step(probes: &Probes, scratch: &Path) -> Result<InstallStep, PlanError> {
    if let Some(npm) = &probes.npm {
        return Ok(InstallStep {
            software: Software::ClaudeCode,
            commands: vec![vec![
                s(&npm.path),
                "install".into(),
                "-g".into(),
                CLAUDE_NPM_PACKAGE.into(),
            ]],
            uses_sudo: false,
            manual: format!("npm install -g {CLAUDE_NPM_PACKAGE}"),
        });
    }
    let manual = format!("curl -fsSL {CLAUDE_SCRIPT_URL} | bash");
    let curl = probes.curl.as_ref().ok_or_else(|| PlanError::CurlMissing {
        software: "Claude Code",
        manual: manual.clone(),
    })?;
    let script = scratch.join("claude-install.sh");
    Ok(InstallStep {
        software: Software::ClaudeCode,
        commands: download_and_run(&curl.path, CLAUDE_SCRIPT_URL, &script, "bash"),
        uses_sudo: false,
        manual,
    })
}

fn download_and_run(curl: &Path, url: &str, script: &Path, shell: &str) -> Vec<Vec<String>> {
    vec![
        vec![s(curl), "-fsSL".into(), url.into(), "-o".into(), s(script)],
        vec![shell.into(), s(script)],
    ]
}

/// A line of installer output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputLine {
    /// About to run this command (shell-quoted).
    Command(String),
    Stdout(String),
    Stderr(String),
}

/// Run every command of `step`, streaming output lines to `on_line`, and stop at the
/// first non-zero exit with the manual command in the error.
pub fn run_step(
    step: &InstallStep,
    on_line: &mut dyn FnMut(OutputLine),
) -> Result<(), InstallError> {
    for argv in &step.commands {
        let shown = argv
            .iter()
            .map(|a| crate::service::shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ");
        on_line(OutputLine::Command(shown.clone()));
        if let Some(parent) = argv.iter().find_map(|a| scratch_parent(a)) {
            let _ = std::fs::create_dir_all(parent);
        }
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::inherit()) // sudo may need to ask for a password
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| InstallError::Spawn {
                software: step.software.name(),
                command: shown.clone(),
                manual: step.manual.clone(),
                source,
            })?;
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().expect("piped");
        let err = child.stderr.take().expect("piped");
        let tx2 = tx.clone();
        let t1 = std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(OutputLine::Stdout(line));
            }
        });
        let t2 = std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx2.send(OutputLine::Stderr(line));
            }
        });
        for line in rx {
            on_line(line);
        }
        let _ = t1.join();
        let _ = t2.join();
        let status = child.wait().map_err(|source| InstallError::Spawn {
            software: step.software.name(),
            command: shown.clone(),
            manual: step.manual.clone(),
            source,
        })?;
        if !status.success() {
            return Err(InstallError::Failed {
                software: step.software.name(),
                command: shown,
                status: status.to_string(),
                manual: step.manual.clone(),
            });
        }
    }
    Ok(())
}

/// The directory of a `-o <file>` download target, created before curl runs.
fn scratch_parent(arg: &str) -> Option<PathBuf> {
    arg.ends_with("-install.sh")
        .then(|| Path::new(arg).parent().map(Path::to_path_buf))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::Tool;

    fn tool(p: &str) -> Option<Tool> {
        Some(Tool {
            path: PathBuf::from(p),
            version: None,
        })
    }

    fn probes(platform: Platform) -> Probes {
        Probes {
            platform,
            brew: None,
            ollama: None,
            claude: None,
            npm: None,
            curl: tool("/usr/bin/curl"),
            existing_ollama: None,
        }
    }

    #[test]
    fn macos_without_homebrew_stops_with_its_install_command() {
        let err =
            plan_installs(Platform::MacOs, &probes(Platform::MacOs), Path::new("/t")).unwrap_err();
        assert_eq!(err, PlanError::HomebrewMissing);
        use crate::diagnostic::Hint;
        assert!(err
            .hint()
            .unwrap()
            .contains("Homebrew/install/HEAD/install.sh"));
    }

    #[test]
    fn macos_uses_brew_and_npm() {
        let mut p = probes(Platform::MacOs);
        p.brew = tool("/opt/homebrew/bin/brew");
        p.npm = tool("/opt/homebrew/bin/npm");
        let steps = plan_installs(Platform::MacOs, &p, Path::new("/t")).unwrap();
        assert_eq!(
            steps[0].commands,
            [["/opt/homebrew/bin/brew", "install", "ollama"]]
        );
        assert_eq!(
            steps[1].commands,
            [[
                "/opt/homebrew/bin/npm",
                "install",
                "-g",
                "@anthropic-ai/claude-code"
            ]]
        );
    }

    #[test]
    fn linux_downloads_official_scripts_then_runs_them() {
        let steps =
            plan_installs(Platform::Linux, &probes(Platform::Linux), Path::new("/t")).unwrap();
        assert!(steps[0].uses_sudo);
        assert_eq!(
            steps[0].commands,
            [
                vec![
                    "/usr/bin/curl",
                    "-fsSL",
                    OLLAMA_SCRIPT_URL,
                    "-o",
                    "/t/ollama-install.sh"
                ],
                vec!["/bin/sh", "/t/ollama-install.sh"]
            ]
        );
        assert_eq!(steps[1].commands[1], ["bash", "/t/claude-install.sh"]);
        let mut p = probes(Platform::Linux);
        p.curl = None;
        assert!(matches!(
            plan_installs(Platform::Linux, &p, Path::new("/t")),
            Err(PlanError::CurlMissing { .. })
        ));
    }

    #[test]
    fn failed_installer_reports_exit_and_manual_command() {
        let step = InstallStep {
            software: Software::Ollama,
            commands: vec![
                vec![
                    "/bin/sh".into(),
                    "-c".into(),
                    "echo out; echo err >&2".into(),
                ],
                vec!["/bin/sh".into(), "-c".into(), "exit 3".into()],
                vec!["/bin/sh".into(), "-c".into(), "echo never".into()],
            ],
            uses_sudo: false,
            manual: "do it by hand".into(),
        };
        let mut lines = Vec::new();
        let err = run_step(&step, &mut |l| lines.push(l)).unwrap_err();
        assert!(lines.contains(&OutputLine::Stdout("out".into())));
        assert!(lines.contains(&OutputLine::Stderr("err".into())));
        assert!(!lines.contains(&OutputLine::Stdout("never".into())));
        let msg = err.to_string();
        assert!(msg.contains("exit status: 3"), "{msg}");
        // The manual command is the hint, said once, not part of the message.
        use crate::diagnostic::Hint;
        let hint = err.hint().unwrap();
        assert!(hint.contains("do it by hand"), "{hint}");
    }
}
