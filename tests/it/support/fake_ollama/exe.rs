//! The fake `ollama` executable: a POSIX sh script on the sandbox's PATH that answers
//! `ollama --version` itself and, for `ollama serve`, runs this very test binary in
//! "fake ollama" mode ([`fake_ollama_serve`], selected by an environment variable), which
//! serves the in-process fake on `OLLAMA_HOST`. One fake, two ways in.
//!
//! The script stays the parent (no `exec`), so the process `up` started and records is
//! `sh <bin>/ollama serve`, as for a real shebang script; the server exits when that
//! parent dies (a signal from `stop`, a test's cleanup), or after `FAKE_OLLAMA_LIFETIME`.
//!
//! Environment read by `serve` (besides Ollama's own `OLLAMA_HOST` and
//! `OLLAMA_CONTEXT_LENGTH`, default 4096 as on a small GPU):
//! `FAKE_OLLAMA_RECORD` (append `{"argv","env","pid"}` per start), `FAKE_OLLAMA_REQUESTS`
//! (append `METHOD PATH` per request), `FAKE_OLLAMA_INSTALLED` (comma-separated models),
//! `FAKE_OLLAMA_VERSION`, `FAKE_OLLAMA_START_DELAY` (seconds between binding the port and
//! serving HTTP), `FAKE_OLLAMA_LIFETIME` (seconds, default 300), `FAKE_OLLAMA_LINGER`
//! (seconds the server keeps its port after the script dies, default 0).

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::{FakeConfig, FakeModel, FakeOllama};

/// The environment variable that turns the entry test into the server.
const SERVE_ENV: &str = "FAKE_OLLAMA_SERVE";
/// The entry test's full name inside the test binary (`it` and `e2e` alike).
const ENTRY: &str = "support::fake_ollama::exe::fake_ollama_serve";

/// The body of the fake `ollama` script (after [`FakeBin`]'s call logging).
///
/// [`FakeBin`]: crate::support::fake_bin::FakeBin
pub fn script_body() -> String {
    let exe = std::env::current_exe().expect("the test binary's path");
    let exe = exe.display().to_string().replace('\'', r"'\''");
    format!(
        r#"case "$1" in
  serve) FAKE_OLLAMA_PID=$$ FAKE_OLLAMA_ARGV0="$0" {SERVE_ENV}=1 '{exe}' --exact {ENTRY} --ignored --nocapture --test-threads=1 -q ;;
  -v|--version) echo "ollama version is ${{FAKE_OLLAMA_VERSION:-0.12.3}}" ;;
  *) echo "fake ollama: only \`serve\` and \`--version\`" >&2; exit 2 ;;
esac"#
    )
}

/// `OLLAMA_HOST` read as Ollama reads it (envconfig.Host): quotes and spaces stripped;
/// `http://` defaults to port 80, `https://` to 443, anything else to 11434; a path is
/// ignored; an unparsable port falls back to `127.0.0.1:11434`.
pub fn parse_ollama_host(value: &str) -> (String, u16) {
    let s = value.trim().trim_matches(|c| c == '"' || c == '\'');
    let (default_port, rest) = match s.split_once("://") {
        Some(("http", rest)) => (80, rest),
        Some(("https", rest)) => (443, rest),
        Some((_, rest)) => (11434, rest),
        None => (11434, s),
    };
    let hostport = rest.split('/').next().unwrap_or("");
    let split = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split_once("]:")
    } else if hostport.matches(':').count() == 1 {
        hostport.split_once(':')
    } else {
        None
    };
    match split {
        // envconfig.Host(): a port ParseInt rejects (or out of range) is the default;
        // the host stays (empty for `:PORT`: every interface).
        Some((host, port)) => match port.parse::<u16>() {
            Ok(port) => (host.to_owned(), port),
            Err(_) => (host.to_owned(), default_port),
        },
        None if hostport.is_empty() => ("127.0.0.1".into(), default_port),
        None => (
            hostport.trim_matches(|c| c == '[' || c == ']').to_owned(),
            default_port,
        ),
    }
}

/// Where the fake listens for `OLLAMA_HOST`: the wildcard addresses (which mean "this
/// machine" to a client) are bound on loopback, since test machines are shared.
fn bind_addr(value: &str) -> SocketAddr {
    let (host, port) = parse_ollama_host(value);
    let host = match host.as_str() {
        "" | "0.0.0.0" | "::" => "127.0.0.1",
        h => h,
    };
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| panic!("fake ollama: cannot resolve {host}:{port}"))
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn seconds(name: &str, default: f64) -> Duration {
    Duration::from_secs_f64(env(name).and_then(|v| v.parse().ok()).unwrap_or(default))
}

