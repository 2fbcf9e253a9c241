//! Whose Ollama is answering? `up` reuses a server we started and never kills anyone
//! else's; when someone else's server gives too small a context, the fix depends on
//! who runs it (Ollama.app has its own setting, brew rewrites its plist, a systemd
//! unit takes an Environment= line), so we find the listening process and classify it.

use std::path::Path;

use url::Url;

use super::serve::{self, OwnedServer};

/// Who runs the server at the Ollama address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// Started by `ccr-setup up` (our pid file).
    Ours(OwnedServer),
    /// Started by one of ccr-setup's login services (launchd/systemd, from `init`).
    OurService { unit: String },
    /// The macOS menu-bar app, which applies its own context setting.
    OllamaApp { pid: Option<u32> },
    /// `brew services start ollama` (launchd label `homebrew.mxcl.ollama`).
    BrewService { pid: Option<u32> },
    /// The system-wide `ollama.service` from Ollama's Linux installer.
    SystemdService { pid: Option<u32> },
    /// Anything else on this machine.
    Other {
        pid: Option<u32>,
        command: Option<String>,
    },
    /// A server on another machine.
    Remote,
}

impl Owner {
    pub fn is_ours(&self) -> bool {
        matches!(self, Owner::Ours(_) | Owner::OurService { .. })
    }

    /// A short description for the step line.
    pub fn describe(&self) -> String {
        match self {
            Owner::Ours(o) => format!("ours, pid {}", o.pid),
            Owner::OurService { unit } => format!("our service {unit}"),
            Owner::OllamaApp { .. } => "Ollama.app".to_owned(),
            Owner::BrewService { .. } => "brew services".to_owned(),
            Owner::SystemdService { .. } => "systemd ollama.service".to_owned(),
            Owner::Other { pid, command } => match (pid, command) {
                (Some(p), Some(c)) => format!("another process: pid {p}, {}", shorten(c)),
                (Some(p), None) => format!("another process: pid {p}"),
                _ => "another process".to_owned(),
            },
            Owner::Remote => "a remote server".to_owned(),
        }
    }

    /// The exact fix when this server's effective context (`effective`) is below the
    /// configured `wanted` one.
    pub fn context_fix(&self, effective: u64, wanted: u32) -> String {
        let accept = format!(
            "Or run `ccr-setup up --accept-context` to continue with {effective} tokens (Claude Code's prompts alone are ~20k)."
        );
        let body = match self {
            Owner::Ours(_) => format!(
                "Our server runs with a different context: run `ccr-setup stop --all`, then `ccr-setup up` (it starts Ollama with OLLAMA_CONTEXT_LENGTH={wanted})."
            ),
            Owner::OurService { unit } => format!(
                "Our service {unit} runs with a different context: run `ccr-setup init` again so it is rewritten with OLLAMA_CONTEXT_LENGTH={wanted}, then `ccr-setup up`."
            ),
            Owner::OllamaApp { .. } => format!(
                "Ollama.app uses its own context setting: open Ollama → Settings → \"Context length\" and choose {} or more, then run `ccr-setup up` again. Or quit Ollama.app (menu bar → Quit Ollama) so `ccr-setup up` starts its own server with OLLAMA_CONTEXT_LENGTH={wanted}.",
                human_k(wanted)
            ),
            Owner::BrewService { .. } => format!(
                "brew's service plist cannot carry the setting (brew rewrites it): run `brew services stop ollama`, then `ccr-setup up`, which starts Ollama with OLLAMA_CONTEXT_LENGTH={wanted} (`ccr-setup init --service` makes that permanent)."
            ),
            Owner::SystemdService { .. } => format!(
                "Run `sudo systemctl edit ollama.service`, add the lines\n      [Service]\n      Environment=\"OLLAMA_CONTEXT_LENGTH={wanted}\"\n    then `sudo systemctl restart ollama` and `ccr-setup up` again."
            ),
            Owner::Other { pid, .. } => {
                let who = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
                format!(
                    "Restart that server{who} with OLLAMA_CONTEXT_LENGTH={wanted} in its environment, or stop it so `ccr-setup up` starts its own. ccr-setup never stops a server it did not start."
                )
            }
            Owner::Remote => format!(
                "Start the remote server with OLLAMA_CONTEXT_LENGTH={wanted}, or unset OLLAMA_HOST to use a local one."
            ),
        };
        format!("{body}\n    {accept}")
    }
}

