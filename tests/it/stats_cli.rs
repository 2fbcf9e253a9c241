//! `ccr-setup stats` over a seeded ledger: every figure of the table, `--json` and
//! `--csv` checked against numbers worked out by hand from the fixture below.
//!
//! Prices (config `Pricing`): claude-sonnet-4-5 at $3 in / $15 out / $0.30 cache read /
//! $3.75 cache write per Mtok, electricity $0.36 per hour; claude-haiku-4-5 uses the
//! built-in $1 / $5 list price. `--compare-to` defaults to the anthropic provider's first
//! model, claude-sonnet-4-5.

use std::path::Path;
use std::process::{Command, Output};

use rusqlite::params;

const CONFIG: &str = r#"{
  "Providers": [
    {"name": "ollama", "api_base_url": "http://127.0.0.1:11434/v1/chat/completions",
     "api_key": "", "models": ["gpt-oss:20b"]},
    {"name": "anthropic", "api_base_url": "https://api.anthropic.com/v1/messages",
     "api_key": "sk-test", "models": ["claude-sonnet-4-5", "claude-haiku-4-5-20251001"],
     "transformer": {"use": ["Anthropic"]}}
  ],
  "Router": {"default": "ollama,gpt-oss:20b"},
  "Pricing": {
    "claude-sonnet-4-5": {"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75},
    "local_per_hour": 0.36
  }
}"#;

/// 2026-11-01T00:00:00Z.
const DAY1: i64 = 1_793_491_200_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

struct Seed {
    at: i64,
    scenario: &'static str,
    provider: &'static str,
    model: &'static str,
    fallback_from: Option<&'static str>,
    tokens: [i64; 4],
    estimated: bool,
    ttft: Option<i64>,
    duration: i64,
    outcome: &'static str,
    error_kind: Option<&'static str>,
    status: i64,
    stream: bool,
    /// None: a row written before schema v2, classified by the current config.
    local: Option<bool>,
}

fn fixture() -> Vec<Seed> {
    let s = |at, scenario, provider, model| Seed {
        at,
        scenario,
        provider,
        model,
        fallback_from: None,
        tokens: [0; 4],
        estimated: false,
        ttft: None,
        duration: 0,
        outcome: "ok",
        error_kind: None,
        status: 200,
        stream: true,
        local: Some(provider == "ollama"),
    };
    vec![
        // R1 local ok: would have $0.45, electricity $0.00105.
        Seed {
            tokens: [100_000, 10_000, 0, 0],
            ttft: Some(500),
            duration: 10_500,
            ..s(DAY1 + 10 * HOUR, "default", "ollama", "gpt-oss:20b")
        },
        // R2 local ok: would have $0.09, electricity $0.00043.
        Seed {
            tokens: [20_000, 2_000, 0, 0],
            ttft: Some(300),
            duration: 4_300,
            ..s(DAY1 + 11 * HOUR, "background", "ollama", "gpt-oss:20b")
        },
        // R3 local upstream error: no would-have, electricity $0.00012.
        Seed {
            tokens: [5_000, 0, 0, 0],
            duration: 1_200,
            outcome: "upstream_error",
            error_kind: Some("http_500"),
            status: 500,
            ..s(DAY1 + 12 * HOUR, "default", "ollama", "gpt-oss:20b")
        },
        // R4 cloud fallback from local: 0.03 + 0.015 + 0.015 + 0.0075 = $0.0675.
        Seed {
            fallback_from: Some("ollama,gpt-oss:20b"),
            tokens: [10_000, 1_000, 50_000, 2_000],
            ttft: Some(800),
            duration: 2_800,
            ..s(
                DAY1 + 2 * DAY + 9 * HOUR,
                "default",
                "anthropic",
                "claude-sonnet-4-5",
            )
        },
        // R5 local, cancelled, estimated tokens, pre-v2 row: would have $0.18,
        // electricity $0.0009.
        Seed {
            tokens: [40_000, 4_000, 0, 0],
            estimated: true,
            ttft: Some(1_000),
            duration: 9_000,
            outcome: "client_cancelled",
            status: 200,
            local: None,
            ..s(DAY1 + 2 * DAY + 10 * HOUR, "think", "ollama", "gpt-oss:20b")
        },
        // R6 cloud, not streamed, built-in Haiku 4.5 price: 0.002 + 0.0025 = $0.0045.
        Seed {
            tokens: [2_000, 500, 0, 0],
            ttft: Some(400),
            duration: 1_400,
            stream: false,
            ..s(
                DAY1 + 2 * DAY + 11 * HOUR,
                "background",
                "anthropic",
                "claude-haiku-4-5-20251001",
            )
        },
        // R7 rejected by the context guard before routing (provider "-"): neither local
        // nor cloud, costs nothing.
        Seed {
            duration: 10,
            outcome: "rejected",
            error_kind: Some("context_guard"),
            status: 400,
            local: None,
            ..s(DAY1 + 2 * DAY + 11 * HOUR + HOUR / 2, "default", "-", "-")
        },
    ]
}

