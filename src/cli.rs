//! Command-line definitions (clap derive) and nothing else.
//!
//! Every subcommand and flag lives here so `--help` is the single place a user
//! learns the tool; behaviour lives in `crate::commands`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const FIRST_RUN: &str = "\
Typical first run:
  ccr-setup init     detect/install Ollama and Claude Code, write config and services
  ccr-setup up       start Ollama with a 32k context, pull the model, smoke-test, run the proxy
  ccr-setup code     start Claude Code pointed at the proxy
  ccr-setup doctor   when something is wrong: every check, with the exact fix";

/// Run Claude Code on a local model (Ollama + gpt-oss:20b by default), with a fast
/// bundled Anthropic-compatible proxy, cloud fallback and a usage ledger.
#[derive(Debug, Parser)]
#[command(
    name = "ccr-setup",
    version,
    propagate_version = true,
    max_term_width = 100,
    after_help = FIRST_RUN
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Flags accepted before or after any subcommand.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Router config file (claude-code-router schema, JSON5 allowed).
    /// Default: ~/.claude-code-router/config.json
    #[arg(long, global = true, env = crate::env_vars::EnvVars::CCR_SETUP_CONFIG, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only print errors, warnings, failed steps and what was asked for (JSON, tables,
    /// exports): no progress (but a pull's 10 % lines on stderr), notes or passing steps.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Disable colored output (the NO_COLOR environment variable is honoured too).
    #[arg(long, global = true)]
    pub no_color: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Interactive setup wizard: install what is missing, write the router config and services.
    ///
    /// Probes the machine (Homebrew, Ollama, Claude Code), shows a plan of what will be
    /// installed, written and loaded, asks once, then applies it. Safe to re-run: the same
    /// answers change nothing. Without a terminal (curl | sh), answers are read from /dev/tty
    /// when one exists, else the defaults are used and reported.
    Init(InitArgs),

    /// Check every part of the setup and print the exact fix for each failure.
    ///
    /// Exit 0 when nothing failed (warnings allowed), 1 when a check failed.
    Doctor(DoctorArgs),

    /// Start Ollama with the configured context, pull the model, smoke-test, then run the proxy.
    ///
    /// Never kills an Ollama it did not start. Idempotent: with everything ready it only
    /// re-checks and execs into the proxy.
    Up(UpArgs),

    /// Run the bundled Anthropic-compatible proxy in the foreground.
    ///
    /// Serves POST /v1/messages and /v1/messages/count_tokens to Claude Code and forwards
    /// each request to the routed provider: OpenAI-compatible servers (Ollama, llama.cpp,
    /// LM Studio, vLLM) are translated, Anthropic-native ones are passed through.
    Proxy(ProxyArgs),

    /// Start Claude Code pointed at the proxy (starting the proxy first if needed).
    ///
    /// Every argument is passed to `claude` unchanged, e.g. `ccr-setup code -- -p "hi"`.
    Code(CodeArgs),

    /// Print the environment `code` sets, as export lines: eval "$(ccr-setup env)".
    Env(EnvArgs),

    /// Show Ollama, the proxy, the services and the config path on one screen.
    Status(StatusArgs),

    /// Stop what ccr-setup started (its proxy, its Ollama child or services). Nothing else.
    Stop(StopArgs),

    /// Remove ccr-setup's services, pid and log files. Keeps the config unless --purge.
    ///
    /// Never uninstalls Ollama, Claude Code or models.
    Uninstall(UninstallArgs),

    /// Usage and savings from the proxy's ledger: local share, cloud spend, would-have-cost.
    Stats(StatsArgs),

    /// The status line for Claude Code: where the session's last request went, and why.
    ///
    /// Claude Code runs it after each message (its `statusLine` setting) with the
    /// session's JSON on stdin. It prints one line: local or cloud and the model, why
    /// (think, long context, fallback and its reason, quality: the local model's answers
    /// kept failing), the prompt's size against the local context window, and today's
    /// savings. With the proxy down it says so. `--install` sets it in
    /// ~/.claude/settings.json, keeping your other settings (and a backup).
    Statusline(StatuslineArgs),

    /// Open the proxy's dashboard in the browser: savings, live requests, setup checks.
    ///
    /// Starts the proxy first when it is not running, then opens http://HOST:PORT/ui/ with
    /// `open` (macOS) or `xdg-open`; without either, or with --no-open, it prints the URL.
    /// With APIKEY set, the URL carries a one-time login ticket (valid 2 minutes) that the
    /// page trades for a session cookie.
    Ui(UiArgs),

    /// Inspect the router config.
    #[command(subcommand)]
    Config(ConfigCommand),

    /// Team mode: named client keys, each with its own daily limits and ledger rows.
    ///
    /// Each user (or machine) of a shared proxy gets a key of their own. The config keeps
    /// only the key's SHA-256; the key is printed once, by `add`. A running proxy picks
    /// changes up by itself (its config reload): a removed key stops working within seconds.
    ///
    /// Examples:
    ///   ccr-setup clients add alice --daily-requests 2000 --daily-cloud-usd 5
    ///   ccr-setup clients add ci-bot --daily-cloud-usd 0     # local models only
    ///   ccr-setup clients list --json
    ///   ccr-setup clients remove alice                       # revokes alice's key
    #[command(subcommand, verbatim_doc_comment)]
    Clients(ClientsCommand),

    /// Print a shell completion script, e.g. `ccr-setup completions zsh > _ccr-setup`.
    Completions(CompletionsArgs),
}

