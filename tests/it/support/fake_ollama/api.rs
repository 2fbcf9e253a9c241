//! The fake's native `/api/*` endpoints and the registry manifest.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tokio::sync::mpsc::{error::SendError, Sender};

use super::{find, model_field, not_found_text, same, Ctx, FakeModel, OFFLINE_PULL_ERROR};

fn not_found(model: &str) -> Response {
    let body = Json(json!({"error": not_found_text(model)}));
    (StatusCode::NOT_FOUND, body).into_response()
}

pub async fn version(State(ctx): State<Ctx>) -> Response {
    if let Some(r) = ctx.enter("/api/version", None) {
        return r;
    }
    Json(json!({ "version": ctx.config().version })).into_response()
}

fn details(m: &FakeModel) -> Value {
    json!({"parent_model": "", "format": "gguf", "family": m.architecture,
           "families": [m.architecture], "parameter_size": "20.9B", "quantization_level": "MXFP4"})
}

pub async fn tags(State(ctx): State<Ctx>) -> Response {
    if let Some(r) = ctx.enter("/api/tags", None) {
        return r;
    }
    let installed = ctx.config().installed;
    let models: Vec<Value> = installed
        .iter()
        .enumerate()
        .map(|(i, m)| {
            json!({
                "name": m.name, "model": m.name, "size": m.size(),
                "digest": format!("{:064x}", i + 1),
                "modified_at": "2026-01-01T00:00:00Z", "details": details(m),
            })
        })
        .collect();
    Json(json!({ "models": models })).into_response()
}

pub async fn show(State(ctx): State<Ctx>, Json(body): Json<Value>) -> Response {
    if let Some(r) = ctx.enter("/api/show", Some(&body)) {
        return r;
    }
    let name = model_field(&body);
    let Some(m) = find(&ctx.config().installed, &name).cloned() else {
        return not_found(&name);
    };
    let arch = &m.architecture;
    let mut info = serde_json::Map::new();
    info.insert("general.architecture".into(), json!(arch));
    // A decoy: code that matches any key containing "context_length" reads 4096.
    info.insert(
        format!("{arch}.rope.scaling.original_context_length"),
        json!(4096),
    );
    info.insert(format!("{arch}.context_length"), json!(m.trained_context));
    // gpt-oss:20b's attention geometry (the keys of convert/convert_gptoss.go, the
    // values of the published GGUF), from which `init` sizes the KV cache.
    for (key, value) in [
        ("embedding_length", 2880),
        ("block_count", 24),
        ("feed_forward_length", 2880),
        ("expert_count", 32),
        ("expert_used_count", 4),
        ("attention.head_count", 64),
        ("attention.head_count_kv", 8),
        ("attention.key_length", 64),
        ("attention.value_length", 64),
        ("attention.sliding_window", 128),
    ] {
        info.insert(format!("{arch}.{key}"), json!(value));
    }
    info.insert("general.parameter_count".into(), json!(20_914_757_184u64));
    Json(json!({
        "license": "Apache 2.0", "modelfile": "# fake", "template": "{{ .Prompt }}",
        "details": details(&m),
        "model_info": Value::Object(info),
        "capabilities": m.capabilities,
        "modified_at": "2026-01-01T00:00:00Z",
    }))
    .into_response()
}

/// Waits on the scheduler lock, as Ollama's does: it blocks while a model loads.
pub async fn ps(State(ctx): State<Ctx>) -> Response {
    if let Some(r) = ctx.enter("/api/ps", None) {
        return r;
    }
    let _sched = ctx.sched.lock().await;
    let s = ctx.state.lock().unwrap();
    let models: Vec<Value> = s
        .loaded
        .iter()
        .map(|(name, context)| {
            let m = find(&s.config.installed, name).cloned();
            let m = m.unwrap_or_else(|| FakeModel::named(name));
            json!({
                "name": name, "model": name, "size": m.size(), "digest": "0".repeat(64),
                "details": details(&m), "expires_at": "2099-01-01T00:00:00Z",
                "size_vram": m.size(), "context_length": context,
            })
        })
        .collect();
    Json(json!({ "models": models })).into_response()
}

