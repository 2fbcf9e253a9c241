//! The dashboard in a real browser: Debian's headless chromium driven through
//! chromedriver (WebDriver), against the real `ccr-setup proxy` binary with a seeded
//! ledger and a fake OpenAI upstream.
//!
//! * the Overview's figures (read from the page) equal `ccr-setup stats --json`'s for
//!   24h, 7d and 30d, per provider too, and the chart's bars equal its daily savings;
//! * a request made during the test shows up in the Live table within 2 s, and its
//!   details hold no prompt content;
//! * the Setup page shows the doctor's checks and the config with its key redacted;
//! * the page runs under its Content-Security-Policy without a single console error;
//! * with `APIKEY` set, the page and its API refuse a browser without a session, and
//!   the one-time link `ccr-setup ui` opens works (once).
//!
//! Screenshots of each page go to `target/ui-screenshots/` (docs/guide.md shows copies
//! from `docs/`). Needs `CCR_E2E_CHROMIUM` and `CCR_E2E_CHROMEDRIVER` from
//! `scripts/ci-deps.sh`: `cargo test --test e2e ui_browser::`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support;
use rusqlite::params;
use serde_json::{json, Value};
use support::claude_code::{wait_for_proxy, Child};
use support::openai_upstream::{FakeUpstream, Reply};
use support::webdriver::Browser;

/// One browser at a time: two chromiums on a 2-core machine make both tests slow.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
const CLOUD_KEY: &str = "sk-ant-test-0123456789-must-not-show";
const PROMPT: &str = "the secret prompt words 7f3a";

struct Tools {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

fn tools() -> Option<Tools> {
    Some(Tools {
        chromium: support::require_tool("CCR_E2E_CHROMIUM")?,
        chromedriver: support::require_tool("CCR_E2E_CHROMEDRIVER")?,
    })
}

/// (at, scenario, provider, model, fallback_from, [in, out, cache read, cache write],
/// ttft, duration, outcome, error kind, status, stream, local)
type Seed<'a> = (
    i64,
    &'a str,
    &'a str,
    &'a str,
    Option<&'a str>,
    [i64; 4],
    Option<i64>,
    i64,
    &'a str,
    Option<&'a str>,
    i64,
    bool,
    Option<bool>,
);

fn seeds(now: i64) -> Vec<Seed<'static>> {
    let (o, m) = ("ollama", "gpt-oss:20b");
    vec![
        (
            now - HOUR,
            "default",
            o,
            m,
            None,
            [30_000, 2_000, 0, 0],
            Some(400),
            6_400,
            "ok",
            None,
            200,
            true,
            Some(true),
        ),
        (
            now - 2 * HOUR,
            "default",
            "anthropic",
            "claude-sonnet-4-5",
            Some("ollama,gpt-oss:20b"),
            [10_000, 1_000, 50_000, 2_000],
            Some(800),
            2_800,
            "ok",
            None,
            200,
            true,
            Some(false),
        ),
        (
            now - 5 * HOUR,
            "default",
            o,
            m,
            None,
            [5_000, 0, 0, 0],
            None,
            1_200,
            "upstream_error",
            Some("http_500"),
            500,
            true,
            Some(true),
        ),
        (
            now - 3 * DAY,
            "default",
            o,
            m,
            None,
            [100_000, 10_000, 0, 0],
            Some(500),
            10_500,
            "ok",
            None,
            200,
            true,
            Some(true),
        ),
        (
            now - 3 * DAY - HOUR,
            "background",
            "anthropic",
            "claude-haiku-4-5-20251001",
            None,
            [2_000, 500, 0, 0],
            Some(400),
            1_400,
            "ok",
            None,
            200,
            false,
            Some(false),
        ),
        (
            now - 10 * DAY,
            "think",
            o,
            m,
            None,
            [40_000, 4_000, 0, 0],
            Some(1_000),
            9_000,
            "client_cancelled",
            None,
            200,
            true,
            None,
        ),
        (
            now - 20 * DAY,
            "background",
            o,
            m,
            None,
            [20_000, 2_000, 0, 0],
            Some(300),
            4_300,
            "ok",
            None,
            200,
            true,
            Some(true),
        ),
        (
            now - 20 * DAY + HOUR,
            "default",
            "-",
            "-",
            None,
            [0; 4],
            None,
            10,
            "rejected",
            Some("context_guard"),
            400,
            true,
            None,
        ),
        (
            now - 40 * DAY,
            "default",
            o,
            m,
            None,
            [9_000, 900, 0, 0],
            Some(200),
            2_000,
            "ok",
            None,
            200,
            true,
            Some(true),
        ),
    ]
}