impl Command {
    /// Whether this command was asked for `--json` (false for commands without it), so
    /// `main` can make the run's one printer before the command starts.
    pub fn json(&self) -> bool {
        match self {
            Command::Doctor(a) => a.json,
            Command::Up(a) => a.json,
            Command::Status(a) => a.json,
            Command::Stats(a) => a.json,
            Command::Clients(ClientsCommand::Add(a)) => a.json,
            Command::Clients(ClientsCommand::List(a)) => a.json,
            Command::Clients(ClientsCommand::Remove(a)) => a.json,
            // Listed, not `_`, so a command that gains `--json` is not forgotten here.
            Command::Init(_)
            | Command::Proxy(_)
            | Command::Code(_)
            | Command::Env(_)
            | Command::Stop(_)
            | Command::Uninstall(_)
            | Command::Statusline(_)
            | Command::Ui(_)
            | Command::Config(_)
            | Command::Completions(_) => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServiceManagerChoice {
    /// macOS launchd user agents (~/Library/LaunchAgents).
    Launchd,
    /// systemd user units (~/.config/systemd/user).
    Systemd,
    /// Do not install or manage services.
    None,
}

/// `init --context-editing`: the provider's `context_editing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ContextEditingChoice {
    Auto,
    CloudFirst,
    Off,
}

impl ContextEditingChoice {
    /// The config file's spelling.
    pub fn config_name(self) -> &'static str {
        match self {
            ContextEditingChoice::Auto => "auto",
            ContextEditingChoice::CloudFirst => "cloud_first",
            ContextEditingChoice::Off => "off",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// Accept the defaults (and the flags given) without prompting.
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// Show the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Ollama model to serve.
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,

    /// Context length for Ollama (OLLAMA_CONTEXT_LENGTH).
    #[arg(long, value_name = "TOKENS")]
    pub context_length: Option<u32>,

    /// Port for the proxy.
    #[arg(long)]
    pub port: Option<u16>,

    /// Requests Ollama serves at once (OLLAMA_NUM_PARALLEL). Default: 2 when the model's
    /// KV cache for two slots fits this machine's memory and there is no cloud backup
    /// (a subagent or side request then does not evict the main conversation's prompt
    /// cache), else 1.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=8))]
    pub num_parallel: Option<u32>,

    /// What the proxy does when a conversation outgrows the local context window:
    /// `auto` clears the oldest tool results so the session goes on locally, and hands
    /// the request to the cloud backup only when that cannot make it fit;
    /// `cloud-first` hands it to the cloud backup first; `off` never edits (the request
    /// is refused as "prompt is too long" and Claude Code compacts).
    #[arg(long, value_enum, value_name = "MODE")]
    pub context_editing: Option<ContextEditingChoice>,

    /// Add the Claude API as cloud fallback (think, longContext, fallback).
    #[arg(long, overrides_with = "no_cloud_fallback")]
    pub cloud_fallback: bool,

    /// Do not add a cloud fallback provider.
    #[arg(long)]
    pub no_cloud_fallback: bool,

    /// Cloud model for think, long context and fallback (default: the current Sonnet
    /// from the model catalogue). A model the catalogue does not know still works;
    /// `stats` then calls its price unknown.
    #[arg(long, value_name = "MODEL")]
    pub cloud_model: Option<String>,

    /// Do not check the cloud key with the provider (one `GET /v1/models`).
    #[arg(long)]
    pub no_key_check: bool,

    /// Leave the proxy open to any local program: no `APIKEY` is created. By default
    /// init writes a random 32-byte `APIKEY` into the (0600) config, which `ccr-setup
    /// code` and `ccr-setup env` pass to Claude Code; web pages and other local users
    /// then cannot spend your cloud key through the proxy.
    #[arg(long)]
    pub no_api_key: bool,

    /// Install services that start Ollama and the proxy at login.
    #[arg(long, overrides_with = "no_service")]
    pub service: bool,

    /// Do not install services.
    #[arg(long)]
    pub no_service: bool,

    /// Override service-manager detection (lets either renderer run anywhere).
    #[arg(long, value_enum, value_name = "MANAGER")]
    pub service_manager: Option<ServiceManagerChoice>,

    /// Do not install missing tools (Ollama, Claude Code); only write files.
    #[arg(long)]
    pub no_install: bool,

    /// Set Claude Code's status line to `ccr-setup statusline` (asked when
    /// interactive; with --yes only when given). Another status line you have is
    /// kept unless you agree to replace it.
    #[arg(long)]
    pub statusline: bool,

    /// Set up this machine as a team's GPU server (docs/team.md): find the model
    /// server (vLLM, llama-server or Ollama on its default loopback port, or the one
    /// named), write a config in server mode (the proxy on loopback, requiring client
    /// keys), a systemd unit for the proxy, and a Caddyfile that serves it over TLS.
    /// Next: `ccr-setup clients add NAME` for each laptop.
    #[arg(long, conflicts_with = "join")]
    pub server: bool,

    /// With --server: the model server, instead of detecting it.
    #[arg(long, value_enum, value_name = "ENGINE", requires = "server")]
    pub engine: Option<EngineChoice>,

    /// With --server: where the model server listens, e.g. http://127.0.0.1:8000
    /// (default: the engine's own port on loopback).
    #[arg(long, value_name = "URL", requires = "server")]
    pub engine_url: Option<String>,

    /// With --server: the name (or IP) laptops reach this box by, for Caddy's site and
    /// certificate. Default with --tls internal: this machine's host name.
    #[arg(long, value_name = "NAME", requires = "server")]
    pub domain: Option<String>,

    /// With --server: where Caddy gets its certificate: `acme` (a public certificate;
    /// the name must resolve to this box and ports 80/443 be reachable; needs
    /// --domain) or `internal` (Caddy's own CA, whose root.crt laptops then trust).
    /// Default: acme with --domain, else internal.
    #[arg(long, value_enum, value_name = "MODE", requires = "server")]
    pub tls: Option<TlsChoice>,

    /// Join a team server from this laptop: check it with the client key, store the
    /// key in the secrets store (Keychain on macOS, else secrets.env), and write a
    /// config that points `code`, `env`, `stats` and the status line at the server.
    /// No local Ollama or proxy runs. Only https:// (http:// only to loopback).
    #[arg(long, value_name = "URL")]
    pub join: Option<String>,

    /// With --join: the client key (`ccr_…`, from `ccr-setup clients add` on the
    /// server). Default: $CCR_SETUP_CLIENT_KEY, else a hidden prompt. A key on the
    /// command line lands in your shell history; prefer the prompt or the variable.
    #[arg(long, value_name = "KEY", requires = "join")]
    pub key: Option<String>,

    /// With --join: a CA certificate (PEM) to trust for the server, e.g. the root.crt
    /// of a Caddy with `tls internal`. `code` passes it to Claude Code too.
    #[arg(long, value_name = "PATH", requires = "join")]
    pub ca_cert: Option<PathBuf>,
}

/// `init --engine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineChoice {
    Vllm,
    LlamaServer,
    Ollama,
}

/// `init --tls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TlsChoice {
    Acme,
    Internal,
}

#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// Machine-readable output: a JSON list of {id, status, summary, detail, fix}.
    #[arg(long)]
    pub json: bool,

