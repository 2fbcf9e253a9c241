//! `ccr-setup doctor` run as a real binary in fake environments: a temp HOME, fake
//! `ollama`, `claude` and `brew` executables on PATH, the fake Ollama server, and tiny
//! HTTP servers holding the proxy port. Each case asserts the status of every check and
//! the exit code.

use crate::support;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::claude_code::{wait_for_proxy, Child};
use support::fake_ollama::{FakeConfig, FakeModel, FakeOllama};
use support::sandbox::Sandbox;
use support::tiny_http::TinyHttp;

/// The documented check ids, in report order (docs/guide.md, "`ccr-setup doctor`").
const IDS: &[&str] = &[
    "platform.os",
    "platform.memory",
    "platform.disk",
    "homebrew",
    "ollama.binary",
    "ollama.server",
    "ollama.model",
    "ollama.capabilities",
    "ollama.context",
    "ollama.competing",
    "claude.binary",
    "claude.onboarding",
    "claude.env",
    "claude.budget",
    "config.valid",
    "config.providers",
    "config.mode",
    "config.keys",
    "config.auth",
    "proxy.port",
    "proxy.owner",
    "services",
];

/// A doctor scenario: the sandbox plus the proxy port its config names.
struct Env {
    sb: Sandbox,
    proxy_port: u16,
}

impl Env {
    /// A healthy machine around `ollama_host`: tools on PATH, onboarding done, a valid
    /// local-only config (mode 0600) pointing at that server.
    fn new(ollama_host: &str) -> Env {
        let env = Env {
            sb: Sandbox::new().with_ollama_host(ollama_host),
            proxy_port: support::unbound_port(),
        };
        env.sb
            .fakes
            .add_script("ollama", "echo 'ollama version is 0.12.3'");
        env.sb
            .fakes
            .add_script("claude", "echo '2.1.197 (Claude Code)'");
        env.sb.fakes.add_script("brew", "echo 'Homebrew 4.6.1'");
        std::fs::write(
            env.home().join(".claude.json"),
            r#"{"hasCompletedOnboarding": true, "userID": "test"}"#,
        )
        .unwrap();
        env.write_config(&env.config_doc(), 0o600);
        env
    }

    fn root(&self) -> &Path {
        self.sb.root.path()
    }
    fn bin(&self) -> PathBuf {
        self.sb.fakes.dir.clone()
    }
    fn home(&self) -> PathBuf {
        self.sb.home.clone()
    }
    fn config_path(&self) -> PathBuf {
        self.sb.config_path()
    }

    fn config_doc(&self) -> Value {
        json!({
            "HOST": "127.0.0.1",
            "PORT": self.proxy_port,
            "Providers": [{
                "name": "ollama",
                "api_base_url": format!("http://{}/v1/chat/completions", self.sb.ollama_host),
                "api_key": "",
                "models": ["gpt-oss:20b"]
            }],
            "Router": {"default": "ollama,gpt-oss:20b"},
            "Ollama": {"model": "gpt-oss:20b", "context_length": 32768}
        })
    }

    fn write_config(&self, doc: &Value, mode: u32) {
        self.sb.write_config_mode(doc, mode);
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.sb.cmd(&["doctor"]);
        cmd.args(args);
        cmd
    }

    /// Run `doctor --json`: (exit code, checks by id, elapsed).
    fn run_json(&self, extra: &[&str]) -> (i32, Vec<Value>, Duration) {
        let mut args = vec!["--json"];
        args.extend_from_slice(extra);
        let start = Instant::now();
        let out = self.command(&args).output().unwrap();
        let elapsed = start.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let checks: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "doctor --json printed no JSON ({e}):\n{stdout}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let list = checks.as_array().expect("a JSON list").clone();
        assert_shape(&list);
        (out.status.code().expect("exit code"), list, elapsed)
    }
}

