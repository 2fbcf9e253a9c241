//! The checks judged on hand-built facts.

use serde_json::Value;
use std::path::PathBuf;

use crate::ollama::owner::Owner;

use serde_json::json;

use super::*;
use crate::config::ConfigFile;
use crate::doctor::facts::{ConfigFacts, OllamaFacts, ProviderProbe, ProxyFacts, ServiceFacts};
use crate::ollama::{InstalledModel, LoadedModel, ModelDetails};
use crate::service::{Manager, ServiceState};

fn config(doc: Value) -> ConfigFacts {
    let file = ConfigFile::new(Path::new("/h/.claude-code-router/config.json"), doc);
    let resolved = file.resolve_with(&|_| None).map_err(|e| match e {
        ConfigError::Invalid { problems, .. } => problems,
        other => panic!("{other}"),
    });
    ConfigFacts {
        path: file.path.clone(),
        file: Ok(file),
        resolved: Some(resolved),
        mode: Some(0o600),
        keys: Vec::new(),
        secrets_too_open: None,
    }
}

fn base_doc() -> Value {
    json!({
        "Providers": [{"name": "ollama", "api_base_url": "http://127.0.0.1:11434/v1/chat/completions", "models": ["gpt-oss:20b"]}],
        "Router": {"default": "ollama,gpt-oss:20b"}
    })
}

/// A healthy Linux machine; each test breaks one thing.
fn healthy() -> Facts {
    let url = Url::parse("http://127.0.0.1:11434/").unwrap();
    Facts {
        platform: Platform::Linux,
        home: PathBuf::from("/h"),
        os: "linux".into(),
        arch: "x86_64".into(),
        memory_bytes: Some(32 * GIB),
        models_dir: PathBuf::from("/h/.ollama/models"),
        disk: Ok((PathBuf::from("/h"), 100_000_000_000)),
        brew: None,
        ollama_bin: ToolProbe::Found {
            path: "/usr/bin/ollama".into(),
            version: Some("0.12.3".into()),
        },
        claude_bin: ToolProbe::Found {
            path: "/usr/bin/claude".into(),
            version: Some("2.1.197".into()),
        },
        ollama: OllamaFacts {
            local: true,
            url,
            version: Ok("0.12.3".into()),
            models: Some(vec![InstalledModel {
                name: "gpt-oss:20b".into(),
                model: "gpt-oss:20b".into(),
                size: 1,
                digest: String::new(),
            }]),
            details: Some(Ok(ModelDetails {
                capabilities: vec!["completion".into(), "tools".into()],
                architecture: Some("gptoss".into()),
                trained_context: Some(131_072),
                kv: None,
            })),
            loaded: Some(Ok(Some(LoadedModel {
                name: "gpt-oss:20b".into(),
                model: "gpt-oss:20b".into(),
                size: 1,
                size_vram: 1,
                context_length: Some(32_768),
                expires_at: None,
            }))),
            owner: Owner::Other {
                pid: Some(7),
                command: Some("ollama serve".into()),
            },
        },
        launchers: Vec::new(),
        claude_json_path: PathBuf::from("/h/.claude.json"),
        claude_json: ClaudeJson::Done,
        claude_settings_path: PathBuf::from("/h/.claude/settings.json"),
        mcp_servers: Ok(Vec::new()),
        claude_settings_env: Ok(Vec::new()),
        anthropic_env: Vec::new(),
        config: config(base_doc()),
        model: DEFAULT_MODEL.into(),
        num_parallel: 1,
        context_length: 32_768,
        providers: vec![ProviderProbe {
            index: 0,
            replicas: 1,
            name: "ollama".into(),
            url: "http://127.0.0.1:11434/v1/chat/completions".into(),
            is_ollama: true,
            is_default: true,
            models: vec!["gpt-oss:20b".into()],
            answer: Ok(Some(vec!["gpt-oss:20b".into()])),
        }],
        proxy: ProxyFacts {
            url: "http://127.0.0.1:3456".into(),
            port: 3456,
            probe: PortProbe::Open,
            health: Some(Ok(crate::doctor::probe::HttpAnswer {
                status: 200,
                body:
                    json!({"status": "ok", "version": env!("CARGO_PKG_VERSION"), "providers": []})
                        .to_string(),
                server: None,
            })),
            foreign_owner: None,
        },
        services: ServiceFacts {
            manager: Manager::Systemd,
            manager_running: true,
            states: Vec::new(),
        },
        current_exe: Some(PathBuf::from("/usr/local/bin/ccr-setup")),
        self_version: env!("CARGO_PKG_VERSION").into(),
    }
}