    /// Run the safe fixes that the checks name, after showing them.
    #[arg(long)]
    pub fix: bool,

    /// With --fix: do not ask before fixing.
    #[arg(short = 'y', long, requires = "fix")]
    pub yes: bool,
}

#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// Ollama model to serve (default: the config's, else gpt-oss:20b).
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,

    /// Context length to require (default: the config's, else 32768).
    #[arg(long, value_name = "TOKENS")]
    pub context_length: Option<u32>,

    /// Continue when a server we do not own gives a smaller context than configured.
    #[arg(long)]
    pub accept_context: bool,

    /// Do not exec into the proxy at the end.
    #[arg(long)]
    pub no_exec: bool,

    /// Skip the smoke test.
    #[arg(long)]
    pub no_smoke: bool,

    /// Seconds without pull progress before the pull is re-issued (it resumes).
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub stall_timeout: u64,

    /// Machine-readable step results (one JSON object per line).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ProxyArgs {
    /// Address to bind (default: the config's HOST, else 127.0.0.1).
    /// Binding beyond loopback requires APIKEY in the config.
    #[arg(long)]
    pub host: Option<String>,

    /// Port to bind (default: the config's PORT, else 3456).
    #[arg(long)]
    pub port: Option<u16>,
}

#[derive(Debug, Clone, Args)]
pub struct CodeArgs {
    /// Leave rarely useful tool schemas out of Claude Code's requests (Workflow, Cron*,
    /// ScheduleWakeup, worktrees, NotebookEdit, WebFetch, WebSearch, SendMessage,
    /// ReportFindings, TaskOutput) through `--disallowedTools`: 10,336 fewer prompt tokens in
    /// every request (of ~20,400 fixed), measured with Claude Code 2.1.197. Give it before
    /// claude's arguments.
    #[arg(long)]
    pub lean: bool,

