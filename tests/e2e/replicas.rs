//! Team mode's done-when: two real llama-server replicas (one slot each) behind one
//! `ccr-setup proxy` serve two concurrent real Claude Code sessions, two turns each
//! (`--session-id`, then `--resume`). Each session stays on its replica (the proxy's
//! debug log names the replica per request and session key), each replica serves its
//! session's second turn mostly from its prompt cache (llama-server's `prompt eval
//! time = … / N tokens` far below the prompt), and when one replica is stopped its
//! session's next turn moves to the other and finishes.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ccr_setup::config::Replica;
use ccr_setup::proxy::replicas::{preferred, session_key};
use serde_json::json;
use support::claude_code::{
    run_claude, unbound_port, wait_for_proxy, wait_healthy, Child, ClaudeRun,
};

use crate::claude::SMALL_REQUEST_ARGS;

/// One replica: llama-server with one slot, greedy, logging to `log`.
async fn start_replica(bin: &Path, gguf: &Path, log: &Path) -> (Child, String) {
    let port = unbound_port();
    let child = std::process::Command::new(bin)
        .arg("-m")
        .arg(gguf)
        .args([
            "--alias", "smollm2", "-c", "8192", "-np", "1", "--jinja", "-t", "1",
        ])
        .args(["--temp", "0", "--seed", "1", "--no-repack"])
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("start llama-server");
    let mut child = Child(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(
        &format!("{base}/health"),
        Duration::from_secs(180),
        &mut child,
        "llama-server",
    )
    .await;
    (child, format!("{base}/v1/chat/completions"))
}

/// A session id (a UUID, as `--session-id` wants) whose replica is `home`.
fn session_on(urls: &[String], home: usize) -> String {
    let replicas: Vec<Replica> = urls.iter().map(|u| Replica::new(u.clone())).collect();
    (0u32..)
        .map(|i| format!("00000000-0000-4000-8000-{i:012x}"))
        .find(|s| preferred(session_key(s), &replicas) == home)
        .unwrap()
}

/// One task llama-server ran: prompt tokens evaluated, tokens generated, and the slot's
/// tokens when it stopped (prompt + generated - 1).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Task {
    evaluated: u64,
    generated: u64,
    n_tokens: u64,
}

impl Task {
    fn prompt(&self) -> u64 {
        self.n_tokens + 1 - self.generated
    }
}