fn check(f: &Facts, id: &str) -> Check {
    evaluate(f).into_iter().find(|c| c.id == id).unwrap()
}

#[test]
fn healthy_is_all_ok_and_in_documented_order() {
    let checks = evaluate(&healthy());
    let ids: Vec<&str> = checks.iter().map(|c| c.id).collect();
    assert_eq!(ids, crate::doctor::CHECK_IDS);
    for c in &checks {
        assert_eq!(c.status, Status::Ok, "{c:?}");
    }
}

#[test]
fn memory_thresholds_for_gpt_oss() {
    let mut f = healthy();
    for (gib, want) in [
        (8, Status::Fail),
        (12, Status::Warn),
        (15, Status::Warn),
        (16, Status::Ok),
    ] {
        f.memory_bytes = Some(gib * GIB);
        assert_eq!(check(&f, "platform.memory").status, want, "{gib} GiB");
    }
    // A 16 GB machine whose kernel reserves some still counts as 16.
    f.memory_bytes = Some(16 * GIB - 400 * (1 << 20));
    assert_eq!(check(&f, "platform.memory").status, Status::Ok);
    f.memory_bytes = Some(8 * GIB);
    f.model = "qwen3:4b".into();
    assert_eq!(check(&f, "platform.memory").status, Status::Ok);
}

#[test]
fn disk_needs_room_only_for_a_missing_model() {
    let mut f = healthy();
    f.disk = Ok((PathBuf::from("/h"), 10_000_000_000));
    assert_eq!(check(&f, "platform.disk").status, Status::Ok);
    f.ollama.models = Some(Vec::new());
    let c = check(&f, "platform.disk");
    assert_eq!(c.status, Status::Fail, "{c:?}");
    assert!(c.fix.unwrap().contains("OLLAMA_MODELS"));
    f.disk = Ok((PathBuf::from("/h"), 1_000_000_000));
    f.ollama.models = None;
    f.ollama.local = false;
    assert_eq!(check(&f, "platform.disk").status, Status::Ok);
}

#[test]
fn old_ollama_fails_with_the_minimum_named() {
    let mut f = healthy();
    f.ollama_bin = ToolProbe::Found {
        path: "/usr/bin/ollama".into(),
        version: Some("0.9.6".into()),
    };
    f.ollama.version = Ok("0.9.6".into());
    for id in ["ollama.binary", "ollama.server"] {
        let c = check(&f, id);
        assert_eq!(c.status, Status::Fail);
        assert!(c.summary.contains("0.11.0"), "{c:?}");
    }
}

#[test]
fn missing_tools_capability_fails() {
    let mut f = healthy();
    f.ollama.details = Some(Ok(ModelDetails {
        capabilities: vec!["completion".into()],
        architecture: None,
        trained_context: None,
        kv: None,
    }));
    let c = check(&f, "ollama.model");
    assert_eq!(c.status, Status::Fail);
    assert!(c.summary.contains("tools"));
}

#[test]
fn capabilities_the_model_lacks_are_named_with_what_the_proxy_does() {
    let mut f = healthy();
    let c = check(&f, "ollama.capabilities");
    assert_eq!(c.status, Status::Ok);
    assert_eq!(
        c.summary,
        "gpt-oss:20b has no vision and no thinking; the proxy adapts"
    );
    let detail = c.detail.unwrap();
    assert!(
        detail.contains("images become a note") && detail.contains("Router.image"),
        "{detail}"
    );
    assert!(detail.contains("without reasoning_effort"), "{detail}");
    if let Some(Ok(d)) = &mut f.ollama.details {
        d.capabilities.push("thinking".into());
    }
    f.config = config(json!({
        "Providers": [{"name": "ollama", "api_base_url": "http://127.0.0.1:11434/v1/chat/completions", "models": ["gpt-oss:20b"]},
                      {"name": "cloud", "api_base_url": "https://example.com/v1/chat/completions", "api_key": "k", "models": ["big"]}],
        "Router": {"default": "ollama,gpt-oss:20b", "image": "cloud,big"}
    }));
    let c = check(&f, "ollama.capabilities");
    assert_eq!(c.summary, "gpt-oss:20b has no vision; the proxy adapts");
    assert!(c
        .detail
        .unwrap()
        .contains("goes to Router.image (cloud,big)"));
    if let Some(Ok(d)) = &mut f.ollama.details {
        d.capabilities.push("vision".into());
    }
    assert_eq!(
        check(&f, "ollama.capabilities").summary,
        "gpt-oss:20b takes images and thinking"
    );
}

