//! Matching a tool name the model invented to one the client offered.
//!
//! gpt-oss was trained on its own built-in tools and a `functions.` namespace
//! (harmony's `to=functions.Bash`), and small models drift in case and separators.
//! A name is matched only when exactly one offered tool fits; an ambiguous name is
//! left unrepaired (and the call retried), never guessed.

use serde_json::{json, Map, Value};

/// How a name was matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameFix {
    /// Offered as is.
    Exact,
    /// After dropping a namespace (`functions.Bash`, `tools:Read`).
    Namespace,
    /// Case, `-`/`_`, or spaces differ.
    Spelling,
    /// One of gpt-oss's built-in tools, mapped to the offered equivalent (its
    /// arguments are rewritten to fit, see [`alias_arguments`]).
    Alias,
}

/// gpt-oss's built-in tools and the Claude Code tool that does the same job.
const ALIASES: &[(&str, &str)] = &[
    ("container.exec", "Bash"),
    ("container_exec", "Bash"),
    ("exec", "Bash"),
    ("shell", "Bash"),
    ("bash", "Bash"),
    ("terminal", "Bash"),
    ("python", "Bash"),
    ("browser.search", "WebSearch"),
    ("web_search", "WebSearch"),
];

/// The offered tool `name` stands for, and how it was matched; None when no offered
/// tool fits or more than one does.
pub fn resolve<'a>(name: &str, offered: &'a [String]) -> Option<(&'a str, NameFix)> {
    let name = name.trim();
    if let Some(exact) = offered.iter().find(|o| *o == name) {
        return Some((exact, NameFix::Exact));
    }
    let bare = strip_namespace(name);
    if bare != name {
        if let Some(exact) = offered.iter().find(|o| *o == bare) {
            return Some((exact, NameFix::Namespace));
        }
    }
    if let Some(found) = unique(offered, |o| same_spelling(o, bare)) {
        return Some((found, NameFix::Spelling));
    }
    let lower = name.to_ascii_lowercase();
    let alias = ALIASES
        .iter()
        .find(|(from, _)| *from == lower || *from == bare.to_ascii_lowercase())?;
    offered
        .iter()
        .find(|o| *o == alias.1)
        .map(|o| (o.as_str(), NameFix::Alias))
}

/// Rewrite a built-in tool's arguments into the offered tool's shape: `container.exec`
/// takes `cmd` as an argv array, `python` takes the code itself. None when the
/// arguments do not have the built-in's shape.
pub fn alias_arguments(invented: &str, args: Value) -> Option<Value> {
    let lower = invented.trim().to_ascii_lowercase();
    let bare = strip_namespace(&lower).to_owned();
    match bare.as_str() {
        "exec" | "container.exec" | "container_exec" | "shell" | "bash" | "terminal" => {
            let mut obj = into_object(args)?;
            let command = match obj.remove("cmd").or_else(|| obj.remove("command"))? {
                Value::String(s) => s,
                Value::Array(argv) => shell_command(&argv)?,
                _ => return None,
            };
            let mut out = Map::new();
            out.insert("command".into(), Value::String(command));
            if let Some(t) = obj.remove("timeout").filter(Value::is_number) {
                out.insert("timeout".into(), t);
            }
            Some(Value::Object(out))
        }
        "python" => {
            let code = match args {
                Value::String(s) => s,
                Value::Object(mut o) => match o.remove("code").or_else(|| o.remove("input"))? {
                    Value::String(s) => s,
                    _ => return None,
                },
                _ => return None,
            };
            Some(json!({
                "command": format!("python3 - <<'CCR_PY'\n{code}\nCCR_PY"),
                "description": "Run the model's Python snippet"
            }))
        }
        "browser.search" | "search" | "web_search" => {
            let mut obj = into_object(args)?;
            let query = obj.remove("query").or_else(|| obj.remove("q"))?;
            query.is_string().then(|| json!({ "query": query }))
        }
        _ => None,
    }
}

