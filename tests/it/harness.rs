//! The harness's own promise: a test that starts `ccr-setup proxy` talks to that proxy,
//! never to another program that holds the port.

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;

use crate::support;
use support::claude_code::{wait_for_proxy, Child};
use support::sandbox::Sandbox;
use support::tiny_http::TinyHttp;

/// Another program answers 200 JSON on the port. Our proxy cannot bind it and exits;
/// the wait says so instead of returning as if the stranger were ours. (CI once had a
/// stranger's "404 page not found" where the dashboard should have been.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "ccr-setup proxy exited early")]
async fn the_wait_for_our_proxy_refuses_a_stranger_on_its_port() {
    let stranger = TinyHttp::start(0, 200, "application/json", r#"{"status":"ok"}"#);
    let sb = Sandbox::new();
    sb.write_config(&json!({
        "PORT": stranger.addr.port(),
        "Providers": [{"name": "local", "api_base_url": "http://127.0.0.1:9/v1/chat/completions",
                       "models": ["m"]}],
        "Router": {"default": "local,m"},
    }));
    let mut proxy = Child(
        sb.cmd(&["proxy"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://{}", stranger.addr);
    wait_for_proxy(&base, Duration::from_secs(20), &mut proxy).await;
}
