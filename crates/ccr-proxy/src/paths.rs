//! Where ccr-setup keeps its files. Everything hangs off `$HOME` so tests can
//! point a whole run at a temporary home directory.

use std::path::PathBuf;

/// The user's home directory (`$HOME` first, as every Unix tool does).
pub fn home_dir() -> PathBuf {
    std::env::var_os(crate::env_vars::EnvVars::HOME)
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(dirs::home_dir)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// `~/.claude-code-router`, shared with the Node claude-code-router so users can switch.
pub fn router_dir() -> PathBuf {
    home_dir().join(".claude-code-router")
}

/// `~/.claude-code-router/config.json`.
pub fn default_config_path() -> PathBuf {
    router_dir().join("config.json")
}

/// `~/.claude-code-router/logs`: proxy log files and the Ollama child's output.
pub fn logs_dir() -> PathBuf {
    router_dir().join("logs")
}

/// `~/.claude-code-router/run`: pid files of processes ccr-setup started.
pub fn run_dir() -> PathBuf {
    router_dir().join("run")
}

/// `~/.claude-code-router/ledger.sqlite`: the usage ledger.
pub fn ledger_path() -> PathBuf {
    router_dir().join("ledger.sqlite")
}

/// `~/.claude.json`: Claude Code's own state file (onboarding flag).
pub fn claude_json_path() -> PathBuf {
    home_dir().join(".claude.json")
}

/// `/`, unless the `CCR_SETUP_SYSTEM_ROOT` test hook relocates it: where system-wide
/// files (`/etc/systemd/system/ollama.service`, `/Applications/Ollama.app`) are looked
/// for and the Ollama drop-in is written.
pub fn system_root() -> PathBuf {
    std::env::var_os(crate::env_vars::EnvVars::CCR_SETUP_SYSTEM_ROOT)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}
