//! `init --server` in a sandbox, for each engine kind (fakes that answer as vLLM,
//! llama-server and Ollama do): the config in server mode, the proxy's systemd unit
//! (checked by `systemd-analyze verify`) and the Caddyfile (checked by the real
//! `caddy adapt`), with no Ollama service.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::routed_http::{fake_llama_server, fake_ollama_engine, fake_vllm, RoutedHttp};
use crate::support::sandbox::{run_expect, Sandbox};
use crate::support::{tool_on_path, unbound_port};

fn init_server(sb: &Sandbox, extra: &[&str]) -> Command {
    let config = sb.config_path();
    let mut args = vec![
        "--config",
        config.to_str().unwrap(),
        "init",
        "--server",
        "--yes",
        "--service-manager",
        "systemd",
    ];
    args.extend_from_slice(extra);
    let mut c = sb.cmd(&args);
    c.env("CCR_SETUP_PLATFORM", "linux");
    c
}

fn unit_path(sb: &Sandbox, name: &str) -> std::path::PathBuf {
    sb.home.join(".config/systemd/user").join(name)
}

/// `caddy adapt` reads the Caddyfile as Caddy will; the JSON names the upstream.
fn assert_caddy_accepts(caddyfile: &Path, port: u16) {
    let Some(caddy) = tool_on_path("caddy") else {
        return;
    };
    let out = Command::new(caddy)
        .args(["adapt", "--adapter", "caddyfile", "--config"])
        .arg(caddyfile)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "caddy adapt failed: {stderr}");
    assert!(
        !stderr.contains("\"level\":\"warn\""),
        "caddy warns: {stderr}"
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = json.to_string();
    assert!(
        text.contains(&format!("\"dial\":\"127.0.0.1:{port}\"")),
        "{text}"
    );
    assert!(text.contains("\"flush_interval\":-1"), "{text}");
    assert!(
        text.contains("{http.reverse_proxy.upstream.hostport}"),
        "{text}"
    );
}