/// The documented `--json` shape: a list of exactly `{id, status, summary, detail, fix}`
/// in the documented id order; status is ok|warn|fail; detail and fix are string or
/// null; every warning and failure carries a fix.
fn assert_shape(list: &[Value]) {
    let ids: Vec<&str> = list.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, IDS, "check ids or their order changed");
    for c in list {
        let obj = c.as_object().expect("each check is an object");
        let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        assert_eq!(keys, ["id", "status", "summary", "detail", "fix"], "{c}");
        let status = c["status"].as_str().unwrap();
        assert!(["ok", "warn", "fail"].contains(&status), "{c}");
        assert!(!c["summary"].as_str().unwrap().is_empty(), "{c}");
        assert!(c["detail"].is_null() || c["detail"].is_string(), "{c}");
        assert!(c["fix"].is_null() || c["fix"].is_string(), "{c}");
        if status != "ok" {
            assert!(
                c["fix"].as_str().is_some_and(|f| !f.is_empty()),
                "a {status} without a fix: {c}"
            );
        }
    }
}

fn by_id(list: &[Value], id: &str) -> Value {
    list.iter()
        .find(|c| c["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no check {id}"))
}

/// Physical memory in bytes, read independently of doctor: /proc/meminfo on Linux,
/// `sysctl -n hw.memsize` on macOS (which has no /proc).
fn total_memory_bytes() -> u64 {
    if cfg!(target_os = "macos") {
        let out = Command::new("sysctl")
            .args(["-n", "hw.memsize"])
            .output()
            .expect("sysctl");
        return String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("hw.memsize is a number");
    }
    let text = std::fs::read_to_string("/proc/meminfo").expect("/proc/meminfo");
    let kb: u64 = text
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .expect("a MemTotal line")
        .parse()
        .expect("MemTotal in kB");
    kb * 1024
}

/// What platform.memory must say on this machine, computed independently with the
/// documented thresholds (fail < 12 GB, warn < 16 GB).
fn expected_memory() -> &'static str {
    let gib = (total_memory_bytes() + (1 << 29)) >> 30;
    match gib {
        g if g < 12 => "fail",
        g if g < 16 => "warn",
        _ => "ok",
    }
}

/// The statuses of a healthy machine, with `overrides`.
fn expect(overrides: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, String> = IDS
        .iter()
        .map(|id| ((*id).to_owned(), "ok".to_owned()))
        .collect();
    m.insert("platform.memory".into(), expected_memory().into());
    for (id, s) in overrides {
        assert!(m.contains_key(*id), "unknown id {id}");
        m.insert((*id).into(), (*s).into());
    }
    m
}

fn statuses(list: &[Value]) -> BTreeMap<String, String> {
    list.iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// What platform.disk may say, computed independently with statvfs on the directory
/// doctor measures (the test root: the models directory does not exist). Free space on a
/// shared machine moves, so within 1 GB of a threshold both neighbours are accepted.
fn expected_disk(env: &Env, model_installed: bool) -> Vec<&'static str> {
    let st = nix::sys::statvfs::statvfs(env.root()).unwrap();
    #[allow(clippy::unnecessary_cast)]
    let free = st.blocks_available() as u64 * st.fragment_size() as u64;
    let rule = |free: u64| {
        if !model_installed && free < 15_000_000_000 {
            "fail"
        } else if free < 2_000_000_000 {
            "warn"
        } else {
            "ok"
        }
    };
    let mut ok = vec![
        rule(free),
        rule(free + 1_000_000_000),
        rule(free.saturating_sub(1_000_000_000)),
    ];
    ok.sort();
    ok.dedup();
    ok
}

fn assert_case(env: &Env, list: &[Value], overrides: &[(&str, &str)]) {
    let mut want = expect(overrides);
    let got = statuses(list);
    let disk = expected_disk(env, want["ollama.model"] == "ok");
    if disk.contains(&got["platform.disk"].as_str()) {
        want.insert("platform.disk".into(), got["platform.disk"].clone());
    } else {
        want.insert("platform.disk".into(), disk.join("|"));
    }
    if want != got {
        let diff: Vec<String> = want
            .iter()
            .filter(|(k, v)| got.get(*k) != Some(v))
            .map(|(k, v)| format!("{k}: want {v}, got {} ({})", got[k], by_id(list, k)))
            .collect();
        panic!("statuses differ:\n{}", diff.join("\n"));
    }
}