/// A home holding the config (local provider = the fake upstream) and a seeded ledger.
fn home_with(upstream: &FakeUpstream, port: u16, api_key: Option<&str>) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(".claude-code-router");
    std::fs::create_dir_all(&dir).unwrap();
    let mut config = json!({
        "PORT": port,
        "Providers": [
            {"name": "ollama", "api_base_url": upstream.url("/v1/chat/completions"),
             "api_key": "", "models": ["gpt-oss:20b"]},
            {"name": "anthropic", "api_base_url": "https://api.anthropic.com/v1/messages",
             "api_key": CLOUD_KEY, "models": ["claude-sonnet-4-5", "claude-haiku-4-5-20251001"],
             "transformer": {"use": ["Anthropic"]}}
        ],
        "Router": {"default": "ollama,gpt-oss:20b"},
        "Pricing": {
            "claude-sonnet-4-5": {"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75},
            "local_per_hour": 0.36
        }
    });
    if let Some(key) = api_key {
        config["APIKEY"] = json!(key);
    }
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let conn = ccr_setup::ledger::open_for_writing(&dir.join("ledger.sqlite")).unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    for s in seeds(now) {
        conn.execute(
            "INSERT INTO requests (started_at_ms, session_id, scenario, provider, model,
                fallback_from, input_tokens, output_tokens, cache_read_tokens,
                cache_write_tokens, tokens_estimated, ttft_ms, duration_ms, outcome,
                error_kind, http_status, stream, provider_local)
             VALUES (?1, 'sess-1', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,
                ?15, ?16, ?17)",
            params![
                s.0,
                s.1,
                s.2,
                s.3,
                s.4,
                s.5[0],
                s.5[1],
                s.5[2],
                s.5[3],
                s.8 == "client_cancelled",
                s.6,
                s.7,
                s.8,
                s.9,
                s.10,
                s.11,
                s.12
            ],
        )
        .unwrap();
    }
    home
}

fn ccr(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ccr-setup"));
    c.env("HOME", home)
        .env("NO_COLOR", "1")
        .env_remove("CCR_SETUP_CONFIG")
        .env_remove("APIKEY")
        .stdin(Stdio::null());
    c
}

/// The real proxy binary, stopped (by its pid, which this test started) on drop.
struct Proxy {
    _child: Child,
    base: String,
}

