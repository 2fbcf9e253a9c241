//! Pre-seeding `~/.claude.json` so Claude Code skips its onboarding screens (which
//! would otherwise push a login to Anthropic before it ever talks to the proxy).

use serde_json::{json, Value};

/// Why `~/.claude.json` was left alone.
#[derive(Debug, thiserror::Error)]
pub enum ClaudeJsonError {
    #[error("{path} is not valid JSON ({message}); fix it or move it away and re-run")]
    Invalid { path: String, message: String },
    #[error("{path} does not hold a JSON object; fix it or move it away and re-run")]
    NotAnObject { path: String },
}

/// The new content of `~/.claude.json` when `hasCompletedOnboarding` must be added, or
/// `None` when it is already set. `existing` is the current file content, if any; every
/// other key is kept.
pub fn seeded(path: &str, existing: Option<&str>) -> Result<Option<String>, ClaudeJsonError> {
    let mut doc = match existing {
        None => json!({}),
        Some(text) if text.trim().is_empty() => json!({}),
        Some(text) => {
            serde_json::from_str::<Value>(text).map_err(|e| ClaudeJsonError::Invalid {
                path: path.to_owned(),
                message: e.to_string(),
            })?
        }
    };
    let obj = doc
        .as_object_mut()
        .ok_or_else(|| ClaudeJsonError::NotAnObject {
            path: path.to_owned(),
        })?;
    if obj.contains_key("hasCompletedOnboarding") {
        return Ok(None);
    }
    obj.insert("hasCompletedOnboarding".into(), json!(true));
    let mut text = serde_json::to_string_pretty(&doc).expect("a JSON value serializes");
    text.push('\n');
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_the_flag_and_keeps_other_keys() {
        let out = seeded("c", Some(r#"{"userID":"abc","projects":{"/x":{}}}"#))
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["hasCompletedOnboarding"], true);
        assert_eq!(v["userID"], "abc");
        assert!(v["projects"]["/x"].is_object());
        assert!(seeded("c", Some(&out)).unwrap().is_none());
        // A user who set it to false on purpose keeps that.
        assert!(seeded("c", Some(r#"{"hasCompletedOnboarding":false}"#))
            .unwrap()
            .is_none());
        assert!(seeded("c", None).unwrap().is_some());
        assert!(seeded("c", Some("[1]")).is_err());
        assert!(seeded("c", Some("{oops")).is_err());
    }
}