/// `POST /api/chat`: with no messages it only loads the model (`done_reason: "load"`).
pub async fn chat(State(ctx): State<Ctx>, Json(body): Json<Value>) -> Response {
    if let Some(r) = ctx.enter("/api/chat", Some(&body)) {
        return r;
    }
    let name = model_field(&body);
    if let Some(failed) = super::load_failure(&ctx) {
        return failed;
    }
    if ctx.load(&name).await.is_none() {
        return not_found(&name);
    }
    let chat = ctx.config().chat;
    tokio::time::sleep(chat.first_token_delay).await;
    let empty = body
        .get("messages")
        .and_then(Value::as_array)
        .is_none_or(|m| m.is_empty());
    let (content, reason) = if empty {
        (String::new(), "load")
    } else {
        (chat.answer, "stop")
    };
    Json(json!({
        "model": name, "created_at": "2026-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": content},
        "done_reason": reason, "done": true,
        "total_duration": 1_000_000, "load_duration": 1000, "prompt_eval_count": 10,
        "prompt_eval_duration": 1000, "eval_count": 6, "eval_duration": 1_000_000
    }))
    .into_response()
}

fn ndjson(v: Value) -> Result<bytes::Bytes, Infallible> {
    let mut s = v.to_string();
    s.push('\n');
    Ok(bytes::Bytes::from(s))
}