/// The fake's configuration from the environment `ollama serve` was started with.
fn config_from_env() -> FakeConfig {
    let mut cfg = FakeConfig::default().with_start_delay(seconds("FAKE_OLLAMA_START_DELAY", 0.0));
    cfg.server_context = env("OLLAMA_CONTEXT_LENGTH")
        .and_then(|v| v.parse().ok())
        .unwrap_or(4096);
    cfg.version = env("FAKE_OLLAMA_VERSION").unwrap_or(cfg.version);
    cfg.installed = env("FAKE_OLLAMA_INSTALLED")
        .unwrap_or_default()
        .split(',')
        .filter(|m| !m.is_empty())
        .map(FakeModel::named)
        .collect();
    cfg.request_log = env("FAKE_OLLAMA_REQUESTS").map(Into::into);
    // Passed to llama-server unvalidated (llm/server.go); a type it does not take
    // stops it from starting (common/arg.cpp: "Unsupported cache type").
    const CACHE_TYPES: [&str; 9] = [
        "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1",
    ];
    if let Some(kv) = env("OLLAMA_KV_CACHE_TYPE").map(|v| v.to_lowercase()) {
        if !CACHE_TYPES.contains(&kv.as_str()) {
            cfg.load_error = Some(format!(
                "llama-server process has terminated: exit status 1: Unsupported cache type: {kv}"
            ));
        }
    }
    cfg
}

fn append_line(path: &Path, line: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("fake ollama: cannot append to {}: {e}", path.display()));
    writeln!(f, "{line}").unwrap();
}

/// Serve until the parent script dies or the lifetime ends; never returns.
fn serve() -> ! {
    let parent = std::os::unix::process::parent_id();
    let script_pid: u32 = env("FAKE_OLLAMA_PID")
        .and_then(|p| p.parse().ok())
        .unwrap_or(parent);
    if let Some(record) = env("FAKE_OLLAMA_RECORD") {
        let vars: serde_json::Map<String, serde_json::Value> =
            std::env::vars().map(|(k, v)| (k, json!(v))).collect();
        let line = json!({"argv": [env("FAKE_OLLAMA_ARGV0"), "serve"], "env": vars, "pid": script_pid, "server_pid": std::process::id()});
        append_line(Path::new(&record), &line.to_string());
    }
    let addr = bind_addr(&env("OLLAMA_HOST").unwrap_or_default());
    let fake = FakeOllama::start_on(addr, config_from_env());
    eprintln!("fake ollama listening on {}", fake.addr);
    let deadline = std::time::Instant::now() + seconds("FAKE_OLLAMA_LIFETIME", 300.0);
    while std::os::unix::process::parent_id() == parent && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    // A server behind a wrapper can keep its port a moment after the wrapper is gone.
    std::thread::sleep(seconds("FAKE_OLLAMA_LINGER", 0.0));
    std::process::exit(0)
}

/// The entry point of the fake `ollama serve` process (see the module doc). Ignored in a
/// normal run; without its environment variable it only says what it is.
#[test]
#[ignore = "the fake `ollama serve` process, started by the fake `ollama` script"]
fn fake_ollama_serve() {
    if std::env::var_os(SERVE_ENV).is_some() {
        serve();
    }
    eprintln!("{ENTRY} is the fake `ollama serve`; it runs only with {SERVE_ENV}=1");
}

/// Stop a fake `ollama serve` this test's sandbox caused to start, from its record line:
/// the script's pid and the server's, each only while it still runs the fake.
pub fn kill_recorded(record: &serde_json::Value, script: &Path) {
    let script = script.display().to_string();
    for (key, marker) in [("server_pid", ENTRY), ("pid", script.as_str())] {
        let Some(pid) = record[key].as_u64().and_then(|p| u32::try_from(p).ok()) else {
            continue;
        };
        let Some(raw) = ccr_setup::service::runtime::nix_pid(pid) else {
            continue;
        };
        let argv = ccr_setup::service::runtime::process_argv(pid).unwrap_or_default();
        if argv.iter().any(|a| a == marker) {
            let _ = nix::sys::signal::kill(raw, nix::sys::signal::Signal::SIGKILL);
        }
    }
}
