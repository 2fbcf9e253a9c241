//! The context budget: how much of the local window Claude Code's fixed prompt leaves
//! for the conversation (see [`crate::context_budget`]).

use super::*;
use crate::context_budget::{self, Budget};

/// The window the local model serves: the `Router.default` provider's
/// `context_window` when the config sets one (what the proxy's guard enforces), else
/// the Ollama context the config asks for.
fn window(f: &Facts) -> u64 {
    f.config
        .config()
        .and_then(|c| {
            let name = &c.router.default.provider;
            c.providers.iter().find(|p| &p.name == name)?.context_window
        })
        .unwrap_or(f.context_length)
        .into()
}

/// What happens when the conversation fills the window, by the default provider's
/// `context_editing`.
fn when_full(f: &Facts) -> String {
    let editing = f
        .config
        .config()
        .and_then(|c| c.provider(&c.router.default.provider))
        .map(|p| p.context_editing)
        .unwrap_or_default();
    match editing {
        crate::config::ContextEditing::Auto | crate::config::ContextEditing::CloudFirst => {
            "when the conversation fills the window, the proxy clears the oldest tool results (a stub says how to get each back) and the session goes on; what cannot be made to fit is refused as \"prompt is too long\", and Claude Code compacts".to_owned()
        }
        crate::config::ContextEditing::Off => {
            "when the conversation fills the window, the proxy refuses it as \"prompt is too long\" (context_editing is off) and Claude Code compacts".to_owned()
        }
    }
}

fn detail(b: &Budget, servers: &[String]) -> String {
    let mut d = format!(
        "Claude Code 2.1.197's system prompt and default tools: {} tokens (measured, o200k)",
        context_budget::CLAUDE_CODE_FIXED_TOKENS
    );
    if b.mcp_servers > 0 {
        d.push_str(&format!(
            "\n{} MCP server(s) ({}): about {} tokens, estimated at {} per server (each costs what its tools' schemas cost)",
            b.mcp_servers,
            servers.join(", "),
            b.fixed - context_budget::CLAUDE_CODE_FIXED_TOKENS,
            context_budget::MCP_SERVER_TOKENS_ESTIMATE
        ));
    }
    d
}

pub(super) fn claude_budget(f: &Facts) -> Check {
    let (servers, unread) = match &f.mcp_servers {
        Ok(s) => (s.as_slice(), None),
        Err(e) => (&[][..], Some(e.clone())),
    };
    let b = context_budget::budget(window(f), servers.len());
    let summary = format!(
        "fixed prompt {} tokens, left for the conversation {} of the {}-token window{}",
        b.fixed,
        b.left,
        b.window,
        if b.mcp_servers > 0 {
            " (MCP servers estimated)"
        } else {
            ""
        }
    );
    let mut detail = detail(&b, servers);
    detail.push('\n');
    detail.push_str(&when_full(f));
    if let Some(e) = unread {
        detail.push_str(&format!("\nMCP servers not counted: {e}"));
    }
    if !b.is_low() {
        return Check::ok("claude.budget", summary).with_detail(detail);
    }
    let mut fix = vec![
        "raise the context: `ccr-setup init --context-length 65536` (init recommends a window that fits this machine's memory), then `ccr-setup up`".to_owned(),
    ];
    fix.push(format!(
        "start sessions with `ccr-setup code --lean`: it leaves rarely useful tools out and saves {} tokens",
        context_budget::LEAN_SAVING_TOKENS
    ));
    if b.mcp_servers > 0 {
        fix.push("disable MCP servers this project does not need (`/mcp` in Claude Code, or `claude mcp remove NAME`)".to_owned());
    }
    Check::warn(
        "claude.budget",
        format!(
            "{summary}: under {} tokens left, the proxy clears old tool results after a few file reads (each clear makes the local server re-read part of the prompt)",
            context_budget::LOW_LEFT_TOKENS
        ),
        fix.join("\n"),
    )
    .with_detail(detail)
}