#[test]
fn context_fix_depends_on_who_runs_the_server() {
    let mut f = healthy();
    if let Some(Ok(Some(m))) = &mut f.ollama.loaded {
        m.context_length = Some(4096);
    }
    f.ollama.owner = Owner::OllamaApp { pid: None };
    let c = check(&f, "ollama.context");
    assert_eq!(c.status, Status::Fail);
    assert!(c.fix.unwrap().contains("Settings"));
    f.ollama.owner = Owner::SystemdService { pid: None };
    assert!(check(&f, "ollama.context")
        .fix
        .unwrap()
        .contains("Environment=\"OLLAMA_CONTEXT_LENGTH=32768\""));
    f.ollama.loaded = Some(Ok(None));
    assert_eq!(check(&f, "ollama.context").status, Status::Ok);
}

#[test]
fn parallel_slots_someone_else_runs_are_named_with_their_fix() {
    let mut f = healthy();
    f.num_parallel = 2;
    f.ollama.owner = Owner::BrewService { pid: None };
    let c = check(&f, "ollama.context");
    assert_eq!(c.status, Status::Warn, "{c:?}");
    assert!(c.summary.contains("2 parallel slots"), "{}", c.summary);
    assert!(c.fix.unwrap().contains("brew services stop ollama"));
    f.ollama.owner = Owner::SystemdService { pid: None };
    assert!(check(&f, "ollama.context")
        .fix
        .unwrap()
        .contains("Environment=\"OLLAMA_NUM_PARALLEL=2\""));
    // Ours: `up` passes it.
    f.ollama.owner = Owner::OurService {
        unit: "ccr-setup-ollama.service".into(),
    };
    assert_eq!(check(&f, "ollama.context").status, Status::Ok);
}

#[test]
fn two_launchers_compete() {
    let mut f = healthy();
    f.platform = Platform::MacOs;
    f.launchers = vec![
        Launcher::App("/Applications/Ollama.app".into()),
        Launcher::BrewService("/h/Library/LaunchAgents/homebrew.mxcl.ollama.plist".into()),
    ];
    let c = check(&f, "ollama.competing");
    assert_eq!(c.status, Status::Warn);
    assert!(c.fix.unwrap().contains("brew services stop ollama"));
}

#[test]
fn homebrew_matters_on_macos_only() {
    let mut f = healthy();
    assert_eq!(check(&f, "homebrew").status, Status::Ok);
    f.platform = Platform::MacOs;
    f.brew = Some(ToolProbe::Missing);
    assert_eq!(check(&f, "homebrew").status, Status::Warn);
}

#[test]
fn anthropic_settings_that_bypass_the_proxy() {
    let mut f = healthy();
    f.claude_settings_env = Ok(vec![(
        "ANTHROPIC_BASE_URL".into(),
        "https://api.anthropic.com".into(),
    )]);
    let c = check(&f, "claude.env");
    assert_eq!(c.status, Status::Fail);
    assert!(c.fix.unwrap().contains("settings.json"));

    // Pointing at the proxy (localhost = 127.0.0.1) is fine.
    f.claude_settings_env = Ok(vec![(
        "ANTHROPIC_BASE_URL".into(),
        "http://localhost:3456/".into(),
    )]);
    assert_eq!(check(&f, "claude.env").status, Status::Ok);

    f.claude_settings_env = Ok(Vec::new());
    f.anthropic_env = vec![("ANTHROPIC_BASE_URL".into(), "https://example.com".into())];
    assert_eq!(check(&f, "claude.env").status, Status::Warn);
    // A key alone is normal cloud use.
    f.anthropic_env = vec![("ANTHROPIC_API_KEY".into(), "sk-ant-x".into())];
    assert_eq!(check(&f, "claude.env").status, Status::Ok);
    f.anthropic_env
        .push(("ANTHROPIC_BASE_URL".into(), "http://127.0.0.1:3456".into()));
    let c = check(&f, "claude.env");
    assert_eq!(c.status, Status::Warn);
    assert!(
        !format!("{c:?}").contains("sk-ant-x"),
        "a secret leaked: {c:?}"
    );
}

#[test]
fn onboarding_fix_is_offered() {
    let mut f = healthy();
    f.claude_json = ClaudeJson::Missing;
    let c = check(&f, "claude.onboarding");
    assert_eq!(c.status, Status::Warn);
    assert_eq!(
        c.action,
        Some(FixAction::SeedClaudeJson("/h/.claude.json".into()))
    );
}

