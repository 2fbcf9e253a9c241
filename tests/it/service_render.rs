//! Rendered launchd plists and systemd units: snapshots, and validation by the real
//! tools — the `plist` crate and Debian's `plistutil` for plists, `systemd-analyze
//! verify` for units — including home directories with spaces, `&`, `<`, `%` and `$`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use ccr_setup::config::OllamaSettings;
use ccr_setup::service::{self, Layout, Manager, ServiceSpec};

use crate::support::tool_on_path;

fn specs(home: &Path) -> Vec<ServiceSpec> {
    vec![
        ServiceSpec::ollama(&home.join("bin/ollama"), &OllamaSettings::default()),
        ServiceSpec::proxy(
            &home.join(".local/bin/ccr-setup"),
            &home.join(".claude-code-router/config.json"),
        ),
    ]
}

fn layout(home: &Path) -> Layout {
    Layout {
        home: home.to_path_buf(),
        uid: 501,
    }
}

#[test]
fn snapshots_of_the_rendered_files() {
    let home = Path::new("/Users/alice");
    for manager in [Manager::Launchd, Manager::Systemd] {
        for spec in specs(home) {
            let r = service::render(manager, &layout(home), &spec).unwrap();
            let name = format!("{}-{}", manager.name(), spec.kind.short());
            insta::assert_snapshot!(name, r.contents);
        }
    }
}

const ODD_HOMES: &[&str] = &[
    "home with spaces",
    "R&D <lab> \"q\" 'x'",
    "100% $USER ${HOME} `tick` \\back;semi",
];

