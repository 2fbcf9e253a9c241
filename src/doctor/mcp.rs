//! The MCP servers Claude Code will load, read from its config files, for the context
//! budget: each enabled server's tool schemas go into every request.
//!
//! Claude Code 2.1.197 keeps user-scope servers in `~/.claude.json` `mcpServers` and
//! per-project ("local") ones in `projects[<dir>].mcpServers`; a server switched off in
//! `/mcp` is listed in `projects[<dir>].disabledMcpServers` (checked on the real binary:
//! its tools leave the request). `mcpServers` in `~/.claude/settings.json` is read too.

use std::path::Path;

use serde_json::Value;

/// The enabled MCP servers' names (sorted, each once) for a session started in
/// `project`. A missing file counts as none; an unreadable one is an error.
pub fn enabled_servers(
    claude_json: &Path,
    settings: &Path,
    project: &Path,
) -> Result<Vec<String>, String> {
    let doc = read(claude_json)?;
    let settings = read(settings)?;
    let local = doc
        .get("projects")
        .and_then(|p| p.get(project.to_string_lossy().as_ref()));
    let disabled: Vec<&str> = local
        .and_then(|l| l.get("disabledMcpServers"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut names: Vec<String> = [Some(&doc), local, Some(&settings)]
        .into_iter()
        .flatten()
        .filter_map(|d| d.get("mcpServers").and_then(Value::as_object))
        .flat_map(|servers| servers.keys().cloned())
        .filter(|name| !disabled.contains(&name.as_str()))
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

fn read(path: &Path) -> Result<Value, String> {
    match std::fs::read_to_string(path) {
        Ok(t) if t.trim().is_empty() => Ok(Value::Null),
        Ok(t) => {
            serde_json::from_str(&t).map_err(|e| format!("{} is not JSON: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Value::Null),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_local_and_settings_servers_minus_disabled() {
        let dir = tempfile::tempdir().unwrap();
        let cj = dir.path().join(".claude.json");
        let settings = dir.path().join("settings.json");
        let project = Path::new("/work/app");
        assert_eq!(enabled_servers(&cj, &settings, project), Ok(vec![]));
        std::fs::write(
            &cj,
            r#"{"mcpServers": {"github": {}, "fs": {}},
                "projects": {"/work/app": {"mcpServers": {"db": {}}, "disabledMcpServers": ["fs"]},
                             "/elsewhere": {"mcpServers": {"other": {}}}}}"#,
        )
        .unwrap();
        std::fs::write(&settings, r#"{"mcpServers": {"github": {}, "jira": {}}}"#).unwrap();
        assert_eq!(
            enabled_servers(&cj, &settings, project).unwrap(),
            ["db", "github", "jira"]
        );
        std::fs::write(&settings, "{oops").unwrap();
        let err = enabled_servers(&cj, &settings, project).unwrap_err();
        assert!(err.contains("settings.json is not JSON"), "{err}");
    }
}
