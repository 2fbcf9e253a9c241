//! The fast integration tests, one binary: everything that runs here in seconds (the
//! `ccr-setup` binary in a sandboxed HOME, the proxy in-process, fakes of Ollama and of
//! OpenAI-style upstreams). `cargo test --test it`; one module with
//! `cargo test --test it up_flow::`. The slow tests against real Claude Code and
//! llama-server are the `e2e` binary (`tests/e2e/`), which reuses `support` from here.

mod support;

mod cli;
mod clients;
mod clients_cli;
mod cloud_key;
mod code_exec;
mod context_editing;
mod docs;
mod doctor_cli;
mod errors;
mod harness;
mod hostile;
mod hostile_fuzz;
mod init_wizard;
mod init_yes;
mod install_sh;
mod ledger_failures;
mod ledger_proxy;
mod ledger_writer;
mod ollama_facts;
mod ollama_proxy;
mod output_modes;
mod prefix_sharing;
mod proxy_capabilities;
mod proxy_fallback;
mod proxy_golden;
mod proxy_replicas;
mod proxy_routing;
mod proxy_server;
mod proxy_tokens;
mod release_workflows;
mod service_render;
mod service_status;
mod session_prefix;
mod stats_cli;
mod team_join;
mod team_server;
mod tokens_exactness;
mod tool_repair;
mod uninstall_services;
mod up_flow;
mod up_ollama_client;
mod up_pty;
mod vllm_proxy;
mod workspace;
