//! The dashboard's endpoints. Every failure is answered in Anthropic's error shape, like
//! the rest of the proxy.
//!
//! | endpoint | answer |
//! | --- | --- |
//! | `GET /ui`, `/ui/` | the page (one HTML file; the tabs are `#overview`, `#live`, `#setup`) |
//! | `GET /ui/app.css`, `/ui/app.js`, `/ui/icon.svg` | its assets |
//! | `GET /ui/api/overview` | [`super::Overview`] |
//! | `GET /ui/api/recent` | the newest ledger rows, newest first ([`super::LiveRow`]) |
//! | `GET /ui/api/setup` | [`super::Setup`] |
//! | `POST /ui/api/setup` | [`super::Setup`] of a new run (rate-limited) |
//! | `GET /ui/events` | server-sent events: `ready`, then `request` per finished request |
//! | `POST /ui/ticket` | with the `APIKEY`: a one-use login path for `ccr-setup ui` |
//! | `GET /ui/login?ticket=…` | trades a ticket for the session cookie, then to `/ui/` |
//! | `POST /ui/login` (form `ticket=…`) | the same, from the local page `ccr-setup ui` opens |
//!
//! With an `APIKEY` configured, everything but the last two needs the session cookie.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Json;
use bytes::Bytes;

use super::live::{next_event, sse_event, LiveRow, KEEP_ALIVE, RECENT_ROWS};
use super::{assets, auth, overview, UiState, MAX_EVENT_STREAMS};
use crate::doctor::DoctorEnv;
use crate::ledger;
use crate::proxy::auth_throttle;
use crate::proxy::error::{ErrorKind, ProxyError};

/// The dashboard's routes, ready to merge into the proxy's app.
pub fn router(state: Arc<UiState>) -> axum::Router {
    let guarded = axum::Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(assets::index))
        .route("/ui/app.css", get(assets::css))
        .route("/ui/app.js", get(assets::js))
        .route("/ui/icon.svg", get(assets::icon))
        .route("/ui/api/overview", get(overview_json))
        .route("/ui/api/recent", get(recent_json))
        .route("/ui/api/setup", get(setup_json).post(setup_rerun))
        .route("/ui/events", get(events))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_session,
        ));
    axum::Router::new()
        .route("/ui/ticket", post(ticket))
        .route("/ui/login", get(login).post(login_form))
        .merge(guarded)
        .layer(middleware::map_response(assets::security_headers))
        .with_state(state)
}

/// The configured `APIKEY`, when there is a non-empty one.
fn api_key(ui: &UiState) -> Option<String> {
    ui.config
        .current()
        .api_key
        .clone()
        .filter(|k| !k.is_empty())
}

/// Without an `APIKEY` but with client keys (team mode), the dashboard stays shut:
/// it is the admin's, and the proxy is reachable by the team.
fn shut_for_clients(ui: &UiState) -> Option<Response> {
    let config = ui.config.current();
    (config.api_key.as_deref().is_none_or(str::is_empty) && !config.clients.is_empty()).then(|| {
        ProxyError::new(
            StatusCode::FORBIDDEN,
            ErrorKind::Permission,
            "the dashboard needs the admin APIKEY, and this proxy has client keys only; set \"APIKEY\" in the config to a long random secret, then run `ccr-setup ui`",
        )
        .into_response()
    })
}

/// A client key on a dashboard route: 403, it needs the admin `APIKEY`.
fn client_key_refused(ui: &UiState, headers: &HeaderMap) -> Option<Response> {
    let config = ui.config.current();
    matches!(
        crate::proxy::auth::identify(&config, headers),
        Ok(crate::proxy::auth::Caller::Client(_))
    )
    .then(|| {
        let only = crate::proxy::auth::ADMIN_ONLY;
        ProxyError::new(StatusCode::FORBIDDEN, ErrorKind::Permission, only).into_response()
    })
}

fn unauthorized(message: &str) -> Response {
    ProxyError::new(StatusCode::UNAUTHORIZED, ErrorKind::Authentication, message).into_response()
}

fn internal(message: String) -> Response {
    ProxyError::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorKind::Api, message).into_response()
}