#[test]
fn host_apikey_rule() {
    let mut f = healthy();
    let mut doc = base_doc();
    doc["HOST"] = json!("0.0.0.0");
    f.config = config(doc.clone());
    // Invalid as a whole (validation names HOST), and the auth check fails too.
    assert_eq!(check(&f, "config.valid").status, Status::Fail);
    assert_eq!(check(&f, "config.auth").status, Status::Fail);
    doc["APIKEY"] = json!("short");
    f.config = config(doc.clone());
    assert_eq!(check(&f, "config.auth").status, Status::Warn);
    doc["APIKEY"] = json!("a-long-enough-random-secret");
    f.config = config(doc.clone());
    assert_eq!(check(&f, "config.auth").status, Status::Ok);
    // Team mode: client keys guard the proxy without an APIKEY.
    doc.as_object_mut().unwrap().remove("APIKEY");
    let hash = crate::config::client_keys::format_hash(&crate::config::client_keys::hash_key("k"));
    doc["Clients"] = json!([{"name": "alice", "key_hash": hash}]);
    f.config = config(doc);
    let c = check(&f, "config.auth");
    assert_eq!(c.status, Status::Ok, "{c:?}");
    assert!(c.summary.contains("1 client key(s)"), "{c:?}");
}

#[test]
fn providers_fail_for_the_default_and_warn_for_others() {
    let mut f = healthy();
    f.providers.push(ProviderProbe {
        index: 1,
        replicas: 1,
        name: "cloud".into(),
        url: "https://api.example.com/v1/chat/completions".into(),
        is_ollama: false,
        is_default: false,
        models: vec!["big".into()],
        answer: Err("no answer in time".into()),
    });
    assert_eq!(check(&f, "config.providers").status, Status::Warn);
    f.providers[1].answer = Ok(Some(vec!["other".into()]));
    let c = check(&f, "config.providers");
    assert_eq!(c.status, Status::Warn);
    assert!(c.detail.unwrap().contains("big not on the server"));
    // `gpt-oss` and `gpt-oss:latest` are one model to Ollama.
    f.providers[0].models = vec!["gpt-oss".into()];
    f.providers[0].answer = Ok(Some(vec!["gpt-oss:latest".into()]));
    f.providers.truncate(1);
    assert_eq!(check(&f, "config.providers").status, Status::Ok);
    f.providers[0].answer = Ok(Some(vec![]));
    let c = check(&f, "config.providers");
    assert_eq!(c.status, Status::Fail);
    assert!(c.fix.unwrap().contains("ollama pull gpt-oss"));
}

#[test]
fn stranger_on_the_port() {
    let mut f = healthy();
    f.proxy.health = Some(Ok(crate::doctor::probe::HttpAnswer {
        status: 404,
        body: "Not Found".into(),
        server: Some("node".into()),
    }));
    let c = check(&f, "proxy.port");
    assert_eq!(c.status, Status::Fail);
    assert!(c.summary.contains("claude-code-router"), "{c:?}");
    f.proxy.probe = PortProbe::Closed;
    f.proxy.health = None;
    assert_eq!(check(&f, "proxy.port").status, Status::Warn);
}

fn service(
    kind: ServiceKind,
    program: &str,
    loaded: Option<bool>,
    problems: &[&str],
) -> ServiceState {
    ServiceState {
        manager: Manager::Systemd,
        kind,
        name: kind.systemd_unit(),
        path: PathBuf::from(format!("/h/.config/systemd/user/{}", kind.systemd_unit())),
        installed: true,
        loaded,
        program: Some(program.into()),
        problems: problems.iter().map(|s| (*s).to_owned()).collect(),
    }
}

#[test]
fn services_stale_unloaded_and_moved() {
    let mut f = healthy();
    f.services.states = vec![
        service(ServiceKind::Ollama, "/usr/bin/ollama", Some(true), &[]),
        service(
            ServiceKind::Proxy,
            "/usr/local/bin/ccr-setup",
            Some(true),
            &[],
        ),
    ];
    assert_eq!(check(&f, "services").status, Status::Ok);

    f.services.states[1].loaded = Some(false);
    let c = check(&f, "services");
    assert_eq!(c.status, Status::Warn);
    assert!(c
        .fix
        .unwrap()
        .contains("systemctl --user enable --now ccr-setup-proxy.service"));
    assert!(matches!(c.action, Some(FixAction::LoadServices { .. })));

    f.services.states[1] = service(ServiceKind::Proxy, "/old/place/ccr-setup", Some(true), &[]);
    let c = check(&f, "services");
    assert_eq!(c.status, Status::Warn, "{c:?}");
    assert!(c.detail.unwrap().contains("/old/place/ccr-setup"));

    f.services.states[1] = service(
        ServiceKind::Proxy,
        "/old/place/ccr-setup",
        Some(true),
        &["/old/place/ccr-setup is missing or not executable"],
    );
    let c = check(&f, "services");
    assert_eq!(c.status, Status::Fail);
    assert!(c.fix.unwrap().contains("ccr-setup init"));
}

