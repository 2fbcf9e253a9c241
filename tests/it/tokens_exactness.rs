//! Our o200k_base counter against tiktoken-rs (a dev-dependency kept for this check).
//!
//! Corpus: the 76 KB Claude Code request fixture, this repository's own sources, a real
//! npm lock file (`tests/it/golden/tokens/package-lock.json`: the first 3,000 lines of
//! llama.cpp's `tools/ui/package-lock.json`), and pathological runs. Ordinary text must
//! count exactly as tiktoken does; runs longer than one merge window (16 KB) within 2%.
//! The pathological runs stay small because tiktoken is quadratic on them.

use std::path::Path;

use ccr_setup::proxy::tokens::count_text;

fn tiktoken(text: &str) -> u64 {
    tiktoken_rs::o200k_base_singleton()
        .encode_ordinary(text)
        .len() as u64
}

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `.rs` file under `dir`, recursively, as (path, text).
fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs" || e == "md") {
            out.push((
                path.display().to_string(),
                std::fs::read_to_string(&path).unwrap(),
            ));
        }
    }
}

#[test]
fn the_claude_code_request_counts_exactly() {
    let body = read("tests/it/golden/request/claude_code_76k.anthropic.json");
    assert!(body.len() > 70_000);
    assert_eq!(count_text(&body), tiktoken(&body));
    // And each text the estimator tokenizes separately.
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut texts = Vec::new();
    collect_strings(&v, &mut texts);
    assert!(texts.len() > 100);
    for t in texts {
        assert_eq!(count_text(&t), tiktoken(&t), "{t:?}");
    }
}

fn collect_strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                out.push(k.clone());
                collect_strings(x, out);
            }
        }
        _ => {}
    }
}

#[test]
fn this_repository_counts_exactly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "crates", "tests", "benches"] {
        sources(&root.join(dir), &mut files);
    }
    // The prose: the README, CONTRIBUTING and the guides under docs/.
    for doc in ["README.md", "CONTRIBUTING.md"] {
        files.push((doc.into(), read(doc)));
    }
    let mut docs: Vec<_> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    for doc in docs {
        let text = std::fs::read_to_string(&doc).unwrap();
        files.push((doc.display().to_string(), text));
    }
    assert!(files.len() > 50, "{} files", files.len());
    let (mut ours, mut theirs) = (0, 0);
    for (path, text) in &files {
        let (a, b) = (count_text(text), tiktoken(text));
        assert_eq!(a, b, "{path}");
        ours += a;
        theirs += b;
    }
    eprintln!("{} files, {ours} tokens (tiktoken {theirs})", files.len());
}

#[test]
fn a_lock_file_counts_exactly() {
    let lock = read("tests/it/golden/tokens/package-lock.json");
    assert!(lock.contains("\"integrity\": \"sha512-"));
    assert_eq!(count_text(&lock), tiktoken(&lock));
}

/// Within one merge window the count is exact; beyond, within 2%.
#[test]
fn pathological_runs_count_within_two_percent() {
    let base64: String = (0..12_000u32)
        .map(|i| {
            let c = (i.wrapping_mul(2_654_435_761) >> 7) % 64;
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[c as usize] as char
        })
        .collect();
    let lower: String = (0..20_000u32)
        .map(|i| (b'a' + ((i.wrapping_mul(2_654_435_761) >> 9) % 26) as u8) as char)
        .collect();
    let cases = [
        ("a x 12k", "a".repeat(12_000), true),
        ("dashes x 12k", "-".repeat(12_000), true),
        ("spaces x 12k", format!("x{}y", " ".repeat(12_000)), true),
        ("base64 line", base64, true),
        ("é x 6k", "é".repeat(6_000), true),
        ("a x 20k", "a".repeat(20_000), false),
        ("= x 20k", "=".repeat(20_000), false),
        ("random lowercase 20k", lower, false),
    ];
    for (name, text, exact) in cases {
        let (ours, theirs) = (count_text(&text), tiktoken(&text));
        let off = (ours as f64 - theirs as f64).abs() / theirs as f64;
        eprintln!(
            "{name}: ours {ours}, tiktoken {theirs}, off {:.3}%",
            off * 100.0
        );
        if exact {
            assert_eq!(ours, theirs, "{name}");
        } else {
            assert!(off <= 0.02, "{name}: {ours} vs {theirs}");
        }
    }
}

/// The bundled vocabulary is tiktoken's, token for token.
#[test]
fn the_vocabulary_is_tiktokens() {
    let bpe = tiktoken_rs::o200k_base_singleton();
    let ranks: Vec<u32> = (0..199_998).collect();
    let tokens: Vec<Vec<u8>> = bpe._decode_native_and_split(ranks).collect();
    let data = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/ccr-proxy/assets/o200k_base.tokens"),
    )
    .unwrap();
    let mut at = 0;
    for (rank, token) in tokens.iter().enumerate() {
        let len = data[at] as usize;
        assert_eq!(&data[at + 1..at + 1 + len], token.as_slice(), "rank {rank}");
        at += 1 + len;
    }
    assert_eq!(at, data.len(), "no extra tokens");
}
