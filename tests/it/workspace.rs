//! The workspace's one-way graph (CONTRIBUTING, Architecture): the proxy crate names
//! none of the CLI's interactive or file-watching dependencies, and depends on no
//! other crate of this workspace. The compiler enforces the rest: `ccr-proxy` cannot
//! import a CLI module, because it does not depend on `ccr-setup`.

use std::path::Path;

fn manifest() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/ccr-proxy/Cargo.toml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The dependency names of one `[section]` of a Cargo manifest.
fn dependencies(manifest: &str, section: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut inside = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == section;
        } else if inside && !line.is_empty() && !line.starts_with('#') {
            if let Some((name, _)) = line.split_once('=') {
                names.push(name.trim().to_owned());
            }
        }
    }
    names
}

#[test]
fn the_proxy_crate_has_no_cli_dependency() {
    let manifest = manifest();
    let deps = dependencies(&manifest, "[dependencies]");
    assert!(deps.len() > 10, "no dependencies read: {deps:?}");
    for cli_only in [
        "clap",
        "clap_complete",
        "dialoguer",
        "indicatif",
        "console",
        "notify",
        "ccr-setup",
    ] {
        assert!(
            !deps.iter().any(|d| d == cli_only),
            "crates/ccr-proxy depends on {cli_only}, which belongs to the CLI"
        );
    }
}