/// Our real proxy (`ccr-setup proxy`) on the config's port, in the test's HOME, once it
/// answers `/health`; killed on drop (the test started it).
fn our_proxy(env: &Env) -> Child {
    let mut proxy = Child(
        env.sb
            .cmd(&["proxy"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{}", env.proxy_port);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(wait_for_proxy(&base, Duration::from_secs(20), &mut proxy));
    proxy
}

fn loaded_fake(context: u64) -> FakeOllama {
    let fake = FakeOllama::start(FakeConfig::default().with_installed(FakeModel::gpt_oss()));
    fake.update(|s| s.loaded.push(("gpt-oss:20b".into(), context)));
    fake
}

#[test]
fn all_healthy() {
    let fake = loaded_fake(32_768);
    let env = Env::new(&fake.host_port());
    let _proxy = our_proxy(&env);
    let (code, list, elapsed) = env.run_json(&[]);
    assert_case(&env, &list, &[]);
    assert_eq!(code, 0);
    assert!(by_id(&list, "ollama.context")["summary"]
        .as_str()
        .unwrap()
        .contains("32768-token"));
    assert!(by_id(&list, "claude.binary")["summary"]
        .as_str()
        .unwrap()
        .contains("2.1.197"));
    // A loose guard on how long a healthy run takes.
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");

    // The human report: one line per check, ✓ everywhere, exit 0.
    let out = env.command(&[]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}"); // visible with --nocapture
    assert_eq!(out.status.code(), Some(0), "{text}");
    for id in IDS {
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().nth(1) == Some(id)),
            "no line for {id}:\n{text}"
        );
    }
    let oks = list.iter().filter(|c| c["status"] == "ok").count();
    assert_eq!(text.matches('✓').count(), oks, "{text}");
}

/// Claude Code's fixed prompt leaves ~12.3k of a 32k window; one MCP server in
/// `~/.claude.json` tips it under 12k: a warning naming the server, an estimate.
#[test]
fn an_mcp_server_tips_the_context_budget_into_a_warning() {
    let fake = loaded_fake(32_768);
    let env = Env::new(&fake.host_port());
    let _proxy = our_proxy(&env);
    let (_, list, _) = env.run_json(&[]);
    let budget = by_id(&list, "claude.budget");
    let summary = budget["summary"].as_str().unwrap();
    assert!(summary.starts_with("fixed prompt "), "{summary}");
    assert!(summary.ends_with("of the 32768-token window"), "{summary}");
    std::fs::write(
        env.home().join(".claude.json"),
        r#"{"hasCompletedOnboarding": true,
            "mcpServers": {"tracker": {"type": "stdio", "command": "tracker-mcp"}}}"#,
    )
    .unwrap();
    let (code, list, _) = env.run_json(&[]);
    assert_case(&env, &list, &[("claude.budget", "warn")]);
    assert_eq!(code, 0, "a warning does not fail doctor");
    let budget = by_id(&list, "claude.budget");
    assert!(
        budget["summary"]
            .as_str()
            .unwrap()
            .contains("MCP servers estimated"),
        "{budget}"
    );
    assert!(
        budget["detail"].as_str().unwrap().contains("(tracker)"),
        "{budget}"
    );
}

#[test]
fn ollama_missing() {
    let dead = format!("127.0.0.1:{}", support::unbound_port());
    let env = Env::new(&dead);
    std::fs::remove_file(env.bin().join("ollama")).unwrap();
    let _proxy = our_proxy(&env);
    let (code, list, _) = env.run_json(&[]);
    assert_case(
        &env,
        &list,
        &[
            ("ollama.binary", "fail"),
            ("ollama.server", "fail"),
            ("ollama.model", "warn"),
            ("ollama.capabilities", "warn"),
            ("ollama.context", "warn"),
            ("config.providers", "fail"),
        ],
    );
    assert_eq!(code, 1);
    let fix = by_id(&list, "ollama.binary")["fix"].to_string();
    assert!(fix.contains("ollama.com/install.sh"), "{fix}");
}

