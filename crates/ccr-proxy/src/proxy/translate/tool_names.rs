//! Reversible tool-name mapping. OpenAI rejects function names longer than 64
//! characters or outside `[A-Za-z0-9_-]`; MCP tools in Claude Code often break both
//! rules (`mcp__server-name__some.long.tool`). Such names are replaced by a sanitised,
//! truncated name with a hash suffix, and the answer's names are mapped back.
//!
//! Names that are already valid are never touched, so the common case costs one scan
//! per name and no allocation in the map.

use std::borrow::Cow;
use std::collections::HashMap;

/// OpenAI's limit on function names.
pub const MAX_NAME_LEN: usize = 64;

/// The mapping for one request. Empty (and free) when every name is valid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolNameMap {
    to_upstream: HashMap<String, String>,
    to_client: HashMap<String, String>,
}

fn is_valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// FNV-1a: stable across runs and platforms, which a std hasher is not.
fn fnv1a(s: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The upstream-safe form of an invalid name: sanitised, cut to 55 characters, plus
/// `_` and 8 hex digits of the original's hash (64 in all).
fn shorten(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(MAX_NAME_LEN - 9)
        .collect();
    out.push_str(&format!("_{:08x}", fnv1a(name)));
    out
}

impl ToolNameMap {
    /// Register a name the client uses (tool definitions, tool_use in history,
    /// tool_choice). Returns the name to send upstream.
    pub fn register<'a>(&mut self, name: &'a str) -> Cow<'a, str> {
        if is_valid(name) {
            return Cow::Borrowed(name);
        }
        if let Some(mapped) = self.to_upstream.get(name) {
            return Cow::Owned(mapped.clone());
        }
        let mapped = shorten(name);
        self.to_upstream.insert(name.to_owned(), mapped.clone());
        self.to_client.insert(mapped.clone(), name.to_owned());
        Cow::Owned(mapped)
    }

    /// The client's name for a name the upstream answered with.
    pub fn to_client<'a>(&'a self, upstream_name: &'a str) -> &'a str {
        self.to_client
            .get(upstream_name)
            .map(String::as_str)
            .unwrap_or(upstream_name)
    }

    pub fn is_empty(&self) -> bool {
        self.to_upstream.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names_pass_untouched() {
        let mut m = ToolNameMap::default();
        assert!(matches!(m.register("Bash"), Cow::Borrowed("Bash")));
        assert!(matches!(m.register("mcp__x__y-z"), Cow::Borrowed(_)));
        assert!(m.is_empty());
        assert_eq!(m.to_client("Bash"), "Bash");
    }

    #[test]
    fn long_and_odd_names_map_reversibly() {
        let long = format!("mcp__server__{}", "a".repeat(80));
        let dotted = "mcp__my.server__read file";
        let mut m = ToolNameMap::default();
        let long_up = m.register(&long).into_owned();
        let dotted_up = m.register(dotted).into_owned();
        for up in [&long_up, &dotted_up] {
            assert!(is_valid(up), "{up}");
        }
        assert_eq!(long_up.len(), MAX_NAME_LEN);
        assert_eq!(m.to_client(&long_up), long);
        assert_eq!(m.to_client(&dotted_up), dotted);
        // Stable: registering again (tool_use in history) gives the same name.
        assert_eq!(m.register(dotted), dotted_up);
        // Two long names sharing a 55-character prefix still differ.
        let long2 = format!("mcp__server__{}b", "a".repeat(80));
        assert_ne!(m.register(&long2), long_up);
    }
}