#[test]
fn literal_key_in_a_readable_file_fails_with_chmod() {
    let mut f = healthy();
    let mut doc = base_doc();
    doc["APIKEY"] = json!("a-long-enough-random-secret");
    f.config = config(doc);
    f.config.mode = Some(0o644);
    let c = check(&f, "config.mode");
    assert_eq!(c.status, Status::Fail);
    assert_eq!(c.action, Some(FixAction::Chmod600(f.config.path.clone())));
    // A $VAR reference is not a secret.
    let mut doc = base_doc();
    doc["APIKEY"] = json!("$PROXY_KEY");
    f.config = config(doc);
    f.config.mode = Some(0o644);
    assert_eq!(check(&f, "config.mode").status, Status::Ok);
}

#[test]
fn budget_reports_what_the_fixed_prompt_leaves() {
    use crate::context_budget::{CLAUDE_CODE_FIXED_TOKENS, MCP_SERVER_TOKENS_ESTIMATE};
    let mut f = healthy();
    let c = check(&f, "claude.budget");
    assert_eq!(c.status, Status::Ok, "{c:?}");
    let left = 32_768 - CLAUDE_CODE_FIXED_TOKENS;
    assert_eq!(
        c.summary,
        format!("fixed prompt {CLAUDE_CODE_FIXED_TOKENS} tokens, left for the conversation {left} of the 32768-token window")
    );
    // One MCP server tips a 32k window under 12k: a warning that says it is an estimate.
    f.mcp_servers = Ok(vec!["tracker".into()]);
    let c = check(&f, "claude.budget");
    assert_eq!(c.status, Status::Warn, "{c:?}");
    let fixed = CLAUDE_CODE_FIXED_TOKENS + MCP_SERVER_TOKENS_ESTIMATE;
    assert!(
        c.summary
            .starts_with(&format!("fixed prompt {fixed} tokens")),
        "{}",
        c.summary
    );
    assert!(c.summary.contains("estimated"), "{}", c.summary);
    assert!(c.detail.as_deref().unwrap().contains("tracker"));
    assert!(c.fix.as_deref().unwrap().contains("--context-length 65536"));
    assert!(c.fix.as_deref().unwrap().contains("/mcp"));
}

#[test]
fn budget_uses_the_default_providers_context_window() {
    let mut f = healthy();
    f.config = config(json!({
        "Providers": [{"name": "ollama", "api_base_url": "http://127.0.0.1:11434/v1/chat/completions",
                       "models": ["gpt-oss:20b"], "context_window": 65536}],
        "Router": {"default": "ollama,gpt-oss:20b"}
    }));
    let c = check(&f, "claude.budget");
    assert!(
        c.summary.ends_with("of the 65536-token window"),
        "{}",
        c.summary
    );
    f.context_length = 16_384;
    f.config = config(base_doc());
    let c = check(&f, "claude.budget");
    assert_eq!(c.status, Status::Warn);
    assert!(
        c.summary.contains("of the 16384-token window"),
        "{}",
        c.summary
    );
    f.mcp_servers = Err("/h/.claude.json is not JSON: oops".into());
    let c = check(&f, "claude.budget");
    assert!(c.detail.unwrap().contains("MCP servers not counted"));
}

#[test]
fn another_users_process_on_the_proxy_port_is_a_warning() {
    let mut f = healthy();
    let ok = super::proxy::proxy_owner(&f);
    assert_eq!(ok.status, Status::Ok);
    f.proxy.foreign_owner = Some("user mallory (uid 1001), pid 4242 (python3)".into());
    let c = super::proxy::proxy_owner(&f);
    assert_eq!(c.status, Status::Warn);
    assert!(
        c.summary.contains("mallory") && c.summary.contains("reach it"),
        "{}",
        c.summary
    );
    assert!(c.fix.unwrap().contains("PORT"));
}
