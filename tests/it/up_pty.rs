//! `up` on a real terminal (a PTY via expectrl): the indicatif progress bar renders and
//! advances, and Ctrl-C stops the pull cleanly, saying the next `up` resumes it.

use crate::support;

use std::time::Duration;

use expectrl::{Regex, Session};
use support::fake_ollama::{FakeConfig, FakeOllama};
use support::sandbox::Sandbox;

/// A pull slow enough to watch: 3 MB in 100 kB steps every 40 ms.
pub(crate) fn slow_fake(tick_ms: u64) -> FakeOllama {
    let mut cfg = FakeConfig::default();
    cfg.library[0].layers = vec![3_000_000, 11_000, 7_000];
    cfg.pull.chunk = 100_000;
    cfg.pull.tick = Duration::from_millis(tick_ms);
    FakeOllama::start(cfg)
}

fn spawn_up(home: &Sandbox, fake: &FakeOllama) -> Session {
    let mut cmd = home.up(&["--no-exec", "--no-smoke"]);
    cmd.env("CCR_SETUP_OLLAMA_REGISTRY", fake.url());
    cmd.env("TERM", "xterm-256color");
    let mut s = Session::spawn(cmd).expect("spawn in a pty");
    s.set_expect_timeout(Some(Duration::from_secs(30)));
    s
}

/// "1.20 MiB" → bytes.
fn parse_bytes(s: &str) -> f64 {
    let (n, unit) = s.split_once(' ').unwrap();
    let n: f64 = n.parse().unwrap();
    n * match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        other => panic!("unit {other}"),
    }
}

pub(crate) const BAR: &str =
    r"pulling gpt-oss:20b \[[=> ]+\] ([0-9.]+ [KMG]?i?B)/([0-9.]+ [KMG]?i?B)";

#[test]
fn progress_bar_renders_and_advances() {
    let fake = slow_fake(40);
    let home = Sandbox::up_home(&fake.host_port());
    let mut s = spawn_up(&home, &fake);

    let first = s.expect(Regex(BAR)).expect("a progress bar");
    let first_bytes = parse_bytes(&String::from_utf8_lossy(first.get(1).unwrap()));
    let mut total = String::new();
    let mut advanced = None;
    for _ in 0..200 {
        let c = s.expect(Regex(BAR)).expect("the bar keeps drawing");
        let now = parse_bytes(&String::from_utf8_lossy(c.get(1).unwrap()));
        total = String::from_utf8_lossy(c.get(2).unwrap()).into_owned();
        if now > first_bytes {
            advanced = Some(now);
            break;
        }
    }
    let advanced = advanced.expect("the bar advanced");
    assert!(advanced > first_bytes);
    // The total covers all three layers from the start (the manifest's size), not
    // just the first layer (2.86 MiB) that Ollama is reporting at that moment.
    assert!(
        parse_bytes(&total) >= 3_005_000.0,
        "total across layers: {total}"
    );
    s.expect("✓ pull").expect("pull finished");
    let status = s.get_process().wait().unwrap();
    assert_eq!(
        status,
        expectrl::WaitStatus::Exited(s.get_process().pid(), 0)
    );
    assert!(fake.is_installed("gpt-oss:20b"));
}

#[test]
fn ctrl_c_stops_the_pull_and_the_next_up_resumes() {
    let fake = slow_fake(100);
    let home = Sandbox::up_home(&fake.host_port());
    let mut s = spawn_up(&home, &fake);
    s.expect(Regex(BAR)).expect("a progress bar");
    std::thread::sleep(Duration::from_millis(500));
    s.send([3u8]).unwrap(); // Ctrl-C, delivered as SIGINT by the terminal
    s.expect("stopped by Ctrl-C").expect("a clean stop");
    s.expect("resumes").expect("says the next up resumes");
    let status = s.get_process().wait().unwrap();
    assert_eq!(
        status,
        expectrl::WaitStatus::Exited(s.get_process().pid(), 1)
    );
    assert!(!fake.is_installed("gpt-oss:20b"));
    let kept: u64 = fake.state.lock().unwrap().downloaded.values().sum();
    assert!(kept > 0, "partial download kept");

    // The next `up` picks up where the first stopped.
    fake.update(|st| st.config.pull.tick = Duration::from_millis(5));
    let mut cmd = home.up(&["--no-exec", "--no-smoke"]);
    cmd.env("CCR_SETUP_OLLAMA_REGISTRY", fake.url());
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(fake.is_installed("gpt-oss:20b"));
    assert_eq!(fake.hits("/api/pull"), 2);
}
