//! Gathering: ask the machine everything the checks need, concurrently.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use url::Url;

use super::probe::{self, HttpAnswer, PortProbe, ToolProbe};
pub use super::provider_facts::ProviderProbe;
use super::DoctorEnv;
use crate::config::{Config, ConfigError, ConfigFile, KeyOrigin, Problem};
use crate::diagnostic::one_line;
use crate::ollama::owner::Owner;
use crate::ollama::{InstalledModel, LoadedModel, ModelDetails, OllamaClient};
use crate::provision::Platform;
use crate::service::{Layout, Manager, ServiceState};

/// Everything [`super::evaluate`] judges. Plain data, built by [`gather`] or by hand in tests.
#[derive(Debug)]
pub struct Facts {
    pub platform: Platform,
    pub home: PathBuf,
    pub os: String,
    pub arch: String,
    pub memory_bytes: Option<u64>,
    pub models_dir: PathBuf,
    /// (directory measured, free bytes).
    pub disk: Result<(PathBuf, u64), String>,
    /// None on Linux, where Homebrew is not needed.
    pub brew: Option<ToolProbe>,
    pub ollama_bin: ToolProbe,
    pub claude_bin: ToolProbe,
    pub ollama: OllamaFacts,
    /// Everything set up to start an Ollama server on this machine.
    pub launchers: Vec<Launcher>,
    pub claude_json_path: PathBuf,
    pub claude_json: ClaudeJson,
    pub claude_settings_path: PathBuf,
    /// `env` entries of `~/.claude/settings.json` that matter (ANTHROPIC_*), or why the
    /// file could not be read.
    pub claude_settings_env: Result<Vec<(String, String)>, String>,
    /// ANTHROPIC_* variables in this shell.
    pub anthropic_env: Vec<(String, String)>,
    /// The MCP servers Claude Code loads here (their schemas cost context), or why not.
    pub mcp_servers: Result<Vec<String>, String>,
    pub config: ConfigFacts,
    /// The model and context the config asks for (defaults when it cannot be read).
    pub model: String,
    pub context_length: u32,
    /// `Ollama.num_parallel` the config asks for.
    pub num_parallel: u32,
    pub providers: Vec<ProviderProbe>,
    pub proxy: ProxyFacts,
    pub services: ServiceFacts,
    pub current_exe: Option<PathBuf>,
    pub self_version: String,
}

/// What `/api/ps` timing out means: Ollama holds its answer while any model loads.
pub const MODEL_LOADING: &str = "a model is loading (Ollama answers /api/ps once the load ends)";

/// The Ollama server at `OLLAMA_HOST`.
#[derive(Debug, Clone)]
pub struct OllamaFacts {
    pub url: Url,
    pub local: bool,
    /// `/api/version`, or why the server did not answer.
    pub version: Result<String, String>,
    /// `/api/tags` (None when the server did not answer).
    pub models: Option<Vec<InstalledModel>>,
    /// `/api/show` of the configured model, when it is installed.
    pub details: Option<Result<ModelDetails, String>>,
    /// `/api/ps` entry of the configured model (Ok(None): not loaded).
    pub loaded: Option<Result<Option<LoadedModel>, String>>,
    pub owner: Owner,
}

impl OllamaFacts {
    pub fn answers(&self) -> bool {
        self.version.is_ok()
    }

    /// Is `model` in `/api/tags`? None when unknown.
    pub fn has_model(&self, model: &str) -> Option<bool> {
        let want = crate::ollama::normalize_model_name(model);
        self.models.as_ref().map(|ms| {
            ms.iter().any(|m| {
                crate::ollama::normalize_model_name(&m.name) == want
                    || crate::ollama::normalize_model_name(&m.model) == want
            })
        })
    }
}

/// Something set up to start an Ollama server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launcher {
    App(PathBuf),
    BrewService(PathBuf),
    SystemUnit(PathBuf),
    OurService(PathBuf),
}

impl Launcher {
    pub fn describe(&self) -> String {
        match self {
            Launcher::App(p) => format!("Ollama.app ({})", p.display()),
            Launcher::BrewService(p) => format!("brew services ({})", p.display()),
            Launcher::SystemUnit(p) => format!("system service {}", p.display()),
            Launcher::OurService(p) => format!("our service {}", p.display()),
        }
    }