#[test]
fn server_down() {
    let dead = format!("127.0.0.1:{}", support::unbound_port());
    let env = Env::new(&dead);
    let _proxy = our_proxy(&env);
    let (code, list, _) = env.run_json(&[]);
    assert_case(
        &env,
        &list,
        &[
            ("ollama.server", "fail"),
            ("ollama.model", "warn"),
            ("ollama.capabilities", "warn"),
            ("ollama.context", "warn"),
            ("config.providers", "fail"),
        ],
    );
    assert_eq!(code, 1);
    assert!(by_id(&list, "ollama.server")["fix"]
        .as_str()
        .unwrap()
        .contains("ccr-setup up"));
}

#[test]
fn model_missing() {
    let fake = FakeOllama::start(FakeConfig::default());
    let env = Env::new(&fake.host_port());
    let _proxy = our_proxy(&env);
    let (code, list, _) = env.run_json(&[]);
    assert_case(
        &env,
        &list,
        &[
            ("ollama.model", "fail"),
            ("ollama.capabilities", "warn"),
            ("config.providers", "fail"),
        ],
    );
    assert_eq!(code, 1);
    assert!(by_id(&list, "ollama.model")["fix"]
        .as_str()
        .unwrap()
        .contains("ollama pull gpt-oss:20b"));
}

#[test]
fn context_4096() {
    let fake = loaded_fake(4096);
    let env = Env::new(&fake.host_port());
    let _proxy = our_proxy(&env);
    let (code, list, _) = env.run_json(&[]);
    assert_case(&env, &list, &[("ollama.context", "fail")]);
    assert_eq!(code, 1);
    let c = by_id(&list, "ollama.context");
    assert!(c["summary"].as_str().unwrap().contains("4096"), "{c}");
    assert!(
        c["fix"]
            .as_str()
            .unwrap()
            .contains("OLLAMA_CONTEXT_LENGTH=32768"),
        "{c}"
    );
}

#[test]
fn config_invalid() {
    let fake = loaded_fake(32_768);
    let env = Env::new(&fake.host_port());
    // The proxy started on the valid config keeps it when the file goes bad.
    let _proxy = our_proxy(&env);
    let mut doc = env.config_doc();
    doc["Router"]["default"] = json!("nowhere,gpt-oss:20b");
    doc["Providers"][0]["api_base_url"] = json!("not a url");
    env.write_config(&doc, 0o600);
    let (code, list, _) = env.run_json(&[]);
    assert_case(
        &env,
        &list,
        &[("config.valid", "fail"), ("config.providers", "warn")],
    );
    assert_eq!(code, 1);
    // Every problem is listed with its JSON path and its fix.
    let c = by_id(&list, "config.valid");
    let detail = c["detail"].as_str().unwrap();
    let fix = c["fix"].as_str().unwrap();
    for path in ["Router.default", "Providers[0].api_base_url"] {
        assert!(detail.contains(path), "{detail}");
        assert!(fix.contains(path), "{fix}");
    }
}

#[test]
fn port_taken_by_a_stranger() {
    let fake = loaded_fake(32_768);
    let env = Env::new(&fake.host_port());
    // What a foreign server (e.g. claude-code-router's Node server) answers.
    let _stranger = TinyHttp::start(
        env.proxy_port,
        200,
        "application/json",
        r#"{"status":"ok","timestamp":"2026-01-01T00:00:00Z"}"#,
    );
    let (code, list, _) = env.run_json(&[]);
    assert_case(&env, &list, &[("proxy.port", "fail")]);
    assert_eq!(code, 1);
    let c = by_id(&list, "proxy.port");
    assert!(
        c["summary"].as_str().unwrap().contains("another program"),
        "{c}"
    );
    assert!(c["fix"].as_str().unwrap().contains("PORT"), "{c}");
}