    /// Arguments passed to `claude` unchanged.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CLAUDE_ARGS"
    )]
    pub args: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct EnvArgs {
    /// Shell syntax for the export lines.
    #[arg(long, value_enum, default_value_t = EnvShell::Sh)]
    pub shell: EnvShell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EnvShell {
    Sh,
    Fish,
}

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct StopArgs {
    /// Also stop the Ollama that ccr-setup started (default: only the proxy).
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Clone, Args)]
pub struct UninstallArgs {
    /// Also remove the router config (a backup is kept).
    #[arg(long)]
    pub purge: bool,

    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// Override service-manager detection.
    #[arg(long, value_enum, value_name = "MANAGER")]
    pub service_manager: Option<ServiceManagerChoice>,
}

#[derive(Debug, Clone, Args)]
pub struct StatsArgs {
    /// Period to report: 7d, 30d, 24h, or all.
    #[arg(long, default_value = "7d")]
    pub since: String,

    /// Group rows by day, model, route or client (team mode's named keys).
    #[arg(long, value_enum)]
    pub by: Option<StatsGroup>,

    /// Cloud model used to price local requests ("would have cost").
    #[arg(long, value_name = "MODEL")]
    pub compare_to: Option<String>,

    /// JSON output for scripts.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,

    /// CSV output for scripts.
    #[arg(long)]
    pub csv: bool,
}

#[derive(Debug, Clone, Args)]
pub struct StatuslineArgs {
    /// Set `statusLine` in ~/.claude/settings.json to run `ccr-setup statusline`.
    #[arg(long)]
    pub install: bool,

    /// With --install: replace a status line you already have (it is backed up).
    #[arg(long, requires = "install")]
    pub replace: bool,
}

#[derive(Debug, Clone, Args)]
pub struct UiArgs {
    /// Print the URL instead of opening a browser.
    #[arg(long)]
    pub no_open: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatsGroup {
    Day,
    Model,
    Route,
    /// The named client (team mode); the admin APIKEY's requests as `(admin)`.
    Client,
}

#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Add a client: prints its new key once (on stdout) and stores only its hash.
    ///
    /// The key is `ccr_` and 43 random characters (256 bits). Give it to the user; they
    /// set it as ANTHROPIC_AUTH_TOKEN (or ANTHROPIC_API_KEY) for Claude Code. Lost keys
    /// cannot be recovered: remove the client and add it again.
    ///
    /// Examples:
    ///   ccr-setup clients add alice
    ///   ccr-setup clients add bob --daily-requests 500 --daily-cloud-usd 2.50
    ///   KEY=$(ccr-setup clients add carol 2>/dev/null)
    #[command(verbatim_doc_comment)]
    Add(ClientsAddArgs),
    /// List the clients: their limits and today's use (from the usage ledger).
    List(ClientsListArgs),
    /// Remove a client; its key stops working when the proxy reloads the config.
    Remove(ClientsRemoveArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ClientsAddArgs {
    /// The client's name: letters, digits, '.', '_' or '-' (it names the client in the
    /// ledger, `stats --by client` and the 429s).
    pub name: String,
    /// Requests allowed per day (days in UTC, or the config's ClientsTimezone).
    #[arg(long, value_name = "N")]
    pub daily_requests: Option<u64>,
    /// USD of cloud use allowed per day; past it the client reaches local models only.
    /// 0 keeps the client on local models.
    #[arg(long, value_name = "USD", value_parser = non_negative_usd)]
    pub daily_cloud_usd: Option<f64>,
    /// JSON output: {"name", "key", "key_hash", "daily_requests", "daily_cloud_usd"}.
    #[arg(long)]
    pub json: bool,
}

fn non_negative_usd(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!(
            "\"{text}\" is not an amount in USD >= 0 (e.g. 5 or 2.50)"
        )),
    }
}

#[derive(Debug, Clone, Args)]
pub struct ClientsListArgs {
    /// JSON output for scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ClientsRemoveArgs {
    pub name: String,
    /// JSON output for scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the config with secrets redacted.
    Show,
    /// Validate the config; exit 1 listing every problem with its JSON path and fix.
    Validate,
    /// Print the config file's path.
    Path,
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// Shell to generate completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}