    /// How to stop this one from starting a server.
    pub fn disable(&self) -> String {
        match self {
            Launcher::App(_) => {
                "quit Ollama.app and remove it from System Settings → General → Login Items"
                    .to_owned()
            }
            Launcher::BrewService(_) => "`brew services stop ollama`".to_owned(),
            Launcher::SystemUnit(_) => "`sudo systemctl disable --now ollama`".to_owned(),
            Launcher::OurService(_) => "`ccr-setup uninstall` (removes our services)".to_owned(),
        }
    }
}

/// `~/.claude.json` as far as onboarding goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaudeJson {
    Missing,
    /// `hasCompletedOnboarding` is true.
    Done,
    /// The file exists without the flag.
    NotDone,
    /// The flag is present and false (the user's choice; not overwritten).
    SetFalse,
    Invalid(String),
}

/// The router config file.
#[derive(Debug)]
pub struct ConfigFacts {
    pub path: PathBuf,
    pub file: Result<ConfigFile, ConfigError>,
    /// Interpolated and validated, when the file parsed.
    pub resolved: Option<Result<Config, Vec<Problem>>>,
    /// Permission bits of the file.
    pub mode: Option<u32>,
    /// Where each key of the config comes from (never the values).
    pub keys: Vec<KeyOrigin>,
    /// The secrets store file and its mode, when that is wider than 0600.
    pub secrets_too_open: Option<(PathBuf, u32)>,
}

impl ConfigFacts {
    pub fn config(&self) -> Option<&Config> {
        self.resolved.as_ref().and_then(|r| r.as_ref().ok())
    }
}

/// What listens on the proxy's port.
#[derive(Debug, Clone)]
pub struct ProxyFacts {
    pub url: String,
    pub port: u16,
    pub probe: PortProbe,
    /// `GET /health`, when the port was open.
    pub health: Option<Result<HttpAnswer, String>>,
    /// The listener's owner when it is another user (`crate::port_owner`, where the
    /// system tells).
    pub foreign_owner: Option<String>,
}

/// Our login services.
#[derive(Debug, Clone)]
pub struct ServiceFacts {
    pub manager: Manager,
    /// Is the manager actually running here (systemd as init, or macOS)?
    pub manager_running: bool,
    pub states: Vec<ServiceState>,
}

fn read_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}

fn load_config(path: &Path) -> ConfigFacts {
    let file = ConfigFile::load(path);
    let resolved = file.as_ref().ok().map(|f| {
        f.resolve().map_err(|e| match e {
            ConfigError::Invalid { problems, .. } => problems,
            other => vec![Problem {
                path: "(file)".into(),
                message: other.to_string(),
                fix: "fix the file, or move it away and run `ccr-setup init`".into(),
            }],
        })
    });
    let keys = file
        .as_ref()
        .map(ConfigFile::key_sources)
        .unwrap_or_default();
    let store = crate::config::SecretsStore::for_config(path);
    let secrets_too_open = store
        .file_too_open()
        .map(|mode| (store.file().to_path_buf(), mode));
    ConfigFacts {
        path: path.to_path_buf(),
        mode: read_mode(path),
        file,
        resolved,
        keys,
        secrets_too_open,
    }
}

fn read_claude_json(path: &Path) -> ClaudeJson {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return ClaudeJson::Missing,
        Err(e) => return ClaudeJson::Invalid(e.to_string()),
    };
    if text.trim().is_empty() {
        return ClaudeJson::NotDone;
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => match m.get("hasCompletedOnboarding") {
            Some(Value::Bool(true)) => ClaudeJson::Done,
            Some(_) => ClaudeJson::SetFalse,
            None => ClaudeJson::NotDone,
        },
        Ok(_) => ClaudeJson::Invalid("not a JSON object".into()),
        Err(e) => ClaudeJson::Invalid(e.to_string()),
    }
}

/// `~/.claude/settings.json` (or `$CLAUDE_CONFIG_DIR/settings.json`).
pub fn claude_settings_path(home: &Path) -> PathBuf {
    match std::env::var_os(crate::env_vars::EnvVars::CLAUDE_CONFIG_DIR).filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("settings.json"),
        None => home.join(".claude").join("settings.json"),
    }
}

fn read_settings_env(path: &Path) -> Result<Vec<(String, String)>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.to_string()),
    };
    let doc: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let Some(env) = doc.get("env").and_then(Value::as_object) else {
        return Ok(Vec::new());
    };
    Ok(super::ANTHROPIC_VARS
        .iter()
        .filter_map(|k| {
            env.get(*k).map(|v| {
                let s = v
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string());
                ((*k).to_owned(), s)
            })
        })
        .collect())
}