/// `POST /api/pull`: NDJSON. Only a request without a model fails before the first line
/// (an HTTP 400); every later failure is an `{"error"}` line in an HTTP 200 answer.
pub async fn pull(State(ctx): State<Ctx>, Json(body): Json<Value>) -> Response {
    if let Some(r) = ctx.enter("/api/pull", Some(&body)) {
        return r;
    }
    let name = model_field(&body);
    if name.is_empty() {
        let body = Json(json!({"error": "model is required"}));
        return (StatusCode::BAD_REQUEST, body).into_response();
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Value>(16);
    tokio::spawn(async move {
        // Every send fails once the client hangs up; then the "download" stops, as
        // Ollama's does, and the bytes so far are kept for the next pull.
        if run_pull(&ctx, &name, tx).await.is_err() {
            ctx.state.lock().unwrap().pulls_dropped += 1;
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|v| (ndjson(v), rx))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from_stream(stream))
        .unwrap()
}

type Sent = Result<(), SendError<Value>>;

/// One progress line; `completed` is left out when it is 0, as Ollama's `omitempty` does.
fn progress(digest: &str, total: u64, completed: u64) -> Value {
    let mut line =
        json!({"status": format!("pulling {}", &digest[7..19]), "digest": digest, "total": total});
    if completed > 0 {
        line["completed"] = json!(completed);
    }
    line
}

/// Why a pull fails right after `pulling manifest`, if it does.
fn manifest_error(ctx: &Ctx, model: Option<&FakeModel>) -> Option<String> {
    let mut s = ctx.state.lock().unwrap();
    let pb = s.config.pull.clone();
    if pb.offline {
        return Some(OFFLINE_PULL_ERROR.into());
    }
    if s.pulls_dropped > s.cancels_done && s.cancels_done < pb.canceled_after_drop {
        s.cancels_done += 1;
        return Some("context canceled".into());
    }
    model.is_none().then_some(pb.unknown_model_error)
}

async fn run_pull(ctx: &Ctx, name: &str, tx: Sender<Value>) -> Sent {
    let (model, pb) = {
        let s = ctx.state.lock().unwrap();
        let model = find(&s.config.library, name).or_else(|| find(&s.config.installed, name));
        (model.cloned(), s.config.pull.clone())
    };
    tx.send(json!({"status": "pulling manifest"})).await?;
    tokio::time::sleep(pb.tick).await;
    if let Some(error) = manifest_error(ctx, model.as_ref()) {
        return tx.send(json!({ "error": error })).await;
    }
    let model = model.expect("checked by manifest_error");
    let stall_now = {
        let s = ctx.state.lock().unwrap();
        pb.stall_after.is_some() && s.stalls_done < pb.stall_times
    };
    let mut sent_total: u64 = 0; // bytes across layers, for error/stall thresholds
    for (i, &total) in model.layers.iter().enumerate() {
        let digest = model.digest(i);
        if !pull_layer(ctx, &tx, &digest, total, sent_total, stall_now).await? {
            return Ok(());
        }
        sent_total += total;
    }
    tx.send(json!({"status": "verifying sha256 digest"}))
        .await?;
    tokio::time::sleep(pb.tick).await;
    tx.send(json!({"status": "writing manifest"})).await?;
    if pb.removes_unused_layers {
        tx.send(json!({"status": "removing unused layers"})).await?;
    }
    {
        let mut s = ctx.state.lock().unwrap();
        if !s
            .config
            .installed
            .iter()
            .any(|m| same(&m.name, &model.name))
        {
            s.config.installed.push(model.clone());
        }
    }
    tx.send(json!({"status": "success"})).await
}

/// Download one layer (resuming from what earlier pulls got). `Ok(false)`: the pull
/// ended here with an error line.
async fn pull_layer(
    ctx: &Ctx,
    tx: &Sender<Value>,
    digest: &str,
    total: u64,
    before: u64,
    stall_now: bool,
) -> Result<bool, SendError<Value>> {
    let pb = ctx.config().pull;
    loop {
        let done = *ctx
            .state
            .lock()
            .unwrap()
            .downloaded
            .get(digest)
            .unwrap_or(&0);
        let overall = before + done;
        if pb.error_after.is_some_and(|limit| overall >= limit) {
            tx.send(json!({"error": pb.error_message})).await?;
            return Ok(false);
        }
        if stall_now && pb.stall_after.is_some_and(|limit| overall >= limit) {
            ctx.state.lock().unwrap().stalls_done += 1;
            // Never advance again on this request; keep the connection alive.
            tx.send(progress(digest, total, done)).await?;
            if pb.stall_silent {
                tx.closed().await;
                return Err(SendError(Value::Null));
            }
            loop {
                tokio::time::sleep(pb.tick).await;
                tx.send(progress(digest, total, done)).await?;
            }
        }
        tx.send(progress(digest, total, done)).await?;
        if done >= total {
            return Ok(true);
        }
        tokio::time::sleep(pb.tick).await;
        let mut step = pb.chunk.min(total - done);
        if let Some(limit) = pb.stall_after.filter(|_| stall_now) {
            step = step.min(limit.saturating_sub(overall)).max(1);
        }
        if let Some(limit) = pb.error_after {
            step = step.min(limit.saturating_sub(overall).max(1));
        }
        let mut s = ctx.state.lock().unwrap();
        s.downloaded.insert(digest.to_owned(), done + step);
    }
}

/// `GET /v2/<ns>/<name>/manifests/<tag>`: the registry's manifest with layer sizes.
pub async fn manifest(
    State(ctx): State<Ctx>,
    Path((ns, name, tag)): Path<(String, String, String)>,
) -> Response {
    let _ = ctx.enter("/v2/manifests", None);
    let full = if ns == "library" {
        format!("{name}:{tag}")
    } else {
        format!("{ns}/{name}:{tag}")
    };
    let config = ctx.config();
    let Some(m) = find(&config.library, &full).or_else(|| find(&config.installed, &full)) else {
        let body = json!({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]});
        return (StatusCode::NOT_FOUND, Json(body)).into_response();
    };
    let layers: Vec<Value> = m
        .layers
        .iter()
        .enumerate()
        .map(|(i, size)| json!({"mediaType": "application/vnd.ollama.image.model", "digest": m.digest(i), "size": size}))
        .collect();
    Json(json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": "sha256:".to_owned() + &"c".repeat(64), "size": 489},
        "layers": layers
    }))
    .into_response()
}