#[test]
fn config_mode_0644_with_a_key_and_fix_repairs_it() {
    let fake = loaded_fake(32_768);
    let env = Env::new(&fake.host_port());
    let mut doc = env.config_doc();
    doc["APIKEY"] = json!("a-literal-secret-of-some-length");
    env.write_config(&doc, 0o644);
    let _proxy = our_proxy(&env);
    // The proxy tightens its config folder at start (issue #28); loosen it again, as
    // something else might, for doctor to find.
    std::fs::set_permissions(env.config_path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, list, _) = env.run_json(&[]);
    assert_case(&env, &list, &[("config.mode", "fail")]);
    assert_eq!(code, 1);
    let c = by_id(&list, "config.mode");
    assert!(c["summary"].as_str().unwrap().contains("0644"), "{c}");
    assert_eq!(
        c["fix"].as_str().unwrap(),
        format!("`chmod 600 {}`", env.config_path().display())
    );
    // The human report shows the fix under the failure.
    let out = env.command(&[]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    let line = text
        .lines()
        .position(|l| l.contains("config.mode"))
        .unwrap();
    assert!(
        text.lines()
            .nth(line + 1)
            .unwrap()
            .contains("hint: `chmod 600"),
        "{text}"
    );

    // doctor alone changed nothing; --fix without a terminal refuses unless --yes.
    let mode = || {
        std::fs::metadata(env.config_path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(), 0o644);
    let out = env.command(&["--fix"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));
    assert_eq!(mode(), 0o644);

    let (code, list, _) = env.run_json(&["--fix", "--yes"]);
    assert_eq!(mode(), 0o600);
    assert_case(&env, &list, &[]);
    assert_eq!(code, 0);
}

#[test]
fn a_cloud_key_set_nowhere_disables_only_its_provider_and_a_stored_one_is_named() {
    let fake = loaded_fake(32_768);
    let env = Env::new(&fake.host_port());
    let mut doc = env.config_doc();
    doc["Providers"].as_array_mut().unwrap().push(json!({
        "name": "anthropic",
        "api_base_url": "http://127.0.0.1:9/v1/messages",
        "api_key": "$ANTHROPIC_API_KEY",
        "models": ["claude-sonnet-5-5"]
    }));
    doc["Router"]["think"] = json!("anthropic,claude-sonnet-5-5");
    env.write_config(&doc, 0o600);
    // The proxy starts with the key unset (as a service would, with no secrets).
    let _proxy = our_proxy(&env);
    let (code, list, _) = env.run_json(&[]);
    assert_case(
        &env,
        &list,
        &[("config.keys", "warn"), ("config.providers", "warn")],
    );
    assert_eq!(code, 0, "a warning, not a failure");
    let c = by_id(&list, "config.keys");
    assert!(
        c["summary"]
            .as_str()
            .unwrap()
            .contains("anthropic ($ANTHROPIC_API_KEY)"),
        "{c}"
    );
    assert!(c["fix"].as_str().unwrap().contains("ccr-setup init"), "{c}");

    // Stored: named as the source, the value never shown.
    let store = env.home().join(".claude-code-router/secrets.env");
    std::fs::write(&store, "ANTHROPIC_API_KEY=sk-ant-doctor-secret\n").unwrap();
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (_, list, _) = env.run_json(&[]);
    let c = by_id(&list, "config.keys");
    assert_eq!(c["status"], "ok", "{c}");
    assert!(
        c["summary"]
            .as_str()
            .unwrap()
            .contains("from the secrets store"),
        "{c}"
    );
    let all = serde_json::to_string(&list).unwrap();
    assert!(!all.contains("sk-ant-doctor-secret"), "{all}");

    // Readable by others: a failure with the chmod fix.
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, list, _) = env.run_json(&[]);
    let c = by_id(&list, "config.keys");
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(c["fix"], format!("`chmod 600 {}`", store.display()));
    assert_eq!(code, 1);
}

#[test]
fn fix_writes_a_missing_config_and_seeds_onboarding() {
    let fake = loaded_fake(32_768);
    let env = Env::new(&fake.host_port());
    std::fs::remove_file(env.config_path()).unwrap();
    std::fs::remove_file(env.home().join(".claude.json")).unwrap();
    let (code, list, _) = env.run_json(&[]);
    assert_eq!(code, 1);
    assert_eq!(by_id(&list, "config.valid")["status"], "fail");
    assert_eq!(by_id(&list, "claude.onboarding")["status"], "warn");
    assert!(
        !env.config_path().exists(),
        "doctor without --fix wrote a file"
    );

    let (_, list, _) = env.run_json(&["--fix", "--yes"]);
    assert_eq!(by_id(&list, "config.valid")["status"], "ok");
    assert_eq!(by_id(&list, "claude.onboarding")["status"], "ok");
    assert_eq!(
        std::fs::metadata(env.config_path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
}

#[test]
fn an_older_proxy_of_ours_is_a_warning() {
    let fake = loaded_fake(32_768);
    let env = Env::new(&fake.host_port());
    let body = json!({"status": "ok", "version": "0.0.1", "providers": []});
    let _old = TinyHttp::start(env.proxy_port, 200, "application/json", &body.to_string());
    let (code, list, _) = env.run_json(&[]);
    assert_case(&env, &list, &[("proxy.port", "warn")]);
    assert_eq!(code, 0, "warnings do not fail the run");
    let c = by_id(&list, "proxy.port");
    assert!(c["summary"].as_str().unwrap().contains("0.0.1"), "{c}");
}

#[test]
fn macos_app_and_brew_service_compete_and_homebrew_is_checked() {
    let fake = loaded_fake(32_768);
    let env = Env::new(&fake.host_port());
    let _proxy = our_proxy(&env);
    let system = env.root().join("system");
    std::fs::create_dir_all(system.join("Applications/Ollama.app")).unwrap();
    let agents = env.home().join("Library/LaunchAgents");
    std::fs::create_dir_all(&agents).unwrap();
    std::fs::write(agents.join("homebrew.mxcl.ollama.plist"), "<plist/>").unwrap();
    let run = |env: &Env| {
        let out = env
            .command(&["--json"])
            .env("CCR_SETUP_PLATFORM", "macos")
            .env("CCR_SETUP_SYSTEM_ROOT", &system)
            .output()
            .unwrap();
        let list: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        assert_shape(&list);
        (out.status.code().unwrap(), list)
    };
    let (code, list) = run(&env);
    assert_case(&env, &list, &[("ollama.competing", "warn")]);
    assert_eq!(code, 0);
    let c = by_id(&list, "ollama.competing");
    assert!(c["summary"].as_str().unwrap().contains("Ollama.app"), "{c}");
    assert!(
        c["fix"]
            .as_str()
            .unwrap()
            .contains("brew services stop ollama"),
        "{c}"
    );
    assert!(by_id(&list, "homebrew")["summary"]
        .as_str()
        .unwrap()
        .contains("4.6.1"));

    std::fs::remove_file(env.bin().join("brew")).unwrap();
    let (_, list) = run(&env);
    assert_eq!(by_id(&list, "homebrew")["status"], "warn");
}

#[test]
fn services_with_a_stale_path_fail_and_unloaded_ones_are_loaded_by_fix() {
    let fake = loaded_fake(32_768);
    let env = Env::new(&fake.host_port());
    let _proxy = our_proxy(&env);
    let units = env.home().join(".config/systemd/user");
    std::fs::create_dir_all(&units).unwrap();
    let unit = units.join("ccr-setup-proxy.service");
    let log = env.root().join("systemctl.log");
    // `is-active` says inactive (exit 3); every call is recorded.
    env.sb.fakes.add_script(
        "systemctl",
        &format!(
            "echo \"$@\" >> '{}'\ncase \"$*\" in *is-active*) exit 3;; esac\nexit 0",
            log.display()
        ),
    );

    // A binary that moved away: the unit points at nothing.
    std::fs::write(&unit, "[Service]\nExecStart=/moved/away/ccr-setup proxy\n").unwrap();
    let (code, list, _) = env.run_json(&[]);
    assert_case(&env, &list, &[("services", "fail")]);
    assert_eq!(code, 1);
    let c = by_id(&list, "services");
    assert!(
        c["detail"]
            .as_str()
            .unwrap()
            .contains("/moved/away/ccr-setup"),
        "{c}"
    );
    assert!(c["fix"].as_str().unwrap().contains("ccr-setup init"), "{c}");

    // The right binary, but not loaded: a warning, and --fix loads it.
    std::fs::write(
        &unit,
        format!(
            "[Service]\nExecStart={} proxy\n",
            env!("CARGO_BIN_EXE_ccr-setup")
        ),
    )
    .unwrap();
    let (code, list, _) = env.run_json(&[]);
    assert_case(&env, &list, &[("services", "warn")]);
    assert_eq!(code, 0);
    assert!(by_id(&list, "services")["fix"]
        .as_str()
        .unwrap()
        .contains("systemctl --user enable --now ccr-setup-proxy.service"));
    env.run_json(&["--fix", "--yes"]);
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(
        calls
            .lines()
            .any(|l| l == "--user enable --now ccr-setup-proxy.service"),
        "{calls}"
    );
}

/// The real Claude Code (from `scripts/ci-deps.sh`): its version is read as doctor reads it.
#[test]
fn real_claude_code_version_is_reported() {
    let Some(claude) = support::require_tool("CCR_E2E_CLAUDE") else {
        return;
    };
    let fake = loaded_fake(32_768);
    let env = Env::new(&fake.host_port());
    let _proxy = our_proxy(&env);
    std::fs::remove_file(env.bin().join("claude")).unwrap();
    std::os::unix::fs::symlink(&claude, env.bin().join("claude")).unwrap();
    let out = Command::new(&claude)
        .arg("--version")
        .env_clear()
        .env("HOME", env.home())
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    let version = printed.split_whitespace().next().unwrap().to_owned();
    let (code, list, elapsed) = env.run_json(&[]);
    assert_case(&env, &list, &[]);
    assert_eq!(code, 0);
    let c = by_id(&list, "claude.binary");
    assert_eq!(c["summary"], format!("Claude Code {version}"), "{c}");
    println!("healthy doctor with the real Claude Code: {elapsed:?}");
}

/// A provider whose models endpoint redirects elsewhere: `doctor` reports the answer
/// and never resends the key to the host the redirect names.
#[test]
fn the_provider_probe_does_not_follow_redirects_with_the_key() {
    let fake = loaded_fake(32_768);
    let env = Env::new(&fake.host_port());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let thief = rt.block_on(support::openai_upstream::FakeUpstream::start(vec![
        support::openai_upstream::Reply::status(200, r#"{"data": []}"#),
    ]));
    let redirect = TinyHttp::start(
        0,
        302,
        &format!("application/json\r\nlocation: {}", thief.url("/v1/models")),
        "{}",
    );
    let mut doc = env.config_doc();
    doc["Providers"].as_array_mut().unwrap().push(json!({
        "name": "cloud",
        "api_base_url": format!("http://{}/v1/messages", redirect.addr),
        "api_key": "sk-ant-must-not-travel",
        "models": ["claude-sonnet-5-5"]
    }));
    env.write_config(&doc, 0o600);
    let (_, list, _) = env.run_json(&[]);
    let c = by_id(&list, "config.providers");
    assert_ne!(
        c["status"], "ok",
        "a redirect is not a healthy provider: {c}"
    );
    assert!(
        thief.requests().is_empty(),
        "the key followed the redirect: {:?}",
        thief.requests()
    );
}

/// `/api/ps` blocks while a model loads (Ollama's scheduler lock): doctor says a model
/// is loading, not that it cannot read the loaded models.
#[test]
fn a_loading_model_is_named_not_an_unreadable_ps() {
    let fake = FakeOllama::start(
        FakeConfig::default()
            .with_installed(FakeModel::gpt_oss())
            .with_load_duration(Duration::from_secs(8)),
    );
    let env = Env::new(&fake.host_port());
    let url = fake.url();
    let load = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let _ = reqwest::Client::new()
                .post(format!("{url}/api/chat"))
                .json(&json!({"model": "gpt-oss:20b", "messages": []}))
                .send()
                .await;
        })
    });
    std::thread::sleep(Duration::from_millis(300));
    let (_, list, _) = env.run_json(&[]);
    let c = by_id(&list, "ollama.context");
    assert_eq!(c["status"], "warn", "{c}");
    assert!(
        c["summary"]
            .as_str()
            .unwrap()
            .contains("a model is loading"),
        "{c}"
    );
    load.join().unwrap();
}
