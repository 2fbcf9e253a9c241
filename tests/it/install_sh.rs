//! `install.sh` against a fake release directory served over HTTP on 127.0.0.1.
//!
//! The directory mirrors GitHub's release layout (`latest/download/LATEST`,
//! `download/v<version>/ccr-setup-<version>-<target>.tar.gz` + `.sha256`) and is served
//! by `python3 -m http.server`. Each test runs the real script with `sh`, a temp HOME
//! and a temp install dir, and checks what the user sees and what landed on disk.
//! Also checks the release/CI workflows parse as YAML and name real targets.

use crate::support;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const VERSION: &str = "0.1.0";
const TARGETS: [&str; 4] = [
    "aarch64-apple-darwin",
    "x86_64-apple-darwin",
    "x86_64-unknown-linux-musl",
    "aarch64-unknown-linux-musl",
];

/// A stand-in `ccr-setup`: answers `--version` and records the arguments of any other
/// call (e.g. `init --yes`) in `$HOME/fake-ccr-setup-args`, one call per line.
const FAKE_BINARY: &str = r#"#!/bin/sh
if [ "$1" = "--version" ]; then
    echo "ccr-setup 0.1.0-fake"
    exit 0
fi
printf '%s\n' "$*" >> "$HOME/fake-ccr-setup-args"
"#;

fn install_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("install.sh")
}

fn write_executable(path: &Path, contents: &[u8]) {
    fs::write(path, contents).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

fn sha256_hex(path: &Path) -> String {
    for (tool, args) in [("sha256sum", &[][..]), ("shasum", &["-a", "256"][..])] {
        if let Ok(out) = Command::new(tool).args(args).arg(path).output() {
            if out.status.success() {
                let text = String::from_utf8(out.stdout).unwrap();
                return text.split_whitespace().next().unwrap().to_string();
            }
        }
    }
    panic!("neither sha256sum nor shasum is available");
}

/// The release target install.sh picks on the machine running the tests.
fn host_target() -> &'static str {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("macos", "aarch64") => "aarch64-apple-darwin",
        ("macos", "x86_64") => "x86_64-apple-darwin",
        ("linux", "x86_64") => "x86_64-unknown-linux-musl",
        ("linux", "aarch64") => "aarch64-unknown-linux-musl",
        other => panic!("no release target for {other:?}"),
    }
}

/// Builds `<root>/latest/download/LATEST` and, for every target, the archive (holding
/// `ccr-setup-<v>-<target>/ccr-setup` = `binary`) and its `.sha256`.
fn build_release(root: &Path, binary: &[u8]) {
    build_release_for(root, binary, &TARGETS);
}

fn build_release_for(root: &Path, binary: &[u8], targets: &[&str]) {
    let latest = root.join("latest/download");
    fs::create_dir_all(&latest).unwrap();
    fs::write(latest.join("LATEST"), format!("{VERSION}\n")).unwrap();
    let dir = root.join(format!("download/v{VERSION}"));
    fs::create_dir_all(&dir).unwrap();
    let staging = tempfile::tempdir().unwrap();
    for target in targets {
        let name = format!("ccr-setup-{VERSION}-{target}");
        let pkg = staging.path().join(&name);
        fs::create_dir_all(&pkg).unwrap();
        write_executable(&pkg.join("ccr-setup"), binary);
        let archive = dir.join(format!("{name}.tar.gz"));
        let status = Command::new("tar")
            .arg("-czf")
            .arg(&archive)
            .arg("-C")
            .arg(staging.path())
            .arg(&name)
            .status()
            .unwrap();
        assert!(status.success(), "tar failed for {target}");
        let digest = sha256_hex(&archive);
        fs::write(
            dir.join(format!("{name}.tar.gz.sha256")),
            format!("{digest}  {name}.tar.gz\n"),
        )
        .unwrap();
        sign(&archive);
    }
}

