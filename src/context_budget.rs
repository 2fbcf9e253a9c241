//! Claude Code's fixed prompt against the local context window.
//!
//! Before the user types anything, Claude Code 2.1.197 sends a system prompt, an agent
//! and skill list and 27 tool schemas; every MCP server adds its tools' schemas. On a
//! 32k local window that fixed part decides how much conversation fits before
//! compaction or the proxy's context guard. The figures here are o200k tokens (the
//! proxy's counter) measured on the real binary: the default is recomputed from the
//! recorded session by this module's test, the per-MCP-server figure comes from
//! `scripts/bench/claude_overhead.py` and is an estimate (a server costs what its tools'
//! schemas cost). Pure arithmetic; `doctor` reads the user's MCP servers and prints.

/// The fixed prompt of Claude Code 2.1.197 with its default tools: the first main
/// request of `tests/fixtures/session/claude-code-2.1.197.jsonl` without the user's
/// typed text (system prompt, tool schemas, the context reminder and the agent and
/// skill list), in o200k tokens as the proxy counts them.
pub const CLAUDE_CODE_FIXED_TOKENS: u64 = 20_405;

/// What one MCP server adds, measured with a four-tool stdio server (an issue
/// tracker's search, read, create and comment) in `scripts/bench/claude_overhead.py`.
/// Real servers range from one tool to dozens, so this is an estimate.
pub const MCP_SERVER_TOKENS_ESTIMATE: u64 = 447;

/// Below this many tokens left for the conversation, a session compacts after a
/// few file reads: `doctor` warns.
pub const LOW_LEFT_TOKENS: u64 = 12_000;

/// The tools `ccr-setup code --lean` takes out of Claude Code's requests: scheduling
/// and `/loop` (Workflow, Cron*, ScheduleWakeup), worktrees (used only when asked for),
/// notebooks, the web (WebSearch is Anthropic's server-side search, which a local
/// model cannot run), agent teams (SendMessage), the code-review UI (ReportFindings)
/// and the deprecated TaskOutput. Reading, editing, Bash, subagents, plan mode, the
/// task list, skills and questions to the user stay.
pub const LEAN_DISALLOWED_TOOLS: &[&str] = &[
    "Workflow",
    "CronCreate",
    "CronDelete",
    "CronList",
    "ScheduleWakeup",
    "EnterWorktree",
    "ExitWorktree",
    "NotebookEdit",
    "WebFetch",
    "WebSearch",
    "SendMessage",
    "ReportFindings",
    "TaskOutput",
];

/// What `--lean` saves on Claude Code 2.1.197's first request, in o200k tokens
/// (measured on the real binary by `scripts/bench/claude_overhead.py`).
pub const LEAN_SAVING_TOKENS: u64 = 10_336;

/// Claude Code's arguments with the lean profile added: `--disallowedTools` goes
/// after the user's own options (its value list would otherwise swallow a prompt that
/// follows it) but before a `--` that ends them.
pub fn with_lean_args(args: &[String]) -> Vec<String> {
    let at = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let mut out = args[..at].to_vec();
    out.push(format!(
        "--disallowedTools={}",
        LEAN_DISALLOWED_TOOLS.join(",")
    ));
    out.extend_from_slice(&args[at..]);
    out
}

/// The tokens the fixed prompt leaves in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Default tools plus the MCP servers' estimate.
    pub fixed: u64,
    /// How many MCP servers the estimate includes.
    pub mcp_servers: usize,
    /// The local context window.
    pub window: u64,
    /// `window - fixed` (0 when the fixed part alone overflows).
    pub left: u64,
}

impl Budget {
    pub fn is_low(&self) -> bool {
        self.left < LOW_LEFT_TOKENS
    }
}

/// The budget of a `window`-token context with `mcp_servers` MCP servers enabled.
pub fn budget(window: u64, mcp_servers: usize) -> Budget {
    let fixed = CLAUDE_CODE_FIXED_TOKENS + MCP_SERVER_TOKENS_ESTIMATE * mcp_servers as u64;
    Budget {
        fixed,
        mcp_servers,
        window,
        left: window.saturating_sub(fixed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::tokens::TokenEstimator;
    use crate::proxy::wire::anthropic::MessagesRequest;
    use serde_json::Value;

    const FIXTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/session/claude-code-2.1.197.jsonl"
    );

    /// The first main-loop request with the user's typed text taken out: what Claude
    /// Code sends before the user has said anything.
    fn first_main_request_without_user_text() -> MessagesRequest {
        let text = std::fs::read_to_string(FIXTURE).expect("the recorded session");
        let mut body = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line"))
            .find(|v| v["kind"] == "main")
            .expect("a main-loop request")["body"]
            .take();
        let first = &mut body["messages"][0]["content"];
        let blocks = first.as_array_mut().expect("content blocks");
        let before = blocks.len();
        blocks.retain(|b| {
            b["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("<system-reminder>"))
        });
        assert_eq!(blocks.len(), before - 1, "exactly one typed prompt");
        serde_json::from_value(body).expect("the proxy parses it")
    }

    #[test]
    fn fixed_tokens_are_recomputed_from_the_recording() {
        let req = first_main_request_without_user_text();
        assert_eq!(req.tools.as_ref().map(Vec::len), Some(27));
        let count = TokenEstimator::new(1024).count(&req);
        assert!(!count.estimated);
        assert_eq!(count.total(), CLAUDE_CODE_FIXED_TOKENS);
    }

    #[test]
    fn lean_saving_is_recomputed_from_the_recording() {
        let mut req = first_main_request_without_user_text();
        let estimator = TokenEstimator::new(1024);
        let before = estimator.count(&req).total();
        let tools = req.tools.as_mut().unwrap();
        tools.retain(|t| !LEAN_DISALLOWED_TOOLS.contains(&t.name.as_str()));
        assert_eq!(tools.len(), 27 - LEAN_DISALLOWED_TOOLS.len());
        assert_eq!(before - estimator.count(&req).total(), LEAN_SAVING_TOKENS);
    }

    #[test]
    fn lean_args_go_after_the_users_options_and_before_a_double_dash() {
        let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        let flag = format!("--disallowedTools={}", LEAN_DISALLOWED_TOOLS.join(","));
        assert_eq!(with_lean_args(&[]), vec![flag.clone()]);
        assert_eq!(
            with_lean_args(&s(&["-p", "fix it"])),
            ["-p".into(), "fix it".into(), flag.clone()]
        );
        assert_eq!(
            with_lean_args(&s(&["--model", "x", "--", "--not-an-option"])),
            [
                "--model".into(),
                "x".into(),
                flag,
                "--".into(),
                "--not-an-option".into()
            ]
        );
        // The tools a local session works with stay.
        for keep in [
            "Read",
            "Edit",
            "Write",
            "Bash",
            "Agent",
            "TaskCreate",
            "Skill",
        ] {
            assert!(!LEAN_DISALLOWED_TOOLS.contains(&keep), "{keep}");
        }
    }

    #[test]
    fn budget_subtracts_the_fixed_part_and_mcp_servers() {
        let b = budget(32_768, 0);
        assert_eq!(b.fixed, CLAUDE_CODE_FIXED_TOKENS);
        assert_eq!(b.left, 32_768 - CLAUDE_CODE_FIXED_TOKENS);
        let b3 = budget(32_768, 3);
        assert_eq!(b3.fixed, b.fixed + 3 * MCP_SERVER_TOKENS_ESTIMATE);
        assert_eq!(budget(8_192, 0).left, 0);
        assert!(budget(8_192, 0).is_low());
        assert!(!budget(65_536, 0).is_low());
    }
}