/// Assert `plistutil` accepts the file and reads back exactly what the plist crate reads.
fn assert_plistutil_round_trip(plistutil: &Path, file: &Path) {
    let dir = file.parent().unwrap();
    let bin = dir.join("rt.bin");
    let xml = dir.join("rt.xml");
    let _ = std::fs::remove_file(&bin);
    // plistutil exits 0 even when it fails; success is the output file existing.
    let out = Command::new(plistutil)
        .args([
            "-i".as_ref(),
            file.as_os_str(),
            "-f".as_ref(),
            "bin".as_ref(),
            "-o".as_ref(),
            bin.as_os_str(),
        ])
        .output()
        .unwrap();
    assert!(
        bin.is_file() && out.stderr.is_empty(),
        "plistutil rejected {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(plistutil)
        .args([
            "-i".as_ref(),
            bin.as_os_str(),
            "-f".as_ref(),
            "xml".as_ref(),
            "-o".as_ref(),
            xml.as_os_str(),
        ])
        .output()
        .unwrap();
    assert!(xml.is_file(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        plist::Value::from_file(&xml).unwrap(),
        plist::Value::from_file(file).unwrap(),
        "plistutil and the plist crate disagree about {}",
        file.display()
    );
}

#[test]
fn plists_for_odd_homes_parse_with_the_plist_crate_and_plistutil() {
    let plistutil = tool_on_path("plistutil");
    let tmp = tempfile::tempdir().unwrap();
    for name in ODD_HOMES {
        let home = tmp.path().join(name);
        std::fs::create_dir_all(&home).unwrap();
        for spec in specs(&home) {
            let r = service::render(Manager::Launchd, &layout(&home), &spec).unwrap();
            let v = plist::Value::from_reader_xml(r.contents.as_bytes()).unwrap();
            let d = v.as_dictionary().unwrap();
            assert_eq!(
                d["ProgramArguments"].as_array().unwrap()[0]
                    .as_string()
                    .unwrap(),
                spec.program[0],
                "value survives escaping for {name:?}"
            );
            let out = d["StandardOutPath"].as_string().unwrap();
            assert!(out.starts_with(&format!("{}/Library/Logs/ccr-setup/", home.display())));
            let file = tmp.path().join(format!("{}.plist", spec.kind.short()));
            std::fs::write(&file, &r.contents).unwrap();
            if let Some(p) = &plistutil {
                assert_plistutil_round_trip(p, &file);
            }
        }
    }
    // The check can fail: plistutil refuses a raw `&`.
    if let Some(p) = &plistutil {
        let bad = tmp.path().join("bad/bad.plist");
        std::fs::create_dir_all(bad.parent().unwrap()).unwrap();
        std::fs::write(&bad, "<?xml version=\"1.0\"?>\n<plist version=\"1.0\"><dict><key>a</key><string>x & y</string></dict></plist>\n").unwrap();
        let r = std::panic::catch_unwind(|| assert_plistutil_round_trip(p, &bad));
        assert!(r.is_err(), "plistutil accepted an unescaped &");
    }
}

fn verify_units(analyze: &Path, dir: &Path) -> (bool, String) {
    let mut cmd = Command::new(analyze);
    cmd.arg("verify");
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "service") {
            cmd.arg(p);
        }
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn units_for_odd_homes_pass_systemd_analyze_verify() {
    let Some(analyze) = tool_on_path("systemd-analyze") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // systemd never accepts quotes or backslashes in an executable path (render refuses
    // them with a fix); every other odd character must work.
    let homes = [
        "home with spaces",
        "R&D <lab> x>y",
        "100% $USER ${HOME} semi;colon",
    ];
    for (i, name) in homes.iter().enumerate() {
        let home = tmp.path().join(name);
        let units = tmp.path().join(format!("units{i}"));
        std::fs::create_dir_all(&units).unwrap();
        for spec in specs(&home) {
            // verify checks that ExecStart's program exists and is executable.
            let prog = Path::new(&spec.program[0]);
            std::fs::create_dir_all(prog.parent().unwrap()).unwrap();
            std::fs::write(prog, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(prog, std::fs::Permissions::from_mode(0o755)).unwrap();
            let r = service::render(Manager::Systemd, &layout(&home), &spec).unwrap();
            std::fs::write(units.join(spec.kind.systemd_unit()), &r.contents).unwrap();
            // What systemd will run is exactly the program we rendered.
            assert_eq!(
                service::systemd::program_of(&units.join(spec.kind.systemd_unit())).unwrap(),
                spec.program[0]
            );
        }
        let (ok, text) = verify_units(&analyze, &units);
        assert!(
            ok && text.trim().is_empty(),
            "systemd-analyze verify for {name:?}:\n{text}"
        );
    }
    // The check can fail: an unescaped path with a space is two words, the first missing.
    let bad = tmp.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(
        bad.join("ccr-setup-bad.service"),
        format!(
            "[Service]\nExecStart={}/home with spaces/bin/ollama serve\n",
            tmp.path().display()
        ),
    )
    .unwrap();
    let (ok, text) = verify_units(&analyze, &bad);
    assert!(!ok, "verify accepted a broken unit: {text}");
}

#[test]
fn dropin_for_the_system_ollama_passes_verify() {
    let Some(analyze) = tool_on_path("systemd-analyze") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let unit = tmp.path().join("ollama.service");
    std::fs::write(
        &unit,
        "[Unit]\nDescription=Ollama\n[Service]\nExecStart=/bin/sh -c true\n",
    )
    .unwrap();
    let dropin_dir = tmp.path().join("ollama.service.d");
    std::fs::create_dir_all(&dropin_dir).unwrap();
    let settings = OllamaSettings {
        context_length: 16384,
        ..OllamaSettings::default()
    };
    let text = service::systemd::render_ollama_dropin(&settings);
    insta::assert_snapshot!("systemd-ollama-dropin", text);
    std::fs::write(dropin_dir.join("ccr-setup.conf"), &text).unwrap();
    let out = Command::new(analyze)
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Issue #28: the proxy keeps a descriptor per client connection, and the default soft
/// limits (1,024 under systemd, 256 under launchd) are what a flood of half-open
/// connections exhausts. Both units raise it.
#[test]
fn units_raise_the_open_file_limit() {
    let home = Path::new("/home/alice");
    for spec in specs(home) {
        let unit = service::render(Manager::Systemd, &layout(home), &spec).unwrap();
        assert!(
            unit.contents.lines().any(|l| l == "LimitNOFILE=65536"),
            "{}",
            unit.contents
        );
        let agent = service::render(Manager::Launchd, &layout(home), &spec).unwrap();
        let plist = plist::Value::from_reader_xml(agent.contents.as_bytes()).unwrap();
        let files = plist
            .as_dictionary()
            .and_then(|d| d.get("SoftResourceLimits"))
            .and_then(|v| v.as_dictionary())
            .and_then(|d| d.get("NumberOfFiles"))
            .and_then(|v| v.as_signed_integer());
        assert_eq!(files, Some(8192), "{}", agent.contents);
    }
}