/// A throwaway minisign key for this test run: (its folder, the secret key file, the
/// public key line). None without minisign (then releases go unsigned and install.sh
/// says it cannot check them).
fn test_key() -> Option<&'static (tempfile::TempDir, PathBuf, String)> {
    static KEY: std::sync::OnceLock<Option<(tempfile::TempDir, PathBuf, String)>> =
        std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let (secret, public) = (dir.path().join("test.key"), dir.path().join("test.pub"));
        let made = Command::new("minisign")
            .args(["-G", "-W", "-p"])
            .arg(&public)
            .arg("-s")
            .arg(&secret)
            .stdin(Stdio::null())
            .output()
            .ok()?;
        assert!(made.status.success(), "minisign -G: {}", text(&made.stderr));
        let line = fs::read_to_string(&public)
            .unwrap()
            .lines()
            .nth(1)
            .unwrap()
            .to_owned();
        Some((dir, secret, line))
    })
    .as_ref()
}

/// `FILE.minisig` signed with [`test_key`], when minisign is installed.
fn sign(file: &Path) {
    let Some((_, secret, _)) = test_key() else {
        return;
    };
    let out = Command::new("minisign")
        .arg("-S")
        .arg("-s")
        .arg(secret)
        .arg("-m")
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "minisign -S: {}", text(&out.stderr));
}

/// minisign is needed for the signature tests: skipped loudly without it, failed in CI.
fn need_minisign() -> bool {
    if test_key().is_some() {
        return true;
    }
    eprintln!("SKIPPED: minisign is not installed (scripts/ci-deps.sh installs it)");
    assert!(
        std::env::var_os("CI").is_none(),
        "minisign is missing under CI"
    );
    false
}

/// `python3 -m http.server` on 127.0.0.1 with an OS-chosen port; killed on drop.
struct StaticServer {
    child: Child,
    port: u16,
}