/// The number after `marker` on `line`.
fn number_after(line: &str, marker: &str) -> Option<u64> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let rest = rest.trim_start();
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The tasks of a llama-server log, in order: `prompt eval time = X ms / N tokens`,
/// `eval time = X ms / G tokens`, then `stop processing: n_tokens = T`.
fn tasks(log: &str) -> Vec<Task> {
    let mut out = Vec::new();
    let (mut evaluated, mut generated) = (None, None);
    for line in log.lines() {
        if line.contains("prompt eval time =") {
            evaluated = number_after(line, "ms /");
        } else if line.contains(" eval time =") {
            generated = number_after(line, "ms /");
        } else if let Some(n_tokens) = number_after(line, "stop processing: n_tokens =") {
            if let (Some(evaluated), Some(generated)) = (evaluated.take(), generated.take()) {
                out.push(Task {
                    evaluated,
                    generated,
                    n_tokens,
                });
            }
        }
    }
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

struct Team {
    claude: PathBuf,
    dir: PathBuf,
    base: String,
    proxy_log: PathBuf,
}

impl Team {
    /// Turn `turn` of `session` (its own HOME, so the two users share nothing).
    async fn turn(&self, session: &str, turn: usize) -> ClaudeRun {
        let home = self.dir.join(session);
        std::fs::create_dir_all(&home).unwrap();
        let flag = if turn == 1 {
            "--session-id"
        } else {
            "--resume"
        };
        let mut args = vec![flag, session];
        args.extend_from_slice(SMALL_REQUEST_ARGS);
        let prompt = ["What is 2+2?", "And 3+3?", "And 4+4?"][turn - 1];
        run_claude(&self.claude, &home, &self.base, prompt, &args).await
    }

    fn assert_ok(&self, run: &ClaudeRun, what: &str) {
        assert!(
            run.status.success(),
            "{what}: {}",
            run.context(&read(&self.proxy_log))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sessions_stay_on_their_replicas_reuse_the_cache_and_fail_over() {
    let Some((claude, server, gguf)) = crate::claude::claude_and_llama() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let logs = [
        dir.path().join("replica-0.log"),
        dir.path().join("replica-1.log"),
    ];
    let (r0, r1) = tokio::join!(
        start_replica(&server, &gguf, &logs[0]),
        start_replica(&server, &gguf, &logs[1])
    );
    let ((_r0, url0), (mut r1, url1)) = (r0, r1);
    let urls = vec![url0, url1];
    let sessions = [session_on(&urls, 0), session_on(&urls, 1)];

    let config = json!({
        "Providers": [{"name": "team", "api_base_url": urls, "api_key": "", "models": ["smollm2"], "max_tokens": 64}],
        "Router": {"default": "team,smollm2"},
    });
    let config_path = dir.path().join("config.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let port = unbound_port();
    let proxy_log = dir.path().join("proxy.stderr");
    let mut proxy = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_ccr-setup"))
            .arg("--config")
            .arg(&config_path)
            .args(["proxy", "--port", &port.to_string()])
            .env("HOME", dir.path())
            .env("RUST_LOG", "ccr_setup=debug,ccr_proxy=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&proxy_log).unwrap())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_for_proxy(&base, Duration::from_secs(20), &mut proxy).await;
    let team = Team {
        claude,
        dir: dir.path().to_owned(),
        base,
        proxy_log: proxy_log.clone(),
    };

    // Two turns of both sessions, the sessions concurrently.
    for turn in 1..=2 {
        let (a, b) = tokio::join!(team.turn(&sessions[0], turn), team.turn(&sessions[1], turn));
        team.assert_ok(&a, &format!("session a, turn {turn}"));
        team.assert_ok(&b, &format!("session b, turn {turn}"));
    }
    let log = read(&proxy_log);
    for (i, session) in sessions.iter().enumerate() {
        let key = format!("for key {:016x}", session_key(session));
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(&key)).collect();
        assert!(
            lines.len() >= 2,
            "session {i} made {} requests:\n{log}",
            lines.len()
        );
        let home = format!("replica {i} of 2");
        assert!(
            lines.iter().all(|l| l.contains(&home)),
            "session {i} left replica {i}:\n{}",
            lines.join("\n")
        );
    }
    // Each replica served its session's second turn mostly from its prompt cache.
    for (i, path) in logs.iter().enumerate() {
        let done = tasks(&read(path));
        let best = done
            .iter()
            .skip(1)
            .min_by_key(|t| t.evaluated * 1000 / t.prompt().max(1))
            .unwrap_or_else(|| panic!("replica {i} ran {} tasks: {done:?}", done.len()));
        println!(
            "replica {i}: tasks {done:?}; best reuse: {} of {} prompt tokens evaluated",
            best.evaluated,
            best.prompt()
        );
        assert!(
            best.evaluated * 4 < best.prompt(),
            "replica {i} recomputed most of a later prompt: {done:?}"
        );
    }

    // Replica 1 goes away: session b's next turn moves to replica 0 and finishes.
    let before = tasks(&read(&logs[0])).len();
    drop(r1.0.kill());
    let _ = r1.0.wait();
    let moved = team.turn(&sessions[1], 3).await;
    team.assert_ok(&moved, "session b after its replica stopped");
    let log = read(&proxy_log);
    let key = format!("for key {:016x}", session_key(&sessions[1]));
    assert!(
        log.lines()
            .any(|l| l.contains("replica 0 answered") && l.contains(&key)),
        "no move logged:\n{log}"
    );
    assert!(tasks(&read(&logs[0])).len() > before);
}