fn assert_unit_verifies(unit: &Path) {
    let text = std::fs::read_to_string(unit).unwrap();
    assert!(text.contains("LimitNOFILE=65536"), "{text}");
    assert!(text.contains("Restart=on-failure"), "{text}");
    assert!(text.contains(" \"proxy\""), "{text}");
    let Some(analyze) = tool_on_path("systemd-analyze") else {
        return;
    };
    let out = Command::new(analyze)
        .arg("verify")
        .arg(unit)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run `init --server` against `engine` and check everything it wrote.
fn check_server_init(engine: &RoutedHttp, provider: &str, model: &str, window: Option<u64>) {
    let sb = Sandbox::new();
    let base = engine.base();
    let flags = [
        "--engine-url",
        &base,
        "--tls",
        "internal",
        "--domain",
        "gpu-box.lan",
    ];
    let (stdout, _) = run_expect(init_server(&sb, &flags), 0);
    assert!(
        stdout.contains(&format!("Engine: {provider} at {}", engine.base())),
        "{stdout}"
    );
    assert!(stdout.contains("ccr-setup clients add alice"), "{stdout}");
    let doc = sb.config_doc();
    assert_eq!(doc["ServerMode"], true);
    assert_eq!(doc["HOST"], "127.0.0.1");
    assert_eq!(doc["Router"]["default"], format!("{provider},{model}"));
    let p = doc["Providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == provider)
        .unwrap_or_else(|| panic!("no {provider} provider: {doc}"));
    assert_eq!(
        p["api_base_url"],
        format!("{}/v1/chat/completions", engine.base())
    );
    assert_eq!(p["local"], true);
    assert_eq!(p["context_window"].as_u64(), window);
    assert!(
        doc.get("Clients").is_none(),
        "clients are added by `clients add`"
    );
    // The proxy's unit, and no Ollama service: the engine is the operator's.
    assert_unit_verifies(&unit_path(&sb, "ccr-setup-proxy.service"));
    assert!(!unit_path(&sb, "ccr-setup-ollama.service").exists());
    let unit = std::fs::read_to_string(unit_path(&sb, "ccr-setup-proxy.service")).unwrap();
    assert!(
        !unit.contains("ccr-setup-ollama.service"),
        "the proxy unit names no Ollama unit of ours:\n{unit}"
    );
    let caddyfile = sb.config_path().with_file_name("Caddyfile");
    let text = std::fs::read_to_string(&caddyfile).unwrap();
    assert!(text.contains("gpu-box.lan {\n\ttls internal\n"), "{text}");
    assert_caddy_accepts(&caddyfile, 3456);
    // Re-running changes nothing in the config (no new backup).
    let (stdout, _) = run_expect(init_server(&sb, &flags), 0);
    assert!(
        stdout.contains("unchanged ~/.claude-code-router/config.json"),
        "{stdout}"
    );
    assert_eq!(sb.config_doc(), doc);
    assert_eq!(sb.config_backups(), 0);
}

#[test]
fn team_init_server_for_vllm() {
    check_server_init(&fake_vllm(), "vllm", "openai/gpt-oss-20b", Some(131072));
}

#[test]
fn team_init_server_for_llama_server_takes_the_per_slot_context() {
    check_server_init(&fake_llama_server(), "llama-server", "gpt-oss", Some(8192));
}

#[test]
fn team_init_server_for_ollama_reads_the_loaded_context() {
    check_server_init(&fake_ollama_engine(), "ollama", "gpt-oss:20b", Some(32768));
}

#[test]
fn team_init_server_detects_engines_on_the_probed_ports_and_says_what_it_found() {
    let (llama, vllm) = (fake_llama_server(), fake_vllm());
    let nothing = unbound_port();
    let sb = Sandbox::new();
    let ports = format!("{nothing},{},{}", llama.port(), vllm.port());
    let mut cmd = init_server(&sb, &["--domain", "team.example.com"]);
    cmd.env("CCR_SETUP_ENGINE_PORTS", &ports);
    let (stdout, _) = run_expect(cmd, 0);
    assert!(
        stdout.contains(&format!("Nothing answers on 127.0.0.1:{nothing}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "Found llama-server at {} serving gpt-oss, 8192-token context per request, 4 slots",
            llama.base()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("Found vllm at {}", vllm.base())),
        "{stdout}"
    );
    // --yes takes the first found.
    assert_eq!(sb.config_doc()["Router"]["default"], "llama-server,gpt-oss");
    // A public name: Caddy's ACME, no `tls internal`.
    let caddyfile = sb.config_path().with_file_name("Caddyfile");
    let text = std::fs::read_to_string(&caddyfile).unwrap();
    assert!(
        text.contains("team.example.com {\n\treverse_proxy"),
        "{text}"
    );
    assert_caddy_accepts(&caddyfile, 3456);
}

#[test]
fn team_init_server_refuses_a_wrong_engine_and_no_engine() {
    let vllm = fake_vllm();
    let sb = Sandbox::new();
    let (_, stderr) = run_expect(
        init_server(
            &sb,
            &[
                "--engine",
                "ollama",
                "--engine-url",
                &vllm.base(),
                "--tls",
                "internal",
            ],
        ),
        1,
    );
    assert!(
        stderr.contains("does not answer as ollama (it is vllm)"),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
    let mut cmd = init_server(&sb, &["--tls", "internal"]);
    cmd.env("CCR_SETUP_ENGINE_PORTS", unbound_port().to_string());
    let (_, stderr) = run_expect(cmd, 1);
    assert!(
        stderr.contains("no model server answers on 127.0.0.1:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("--engine vllm|llama-server|ollama"),
        "{stderr}"
    );
    assert!(!sb.config_path().exists(), "nothing is written on failure");
}

#[test]
fn team_server_mode_refuses_a_lan_bind() {
    let vllm = fake_vllm();
    let sb = Sandbox::new();
    run_expect(
        init_server(&sb, &["--engine-url", &vllm.base(), "--tls", "internal"]),
        0,
    );
    let mut doc = sb.config_doc();
    doc["HOST"] = Value::from("0.0.0.0");
    doc["APIKEY"] = Value::from("admin-secret-admin-secret");
    sb.write_config(&doc);
    let config = sb.config_path();
    let (stdout, stderr) = run_expect(
        sb.cmd(&["--config", config.to_str().unwrap(), "config", "validate"]),
        1,
    );
    let all = format!("{stdout}{stderr}");
    assert!(all.contains("HOST"), "{all}");
    assert!(all.contains("Caddy terminates TLS"), "{all}");
}

/// Caddy, run from the Caddyfile `init --server` rendered, with global options for a
/// test (no admin endpoint, no trust-store install, its storage in the sandbox, free
/// ports); killed on drop.
struct Caddy {
    child: std::process::Child,
    root_crt: std::path::PathBuf,
}

impl Caddy {
    fn start(caddy: &Path, rendered: &Path, dir: &Path) -> Caddy {
        let storage = dir.join("caddy-data");
        let wrapper = dir.join("test.Caddyfile");
        std::fs::write(
            &wrapper,
            format!(
                "{{\n\tadmin off\n\tskip_install_trust\n\tauto_https disable_redirects\n\thttp_port {}\n\tstorage file_system {}\n}}\nimport {}\n",
                unbound_port(),
                storage.display(),
                rendered.display()
            ),
        )
        .unwrap();
        let child = Command::new(caddy)
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&wrapper)
            .env("HOME", dir)
            .env("XDG_DATA_HOME", dir.join("xdg-data"))
            .env("XDG_CONFIG_HOME", dir.join("xdg-config"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("caddy.log")).unwrap())
            .spawn()
            .unwrap();
        let root_crt = storage.join("pki/authorities/local/root.crt");
        Caddy { child, root_crt }
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The whole TLS path with the real Caddy: `init --server` renders the Caddyfile in
/// front of a fake team server (standing in for the proxy), Caddy serves it with its
/// own CA, and `init --join https://… --ca-cert root.crt` joins through it; without
/// the CA the laptop refuses the certificate.
#[test]
fn team_join_through_the_rendered_caddyfile_with_caddys_internal_ca() {
    let Some(caddy) = tool_on_path("caddy") else {
        return;
    };
    let (vllm, team) = (
        fake_vllm(),
        crate::support::routed_http::fake_team_server(200),
    );
    let server = Sandbox::new();
    let https_port = unbound_port();
    let site = format!("127.0.0.1:{https_port}");
    let team_port = team.port().to_string();
    let flags = [
        "--engine-url",
        &vllm.base(),
        "--tls",
        "internal",
        "--domain",
        &site,
        "--port",
        &team_port,
    ];
    run_expect(init_server(&server, &flags), 0);
    let rendered = server.config_path().with_file_name("Caddyfile");
    let caddy = Caddy::start(&caddy, &rendered, server.root.path());
    let url = format!("https://{site}");
    let started = std::time::Instant::now();
    while !(caddy.root_crt.exists() && std::net::TcpStream::connect(&site).is_ok()) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "caddy did not start: {}",
            std::fs::read_to_string(server.root.path().join("caddy.log")).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let laptop = Sandbox::new();
    let join = |extra: &[&str], code: i32| {
        let config = laptop.config_path();
        let mut args = vec![
            "--config",
            config.to_str().unwrap(),
            "init",
            "--join",
            &url,
            "--yes",
        ];
        args.extend_from_slice(extra);
        let mut c = laptop.cmd(&args);
        c.env("CCR_SETUP_PLATFORM", "linux")
            .env("CCR_SETUP_CLIENT_KEY", "ccr_through_caddy");
        run_expect(c, code)
    };
    let (_, stderr) = join(&[], 1);
    assert!(stderr.contains("cannot reach the team server"), "{stderr}");
    let crt = caddy.root_crt.to_str().unwrap().to_owned();
    let (stdout, _) = join(&["--ca-cert", &crt], 0);
    assert!(stdout.contains("accepts the key: client alice"), "{stdout}");
    // Caddy passed the key and named the upstream in Host (the proxy's rebinding guard).
    let head = team.requests().pop().unwrap().to_ascii_lowercase();
    assert!(head.contains("x-api-key: ccr_through_caddy"), "{head}");
    assert!(
        head.contains(&format!("host: 127.0.0.1:{}", team.port())),
        "{head}"
    );
    assert_eq!(laptop.config_doc()["Join"]["ca_cert"], crt.as_str());
    let config = laptop.config_path();
    let mut env = laptop.cmd(&["--config", config.to_str().unwrap(), "env"]);
    env.env("CCR_SETUP_PLATFORM", "linux");
    let (stdout, _) = run_expect(env, 0);
    assert!(
        stdout.contains(&format!("export ANTHROPIC_BASE_URL='{url}'")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("export NODE_EXTRA_CA_CERTS='{crt}'")),
        "{stdout}"
    );
}
