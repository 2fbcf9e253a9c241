//! The release pipeline's rules and scripts, checked here since GitHub's runners are not.
//!
//! - The workflows: every action pinned to a commit SHA with its version in a comment, no
//!   retired runner or unmaintained action, minimal `permissions` per job (`contents:
//!   write` only to publish), no fixed `sleep`, every one of the four targets run by
//!   release.yml, prereleases kept off "latest".
//! - The scripts release.yml runs (`scripts/release-package.sh`, `release-dist.sh`,
//!   `release-verify.sh`) on this test build of `ccr-setup`, packaged under the host's
//!   release target: install from a loopback mirror, `--version`, `doctor --json`, a proxy
//!   round trip. `scripts/release-local.sh` runs the same scripts on the real musl builds.

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const TARGETS: [&str; 4] = [
    "aarch64-apple-darwin",
    "x86_64-apple-darwin",
    "x86_64-unknown-linux-musl",
    "aarch64-unknown-linux-musl",
];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The release target whose archive install.sh picks on this machine.
fn host_target() -> &'static str {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("macos", "aarch64") => "aarch64-apple-darwin",
        ("macos", "x86_64") => "x86_64-apple-darwin",
        ("linux", "aarch64") => "aarch64-unknown-linux-musl",
        ("linux", "x86_64") => "x86_64-unknown-linux-musl",
        other => panic!("no release target for {other:?}"),
    }
}

/// The release scripts, signing with a throwaway minisign key (as release-local.sh
/// does) when minisign is installed; install.sh is pointed at its public key.
fn script(name: &str) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("scripts").join(name));
    cmd.env_remove("GITHUB_OUTPUT");
    if let Some((_, secret, public)) = throwaway_key() {
        cmd.env("CCR_SETUP_MINISIGN_SECRET_KEY_FILE", secret)
            .env("CCR_SETUP_MINISIGN_PUBKEY", public);
    }
    cmd
}

/// (its folder, the secret key file, the public key line); None without minisign.
fn throwaway_key() -> Option<&'static (tempfile::TempDir, PathBuf, String)> {
    static KEY: std::sync::OnceLock<Option<(tempfile::TempDir, PathBuf, String)>> =
        std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let (secret, public) = (dir.path().join("k.key"), dir.path().join("k.pub"));
        let made = Command::new("minisign")
            .args(["-G", "-W", "-p"])
            .arg(&public)
            .arg("-s")
            .arg(&secret)
            .stdin(std::process::Stdio::null())
            .output()
            .ok()?;
        assert!(made.status.success(), "{}", text(&made));
        let line = std::fs::read_to_string(&public)
            .unwrap()
            .lines()
            .nth(1)?
            .to_owned();
        Some((dir, secret, line))
    })
    .as_ref()
}

/// Packages `binary` as `version` for the host target into `dist` and completes it.
fn package(binary: &Path, version: &str, dist: &Path) -> Output {
    let out = script("release-package.sh")
        .args([version, host_target()])
        .arg(binary)
        .arg(dist)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    script("release-dist.sh")
        .arg(version)
        .arg(dist)
        .output()
        .unwrap()
}

#[test]
fn workflows_pin_actions_and_run_every_target_on_live_runners() {
    let Some(python) = support::require_tool("CCR_CI_PYTHON") else {
        return;
    };
    let check = r##"
import re, sys, yaml
root, targets = sys.argv[1], sys.argv[2:]
RETIRED = {"macos-12", "macos-13", "macos-14", "ubuntu-20.04"}
UNMAINTAINED = ("goto-bus-stop/setup-zig",)
docs = {}
for name in ("ci.yml", "release.yml"):
    raw = open(f"{root}/.github/workflows/{name}").read()
    wf = yaml.safe_load(raw)
    docs[name] = wf
    assert wf.get("permissions") == {}, f"{name}: top-level permissions must be {{}}"
    for line in raw.splitlines():
        m = re.match(r"\s*-?\s*uses:\s*(\S+)(.*)", line)
        if m:
            ref, rest = m.groups()
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), f"{name}: not pinned to a SHA: {line}"
            assert re.search(r"#\s*v\d", rest), f"{name}: no version comment: {line}"
            assert not ref.startswith(UNMAINTAINED), f"{name}: unmaintained action: {line}"
    for job_id, job in wf["jobs"].items():
        perms = job.get("permissions")
        assert isinstance(perms, dict), f"{name}/{job_id}: no job-level permissions"
        writes = [k for k, v in perms.items() if v == "write"]
        if (name, job_id) == ("release.yml", "publish"):
            assert writes == ["contents"], f"publish needs contents: write only, has {perms}"
        else:
            assert not writes, f"{name}/{job_id} may not write: {perms}"
        runners = [job["runs-on"]] + [i["os"] for i in job.get("strategy", {}).get("matrix", {}).get("include", [])]
        for r in runners:
            assert r not in RETIRED, f"{name}/{job_id}: retired runner {r}"
        for step in job["steps"]:
            assert not re.search(r"(^|[;&|\s])sleep\s", step.get("run", "")), f"{name}/{job_id}: fixed sleep: {step}"