async fn start_proxy(home: &Path, port: u16) -> Proxy {
    let mut child = Child(
        ccr(home)
            .arg("proxy")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ccr-setup proxy"),
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_for_proxy(&base, Duration::from_secs(20), &mut child).await;
    Proxy {
        _child: child,
        base,
    }
}

fn stats_json(home: &Path, since: &str) -> Value {
    let out = ccr(home)
        .args(["stats", "--since", since, "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every figure the Overview shows, with its raw value (`data-value`).
const READ_OVERVIEW: &str = r#"
const out = {windows: {}, providers: {}, bars: {}};
for (const w of document.querySelectorAll('[data-window]')) {
  const f = {};
  for (const e of w.querySelectorAll('[data-key]')) f[e.dataset.key] = JSON.parse(e.dataset.value);
  f.savings_text = w.querySelector('[data-key=savings_usd]').textContent;
  out.windows[w.dataset.window] = f;
}
for (const tr of document.querySelectorAll('#providers tr[data-provider]')) {
  const f = {};
  for (const e of tr.querySelectorAll('[data-key]')) f[e.dataset.key] = JSON.parse(e.dataset.value);
  out.providers[tr.dataset.provider] = f;
}
for (const r of document.querySelectorAll('#chart rect[data-day]')) out.bars[r.dataset.day] = Number(r.dataset.usd);
return out;"#;

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn assert_overview_equals_stats(page: &Value, home: &Path) {
    for since in ["24h", "7d", "30d"] {
        let stats = stats_json(home, since);
        let shown = &page["windows"][since];
        for key in [
            "requests",
            "local_share",
            "cloud_cost_usd",
            "would_have_cost_usd",
            "local_cost_usd",
            "savings_usd",
            "local_failure_rate",
        ] {
            assert_eq!(
                num(&shown[key]),
                num(&stats["totals"][key]),
                "{since} {key}: page {shown} vs stats {}",
                stats["totals"]
            );
        }
        let savings = stats["totals"]["savings_usd"].as_f64().unwrap();
        assert!(savings > 0.0, "{since}: the fixture saves money");
        assert_eq!(shown["savings_text"], format!("${savings:.4}"), "{since}");
    }
    let stats = stats_json(home, "30d");
    let providers = stats["providers"].as_array().unwrap();
    assert_eq!(providers.len(), 2, "{providers:?}");
    for p in providers {
        let shown = &page["providers"][p["provider"].as_str().unwrap()];
        for key in [
            "requests",
            "median_ttft_ms",
            "tokens_per_second",
            "failure_rate",
            "fallbacks",
        ] {
            assert_eq!(num(&shown[key]), num(&p[key]), "{} {key}", p["provider"]);
        }
    }
    for d in stats["daily_savings"].as_array().unwrap() {
        let day = d["day"].as_str().unwrap();
        assert_eq!(
            num(&page["bars"][day]),
            num(&d["savings_usd"]),
            "chart bar of {day}"
        );
    }
    assert_eq!(page["bars"].as_object().unwrap().len(), 30);
}

fn chat_completion() -> Reply {
    Reply::json(&json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-oss:20b",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello there"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 321, "completion_tokens": 12, "total_tokens": 333}
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overview_matches_stats_and_live_requests_arrive() {
    let Some(tools) = tools() else { return };
    let _one = ONE_BROWSER.lock().await;
    let upstream = FakeUpstream::start(vec![chat_completion()]).await;
    let port = support::unbound_port();
    let home = home_with(&upstream, port, None);
    let proxy = start_proxy(home.path(), port).await;
    let browser = Browser::start(&tools.chromedriver, &tools.chromium).await;
    let secs = |s| Duration::from_secs(s);

    // Overview.
    browser.goto(&format!("{}/ui/#overview", proxy.base)).await;
    browser
        .wait_for(
            "the overview",
            "return document.querySelectorAll('[data-window]').length === 3 \
             && document.querySelectorAll('#chart rect').length > 0;",
            secs(10),
        )
        .await;
    let page = browser.exec(READ_OVERVIEW, json!([])).await;
    assert_overview_equals_stats(&page, home.path());
    browser.screenshot(&Browser::artifact("overview.png")).await;
    browser.color_scheme("dark").await;
    browser
        .screenshot(&Browser::artifact("overview-dark.png"))
        .await;
    let dark_bg = browser
        .exec(
            "return getComputedStyle(document.body).backgroundColor;",
            json!([]),
        )
        .await;
    browser.color_scheme("light").await;
    let light_bg = browser
        .exec(
            "return getComputedStyle(document.body).backgroundColor;",
            json!([]),
        )
        .await;
    assert_ne!(dark_bg, light_bg, "the dark scheme changes the page");

    // Live: the seeded rows, then a request made now.
    browser.goto(&format!("{}/ui/#live", proxy.base)).await;
    browser
        .wait_for(
            "the live feed and the recent rows",
            "return document.getElementById('live-status').textContent === 'live' \
             && document.querySelectorAll('#live-table tbody tr').length === 9;",
            secs(10),
        )
        .await;
    let sent = Instant::now();
    let answer = reqwest::Client::new()
        .post(format!("{}/v1/messages", proxy.base))
        .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 50,
                      "messages": [{"role": "user", "content": PROMPT}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    browser
        .wait_for(
            "the new request in the live table",
            "return document.querySelectorAll('#live-table tbody tr').length === 10 \
             && document.querySelector('#live-table tbody tr').textContent.includes('321 / 12');",
            secs(2).saturating_sub(sent.elapsed()),
        )
        .await;
    let appeared = sent.elapsed();
    assert!(appeared < secs(2), "took {appeared:?}");
    browser
        .exec(
            "document.querySelector('#live-table tbody tr').click();",
            json!([]),
        )
        .await;
    let detail = browser
        .wait_for(
            "the request's details",
            "const d = document.getElementById('detail'); return !d.hidden && d.innerText;",
            secs(2),
        )
        .await;
    let detail = detail.as_str().unwrap();
    assert!(
        detail.contains("gpt-oss:20b") && detail.contains("321"),
        "{detail}"
    );
    let body = browser
        .exec("return document.documentElement.outerHTML;", json!([]))
        .await;
    assert!(
        !body.as_str().unwrap().contains("7f3a"),
        "prompt content shown"
    );
    browser.screenshot(&Browser::artifact("live.png")).await;

    // Setup.
    browser.goto(&format!("{}/ui/#setup", proxy.base)).await;
    let checks = browser
        .wait_for(
            "the doctor's checks",
            "return document.querySelectorAll('#checks [data-check]').length;",
            secs(20),
        )
        .await;
    assert_eq!(
        checks.as_u64(),
        Some(ccr_setup::doctor::CHECK_IDS.len() as u64)
    );
    let config = browser
        .exec(
            "return document.getElementById('config-json').textContent;",
            json!([]),
        )
        .await;
    let config = config.as_str().unwrap();
    assert!(
        config.contains("<redacted>") && !config.contains(CLOUD_KEY),
        "{config}"
    );
    browser
        .exec(
            "document.getElementById('config-details').open = true;",
            json!([]),
        )
        .await;
    browser.screenshot(&Browser::artifact("setup.png")).await;

    let html = browser
        .exec("return document.documentElement.outerHTML;", json!([]))
        .await;
    assert!(!html.as_str().unwrap().contains(CLOUD_KEY));
    let severe: Vec<Value> = browser
        .console()
        .await
        .into_iter()
        .filter(|e| e["level"] == "SEVERE")
        .collect();
    assert!(severe.is_empty(), "console errors (CSP?): {severe:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_apikey_only_the_one_time_link_opens_the_dashboard() {
    let Some(tools) = tools() else { return };
    let _one = ONE_BROWSER.lock().await;
    let upstream = FakeUpstream::start(vec![chat_completion()]).await;
    let port = support::unbound_port();
    let home = home_with(&upstream, port, Some("proxy-key-0123456789abcdef"));
    let proxy = start_proxy(home.path(), port).await;
    let browser = Browser::start(&tools.chromedriver, &tools.chromium).await;

    // Without a session: refused, page and API alike.
    browser.goto(&format!("{}/ui/", proxy.base)).await;
    let text = browser
        .exec("return document.body.innerText;", json!([]))
        .await;
    assert!(
        text.as_str().unwrap().contains("authentication_error"),
        "{text}"
    );
    for path in ["/ui/", "/ui/api/overview", "/ui/events", "/ui/api/setup"] {
        let r = reqwest::get(format!("{}{path}", proxy.base)).await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }

    // `ccr-setup ui` opens the one-time link with xdg-open (a fake that records it).
    let bin = tempfile::tempdir().unwrap();
    let opened = bin.path().join("opened.txt");
    let fake = bin.path().join("xdg-open");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\nprintf '%s' \"$1\" > '{}'\n", opened.display()),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap()
    );
    let out = ccr(home.path())
        .arg("ui")
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A private local page that posts the ticket: nothing secret in the opener's argv.
    let url = std::fs::read_to_string(&opened).unwrap();
    assert!(url.starts_with("file:///"), "{url}");
    assert!(!url.contains("ticket"), "{url}");
    let page_path = url::Url::parse(&url).unwrap().to_file_path().unwrap();
    let page = std::fs::read_to_string(&page_path).unwrap();
    let ticket = page
        .split("name=\"ticket\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    assert!(
        !page.contains("proxy-key"),
        "the key itself never goes in the page"
    );

    browser.goto(&url).await;
    browser
        .wait_for(
            "the overview after login",
            "return document.querySelectorAll('[data-window]').length === 3;",
            Duration::from_secs(10),
        )
        .await;
    let cookie_visible = browser.exec("return document.cookie;", json!([])).await;
    assert_eq!(cookie_visible, "", "the session cookie is HttpOnly");
    browser.goto(&format!("{}/ui/#live", proxy.base)).await;
    browser
        .wait_for(
            "the live feed with a session",
            "return document.getElementById('live-status').textContent === 'live';",
            Duration::from_secs(10),
        )
        .await;

    // The ticket works once.
    let again = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/ui/login", proxy.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("ticket={ticket}"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 401);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "authentication_error");
}