impl Owner {
    /// The fix when the config asks for `slots` parallel slots and this server's owner
    /// is not ccr-setup, which then cannot pass `OLLAMA_NUM_PARALLEL` (None for ours).
    pub fn parallel_fix(&self, slots: u32) -> Option<String> {
        let var = format!("OLLAMA_NUM_PARALLEL={slots}");
        Some(match self {
            Owner::Ours(_) | Owner::OurService { .. } => return None,
            Owner::OllamaApp { .. } => format!(
                "Ollama.app does not take it from ccr-setup: run `launchctl setenv OLLAMA_NUM_PARALLEL {slots}` and restart Ollama.app, or quit Ollama.app so `ccr-setup up` starts its own server with {var}."
            ),
            Owner::BrewService { .. } => format!(
                "brew's service plist cannot carry it (brew rewrites it): run `brew services stop ollama`, then `ccr-setup up`, which starts Ollama with {var} (`ccr-setup init --service` makes that permanent)."
            ),
            Owner::SystemdService { .. } => format!(
                "Run `sudo systemctl edit ollama.service`, add the lines\n      [Service]\n      Environment=\"{var}\"\n    then `sudo systemctl restart ollama`."
            ),
            Owner::Other { .. } => format!(
                "Restart that server with {var} in its environment, or stop it so `ccr-setup up` starts its own."
            ),
            Owner::Remote => format!("Start the remote server with {var}."),
        })
    }
}

fn human_k(tokens: u32) -> String {
    if tokens.is_multiple_of(1024) {
        format!("{}k", tokens / 1024)
    } else {
        tokens.to_string()
    }
}

fn shorten(cmd: &str) -> String {
    if cmd.chars().count() > 80 {
        format!("{}…", cmd.chars().take(80).collect::<String>())
    } else {
        cmd.to_owned()
    }
}

/// Classify the server answering at `base_url`.
pub fn detect(base_url: &Url) -> Owner {
    if !super::is_local(base_url) {
        return Owner::Remote;
    }
    if let Some(owned) = serve::owned_server_at(base_url) {
        return Owner::Ours(owned);
    }
    let port = base_url
        .port_or_known_default()
        .unwrap_or(super::host::DEFAULT_PORT);
    let pid = listener_pid(port);
    if let Some(unit) = pid.and_then(our_launchd_agent_with_pid) {
        return Owner::OurService { unit };
    }
    let command = pid.and_then(serve::process_command);
    classify(pid, command.as_deref(), pid.and_then(cgroup_of).as_deref())
}

/// Pure classification from what we could learn about the listening process.
pub fn classify(pid: Option<u32>, command: Option<&str>, cgroup: Option<&str>) -> Owner {
    let cmd = command.unwrap_or("");
    if let Some(cg) = cgroup {
        if let Some(unit) = cg
            .split(['/', '\n'])
            .find(|part| part.starts_with("ccr-setup") && part.ends_with(".service"))
        {
            return Owner::OurService {
                unit: unit.to_owned(),
            };
        }
        if cg.contains("/ollama.service") {
            return Owner::SystemdService { pid };
        }
    }
    if cmd.contains("Ollama.app/") {
        return Owner::OllamaApp { pid };
    }
    let brew_plist =
        crate::paths::home_dir().join("Library/LaunchAgents/homebrew.mxcl.ollama.plist");
    if (cmd.contains("/Cellar/ollama/")
        || cmd.contains("/homebrew/")
        || cmd.contains("/opt/ollama/"))
        && brew_plist.exists()
    {
        return Owner::BrewService { pid };
    }
    Owner::Other {
        pid,
        command: command.map(str::to_owned),
    }
}

