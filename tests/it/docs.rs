//! The documentation's facts that code can check: the README stays a front door (short,
//! its two commands in the first screen), every relative link and `#anchor` in the
//! Markdown files resolves, the README's command table names every subcommand, and the
//! guide's doctor table lists the check ids the code reports. Also
//! `scripts/module_cycles.py`, which CONTRIBUTING asks for before a push.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The Markdown files a reader of the repository or of a release archive gets.
pub fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("README.md"), root.join("CONTRIBUTING.md")];
    if let Ok(dir) = std::fs::read_dir(root.join("docs")) {
        let mut docs: Vec<PathBuf> = dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "md"))
            .collect();
        docs.sort();
        files.extend(docs);
    }
    files.retain(|p| p.exists());
    files
}

/// Markdown with fenced code blocks and code spans blanked, so `[a](b)` inside code is
/// not read as a link.
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            out.push('\n');
            continue;
        }
        if fenced {
            out.push('\n');
            continue;
        }
        let mut in_code = false;
        for c in line.chars() {
            if c == '`' {
                in_code = !in_code;
            }
            out.push(if in_code || c == '`' { ' ' } else { c });
        }
        out.push('\n');
    }
    out
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces to `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    let mut fenced = false;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            out.insert(slug(line.trim_start_matches('#')));
        }
    }
    out
}

/// Every `](target)` of the prose.
fn links(text: &str) -> Vec<String> {
    let text = prose(text);
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        if let Some(end) = rest.find(')') {
            out.push(rest[..end].trim().to_owned());
        }
    }
    out
}

/// Each relative link of `files` (under `root`) whose file or `#anchor` is missing, as
/// "file: target".
pub fn broken_links(root: &Path, files: &[PathBuf]) -> Vec<String> {
    let mut broken = Vec::new();
    for file in files {
        let text = read(file);
        let name = file
            .strip_prefix(root)
            .unwrap_or(file)
            .display()
            .to_string();
        for target in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (target.as_str(), None),
            };
            let resolved = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            let normal = normalize(&resolved);
            if !normal.exists() {
                broken.push(format!("{name}: {target} (no such file)"));
                continue;
            }
            if let Some(anchor) = anchor.filter(|a| !a.is_empty()) {
                if normal.extension().is_some_and(|x| x == "md")
                    && !anchors(&read(&normal)).contains(anchor)
                {
                    broken.push(format!("{name}: {target} (no such heading)"));
                }
            }
        }
    }
    broken
}

/// `a/b/../c` → `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[test]
fn the_readme_is_a_front_door_with_its_two_commands_in_the_first_screen() {
    let readme = read(&repo().join("README.md"));
    let lines: Vec<&str> = readme.lines().collect();
    assert!(lines.len() <= 300, "README.md has {} lines", lines.len());
    let first_screen = lines[..lines.len().min(24)].join("\n");
    for command in [
        "cargo install --locked --path . && ccr-setup init",
        "scripts/test.sh",
    ] {
        assert!(
            first_screen
                .lines()
                .any(|l| l.trim_start().starts_with(command)),
            "the README's first screen lacks `{command}`:\n{first_screen}"
        );
    }
    // The README's test command is the one CI runs.
    let ci = read(&repo().join(".ci/run"));
    assert!(
        ci.lines().any(|l| l.trim() == "scripts/test.sh"),
        ".ci/run no longer runs scripts/test.sh"
    );
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let files = markdown_files(repo());
    assert!(files.len() >= 5, "{files:?}");
    let broken = broken_links(repo(), &files);
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_link_check_finds_a_missing_file_and_a_missing_heading() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("docs")).unwrap();
    std::fs::write(
        dir.path().join("README.md"),
        "# Top\n[ok](docs/a.md#a-b) [gone](docs/b.md) [bad](docs/a.md#nope) `[code](x.md)`\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("docs/a.md"),
        "## A `b`\n[up](../README.md#top)\n",
    )
    .unwrap();
    let broken = broken_links(dir.path(), &markdown_files(dir.path()));
    assert_eq!(
        broken,
        [
            "README.md: docs/b.md (no such file)",
            "README.md: docs/a.md#nope (no such heading)"
        ]
    );
}

#[test]
fn the_readme_command_table_names_every_subcommand() {
    let readme = read(&repo().join("README.md"));
    let table = &readme[readme.find("## Commands").expect("a Commands section")..];
    let table = &table[..table[3..].find("\n## ").map_or(table.len(), |i| i + 3)];
    let cli = ccr_setup::cli::Cli::command();
    let names: Vec<&str> = cli
        .get_subcommands()
        .map(|c| c.get_name())
        .filter(|n| *n != "help")
        .collect();
    assert!(names.len() >= 10, "{names:?}");
    for name in names {
        assert!(
            table.contains(&format!("`ccr-setup {name}")) || table.contains(&format!("`{name}`")),
            "README's command table does not name `ccr-setup {name}`"
        );
    }
}

#[test]
fn the_guide_lists_the_doctor_check_ids_in_report_order() {
    let guide = read(&repo().join("docs/guide.md"));
    let section = &guide[guide
        .find("## `ccr-setup doctor`")
        .expect("the doctor section")..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let documented: Vec<&str> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once("` |").map(|(id, _)| id))
        .collect();
    assert_eq!(documented, ccr_setup::doctor::CHECK_IDS);
}

/// `scripts/module_cycles.py` on this repository, and on a small tree whose only cycle
/// hides where the script once did not read: a `use super::{…}` group, code after a
/// `#[cfg(test)]` module; test-only code (a `#[cfg(test)] mod x;` file, an import under
/// `#[cfg(test)]`, a path in a comment or string) must not count.
#[test]
fn module_cycles_reads_use_groups_and_code_after_test_modules() {
    let script = repo().join("scripts/module_cycles.py");
    let run = |src: &Path| {
        Command::new("python3")
            .arg(&script)
            .arg(src)
            .output()
            .expect("python3 runs scripts/module_cycles.py")
    };
    for crate_src in ["src", "crates/ccr-proxy/src"] {
        let out = run(&repo().join(crate_src));
        assert!(
            out.status.success(),
            "{crate_src}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("a/y")).unwrap();
    let files = [
        ("lib.rs", "mod a;\n"),
        ("a/mod.rs", "mod w; mod x; mod y; mod z;\n"),
        ("a/w.rs", "pub struct W;\n"),
        (
            "a/x.rs",
            "use super::{y::Y, z};\n#[cfg(test)]\nmod tests { use super::super::w::W; fn f() { let s = \"}\"; } }\nfn g() {}\n",
        ),
        (
            "a/y.rs",
            "#[cfg(test)]\nuse super::w;\n#[cfg(test)]\nmod tests;\npub fn h() { let s = r#\"crate::a::w\"#; }\nuse super::z::{self as zz, Q as R};\n",
        ),
        ("a/y/tests.rs", "use super::super::w::*;\n"),
        ("a/z.rs", "/* use super::w; */\n#[cfg(test)]\nfn t() {}\nfn k() { crate::a::x::g(); }\n"),
    ];
    for (path, text) in files {
        std::fs::write(src.join(path), text).unwrap();
    }
    let out = run(&src);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("cycle: a.x <-> a.y <-> a.z"), "{text}");
    assert!(
        !text.contains("a.w"),
        "test-only or quoted paths counted:\n{text}"
    );
}