/// With an `APIKEY`, only browsers holding a session get through.
async fn require_session(
    State(ui): State<Arc<UiState>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    if let Some(shut) = shut_for_clients(&ui) {
        return shut;
    }
    let Some(key) = api_key(&ui) else {
        return next.run(request).await;
    };
    let session = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| auth::cookie_value(h, auth::COOKIE));
    if session.is_some_and(|s| ui.sessions.is_valid(s, &key)) {
        return next.run(request).await;
    }
    if let Some(refused) = client_key_refused(&ui, &headers) {
        return refused;
    }
    unauthorized(
        "this proxy has an APIKEY, so the dashboard needs a login: run `ccr-setup ui`, \
         which opens it with a one-time link",
    )
}

/// `POST /ui/ticket`: a one-use login path, for a client that holds the `APIKEY`
/// (wrong keys are throttled per client, as on the API routes).
async fn ticket(State(ui): State<Arc<UiState>>, request: Request) -> Response {
    if let Some(shut) = shut_for_clients(&ui) {
        return shut;
    }
    let Some(key) = api_key(&ui) else {
        return Json(serde_json::json!({ "path": "/ui/" })).into_response();
    };
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0);
    let headers = request.headers();
    let client = auth_throttle::client_key(peer, headers);
    let now = std::time::Instant::now();
    if let Some(wait) = ui.ticket_throttle.blocked(&client, now) {
        let mut resp = ProxyError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::RateLimit,
            "too many requests with a wrong API key from this client; wait, then run `ccr-setup ui` again",
        )
        .into_response();
        if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return resp;
    }
    if let Err(e) = crate::proxy::auth::check_key_only(Some(&key), headers) {
        if let Some(refused) = client_key_refused(&ui, headers) {
            return refused;
        }
        ui.ticket_throttle.failed(&client, now);
        return unauthorized(&e.to_string());
    }
    match ui.sessions.issue_ticket(&key) {
        Ok(t) => Json(serde_json::json!({
            "path": format!("/ui/login?ticket={t}"),
            "expires_in_s": auth::TICKET_TTL.as_secs(),
        }))
        .into_response(),
        Err(e) => internal(e.to_string()),
    }
}

/// `GET /ui/login?ticket=…`: the ticket becomes a session cookie.
async fn login(
    State(ui): State<Arc<UiState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    redeem(&ui, query.get("ticket").map(String::as_str), false)
}

/// Largest login form accepted (one ticket).
const LOGIN_FORM_MAX: usize = 4096;

/// `POST /ui/login` with the form `ticket=…`: what the local page `ccr-setup ui` writes
/// (0600, in the config folder) submits, so the ticket is in no argv or URL another
/// user could read. The page is a `file://` one, so it posts with `Origin: null` and a
/// form type: the proxy's request checks let this one route through with the Host
/// check only, and a ticket cannot be guessed.
async fn login_form(State(ui): State<Arc<UiState>>, body: Body) -> Response {
    let Ok(bytes) = axum::body::to_bytes(body, LOGIN_FORM_MAX).await else {
        return ProxyError::invalid_request("the login form is too large").into_response();
    };
    let ticket = url::form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == "ticket")
        .map(|(_, v)| v.into_owned());
    redeem(&ui, ticket.as_deref(), true)
}

/// Trade `ticket` for a session cookie, then go to the dashboard: by a redirect, or
/// (`from_page`, a cross-site form post) by a page of our own, so the navigation to
/// `/ui/` is same-site and the `SameSite=Strict` cookie goes with it.
fn redeem(ui: &UiState, ticket: Option<&str>, from_page: bool) -> Response {
    if let Some(shut) = shut_for_clients(ui) {
        return shut;
    }
    let Some(key) = api_key(ui) else {
        return Redirect::to("/ui/").into_response();
    };
    let Some(ticket) = ticket else {
        return ProxyError::invalid_request("ticket: missing; run `ccr-setup ui` again")
            .into_response();
    };
    match ui.sessions.redeem(ticket, &key) {
        Ok(Some(session)) => {
            let mut response = if from_page {
                (
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    "<!doctype html><meta http-equiv=\"refresh\" content=\"0;url=/ui/\"><a href=\"/ui/\">Open the dashboard</a>\n",
                )
                    .into_response()
            } else {
                Redirect::to("/ui/").into_response()
            };
            if let Ok(cookie) = HeaderValue::from_str(&auth::session_cookie(&session)) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        }
        Ok(None) => unauthorized(
            "this login link was already used, is older than 2 minutes, or was not issued \
             by this proxy; run `ccr-setup ui` again for a new one",
        ),
        Err(e) => internal(e.to_string()),
    }
}