/// Everything set up to launch an Ollama server here.
fn launchers(env: &DoctorEnv, services: &ServiceFacts) -> Vec<Launcher> {
    let mut out = Vec::new();
    match env.platform {
        Platform::MacOs => {
            for app in [
                env.root.join("Applications/Ollama.app"),
                env.home.join("Applications/Ollama.app"),
            ] {
                if app.is_dir() {
                    out.push(Launcher::App(app));
                    break;
                }
            }
            let brew = env
                .home
                .join("Library/LaunchAgents/homebrew.mxcl.ollama.plist");
            if brew.is_file() {
                out.push(Launcher::BrewService(brew));
            }
        }
        Platform::Linux => {
            if let Some(unit) = crate::service::systemd::find_system_ollama_unit(&env.root) {
                out.push(Launcher::SystemUnit(unit));
            }
        }
    }
    for s in &services.states {
        if s.kind == crate::service::ServiceKind::Ollama && s.installed {
            out.push(Launcher::OurService(s.path.clone()));
        }
    }
    out
}

async fn ollama_server(client: &OllamaClient, model: &str) -> OllamaFacts {
    let url = client.base_url().clone();
    let (version, tags, ps) = tokio::join!(client.version(), client.tags(), client.ps());
    let version = version.map_err(|e| one_line(&e));
    let models = tags.ok();
    let want = crate::ollama::normalize_model_name(model);
    let installed = models.as_ref().is_some_and(|ms| {
        ms.iter().any(|m| {
            crate::ollama::normalize_model_name(&m.name) == want
                || crate::ollama::normalize_model_name(&m.model) == want
        })
    });
    let details = if installed {
        Some(client.show(model).await.map_err(|e| one_line(&e)))
    } else {
        None
    };
    let loaded = version.is_ok().then(|| {
        ps.map(|list| {
            list.into_iter().find(|m| {
                crate::ollama::normalize_model_name(&m.name) == want
                    || crate::ollama::normalize_model_name(&m.model) == want
            })
        })
        .map_err(|e| match e {
            // /api/ps waits on the scheduler while a model loads (server/sched.go).
            crate::ollama::OllamaError::Timeout { .. } => MODEL_LOADING.to_owned(),
            e => one_line(&e),
        })
    });
    OllamaFacts {
        local: crate::ollama::is_local(&url),
        url,
        version,
        models,
        details,
        loaded,
        owner: Owner::Remote, // filled in by `gather`
    }
}

async fn proxy(host: &str, port: u16, http: &reqwest::Client, timeout: Duration) -> ProxyFacts {
    let url = crate::service::runtime::proxy_url(host, port);
    let connect_host = Url::parse(&url)
        .ok()
        .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_owned()))
        .unwrap_or_else(|| crate::config::DEFAULT_HOST.to_owned());
    let probe = probe::port(&connect_host, port, timeout).await;
    let health = if probe == PortProbe::Open {
        Some(probe::http_get(http, &format!("{url}/health"), &[], timeout).await)
    } else {
        None
    };
    let foreign_owner = (probe == PortProbe::Open)
        .then(|| crate::port_owner::listening_owner(port))
        .flatten()
        .filter(|o| !o.is_current_user())
        .map(|o| o.to_string());
    ProxyFacts {
        url,
        port,
        probe,
        health,
        foreign_owner,
    }
}

async fn services(env: &DoctorEnv) -> ServiceFacts {
    let detected = Manager::detect();
    let manager = detected.unwrap_or(match env.platform {
        Platform::MacOs => Manager::Launchd,
        Platform::Linux => Manager::Systemd,
    });
    let layout = Layout {
        home: env.home.clone(),
        uid: nix::unistd::getuid().as_raw(),
    };
    let states = tokio::task::spawn_blocking(move || crate::service::inspect(manager, &layout))
        .await
        .unwrap_or_default();
    ServiceFacts {
        manager,
        manager_running: detected.is_some(),
        states,
    }
}

