//! launchd user agents (macOS): `~/Library/LaunchAgents/dev.ccr-setup.<name>.plist`.
//!
//! The plist is built with the `plist` crate from `templates/launchd-agent.plist`, never
//! by string pasting, so a home directory with `&`, `<` or spaces still yields valid XML.
//! Loading uses the modern domain commands: `launchctl bootstrap gui/<uid> <plist>`,
//! `bootout gui/<uid>/<label>` and `kickstart -k gui/<uid>/<label>`.

use std::path::Path;

use plist::{Dictionary, Value};

use super::{check_text, Layout, ServiceCommand, ServiceError, ServiceKind, ServiceSpec};

const TEMPLATE: &str = include_str!("../../templates/launchd-agent.plist");

/// Render the agent plist for `spec` (XML, tab-indented, as launchd's own tools write).
pub fn render_plist(layout: &Layout, spec: &ServiceSpec) -> Result<String, ServiceError> {
    for arg in &spec.program {
        check_text("ProgramArguments", arg)?;
    }
    for (k, v) in &spec.env {
        check_text(&format!("EnvironmentVariables.{k}"), v)?;
    }
    let mut dict: Dictionary = Value::from_reader_xml(TEMPLATE.as_bytes())?
        .into_dictionary()
        .expect("templates/launchd-agent.plist is a dictionary");
    let label = spec.kind.launchd_label();
    let logs = layout.launchd_logs_dir();
    // Keys in a plist dictionary are kept in insertion order; put the identifying ones
    // first so the file reads naturally.
    let mut out = Dictionary::new();
    out.insert("Label".into(), Value::String(label));
    out.insert(
        "ProgramArguments".into(),
        Value::Array(spec.program.iter().cloned().map(Value::String).collect()),
    );
    let env: Dictionary = spec
        .env
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    out.insert("EnvironmentVariables".into(), Value::Dictionary(env));
    out.insert(
        "StandardOutPath".into(),
        Value::String(path_string(
            &logs.join(format!("{}.out.log", spec.kind.short())),
        )),
    );
    out.insert(
        "StandardErrorPath".into(),
        Value::String(path_string(
            &logs.join(format!("{}.err.log", spec.kind.short())),
        )),
    );
    for (k, v) in std::mem::take(&mut dict) {
        out.insert(k, v);
    }
    let mut bytes = Vec::new();
    Value::Dictionary(out).to_writer_xml(&mut bytes)?;
    let mut text = String::from_utf8(bytes).expect("the plist crate writes UTF-8");
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

fn path_string(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn target(layout: &Layout, kind: ServiceKind) -> String {
    format!("{}/{}", layout.launchd_domain(), kind.launchd_label())
}

/// `launchctl print gui/<uid>/<label>`: exit 0 when the agent is loaded.
pub fn print_command(layout: &Layout, kind: ServiceKind) -> ServiceCommand {
    ServiceCommand::new("launchctl", &["print", &target(layout, kind)])
}

/// `launchctl bootstrap gui/<uid> <plist>`: load (and, with RunAtLoad, start) the agent.
pub fn bootstrap_command(layout: &Layout, kind: ServiceKind) -> ServiceCommand {
    let plist = layout.service_file(super::Manager::Launchd, kind);
    ServiceCommand::new(
        "launchctl",
        &["bootstrap", &layout.launchd_domain(), &path_string(&plist)],
    )
}

/// `launchctl bootout gui/<uid>/<label>`: stop and unload the agent.
pub fn bootout_command(layout: &Layout, kind: ServiceKind) -> ServiceCommand {
    ServiceCommand::new("launchctl", &["bootout", &target(layout, kind)])
}

/// `launchctl kickstart -k gui/<uid>/<label>`: (re)start a loaded agent.
pub fn kickstart_command(layout: &Layout, kind: ServiceKind) -> ServiceCommand {
    ServiceCommand::new("launchctl", &["kickstart", "-k", &target(layout, kind)])
}

/// Load what is not loaded; reload (bootout + bootstrap) what is loaded with a changed
/// file, because launchd keeps the old definition until then.
pub fn load_commands(
    layout: &Layout,
    services: &[(ServiceKind, bool, bool)],
) -> Vec<ServiceCommand> {
    let mut cmds = Vec::new();
    for &(kind, changed, loaded) in services {
        match (changed, loaded) {
            (true, true) => {
                cmds.push(bootout_command(layout, kind));
                cmds.push(bootstrap_command(layout, kind));
            }
            (_, false) => cmds.push(bootstrap_command(layout, kind)),
            (false, true) => {}
        }
    }
    cmds
}

/// The program (first of ProgramArguments) an installed plist runs.
pub fn program_of(path: &Path) -> Result<String, String> {
    let value = Value::from_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
    value
        .as_dictionary()
        .and_then(|d| d.get("ProgramArguments"))
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_string)
        .map(str::to_owned)
        .ok_or_else(|| format!("{} has no ProgramArguments", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn layout(home: &str) -> Layout {
        Layout {
            home: PathBuf::from(home),
            uid: 501,
        }
    }

    #[test]
    fn plist_round_trips_odd_paths() {
        let home = "/Users/A & B <x> \"q\" 'y' %p $HOME";
        let spec = ServiceSpec::proxy(
            &PathBuf::from(format!("{home}/bin/ccr-setup")),
            &PathBuf::from(format!("{home}/.claude-code-router/config.json")),
        );
        let text = render_plist(&layout(home), &spec).unwrap();
        assert!(text.contains("&amp;") && text.contains("&lt;x>") || text.contains("&lt;x&gt;"));
        let v = Value::from_reader_xml(text.as_bytes()).unwrap();
        let d = v.as_dictionary().unwrap();
        assert_eq!(
            d.get("ProgramArguments").unwrap().as_array().unwrap()[0]
                .as_string()
                .unwrap(),
            format!("{home}/bin/ccr-setup")
        );
        assert_eq!(
            d.get("Label").unwrap().as_string(),
            Some("dev.ccr-setup.proxy")
        );
        assert_eq!(d.get("RunAtLoad").unwrap().as_boolean(), Some(true));
    }

    #[test]
    fn control_characters_are_refused() {
        let spec = ServiceSpec {
            kind: ServiceKind::Ollama,
            program: vec!["/bin/ollama".into(), "serve".into()],
            env: vec![("X".into(), "a\nb".into())],
            after_our_ollama: false,
        };
        assert!(matches!(
            render_plist(&layout("/h"), &spec),
            Err(ServiceError::ControlCharacter { .. })
        ));
    }

    #[test]
    fn reload_only_what_changed() {
        let l = layout("/h");
        let cmds: Vec<String> = load_commands(
            &l,
            &[
                (ServiceKind::Ollama, false, true),
                (ServiceKind::Proxy, true, true),
            ],
        )
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            cmds,
            [
                "launchctl bootout gui/501/dev.ccr-setup.proxy",
                "launchctl bootstrap gui/501 /h/Library/LaunchAgents/dev.ccr-setup.proxy.plist"
            ]
        );
    }
}