/// `GET /ui/api/overview`.
async fn overview_json(State(ui): State<Arc<UiState>>) -> Response {
    let Ok(_permit) = ui.overview_gate.acquire().await else {
        return internal("the dashboard is shutting down".into());
    };
    let config = ui.config.current();
    let path = ui.paths.ledger.clone();
    let health = ui.ledger.health();
    let now_ms = chrono::Utc::now().timestamp_millis();
    let computed =
        tokio::task::spawn_blocking(move || overview::compute(&path, &config, health, now_ms))
            .await;
    match computed {
        Ok(Ok(o)) => Json(o).into_response(),
        Ok(Err(e)) => internal(format!("cannot compute the overview: {e}")),
        Err(e) => internal(format!("the overview computation failed: {e}")),
    }
}

/// `GET /ui/api/recent`: the newest rows, newest first.
async fn recent_json(State(ui): State<Arc<UiState>>) -> Response {
    let config = ui.config.current();
    let path = ui.paths.ledger.clone();
    let read = tokio::task::spawn_blocking(move || -> Result<Vec<LiveRow>, String> {
        if !path.exists() {
            return Ok(Vec::new());
        }
        let conn = ledger::open_for_reading(&path).map_err(|e| e.to_string())?;
        let rows = ledger::read_recent(&conn, RECENT_ROWS)
            .map_err(|e| format!("ledger {}: {e}", path.display()))?;
        let locality = ledger::provider_locality(Some(&config), None);
        Ok(rows
            .into_iter()
            .map(|r| LiveRow::from_ledger(r, &locality))
            .collect())
    })
    .await;
    match read {
        Ok(Ok(rows)) => Json(rows).into_response(),
        Ok(Err(e)) => internal(format!("cannot read the ledger: {e}")),
        Err(e) => internal(format!("reading the ledger failed: {e}")),
    }
}

/// `GET /ui/api/setup`: the last run when it is recent, else a new one.
async fn setup_json(State(ui): State<Arc<UiState>>) -> Response {
    setup_answer(&ui, false).await
}

/// `POST /ui/api/setup`: run the checks again (at most once per
/// [`super::setup::MIN_GAP`]). A POST, so it passes the Origin and Content-Type checks:
/// the run calls each provider with its key, and a plain GET (an `<img>` on any page)
/// must not be able to start that.
async fn setup_rerun(State(ui): State<Arc<UiState>>) -> Response {
    setup_answer(&ui, true).await
}

async fn setup_answer(ui: &UiState, fresh: bool) -> Response {
    let env = DoctorEnv::current(ui.paths.config.clone());
    match ui.setup.get(env, fresh).await {
        Ok(setup) => Json(&*setup).into_response(),
        Err(e) => internal(format!("the doctor run failed: {e}")),
    }
}

/// Counts an open event stream; the count drops with it.
struct StreamSlot(Arc<UiState>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `GET /ui/events`: `ready` once subscribed, then one `request` event per finished
/// request (`lagged` when this browser fell behind), comments as keep-alives.
async fn events(State(ui): State<Arc<UiState>>) -> Response {
    if ui.streams.fetch_add(1, Ordering::Relaxed) >= MAX_EVENT_STREAMS {
        ui.streams.fetch_sub(1, Ordering::Relaxed);
        return ProxyError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::RateLimit,
            format!(
                "{MAX_EVENT_STREAMS} dashboard live views are open already; close some \
                 dashboard tabs"
            ),
        )
        .into_response();
    }
    let slot = StreamSlot(ui.clone());
    let receiver = ui.ledger.live().subscribe();
    let ready = sse_event("ready", &serde_json::json!({}));
    let first =
        futures_util::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(ready)) });
    let rest = futures_util::stream::unfold((receiver, slot), |(mut receiver, slot)| async move {
        let ui = slot.0.clone();
        let chunk = tokio::select! {
            biased;
            _ = ui.shutdown.cancelled() => return None,
            received = receiver.recv() => {
                let config = ui.config.current();
                let locality = ledger::provider_locality(Some(&config), None);
                next_event(received, &locality)?
            }
            _ = tokio::time::sleep(KEEP_ALIVE) => ": keep-alive\n\n".to_owned(),
        };
        Some((Ok(Bytes::from(chunk)), (receiver, slot)))
    });
    use futures_util::StreamExt as _;
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-store")
        .header("x-accel-buffering", "no")
        .body(Body::from_stream(first.chain(rest)))
        .expect("static headers are valid")
}