/// argv → one shell command line; `["bash", "-lc", "ls -la"]` is the line itself.
fn shell_command(argv: &[Value]) -> Option<String> {
    let words: Vec<&str> = argv.iter().map(Value::as_str).collect::<Option<_>>()?;
    match words.as_slice() {
        [] => None,
        [shell, flag, line] if is_shell(shell) && flag.starts_with('-') && flag.ends_with('c') => {
            Some((*line).to_owned())
        }
        _ => Some(
            words
                .iter()
                .map(|w| shell_quote(w))
                .collect::<Vec<_>>()
                .join(" "),
        ),
    }
}

fn is_shell(word: &str) -> bool {
    matches!(
        word.rsplit('/').next(),
        Some("bash" | "sh" | "zsh" | "dash")
    )
}

fn shell_quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if safe {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

fn into_object(v: Value) -> Option<Map<String, Value>> {
    match v {
        Value::Object(o) => Some(o),
        _ => None,
    }
}

/// `functions.Bash` → `Bash`, `tools:Read` → `Read`, `default_api.Grep` → `Grep`.
fn strip_namespace(name: &str) -> &str {
    name.rsplit(['.', ':', '/']).next().unwrap_or(name)
}

fn same_spelling(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.chars()
            .filter(|c| !matches!(c, '-' | '_' | ' '))
            .map(|c| c.to_ascii_lowercase())
            .collect::<String>()
    };
    norm(a) == norm(b)
}

fn unique(offered: &[String], fits: impl Fn(&str) -> bool) -> Option<&str> {
    let mut found = offered.iter().filter(|o| fits(o));
    let first = found.next()?;
    found.next().is_none().then_some(first.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered() -> Vec<String> {
        [
            "Bash",
            "Read",
            "Edit",
            "WebSearch",
            "mcp__github__create_issue",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn names_match_only_when_one_tool_fits() {
        let o = offered();
        assert_eq!(resolve("Bash", &o), Some(("Bash", NameFix::Exact)));
        assert_eq!(
            resolve("functions.Bash", &o),
            Some(("Bash", NameFix::Namespace))
        );
        assert_eq!(resolve("read", &o), Some(("Read", NameFix::Spelling)));
        assert_eq!(
            resolve("mcp__github__create-issue", &o),
            Some(("mcp__github__create_issue", NameFix::Spelling))
        );
        assert_eq!(
            resolve("container.exec", &o),
            Some(("Bash", NameFix::Alias))
        );
        assert_eq!(resolve("python", &o), Some(("Bash", NameFix::Alias)));
        assert_eq!(resolve("Write", &o), None);
        // Two offered tools that differ only in case: ambiguous.
        let twins = vec!["read".to_owned(), "Read".to_owned()];
        assert_eq!(resolve("READ", &twins), None);
        // An alias needs its equivalent to be offered.
        assert_eq!(resolve("container.exec", &["Read".to_owned()]), None);
    }

    #[test]
    fn builtin_arguments_become_the_offered_tools() {
        assert_eq!(
            alias_arguments(
                "container.exec",
                json!({"cmd": ["bash", "-lc", "ls -la"], "timeout": 10})
            ),
            Some(json!({"command": "ls -la", "timeout": 10}))
        );
        assert_eq!(
            alias_arguments(
                "container.exec",
                json!({"cmd": ["grep", "-rn", "a b", "src"]})
            ),
            Some(json!({"command": "grep -rn 'a b' src"}))
        );
        let py = alias_arguments("python", json!("print(1)")).unwrap();
        assert!(py["command"].as_str().unwrap().contains("print(1)"));
        assert_eq!(
            alias_arguments("browser.search", json!({"query": "rust"})),
            Some(json!({"query": "rust"}))
        );
        assert_eq!(alias_arguments("container.exec", json!({"x": 1})), None);
    }
}
