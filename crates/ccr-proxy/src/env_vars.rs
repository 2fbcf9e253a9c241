//! Every environment variable ccr-setup reads or sets, named once (as uv's `EnvVars`).
//!
//! Code says `EnvVars::OLLAMA_HOST`, not `"OLLAMA_HOST"`, so a reader can find every
//! use of a variable from here and a typo is a compile error.

/// The names, grouped by who owns them.
pub struct EnvVars;

impl EnvVars {
    // ── ccr-setup's own ──
    /// The router config file (same as `--config`).
    pub const CCR_SETUP_CONFIG: &'static str = "CCR_SETUP_CONFIG";
    /// A joined laptop's team client key (`init --join` stores it in the secrets store;
    /// the config's `Join.key` references it). Also read by `init --join` instead of
    /// `--key` or a prompt.
    pub const CCR_SETUP_CLIENT_KEY: &'static str = "CCR_SETUP_CLIENT_KEY";

    // ── test-only hooks: users never need these ──
    /// Provision and diagnose as this platform (`macos` or `linux`) instead of the one
    /// the binary runs on.
    pub const CCR_SETUP_PLATFORM: &'static str = "CCR_SETUP_PLATFORM";
    /// Relocate `/` for the system-wide files (`/etc/systemd/system/ollama.service`,
    /// `/Applications/Ollama.app`, the Ollama drop-in).
    pub const CCR_SETUP_SYSTEM_ROOT: &'static str = "CCR_SETUP_SYSTEM_ROOT";
    /// The Ollama registry base URL the manifest size is read from (a fake in tests).
    pub const CCR_SETUP_OLLAMA_REGISTRY: &'static str = "CCR_SETUP_OLLAMA_REGISTRY";
    /// The models URL `init` checks a cloud key against (default Anthropic's).
    pub const CCR_SETUP_ANTHROPIC_MODELS_URL: &'static str = "CCR_SETUP_ANTHROPIC_MODELS_URL";
    /// The loopback ports `init --server` probes for an engine (comma-separated;
    /// default 8000,8080,11434), so tests can run fake engines on free ports.
    pub const CCR_SETUP_ENGINE_PORTS: &'static str = "CCR_SETUP_ENGINE_PORTS";

    // ── Ollama's, read as Ollama reads them ──
    /// Where the Ollama server listens (host, host:port or URL).
    pub const OLLAMA_HOST: &'static str = "OLLAMA_HOST";
    /// Where Ollama keeps its models (default `~/.ollama/models`).
    pub const OLLAMA_MODELS: &'static str = "OLLAMA_MODELS";
    /// The context every model is loaded with.
    pub const OLLAMA_CONTEXT_LENGTH: &'static str = "OLLAMA_CONTEXT_LENGTH";
    pub const OLLAMA_NUM_PARALLEL: &'static str = "OLLAMA_NUM_PARALLEL";
    /// The KV cache's element type (`f16`, `q8_0`, `q4_0`): `init` sizes the cache by it.
    pub const OLLAMA_KV_CACHE_TYPE: &'static str = "OLLAMA_KV_CACHE_TYPE";
    pub const OLLAMA_MAX_LOADED_MODELS: &'static str = "OLLAMA_MAX_LOADED_MODELS";
    pub const OLLAMA_FLASH_ATTENTION: &'static str = "OLLAMA_FLASH_ATTENTION";
    pub const OLLAMA_KEEP_ALIVE: &'static str = "OLLAMA_KEEP_ALIVE";

    // ── Claude Code's, set by `code` / printed by `env`, judged by `doctor` ──
    pub const ANTHROPIC_BASE_URL: &'static str = "ANTHROPIC_BASE_URL";
    pub const ANTHROPIC_AUTH_TOKEN: &'static str = "ANTHROPIC_AUTH_TOKEN";
    /// Also the cloud fallback's key, referenced as `$ANTHROPIC_API_KEY` in the config.
    pub const ANTHROPIC_API_KEY: &'static str = "ANTHROPIC_API_KEY";
    pub const API_TIMEOUT_MS: &'static str = "API_TIMEOUT_MS";
    pub const DISABLE_TELEMETRY: &'static str = "DISABLE_TELEMETRY";
    pub const CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: &'static str =
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC";
    pub const CLAUDE_CODE_ATTRIBUTION_HEADER: &'static str = "CLAUDE_CODE_ATTRIBUTION_HEADER";
    pub const CLAUDE_CODE_AUTO_COMPACT_WINDOW: &'static str = "CLAUDE_CODE_AUTO_COMPACT_WINDOW";
    pub const CLAUDE_CODE_TOTAL_TOKENS_REMINDER: &'static str = "CLAUDE_CODE_TOTAL_TOKENS_REMINDER";
    /// The model name Claude Code gives its subagent (Task) requests.
    pub const CLAUDE_CODE_SUBAGENT_MODEL: &'static str = "CLAUDE_CODE_SUBAGENT_MODEL";
    /// Where Claude Code keeps `.claude.json` when not in `$HOME`.
    pub const CLAUDE_CONFIG_DIR: &'static str = "CLAUDE_CONFIG_DIR";
    /// Extra CA certificates Claude Code (Node) trusts: a joined laptop's `Join.ca_cert`.
    pub const NODE_EXTRA_CA_CERTS: &'static str = "NODE_EXTRA_CA_CERTS";

    // ── the system's ──
    pub const HOME: &'static str = "HOME";
    pub const PATH: &'static str = "PATH";
    /// Any non-empty value turns colour off (<https://no-color.org>).
    pub const NO_COLOR: &'static str = "NO_COLOR";
    /// `tracing`'s filter for the stderr log lines; overrides `-v`.
    pub const RUST_LOG: &'static str = "RUST_LOG";
}

/// A variable's value, with an empty value read as unset (as Ollama and most tools do).
pub fn non_empty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}