rel = docs["release.yml"]["jobs"]
built = {i["target"] for i in rel["build"]["strategy"]["matrix"]["include"]}
ran = {i["target"]: i for i in rel["verify"]["strategy"]["matrix"]["include"]}
assert built == set(targets), f"build: {built}"
assert set(ran) == set(targets), f"verify runs {sorted(ran)}"
assert ran["aarch64-unknown-linux-musl"]["os"].endswith("-arm"), ran
assert ran["x86_64-apple-darwin"]["run"] == "arch -x86_64", ran
assert "verify" in str(rel["publish"]["needs"]), "publish must wait for verify"
publish = "\n".join(s.get("run", "") for s in rel["publish"]["steps"])
assert "--prerelease" in publish and "--latest=false" in publish, publish
print("ok")
"##;
    let out = Command::new(python)
        .arg("-c")
        .arg(check)
        .arg(repo())
        .args(TARGETS)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn the_release_scripts_install_and_run_the_packaged_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let dist = tmp.path().join("dist");
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_ccr-setup"));
    let version = env!("CARGO_PKG_VERSION");
    let out = package(&binary, version, &dist);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(dist.join("LATEST")).unwrap(),
        format!("{version}\n")
    );
    assert!(dist.join("install.sh").exists());
    the_archive_carries_the_docs_with_working_links(&dist, version, tmp.path());
    if throwaway_key().is_some() {
        let sig = dist.join(format!(
            "ccr-setup-{version}-{}.tar.gz.minisig",
            host_target()
        ));
        assert!(sig.exists(), "release-dist.sh did not sign the archive");
    }

    let out = script("release-verify.sh")
        .arg(&dist)
        .arg(host_target())
        .output()
        .unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    for step in [
        "install.sh installed",
        &format!("--version: ccr-setup {version}"),
        "checks: platform.os",
        "proxy answered: {\"type\": \"text\", \"text\": \"pong from the fake upstream\"}",
        "release-verify[",
    ] {
        assert!(t.contains(step), "no {step:?} in:\n{t}");
    }
}

#[test]
fn release_verify_fails_when_the_binary_is_not_the_tagged_version() {
    let tmp = tempfile::tempdir().unwrap();
    let dist = tmp.path().join("dist");
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_ccr-setup"));
    let out = package(&binary, "9.9.9", &dist);
    assert!(out.status.success(), "{}", text(&out));
    let out = script("release-verify.sh")
        .arg(&dist)
        .arg(host_target())
        .output()
        .unwrap();
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("expected \"ccr-setup 9.9.9\""), "{t}");
}

#[test]
fn a_prerelease_gets_no_latest_and_a_bad_checksum_stops_the_release() {
    let tmp = tempfile::tempdir().unwrap();
    // Nothing runs it: a small stand-in keeps the packaging quick.
    let binary = tmp.path().join("ccr-setup");
    std::fs::write(&binary, "#!/bin/sh\necho 'ccr-setup 1.0.0'\n").unwrap();
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();

    let pre = tmp.path().join("pre");
    let output = tmp.path().join("github-output");
    let out = script("release-package.sh")
        .args(["1.0.0-rc.1", host_target()])
        .arg(&binary)
        .arg(&pre)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = script("release-dist.sh")
        .arg("1.0.0-rc.1")
        .arg(&pre)
        .env("GITHUB_OUTPUT", &output)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(!pre.join("LATEST").exists(), "a prerelease got a LATEST");
    assert_eq!(
        std::fs::read_to_string(&output).unwrap(),
        "prerelease=true\n"
    );

    let dist = tmp.path().join("dist");
    let out = package(&binary, "1.0.0", &dist);
    assert!(out.status.success(), "{}", text(&out));
    let archive = dist.join(format!("ccr-setup-1.0.0-{}.tar.gz", host_target()));
    let mut bytes = std::fs::read(&archive).unwrap();
    bytes.push(0);
    std::fs::write(&archive, bytes).unwrap();
    let out = script("release-dist.sh")
        .arg("1.0.0")
        .arg(&dist)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a corrupt archive passed: {}",
        text(&out)
    );
}

/// Issue #28: the publish job sets CCR_SETUP_REQUIRE_SIGNING=1, so a release without
/// its signing key stops before anything is published.
#[test]
fn a_release_without_its_signing_key_stops() {
    let tmp = tempfile::tempdir().unwrap();
    let binary = tmp.path().join("ccr-setup");
    std::fs::write(&binary, "#!/bin/sh\necho 'ccr-setup 1.0.0'\n").unwrap();
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
    let dist = tmp.path().join("dist");
    let out = script("release-package.sh")
        .args(["1.0.0", host_target()])
        .arg(&binary)
        .arg(&dist)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = script("release-dist.sh")
        .arg("1.0.0")
        .arg(&dist)
        .env_remove("CCR_SETUP_MINISIGN_SECRET_KEY_FILE")
        .env("CCR_SETUP_REQUIRE_SIGNING", "1")
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("CCR_SETUP_REQUIRE_SIGNING=1 but no"),
        "{}",
        text(&out)
    );
}

/// The archive holds README.md, CONTRIBUTING.md and docs/, and every relative link of
/// them resolves inside the unpacked archive (the README's links work offline).
fn the_archive_carries_the_docs_with_working_links(dist: &Path, version: &str, tmp: &Path) {
    let name = format!("ccr-setup-{version}-{}", host_target());
    let unpacked = tmp.join("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap();
    let out = Command::new("tar")
        .arg("-xzf")
        .arg(dist.join(format!("{name}.tar.gz")))
        .arg("-C")
        .arg(&unpacked)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let root = unpacked.join(&name);
    for file in ["ccr-setup", "README.md", "CONTRIBUTING.md", "docs/guide.md"] {
        assert!(root.join(file).exists(), "the archive lacks {file}");
    }
    let files = crate::docs::markdown_files(&root);
    assert!(files.len() >= 5, "{files:?}");
    let broken = crate::docs::broken_links(&root, &files);
    assert!(
        broken.is_empty(),
        "broken links in the archive:\n{}",
        broken.join("\n")
    );
}
