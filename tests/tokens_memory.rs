//! The tokenizer's resident memory: at most 8 MB once loaded and used (tiktoken-rs's
//! o200k_base took ~54 MB). Its own test binary, not part of `it`, so that nothing else
//! running in the process moves the RSS.

#![cfg(target_os = "linux")]

use ccr_setup::proxy::tokens::{count_text, TokenEstimator};

/// VmRSS of this process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

#[test]
fn the_tokenizer_stays_under_8_mb_resident() {
    // Text of every kind, built before the first measurement.
    let body = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/it/golden/request/claude_code_76k.anthropic.json"
    ))
    .unwrap();
    let mixed = format!(
        "{body}{}{}{}héllo wörld 世界 Привет мир 12345 \u{0301}",
        "a".repeat(100_000),
        "-".repeat(20_000),
        " \n".repeat(1_000)
    );
    let before = rss();
    TokenEstimator::warm_up();
    let tokens = count_text(&mixed);
    let after = rss();
    let delta = after.saturating_sub(before);
    eprintln!(
        "tokenizer resident: {:.2} MiB ({tokens} tokens counted)",
        delta as f64 / 1048576.0
    );
    assert!(tokens > 20_000);
    assert!(delta <= 8 << 20, "tokenizer took {delta} bytes resident");
}