impl StaticServer {
    fn start(root: &Path) -> StaticServer {
        let mut child = Command::new("python3")
            .args(["-u", "-m", "http.server", "0", "--bind", "127.0.0.1"])
            .current_dir(root)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 is needed to serve the fake release");
        // "Serving HTTP on 127.0.0.1 port 40123 (http://127.0.0.1:40123/) ..."
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected http.server banner: {line:?}"));
        StaticServer { child, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One install run's world: the sandbox (a temp HOME, fakes such as `uname` first on
/// PATH, the machine's tools after them) and the install dir inside HOME.
struct Install {
    sb: support::sandbox::Sandbox,
    home: PathBuf,
    install_dir: PathBuf,
    fake_bin: PathBuf,
}

impl Install {
    fn new() -> Install {
        let sb = support::sandbox::Sandbox::new();
        Install {
            install_dir: sb.home.join(".local/bin"),
            home: sb.home.clone(),
            fake_bin: sb.fakes.dir.clone(),
            sb,
        }
    }

    fn installed(&self) -> PathBuf {
        self.install_dir.join("ccr-setup")
    }

    fn recorded_args(&self) -> Option<String> {
        fs::read_to_string(self.home.join("fake-ccr-setup-args")).ok()
    }

    /// `sh install.sh ARGS` (or, with `via_stdin`, `sh -s -- ARGS < install.sh` as in
    /// `curl … | sh -s -- ARGS`) against `base_url`.
    fn command(&self, base_url: &str, via_stdin: bool, args: &[&str]) -> Command {
        let mut cmd = self.sb.command("sh");
        if via_stdin {
            cmd.arg("-s").arg("--");
        } else {
            cmd.arg(install_script());
        }
        cmd.args(args)
            .env("SHELL", "/bin/bash")
            .env("PATH", self.sb.system_path())
            .env("CCR_SETUP_DOWNLOAD_URL", base_url)
            // The fake release is served over http on loopback, signed with a test key.
            .env("CCR_SETUP_ALLOW_HTTP", "1");
        if let Some((_, _, public)) = test_key() {
            cmd.env("CCR_SETUP_MINISIGN_PUBKEY", public);
        }
        cmd
    }

    /// PATH as [`Install::command`] gives it, without `minisign`: links to every
    /// program of the system folders but that one.
    fn path_without_minisign(&self) -> String {
        let shims = self.sb.root.path().join("no-minisign");
        fs::create_dir_all(&shims).unwrap();
        for dir in std::env::var("PATH").unwrap_or_default().split(':') {
            for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
                let name = entry.file_name();
                if name != "minisign" && !shims.join(&name).exists() {
                    let _ = std::os::unix::fs::symlink(entry.path(), shims.join(&name));
                }
            }
        }
        format!("{}:{}", self.sb.fakes.path_env(), shims.display())
    }

    fn run(&self, base_url: &str, args: &[&str]) -> Output {
        self.command(base_url, false, args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn run_via_stdin(&self, base_url: &str, args: &[&str]) -> Output {
        let mut child = self
            .command(base_url, true, args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let script = fs::read(install_script()).unwrap();
        child.stdin.take().unwrap().write_all(&script).unwrap();
        child.wait_with_output().unwrap()
    }

    fn fake_uname(&self, os: &str, arch: &str) {
        let script = format!(
            "case \"$1\" in -s) echo '{os}' ;; -m) echo '{arch}' ;; *) echo '{os}' ;; esac\n"
        );
        self.sb.fakes.add_script("uname", &script);
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn fake_release() -> (tempfile::TempDir, StaticServer) {
    let root = tempfile::tempdir().unwrap();
    build_release(root.path(), FAKE_BINARY.as_bytes());
    let server = StaticServer::start(root.path());
    (root, server)
}

#[test]
fn happy_path_installs_the_real_binary_and_skips_init_by_flag() {
    let root = tempfile::tempdir().unwrap();
    let real = fs::read(env!("CARGO_BIN_EXE_ccr-setup")).unwrap();
    // The real binary is large in a debug build: package it for this machine only.
    build_release_for(root.path(), &real, &[host_target()]);
    let server = StaticServer::start(root.path());
    let sandbox = Install::new();

    let out = sandbox.run(&server.url(), &["--no-init"]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "install failed: {stdout}{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("checksum verified"), "{stdout}");
    assert!(stdout.contains("skipping `ccr-setup init`"), "{stdout}");
    // Not on PATH in the sandbox: the advice names the dir and the bash line.
    assert!(stdout.contains("is not on your PATH"), "{stdout}");
    assert!(stdout.contains(".bashrc"), "{stdout}");

    let installed = sandbox.installed();
    assert_eq!(
        fs::read(&installed).unwrap(),
        real,
        "installed bytes differ"
    );
    assert_eq!(
        fs::metadata(&installed).unwrap().permissions().mode() & 0o777,
        0o755
    );
    let version = Command::new(&installed).arg("--version").output().unwrap();
    assert!(version.status.success());
    assert_eq!(
        text(&version.stdout).trim(),
        format!("ccr-setup {}", env!("CARGO_PKG_VERSION"))
    );
    // Nothing left behind next to the binary.
    let leftovers: Vec<_> = fs::read_dir(&sandbox.install_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("ccr-setup")]);
}

#[test]
fn no_init_env_var_skips_init_and_a_pinned_version_is_honoured() {
    let (_root, server) = fake_release();
    let sandbox = Install::new();
    let out = sandbox
        .command(&server.url(), false, &[])
        .env("CCR_SETUP_NO_INIT", "1")
        .env("CCR_SETUP_VERSION", "v0.1.0")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(sandbox.installed().exists());
    assert_eq!(sandbox.recorded_args(), None, "init ran despite NO_INIT");

    // A version that was never released: a clear line, nothing new installed.
    let sandbox = Install::new();
    let out = sandbox
        .command(&server.url(), false, &["--no-init"])
        .env("CCR_SETUP_VERSION", "9.9.9")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("the server has no") && stderr.contains("v9.9.9"),
        "{stderr}"
    );
    assert!(!sandbox.installed().exists());
}

#[test]
fn checksum_mismatch_aborts_with_both_digests_and_installs_nothing() {
    let root = tempfile::tempdir().unwrap();
    build_release(root.path(), FAKE_BINARY.as_bytes());
    let wrong = "0".repeat(64);
    for target in TARGETS {
        let sum = root.path().join(format!(
            "download/v{VERSION}/ccr-setup-{VERSION}-{target}.tar.gz.sha256"
        ));
        fs::write(
            &sum,
            format!("{wrong}  ccr-setup-{VERSION}-{target}.tar.gz\n"),
        )
        .unwrap();
    }
    let server = StaticServer::start(root.path());
    let sandbox = Install::new();

    let out = sandbox.run(&server.url(), &["--yes"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("checksum mismatch"), "{stderr}");
    assert!(stderr.contains(&format!("expected {wrong}")), "{stderr}");
    // The real digest of the served archive is named too.
    let target = TARGETS
        .iter()
        .find(|t| {
            stderr.contains(&format!(
                "ccr-setup-{VERSION}-{t}.tar.gz: expected {wrong}, got "
            ))
        })
        .unwrap_or_else(|| panic!("no archive name in: {stderr}"));
    let actual = sha256_hex(&root.path().join(format!(
        "download/v{VERSION}/ccr-setup-{VERSION}-{target}.tar.gz"
    )));
    assert!(stderr.contains(&format!("got {actual}")), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line per failure: {stderr}");
    assert!(!sandbox.installed().exists(), "installed despite mismatch");
    assert_eq!(sandbox.recorded_args(), None, "init ran despite mismatch");
}

#[test]
fn unsupported_platforms_are_named_clearly() {
    let (_root, server) = fake_release();
    for (os, arch, expected) in [
        (
            "Linux",
            "riscv64",
            "unsupported architecture: linux-riscv64",
        ),
        ("Linux", "armv7l", "unsupported architecture: linux-armv7l"),
        ("FreeBSD", "amd64", "unsupported OS: FreeBSD"),
        ("MINGW64_NT-10.0", "x86_64", "unsupported OS: Windows"),
    ] {
        let sandbox = Install::new();
        sandbox.fake_uname(os, arch);
        let out = sandbox.run(&server.url(), &["--no-init"]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{os}/{arch}: {stderr}");
        assert!(stderr.contains(expected), "{os}/{arch}: {stderr}");
        assert!(
            stderr.contains("darwin-arm64, darwin-x64, linux-x64 and linux-arm64")
                || stderr.contains("WSL"),
            "{stderr}"
        );
        assert!(!sandbox.installed().exists());
    }
}

#[test]
fn each_supported_platform_downloads_its_own_target() {
    let (_root, server) = fake_release();
    for (os, arch, target) in [
        ("Darwin", "arm64", "aarch64-apple-darwin"),
        ("Darwin", "x86_64", "x86_64-apple-darwin"),
        ("Linux", "x86_64", "x86_64-unknown-linux-musl"),
        ("Linux", "aarch64", "aarch64-unknown-linux-musl"),
    ] {
        let sandbox = Install::new();
        sandbox.fake_uname(os, arch);
        let out = sandbox.run(&server.url(), &["--no-init"]);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{os}/{arch}: {}", text(&out.stderr));
        assert!(
            stdout.contains(&format!("ccr-setup-{VERSION}-{target}.tar.gz")),
            "{os}/{arch}: {stdout}"
        );
        assert!(sandbox.installed().exists());
    }
}

#[test]
fn server_down_is_one_clear_line() {
    // Take a free port and close it again: nothing listens there.
    let port = support::unbound_port();
    let sandbox = Install::new();
    let out = sandbox.run(&format!("http://127.0.0.1:{port}"), &["--yes"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot connect to the server") && stderr.contains(&port.to_string()),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!sandbox.installed().exists());
}

#[test]
fn piped_script_passes_arguments_after_dash_dash_to_init() {
    let (_root, server) = fake_release();

    // curl … | sh -s -- --yes
    let sandbox = Install::new();
    let out = sandbox.run_via_stdin(&server.url(), &["--yes"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(sandbox.recorded_args().as_deref(), Some("init --yes\n"));

    // curl … | sh -s -- -- --yes --port 4000: an explicit `--` too.
    let sandbox = Install::new();
    let out = sandbox.run_via_stdin(&server.url(), &["--", "--yes", "--port", "4000"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        sandbox.recorded_args().as_deref(),
        Some("init --yes --port 4000\n")
    );

    // curl … | sh -s -- --no-init: installs, runs nothing.
    let sandbox = Install::new();
    let out = sandbox.run_via_stdin(&server.url(), &["--no-init"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(sandbox.installed().exists());
    assert_eq!(sandbox.recorded_args(), None);
}

#[test]
fn wget_is_used_when_curl_is_missing() {
    let wget = match which::which("wget") {
        Ok(p) => p,
        Err(_) => {
            eprintln!("SKIPPED: wget is not installed");
            return;
        }
    };
    let (_root, server) = fake_release();
    let sandbox = Install::new();
    // A PATH holding only the tools install.sh uses, minus curl.
    let tools = sandbox.fake_bin.parent().unwrap().join("tools");
    fs::create_dir_all(&tools).unwrap();
    for tool in [
        "sh",
        "uname",
        "tar",
        "gzip",
        "mktemp",
        "cp",
        "mv",
        "chmod",
        "mkdir",
        "rm",
        "tr",
        "cut",
        "head",
        "basename",
        "grep",
        "ls",
        "sha256sum",
        "shasum",
        "cat",
        "sysctl",
        "ldd",
    ] {
        if let Ok(path) = which::which(tool) {
            std::os::unix::fs::symlink(path, tools.join(tool)).unwrap();
        }
    }
    std::os::unix::fs::symlink(wget, tools.join("wget")).unwrap();
    let out = sandbox
        .command(&server.url(), false, &["--yes"])
        .env("PATH", &tools)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(sandbox.recorded_args().as_deref(), Some("init --yes\n"));

    // And wget's failures get the same clear line.
    let port = support::unbound_port();
    let out = sandbox
        .command(&format!("http://127.0.0.1:{port}"), false, &["--no-init"])
        .env("PATH", &tools)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("cannot connect to the server"), "{stderr}");
}

#[test]
fn init_failure_is_reported_after_a_successful_install() {
    let root = tempfile::tempdir().unwrap();
    build_release(
        root.path(),
        b"#!/bin/sh\n[ \"$1\" = --version ] && { echo ccr-setup 0.1.0; exit 0; }\nexit 3\n",
    );
    let server = StaticServer::start(root.path());
    let sandbox = Install::new();
    let out = sandbox.run(&server.url(), &["--yes"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("`ccr-setup init` failed (exit 3)"),
        "{stderr}"
    );
    assert!(sandbox.installed().exists(), "the binary stays installed");
}

/// The workflows cannot run here; at least they must parse and name what we ship.
#[test]
fn workflows_are_valid_yaml_and_build_the_four_targets() {
    let Some(python) = support::require_tool("CCR_CI_PYTHON") else {
        return;
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(".github/workflows");
    let check = r#"
import sys, yaml
release = yaml.safe_load(open(sys.argv[1] + "/release.yml"))
ci = yaml.safe_load(open(sys.argv[1] + "/ci.yml"))
on = release.get("on", release.get(True))
assert on["push"]["tags"] == ["v*"], on
text = open(sys.argv[1] + "/release.yml").read()
for t in sys.argv[2:]:
    assert t in text, "release.yml does not build " + t
assert "install.sh" in text and ".sha256" in text
ci_text = open(sys.argv[1] + "/ci.yml").read()
assert "plutil -lint" in ci_text and "launchctl" in ci_text
for wf in (release, ci):
    for job in wf["jobs"].values():
        for step in job["steps"]:
            assert "uses" in step or "run" in step, step
print("ok")
"#;
    let out = Command::new(python)
        .arg("-c")
        .arg(check)
        .arg(&dir)
        .args(TARGETS)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Issue #28: a plain-http download URL is refused unless CCR_SETUP_ALLOW_HTTP=1 (the
/// archive and its checksum come from the same server, so anyone on the path could
/// replace both).
#[test]
fn a_plain_http_mirror_is_refused_unless_allowed() {
    let (_root, server) = fake_release();
    let sandbox = Install::new();
    let out = sandbox
        .command(&server.url(), false, &["--no-init"])
        .env_remove("CCR_SETUP_ALLOW_HTTP")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("refusing to download over plain http"),
        "{stderr}"
    );
    assert!(stderr.contains("CCR_SETUP_ALLOW_HTTP=1"), "{stderr}");
    assert!(!sandbox.installed().exists());
    let allowed = sandbox.run(&server.url(), &["--no-init"]);
    assert!(allowed.status.success(), "{}", text(&allowed.stderr));
    assert!(text(&allowed.stdout).contains("warning: downloading over plain http"));
    let ftp = sandbox
        .command("ftp://mirror.example/releases", false, &["--no-init"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(text(&ftp.stderr).contains("must be an https:// URL"));
}

/// Issue #28: a server that swaps the archive and its checksum together passes the
/// checksum, but not the signature, which only the release key can make.
#[test]
fn a_swapped_archive_fails_the_signature_check() {
    if !need_minisign() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    build_release(root.path(), FAKE_BINARY.as_bytes());
    let dir = root.path().join(format!("download/v{VERSION}"));
    // The attacker's build: another binary, its own matching checksum, the old signature.
    let evil = tempfile::tempdir().unwrap();
    build_release(evil.path(), b"#!/bin/sh\necho evil\n");
    for target in TARGETS {
        let name = format!("ccr-setup-{VERSION}-{target}.tar.gz");
        let from = evil.path().join(format!("download/v{VERSION}"));
        fs::copy(from.join(&name), dir.join(&name)).unwrap();
        let sum = format!("{name}.sha256");
        fs::copy(from.join(&sum), dir.join(&sum)).unwrap();
    }
    let server = StaticServer::start(root.path());
    let sandbox = Install::new();
    let out = sandbox.run(&server.url(), &["--no-init"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("checksum verified"), "{stdout}");
    assert!(
        stderr.contains("does not verify with the release key"),
        "{stderr}"
    );
    assert!(!sandbox.installed().exists());
    // A release without signatures is refused too when minisign can check.
    for target in TARGETS {
        fs::remove_file(dir.join(format!("ccr-setup-{VERSION}-{target}.tar.gz.minisig"))).unwrap();
    }
    let out = sandbox.run(&server.url(), &["--no-init"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(".minisig"),
        "{}",
        text(&out.stderr)
    );
    assert!(!sandbox.installed().exists());
}

/// Issue #28: without minisign the installer says the signature is not checked and
/// goes on with the checksum, unless CCR_SETUP_REQUIRE_SIGNATURE=1; with it and a good
/// signature, it says the signature was verified.
#[test]
fn without_minisign_the_install_says_so_and_can_be_made_to_fail() {
    if !need_minisign() {
        return;
    }
    let (_root, server) = fake_release();
    let sandbox = Install::new();
    let signed = sandbox.run(&server.url(), &["--no-init"]);
    assert!(signed.status.success(), "{}", text(&signed.stderr));
    assert!(text(&signed.stdout).contains("signature verified (minisign)"));

    let sandbox = Install::new();
    let path = sandbox.path_without_minisign();
    let out = sandbox
        .command(&server.url(), false, &["--no-init"])
        .env("PATH", &path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("minisign is not installed"), "{stdout}");
    assert!(sandbox.installed().exists());

    let sandbox = Install::new();
    let out = sandbox
        .command(&server.url(), false, &["--no-init"])
        .env("PATH", &path)
        .env("CCR_SETUP_REQUIRE_SIGNATURE", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("CCR_SETUP_REQUIRE_SIGNATURE"));
    assert!(!sandbox.installed().exists());
}