/// A home with the config and a ledger holding `rows` (written through the real schema).
fn home_with(rows: &[Seed]) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(".claude-code-router");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.json"), CONFIG).unwrap();
    let conn = ccr_setup::ledger::open_for_writing(&dir.join("ledger.sqlite")).unwrap();
    for r in rows {
        conn.execute(
            "INSERT INTO requests (started_at_ms, session_id, scenario, provider, model,
                fallback_from, input_tokens, output_tokens, cache_read_tokens,
                cache_write_tokens, tokens_estimated, ttft_ms, duration_ms, outcome,
                error_kind, http_status, stream, provider_local)
             VALUES (?1, 'sess', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,
                ?15, ?16, ?17)",
            params![
                r.at,
                r.scenario,
                r.provider,
                r.model,
                r.fallback_from,
                r.tokens[0],
                r.tokens[1],
                r.tokens[2],
                r.tokens[3],
                r.estimated,
                r.ttft,
                r.duration,
                r.outcome,
                r.error_kind,
                r.status,
                r.stream,
                r.local,
            ],
        )
        .unwrap();
    }
    home
}

fn stats(home: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_ccr-setup"))
        .arg("stats")
        .args(args)
        .env("HOME", home)
        .env("TZ", "UTC")
        .env("NO_COLOR", "1")
        .env_remove("CCR_SETUP_CONFIG")
        .output()
        .expect("run ccr-setup stats");
    assert!(
        out.status.success(),
        "stats {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn table_shows_every_figure() {
    let home = home_with(&fixture());
    let out = stdout(&stats(home.path(), &["--since", "all", "--by", "route"]));
    let expected = "\
Usage, all time

  requests         7  (ok 4, upstream errors 1, cancelled 1, rejected 1)
  local share      57.1%  (4 local, 2 cloud)
  tokens in / out  177.0k / 17.5k  (cache read 50.0k, cache write 2.0k; 1 request(s) estimated)
  cloud spend      $0.0720
  local cost       $0.0025  (electricity at $0.3600/hour)
  would have cost  $0.7200  (local requests at claude-sonnet-4-5: $3/$15 per Mtok in/out)
  savings          $0.7175
  local failures   2 of 5 attempts (40.0%); fallbacks 1 (1 from local)

  provider   where  requests  median TTFT  tokens/s
  ollama     local         4       400 ms     857.1
  anthropic  cloud         2       600 ms     500.0

  route       requests   local        in       out       cloud  would-have     savings  failures
  default            4   50.0%    115.0k     11.0k     $0.0675     $0.4500     $0.4488         2
  background         2   50.0%     22.0k      2.5k     $0.0045     $0.0900     $0.0896         0
  think              1  100.0%     40.0k      4.0k       $0.00     $0.1800     $0.1791         0

  daily savings
  2026-11-01  ██████████████████████████████  $0.5384
  2026-11-02                                  $0.00
  2026-11-03  ██████████                      $0.1791
";
    assert_eq!(out, expected, "got:\n{out}");
}

/// A row the proxy marked as a silent truncation (the server reported a full window or
/// far fewer prompt tokens than were sent) is counted and named.
#[test]
fn context_overflows_are_counted_and_named() {
    let home = home_with(&fixture());
    let db = home.path().join(".claude-code-router/ledger.sqlite");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute(
            "UPDATE requests SET context_overflowed = 1 WHERE provider = 'ollama' AND outcome = 'ok'",
            [],
        )
        .unwrap();
    let text = stdout(&stats(home.path(), &["--since", "all"]));
    assert!(text.contains("context overflowed 2 times"), "{text}");
    let json = stdout(&stats(home.path(), &["--since", "all", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["totals"]["context_overflows"], 2, "{json}");
}

/// Requests context editing fitted to the local window are counted, with the blocks
/// cleared and the tokens that saved.
#[test]
fn context_editing_is_counted_and_named() {
    let home = home_with(&fixture());
    let db = home.path().join(".claude-code-router/ledger.sqlite");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute(
            "UPDATE requests SET context_cleared_blocks = 3, context_cleared_tokens = 12000 WHERE provider = 'ollama' AND outcome = 'ok'",
            [],
        )
        .unwrap();
    let text = stdout(&stats(home.path(), &["--since", "all"]));
    assert!(
        text.contains("2 request(s) fitted to the local window: 6 old tool result(s) cleared, 24.0k prompt tokens in all"),
        "{text}"
    );
    let json = stdout(&stats(home.path(), &["--since", "all", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["totals"]["context_edited_requests"], 2, "{json}");
    assert_eq!(v["totals"]["context_cleared_blocks"], 6, "{json}");
    assert_eq!(v["totals"]["context_cleared_tokens"], 24_000, "{json}");
}

/// Repaired tool calls count for the model that answered; unrepaired ones for the
/// model that made them (the one fallen back from).
#[test]
fn tool_call_repairs_and_failures_are_shown_per_model() {
    let home = home_with(&fixture());
    let db = home.path().join(".claude-code-router/ledger.sqlite");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        "UPDATE requests SET repairs = 'name,coerced' WHERE provider = 'ollama' AND outcome = 'ok'",
        [],
    )
    .unwrap();
    conn.execute(
        "UPDATE requests SET tool_call_failures = 2 WHERE fallback_from IS NOT NULL",
        [],
    )
    .unwrap();
    conn.execute(
        "UPDATE requests SET scenario = 'quality' WHERE provider = 'anthropic' AND fallback_from IS NULL",
        [],
    )
    .unwrap();
    let text = stdout(&stats(home.path(), &["--since", "all"]));
    assert!(
        text.contains("; 1 request(s) sent to the cloud for quality"),
        "{text}"
    );
    assert!(
        text.contains("ollama,gpt-oss:20b: 2 answer(s) repaired (coerced 2, name 2); 2 call(s) could not be repaired"),
        "{text}"
    );
    let json = stdout(&stats(home.path(), &["--since", "all", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        v["tool_calls"],
        serde_json::json!([{"model": "ollama,gpt-oss:20b", "repaired": 2,
            "repairs_by_kind": {"coerced": 2, "name": 2}, "unrepaired": 2}]),
        "{json}"
    );
}

#[test]
fn json_has_exact_figures() {
    let home = home_with(&fixture());
    let out = stdout(&stats(
        home.path(),
        &["--since", "all", "--json", "--by", "model"],
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let t = &v["totals"];
    let expect = serde_json::json!({
        "requests": 7, "ok": 4, "client_cancelled": 1, "upstream_errors": 1, "rejected": 1,
        "local_requests": 4, "cloud_requests": 2, "local_share": 0.5714,
        "input_tokens": 177000, "output_tokens": 17500,
        "cache_read_tokens": 50000, "cache_write_tokens": 2000,
        "estimated_token_requests": 1,
        "cloud_cost_usd": 0.072, "local_cost_usd": 0.0025,
        "would_have_cost_usd": 0.72, "savings_usd": 0.7175,
        "local_attempts": 5, "local_failures": 2, "local_failure_rate": 0.4,
        "fallbacks": 1, "fallbacks_from_local": 1, "context_overflows": 0,
        "context_edited_requests": 0, "context_cleared_blocks": 0, "context_cleared_tokens": 0,
        "quality_fallbacks": 0
    });
    assert_eq!(t, &expect);
    assert_eq!(v["compare_to"], "claude-sonnet-4-5");
    assert_eq!(
        v["compare_to_price"],
        serde_json::json!({"input": 3.0, "output": 15.0, "cache_read": 0.3, "cache_write": 3.75})
    );
    assert_eq!(v["local_per_hour_usd"], 0.36);
    assert_eq!(v["group_by"], "model");
    let groups: Vec<(String, u64, f64)> = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["key"].as_str().unwrap().to_owned(),
                g["requests"].as_u64().unwrap(),
                g["cloud_cost_usd"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        groups,
        [
            ("ollama,gpt-oss:20b".to_owned(), 4, 0.0),
            ("-,-".to_owned(), 1, 0.0),
            ("anthropic,claude-haiku-4-5-20251001".to_owned(), 1, 0.0045),
            ("anthropic,claude-sonnet-4-5".to_owned(), 1, 0.0675),
        ]
    );
    assert_eq!(
        v["providers"],
        serde_json::json!([
            // ollama: R3 failed, and R4 fell back from it: 2 failures in 4 + 1 attempts.
            {"provider": "ollama", "local": true, "requests": 4,
             "median_ttft_ms": 400.0, "tokens_per_second": 857.14,
             "fallbacks": 1, "failures": 2, "failure_rate": 0.4},
            {"provider": "anthropic", "local": false, "requests": 2,
             "median_ttft_ms": 600.0, "tokens_per_second": 500.0,
             "fallbacks": 0, "failures": 0, "failure_rate": 0.0}
        ])
    );
    assert_eq!(
        v["daily_savings"],
        serde_json::json!([
            {"day": "2026-11-01", "savings_usd": 0.5384},
            {"day": "2026-11-02", "savings_usd": 0.0},
            {"day": "2026-11-03", "savings_usd": 0.1791}
        ])
    );
    assert_eq!(v["unpriced_models"], serde_json::json!([]));
}

#[test]
fn csv_is_stable() {
    let home = home_with(&fixture());
    let out = stdout(&stats(
        home.path(),
        &["--since", "all", "--csv", "--by", "day"],
    ));
    let expected = "\
group,requests,ok,upstream_errors,client_cancelled,rejected,local_requests,cloud_requests,local_share,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,cloud_cost_usd,local_cost_usd,would_have_cost_usd,savings_usd,local_attempts,local_failures,local_failure_rate,fallbacks,fallbacks_from_local
2026-11-01,3,2,1,0,0,3,0,1,125000,12000,0,0,0,0.0016,0.54,0.5384,3,1,0.3333,0,0
2026-11-03,4,2,0,1,1,1,2,0.25,52000,5500,50000,2000,0.072,0.0009,0.18,0.1791,2,1,0.5,1,1
total,7,4,1,1,1,4,2,0.5714,177000,17500,50000,2000,0.072,0.0025,0.72,0.7175,5,2,0.4,1,1
";
    assert_eq!(out, expected, "got:\n{out}");
}

#[test]
fn since_window_and_compare_to() {
    let now = chrono::Utc::now().timestamp_millis();
    let recent = |at| Seed {
        at,
        scenario: "default",
        provider: "ollama",
        model: "gpt-oss:20b",
        fallback_from: None,
        tokens: [1_000_000, 100_000, 0, 0],
        estimated: false,
        ttft: Some(100),
        duration: 1_100,
        outcome: "ok",
        error_kind: None,
        status: 200,
        stream: true,
        local: Some(true),
    };
    let home = home_with(&[recent(now - 10 * DAY), recent(now - HOUR)]);
    let json = |args: &[&str]| -> serde_json::Value {
        serde_json::from_str(&stdout(&stats(home.path(), args))).unwrap()
    };
    let week = json(&["--since", "7d", "--json"]);
    assert_eq!(week["totals"]["requests"], 1);
    // 1M in × $3 + 100k out × $15 at the default compare-to.
    assert_eq!(week["totals"]["would_have_cost_usd"], 4.5);
    let all = json(&["--since", "all", "--json"]);
    assert_eq!(all["totals"]["requests"], 2);
    // Built-in Opus 4.8 list price: $5 in, $25 out.
    let opus = json(&[
        "--since",
        "30d",
        "--json",
        "--compare-to",
        "claude-opus-4-8",
    ]);
    assert_eq!(opus["totals"]["would_have_cost_usd"], 15.0);
}

#[test]
fn unknown_compare_to_names_the_fix() {
    let home = home_with(&fixture());
    let out = Command::new(env!("CARGO_BIN_EXE_ccr-setup"))
        .args(["stats", "--compare-to", "gpt-9"])
        .env("HOME", home.path())
        .env_remove("CCR_SETUP_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no price for model `gpt-9`"), "{err}");
    assert!(err.contains("Pricing"), "{err}");
}

#[test]
fn missing_ledger_is_zeros_and_a_hint() {
    let home = tempfile::tempdir().unwrap();
    let out = stats(home.path(), &["--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["totals"]["requests"], 0);
    assert_eq!(v["totals"]["savings_usd"], 0.0);
    // No config either: the built-in Sonnet is the comparison.
    assert_eq!(v["compare_to"], ccr_setup::ledger::fallback_compare_to());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("No usage recorded yet"), "{err}");
    assert!(err.contains("ledger.sqlite"), "{err}");
}

#[test]
fn bad_pricing_is_reported_with_its_path() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(".claude-code-router");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        CONFIG.replace(r#""local_per_hour": 0.36"#, r#""local_per_hour": "cheap""#),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ccr-setup"))
        .arg("stats")
        .env("HOME", home.path())
        .env_remove("CCR_SETUP_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Pricing.local_per_hour"), "{err}");
    assert!(err.contains("hint:"), "{err}");
}