/// Ask the machine. Every probe runs concurrently; each network probe is bounded by
/// `env.probe_timeout` and each tool by twice that.
pub async fn gather(env: &DoctorEnv) -> Facts {
    let config = load_config(&env.config_path);
    let settings = config
        .config()
        .map(|c| c.ollama.clone())
        .unwrap_or_default();
    let (host, port) = match config.config() {
        Some(c) => (c.host.clone(), c.port),
        None => (
            crate::config::DEFAULT_HOST.to_owned(),
            raw_port(&config).unwrap_or(crate::config::DEFAULT_PORT),
        ),
    };
    let timeout = env.probe_timeout;
    let tool_timeout = timeout * 2;
    let http = reqwest::Client::builder()
        .connect_timeout(timeout)
        .no_proxy()
        // The probes carry provider keys: a redirect must not take them elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest client with static settings");
    let client = OllamaClient::new(env.ollama_url.clone()).with_probe_timeout(timeout);

    let brew = async {
        match env.platform {
            Platform::MacOs => Some(probe::tool("brew", &env.path, tool_timeout).await),
            Platform::Linux => None,
        }
    };
    let models_dir = env.models_dir.clone();
    let disk = tokio::task::spawn_blocking(move || {
        crate::ollama::disk::free_bytes(&models_dir).map_err(|e| one_line(&e))
    });
    // Who listens on Ollama's port (pid file, /proc or lsof, cgroup): `up`'s detection.
    let owner_url = env.ollama_url.clone();
    let owner = tokio::task::spawn_blocking(move || crate::ollama::owner::detect(&owner_url));
    let (memory_bytes, disk, brew, ollama_bin, claude_bin, mut ollama, proxy, services, owner) = tokio::join!(
        probe::memory_bytes(),
        disk,
        brew,
        probe::tool("ollama", &env.path, tool_timeout),
        probe::tool("claude", &env.path, tool_timeout),
        ollama_server(&client, &settings.model),
        proxy(&host, port, &http, timeout),
        services(env),
        owner,
    );
    // Providers reuse the Ollama answers, so they go second; only remote or
    // non-Ollama providers cost a request here.
    let ollama_models = match (&ollama.version, &ollama.models) {
        (Ok(_), Some(ms)) => Ok(Some(ms.iter().map(|m| m.name.clone()).collect())),
        (Err(e), _) => Err(e.clone()),
        (Ok(_), None) => Err("Ollama answered but /api/tags failed".to_owned()),
    };
    let ollama_answer = (&ollama.url, ollama_models);
    let providers =
        super::provider_facts::providers(config.config(), &ollama_answer, &http, timeout).await;
    let launchers = launchers(env, &services);
    ollama.owner = owner.unwrap_or(Owner::Other {
        pid: None,
        command: None,
    });

    let claude_json_path = env.home.join(".claude.json");
    let claude_settings_path = claude_settings_path(&env.home);
    let mcp_servers =
        super::mcp::enabled_servers(&claude_json_path, &claude_settings_path, &env.project);
    Facts {
        platform: env.platform,
        home: env.home.clone(),
        os: std::env::consts::OS.to_owned(),
        arch: std::env::consts::ARCH.to_owned(),
        memory_bytes,
        models_dir: env.models_dir.clone(),
        disk: disk.unwrap_or_else(|e| Err(e.to_string())),
        brew,
        ollama_bin,
        claude_bin,
        ollama,
        launchers,
        claude_json: read_claude_json(&claude_json_path),
        claude_json_path,
        claude_settings_env: read_settings_env(&claude_settings_path),
        mcp_servers,
        claude_settings_path,
        anthropic_env: env.anthropic_env.clone(),
        model: settings.model,
        context_length: settings.context_length,
        num_parallel: settings.num_parallel,
        providers,
        proxy,
        services,
        current_exe: env.current_exe.clone(),
        self_version: env!("CARGO_PKG_VERSION").to_owned(),
        config,
    }
}

/// `PORT` straight from the document, so the port check still works when some other
/// part of the config is invalid.
fn raw_port(config: &ConfigFacts) -> Option<u16> {
    config.file.as_ref().ok()?.raw_port()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_json_states() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".claude.json");
        assert_eq!(read_claude_json(&p), ClaudeJson::Missing);
        std::fs::write(&p, r#"{"userID":"x"}"#).unwrap();
        assert_eq!(read_claude_json(&p), ClaudeJson::NotDone);
        std::fs::write(&p, r#"{"hasCompletedOnboarding":true}"#).unwrap();
        assert_eq!(read_claude_json(&p), ClaudeJson::Done);
        std::fs::write(&p, r#"{"hasCompletedOnboarding":false}"#).unwrap();
        assert_eq!(read_claude_json(&p), ClaudeJson::SetFalse);
        std::fs::write(&p, "{oops").unwrap();
        assert!(matches!(read_claude_json(&p), ClaudeJson::Invalid(_)));
    }
}
