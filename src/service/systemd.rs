//! systemd user units (Linux): `~/.config/systemd/user/ccr-setup-<name>.service`, and the
//! drop-in override for a system-wide `ollama.service` installed by Ollama's script.
//!
//! Unit files are text, so every value is escaped for systemd: arguments are
//! double-quoted with `\` and `"` backslash-escaped, `%` doubled (specifiers) and, in
//! `ExecStart=`, `$` doubled (variable expansion). `&`, `<` and spaces need nothing more.

use std::path::{Path, PathBuf};

use super::{check_text, ServiceCommand, ServiceError, ServiceKind, ServiceSpec};

const UNIT_TEMPLATE: &str = include_str!("../../templates/systemd-user.service");
const DROPIN_TEMPLATE: &str = include_str!("../../templates/systemd-ollama-dropin.conf");

/// The system-wide unit Ollama's install script creates.
pub const SYSTEM_OLLAMA_UNIT: &str = "ollama.service";
/// Our drop-in file name under `ollama.service.d/`.
pub const DROPIN_NAME: &str = "ccr-setup.conf";

/// Quote one `ExecStart=` argument (not the program: see [`quote_exec_program`]).
pub fn quote_exec_arg(arg: &str) -> String {
    quote_exec_word(arg, true)
}

/// Quote the program path of `ExecStart=`. systemd expands specifiers in it but not
/// variables, so `$` stays single (checked with `systemd-analyze verify`).
pub fn quote_exec_program(program: &str) -> String {
    quote_exec_word(program, false)
}