/// macOS: is `pid` the process of our launchd Ollama agent (`launchctl print` says
/// `pid = N`)? Only asked when the agent's plist is installed.
fn our_launchd_agent_with_pid(pid: u32) -> Option<String> {
    use crate::service::{Layout, Manager, ServiceKind};
    if Manager::detect() != Some(Manager::Launchd) {
        return None;
    }
    let layout = Layout::current();
    let kind = ServiceKind::Ollama;
    if !layout.service_file(Manager::Launchd, kind).is_file() {
        return None;
    }
    let cmd = crate::service::launchd::print_command(&layout, kind);
    let out = crate::service::run_command(&cmd).ok()?;
    let agent_pid = out
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("pid = "))
        .and_then(|p| p.trim().parse::<u32>().ok())?;
    (agent_pid == pid).then(|| kind.launchd_label())
}

fn cgroup_of(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()
}

/// The pid listening on TCP `port` on this machine, if we may see it.
pub fn listener_pid(port: u16) -> Option<u32> {
    if Path::new("/proc/net/tcp").exists() {
        return proc_listener_pid(port);
    }
    let out = std::process::Command::new("lsof")
        .args(["-nP", &format!("-iTCP:{port}"), "-sTCP:LISTEN", "-t"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// Linux: find the socket inode in /proc/net/tcp{,6}, then the process holding it.
fn proc_listener_pid(port: u16) -> Option<u32> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != "0A" {
                continue; // 0A = LISTEN
            }
            let local_port = f[1]
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) {
                inodes.push(format!("socket:[{}]", f[9]));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                if inodes.iter().any(|i| target.as_os_str() == i.as_str()) {
                    return Some(pid);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_known_owners() {
        assert_eq!(
            classify(
                Some(7),
                Some("/Applications/Ollama.app/Contents/Resources/ollama serve"),
                None
            ),
            Owner::OllamaApp { pid: Some(7) }
        );
        assert_eq!(
            classify(
                Some(7),
                Some("/usr/local/bin/ollama serve"),
                Some("0::/system.slice/ollama.service\n")
            ),
            Owner::SystemdService { pid: Some(7) }
        );
        assert_eq!(
            classify(
                Some(7),
                Some("ollama serve"),
                Some("0::/user.slice/user@1000.service/app.slice/ccr-setup-ollama.service\n")
            ),
            Owner::OurService {
                unit: "ccr-setup-ollama.service".into()
            }
        );
        assert!(matches!(
            classify(None, None, None),
            Owner::Other { pid: None, .. }
        ));
    }

    #[test]
    fn fixes_name_the_owner_and_the_value() {
        let app = Owner::OllamaApp { pid: None }.context_fix(4096, 32768);
        assert!(app.contains("Settings") && app.contains("32k"), "{app}");
        let brew = Owner::BrewService { pid: None }.context_fix(4096, 32768);
        assert!(brew.contains("brew services stop ollama"), "{brew}");
        let sd = Owner::SystemdService { pid: None }.context_fix(4096, 32768);
        assert!(
            sd.contains("Environment=\"OLLAMA_CONTEXT_LENGTH=32768\""),
            "{sd}"
        );
        let other = Owner::Other {
            pid: Some(9),
            command: None,
        }
        .context_fix(4096, 32768);
        assert!(
            other.contains("pid 9") && other.contains("--accept-context"),
            "{other}"
        );
    }

    #[test]
    fn finds_our_own_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        if Path::new("/proc/net/tcp").exists() {
            assert_eq!(listener_pid(port), Some(std::process::id()));
        }
    }
}
