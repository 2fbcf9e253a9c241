//! `init --server` against the real llama-server: the detection reads what the real
//! server reports (`/props`: the per-slot context; `/v1/models`: the alias), not only
//! what the fakes in `tests/it/team_server.rs` were written to say.

use crate::claude::start_llama_server;
use crate::support;
use support::sandbox::{run_expect, Sandbox};

#[tokio::test(flavor = "multi_thread")]
async fn team_init_server_detects_the_real_llama_server() {
    let (Some(bin), Some(gguf)) = (
        support::require_tool("CCR_E2E_LLAMA_SERVER"),
        support::require_tool("CCR_E2E_GGUF"),
    ) else {
        return;
    };
    let sb = Sandbox::new();
    let (_server, port) = start_llama_server(&bin, &gguf, sb.root.path()).await;
    let config = sb.config_path();
    let ports = port.to_string();
    let mut cmd = sb.cmd(&[
        "--config",
        config.to_str().unwrap(),
        "init",
        "--server",
        "--yes",
        "--service-manager",
        "none",
        "--tls",
        "internal",
        "--domain",
        "gpu-box",
    ]);
    cmd.env("CCR_SETUP_ENGINE_PORTS", &ports);
    let (stdout, _) = tokio::task::spawn_blocking(move || run_expect(cmd, 0))
        .await
        .unwrap();
    // start_llama_server gives `-c 8192` and no `-np`: this llama-server then runs 4
    // slots on a unified KV cache, each reporting the whole 8192 as its n_ctx.
    let props = support::get_json(&format!("http://127.0.0.1:{port}/props")).await;
    let slots = props["total_slots"].as_u64().unwrap();
    assert!(
        stdout.contains(&format!(
            "Found llama-server at http://127.0.0.1:{port} serving smollm2, 8192-token context per request, {slots} slot"
        )),
        "{stdout}"
    );
    let doc = sb.config_doc();
    assert_eq!(doc["Router"]["default"], "llama-server,smollm2");
    assert_eq!(doc["Providers"][0]["context_window"], 8192);
    assert_eq!(doc["Providers"][0]["local"], true);
}