fn quote_exec_word(arg: &str, expands_variables: bool) -> String {
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('"');
    for c in arg.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            '$' if expands_variables => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Quote one `Environment=` assignment. `$` is literal there; `%` is still a specifier.
pub fn quote_env(key: &str, value: &str) -> String {
    let mut out = String::from("\"");
    for c in format!("{key}={value}").chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn environment_lines(env: &[(String, String)]) -> Result<String, ServiceError> {
    let mut out = String::new();
    for (k, v) in env {
        check_text(&format!("Environment {k}"), v)?;
        out.push_str(&format!("Environment={}\n", quote_env(k, v)));
    }
    Ok(out)
}

/// Render the user unit for `spec`.
pub fn render_unit(spec: &ServiceSpec) -> Result<String, ServiceError> {
    for arg in &spec.program {
        check_text("ExecStart", arg)?;
    }
    // systemd refuses an executable path holding quotes or backslashes ("Executable
    // name contains special characters"), however it is escaped. Arguments may.
    let program = spec.program.first().map(String::as_str).unwrap_or("");
    if program.contains(['"', '\'', '\\']) {
        return Err(ServiceError::UnsupportedExecutable {
            program: program.to_owned(),
        });
    }
    let exec_start = spec
        .program
        .iter()
        .enumerate()
        .map(|(i, a)| {
            if i == 0 {
                quote_exec_program(a)
            } else {
                quote_exec_arg(a)
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    // The proxy should come up after our Ollama when both are installed; `Wants=` is
    // weak, so a proxy routed elsewhere still starts without it. A team server's proxy
    // names no Ollama unit: its engine is the operator's.
    let ordering = if spec.kind == ServiceKind::Proxy && spec.after_our_ollama {
        format!("After={0}\nWants={0}\n", ServiceKind::Ollama.systemd_unit())
    } else {
        String::new()
    };
    Ok(UNIT_TEMPLATE
        .replace("{{description}}", spec.kind.description())
        .replace("{{ordering}}\n", &ordering)
        .replace("{{exec_start}}", &exec_start)
        .replace("{{environment}}", &environment_lines(&spec.env)?))
}

/// Render the drop-in that gives a system-wide `ollama.service` our tuned environment.
pub fn render_ollama_dropin(settings: &crate::config::OllamaSettings) -> String {
    let env: Vec<(String, String)> = settings
        .tuned_env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let lines = environment_lines(&env).expect("tuned env values are plain text");
    DROPIN_TEMPLATE.replace("{{environment}}\n", &lines)
}

/// Directories where a system-wide `ollama.service` may live, under `root` (`/` in
/// production, a temp dir in tests).
pub fn system_unit_dirs(root: &Path) -> Vec<PathBuf> {
    [
        "etc/systemd/system",
        "usr/lib/systemd/system",
        "lib/systemd/system",
    ]
    .iter()
    .map(|d| root.join(d))
    .collect()
}

/// The system-wide `ollama.service`, if Ollama's installer created one.
pub fn find_system_ollama_unit(root: &Path) -> Option<PathBuf> {
    system_unit_dirs(root)
        .into_iter()
        .map(|d| d.join(SYSTEM_OLLAMA_UNIT))
        .find(|p| p.is_file())
}

/// Where our drop-in for the system-wide unit goes.
pub fn dropin_path(root: &Path) -> PathBuf {
    root.join("etc/systemd/system")
        .join(format!("{SYSTEM_OLLAMA_UNIT}.d"))
        .join(DROPIN_NAME)
}

/// Commands that install the drop-in from `staged` (a file holding the rendered text)
/// and restart the system Ollama. Prefixed with `sudo` unless already root.
pub fn dropin_install_commands(staged: &Path, target: &Path, as_root: bool) -> Vec<ServiceCommand> {
    let sudo = |args: &[&str]| -> ServiceCommand {
        if as_root {
            ServiceCommand::new(args[0], &args[1..])
        } else {
            ServiceCommand::new("sudo", args)
        }
    };
    let staged = staged.to_string_lossy();
    let target = target.to_string_lossy();
    vec![
        sudo(&["install", "-D", "-m", "0644", &staged, &target]),
        sudo(&["systemctl", "daemon-reload"]),
        sudo(&["systemctl", "restart", SYSTEM_OLLAMA_UNIT]),
    ]
}

/// `systemctl --user is-active <unit>`: exit 0 when running.
pub fn is_active_command(kind: ServiceKind) -> ServiceCommand {
    ServiceCommand::new("systemctl", &["--user", "is-active", &kind.systemd_unit()])
}

/// `systemctl --user daemon-reload`: make systemd re-read unit files.
pub fn daemon_reload_command() -> ServiceCommand {
    ServiceCommand::new("systemctl", &["--user", "daemon-reload"])
}

/// After unit files changed: `daemon-reload`, `enable --now` for every changed or
/// inactive unit, `restart` for the running ones whose file changed.
pub fn load_commands(services: &[(ServiceKind, bool, bool)]) -> Vec<ServiceCommand> {
    let mut cmds = Vec::new();
    if services.iter().any(|s| s.1) {
        cmds.push(daemon_reload_command());
    }
    let enable: Vec<String> = services
        .iter()
        .filter(|s| s.1 || !s.2)
        .map(|s| s.0.systemd_unit())
        .collect();
    if !enable.is_empty() {
        let mut args = vec!["--user", "enable", "--now"];
        args.extend(enable.iter().map(String::as_str));
        cmds.push(ServiceCommand::new("systemctl", &args));
    }
    let restart: Vec<String> = services
        .iter()
        .filter(|s| s.1 && s.2)
        .map(|s| s.0.systemd_unit())
        .collect();
    if !restart.is_empty() {
        let mut args = vec!["--user", "restart"];
        args.extend(restart.iter().map(String::as_str));
        cmds.push(ServiceCommand::new("systemctl", &args));
    }
    cmds
}

/// `systemctl --user disable --now <units…>`.
pub fn unload_commands(kinds: &[ServiceKind]) -> Vec<ServiceCommand> {
    if kinds.is_empty() {
        return Vec::new();
    }
    let units: Vec<String> = kinds.iter().map(|k| k.systemd_unit()).collect();
    let mut args = vec!["--user", "disable", "--now"];
    args.extend(units.iter().map(String::as_str));
    vec![ServiceCommand::new("systemctl", &args)]
}

/// The program an installed unit's `ExecStart=` runs (first word, unescaped).
pub fn program_of(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let line = text
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("ExecStart="))
        .ok_or_else(|| format!("{} has no ExecStart=", path.display()))?;
    first_word(line.trim_start())
        .ok_or_else(|| format!("{}: cannot parse ExecStart=", path.display()))
}

fn first_word(s: &str) -> Option<String> {
    // systemd allows prefixes such as `-` or `@` before the path.
    let s = s.trim_start_matches(['-', '@', ':', '+', '!']);
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    let quote = match chars.peek() {
        Some('"') | Some('\'') => chars.next(),
        _ => None,
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '%' if chars.peek() == Some(&c) => {
                chars.next();
                out.push(c);
            }
            c if Some(c) == quote => return Some(out),
            c if quote.is_none() && c.is_whitespace() => return Some(out),
            c => out.push(c),
        }
    }
    quote.is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_args_escape_specifiers_variables_and_quotes() {
        assert_eq!(quote_exec_arg("/a b/x&y<z"), "\"/a b/x&y<z\"");
        assert_eq!(quote_exec_arg("50%$HOME\"\\"), "\"50%%$$HOME\\\"\\\\\"");
        assert_eq!(quote_env("K", "$V 10%"), "\"K=$V 10%%\"");
        assert_eq!(quote_exec_program("/a/$x%"), "\"/a/$x%%\"");
    }

    #[test]
    fn program_of_unescapes_what_render_escaped() {
        let dir = tempfile::tempdir().unwrap();
        let prog = "/home/A & B/<bin>/50% $x ${y}/ccr-setup";
        let spec = ServiceSpec::proxy(Path::new(prog), Path::new("/c.json"));
        let path = dir.path().join("u.service");
        std::fs::write(&path, render_unit(&spec).unwrap()).unwrap();
        assert_eq!(program_of(&path).unwrap(), prog);
    }

    #[test]
    fn quotes_in_the_executable_path_are_refused_with_a_fix() {
        let spec = ServiceSpec::proxy(
            Path::new("/home/o'brien/bin/ccr-setup"),
            Path::new("/c's.json"),
        );
        let err = render_unit(&spec).unwrap_err();
        assert!(err.to_string().contains("~/.local/bin"), "{err}");
        // A quote in an argument or the environment is fine.
        let spec = ServiceSpec::proxy(
            Path::new("/usr/bin/ccr-setup"),
            Path::new("/home/o'brien/c.json"),
        );
        assert!(render_unit(&spec)
            .unwrap()
            .contains("CCR_SETUP_CONFIG=/home/o'brien/c.json"));
    }

    #[test]
    fn load_reloads_enables_and_restarts_as_needed() {
        let cmds: Vec<String> = load_commands(&[
            (ServiceKind::Ollama, true, false),
            (ServiceKind::Proxy, true, true),
        ])
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            cmds,
            [
                "systemctl --user daemon-reload",
                "systemctl --user enable --now ccr-setup-ollama.service ccr-setup-proxy.service",
                "systemctl --user restart ccr-setup-proxy.service",
            ]
        );
        assert!(load_commands(&[(ServiceKind::Ollama, false, true)]).is_empty());
    }

    #[test]
    fn dropin_carries_the_context_length() {
        let s = crate::config::OllamaSettings {
            context_length: 16384,
            ..Default::default()
        };
        let text = render_ollama_dropin(&s);
        assert!(
            text.contains("[Service]\nEnvironment=\"OLLAMA_CONTEXT_LENGTH=16384\"\n"),
            "{text}"
        );
    }
}
