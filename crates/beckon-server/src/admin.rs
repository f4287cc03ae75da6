//! The operator listener: `/metrics`, `/healthz`, `/readyz`, the admin API under `/v1` and its
//! OpenAPI document at `/openapi.json`, on axum.
//!
//! Every admin request goes to the broker loop as an input (`Input::Admin`) and its answer
//! comes back on a oneshot: the broker stays single-writer, and the token is checked there
//! against the app's current certificate. The listener is off unless configured (`--admin`,
//! `admin = "http://…"`); it speaks plain HTTP, so keep it on loopback or a private network.
//! `/metrics`, `/healthz` and `/readyz` need no token (as scrapers and probes expect); every
//! `/v1` endpoint needs `Authorization: Bearer <token>`, a SignalingToken of the app with the
//! `server` privilege.

mod openapi;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use beckon_broker::admin::{AdminErrorKind, DEFAULT_PAGE, PageRequest};
use beckon_broker::{AdminCall, AdminError, AdminRequest, AdminResponse};
use beckon_proto::ErrorCode;

use crate::cluster::ClusterHealth;
use crate::metrics::{self, StoreTimings};
use crate::reload::Reloader;
use crate::server::Input;

pub(crate) use openapi::document as openapi_document;

/// The largest request body the admin API reads: a message (8 KiB) with room for JSON.
const MAX_BODY: usize = 64 * 1024;

/// How long `/readyz` waits for the broker loop to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Every route the listener serves, as (method, path): the OpenAPI document must list exactly
/// these (a test holds them together).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("POST", "/v1/reload"),
    ("GET", "/v1/apps/{app}/accounts"),
    ("GET", "/v1/apps/{app}/accounts/{account}"),
    ("POST", "/v1/apps/{app}/accounts/{account}/kick"),
    ("POST", "/v1/apps/{app}/accounts/{account}/messages"),
    ("GET", "/v1/apps/{app}/channels"),
    ("GET", "/v1/apps/{app}/channels/{channel}"),
    ("POST", "/v1/apps/{app}/channels/{channel}/messages"),
    ("POST", "/v1/apps/{app}/tokens"),
];

/// What every handler shares.
#[derive(Clone, Debug)]
pub(crate) struct AdminState {
    pub(crate) inputs: mpsc::Sender<Input>,
    pub(crate) timings: StoreTimings,
    /// Set once the listeners accept and the broker loop runs; cleared at shutdown.
    pub(crate) ready: Arc<AtomicBool>,
    pub(crate) reloader: Reloader,
    /// Whether this node reaches its cluster's Redis, in cluster mode.
    pub(crate) cluster: Option<Arc<ClusterHealth>>,
}

/// Serves the operator listener until `shutdown` resolves.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    state: AdminState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let addr = listener.local_addr().ok();
    let app = router(state);
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        warn!(error = %e, ?addr, "the admin listener failed");
    }
}

fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(scrape))
        .route("/openapi.json", get(openapi_json))
        .route("/v1/reload", post(reload))
        .route("/v1/apps/{app}/accounts", get(accounts))
        .route("/v1/apps/{app}/accounts/{account}", get(account))
        .route("/v1/apps/{app}/accounts/{account}/kick", post(kick))
        .route("/v1/apps/{app}/accounts/{account}/messages", post(send))
        .route("/v1/apps/{app}/channels", get(channels))
        .route("/v1/apps/{app}/channels/{channel}", get(channel))
        .route(
            "/v1/apps/{app}/channels/{channel}/messages",
            post(channel_send),
        )
        .route("/v1/apps/{app}/tokens", post(mint))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

// ---- errors ---------------------------------------------------------------------------------

/// A failure as the API reports it: an HTTP status and `{"code", "name", "message"}` with the
/// SPEC §3 code.
struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::GeneralFailed,
            "the server is shutting down",
        )
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        let status = match e.kind {
            AdminErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            AdminErrorKind::Forbidden => StatusCode::FORBIDDEN,
            AdminErrorKind::NotFound => StatusCode::NOT_FOUND,
            AdminErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            AdminErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            AdminErrorKind::Conflict => StatusCode::CONFLICT,
            AdminErrorKind::Failed => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, e.code, e.message)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        let code = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ErrorCode::GeneralLargeParam
        } else {
            ErrorCode::GeneralWrongParam
        };
        Self::new(e.status(), code, e.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::GeneralWrongParam,
            e.body_text(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            axum::Json(json!({
                "code": self.code.code(),
                "name": self.code.name(),
                "message": self.message,
            })),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

type ApiResult = Result<axum::Json<Value>, ApiError>;

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::GeneralUnknown,
        "no such endpoint; GET /openapi.json lists them",
    )
}

// ---- plumbing -------------------------------------------------------------------------------

/// The token of `Authorization: Bearer <token>`, or "" (which the broker refuses with 401).
fn bearer(headers: &HeaderMap) -> String {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return String::new();
    };
    let value = value.to_str().unwrap_or_default().trim();
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim().to_owned(),
        _ => String::new(),
    }
}

/// Runs one admin request on the broker loop.
async fn ask(
    state: &AdminState,
    headers: &HeaderMap,
    app_id: String,
    request: AdminRequest,
) -> Result<AdminResponse, ApiError> {
    let call = AdminCall {
        app_id,
        token: bearer(headers),
        request,
    };
    let (reply, answer) = oneshot::channel();
    let input = Input::Admin { call, reply };
    state
        .inputs
        .send(input)
        .await
        .map_err(|_| ApiError::unavailable())?;
    Ok(answer.await.map_err(|_| ApiError::unavailable())??)
}

/// `?after=NAME&limit=N`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    after: Option<String>,
    limit: Option<usize>,
}

impl From<PageQuery> for PageRequest {
    fn from(q: PageQuery) -> Self {
        PageRequest {
            after: q.after.filter(|a| !a.is_empty()),
            limit: q.limit.unwrap_or(DEFAULT_PAGE),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageBody {
    text: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    account: String,
    #[serde(default = "default_expiry")]
    expire_in: u64,
    #[serde(default)]
    server: bool,
}

fn default_expiry() -> u64 {
    3600
}

fn unexpected(r: &AdminResponse) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::GeneralFailed,
        format!("unexpected answer from the broker: {r:?}"),
    )
}

// ---- probes and metrics ---------------------------------------------------------------------

/// The process is alive. In cluster mode the body also says whether Redis is reachable
/// (`"status": "degraded"` when not): the process itself need not restart for that, it
/// recovers when Redis returns, so the status stays 200 and `/readyz` is what turns 503.
async fn healthz(State(state): State<AdminState>) -> axum::Json<Value> {
    match &state.cluster {
        None => axum::Json(json!({ "status": "alive" })),
        Some(health) => {
            let (reachable, error) = health.status();
            axum::Json(json!({
                "status": if reachable { "alive" } else { "degraded" },
                "cluster": cluster_json(health, reachable, error),
            }))
        }
    }
}

fn cluster_json(health: &ClusterHealth, reachable: bool, error: Option<String>) -> Value {
    json!({
        "node_id": health.node_id,
        "redis": health.url,
        "redis_reachable": reachable,
        "error": error,
    })
}

async fn readyz(State(state): State<AdminState>) -> Response {
    let answered = async {
        let (tx, rx) = oneshot::channel();
        state.inputs.send(Input::Snapshot(tx)).await.ok()?;
        rx.await.ok()
    };
    let loop_answers = tokio::time::timeout(READY_TIMEOUT, answered)
        .await
        .ok()
        .flatten()
        .is_some();
    let cluster = state.cluster.as_ref().map(|h| (h, h.status()));
    let redis_ok = cluster
        .as_ref()
        .is_none_or(|(_, (reachable, _))| *reachable);
    let ready = state.ready.load(Ordering::Acquire) && loop_answers && redis_ok;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = json!({
        "ready": ready,
        "listeners": state.ready.load(Ordering::Acquire),
        "broker": loop_answers,
    });
    if let Some((health, (reachable, error))) = cluster {
        body["cluster"] = cluster_json(health, reachable, error);
    }
    (status, axum::Json(body)).into_response()
}

async fn scrape(State(state): State<AdminState>) -> Response {
    let (tx, rx) = oneshot::channel();
    if state.inputs.send(Input::Snapshot(tx)).await.is_err() {
        return ApiError::unavailable().into_response();
    }
    let Ok(snap) = rx.await else {
        return ApiError::unavailable().into_response();
    };
    let text = metrics::render(&snap, Some(&state.timings));
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
}

async fn openapi_json() -> axum::Json<Value> {
    axum::Json(openapi_document())
}

// ---- the admin API --------------------------------------------------------------------------

async fn reload(State(state): State<AdminState>, headers: HeaderMap) -> ApiResult {
    // A reload is server-wide: a server token of any app the server serves may ask for it.
    let token = bearer(&headers);
    let app_id = match beckon_token::peek(&token) {
        Ok(claims) => claims.app_id,
        Err(e) => {
            let why = if token.is_empty() {
                "a reload needs `Authorization: Bearer <token>`: a SignalingToken with the \
                 server privilege of an app this server serves"
                    .to_owned()
            } else {
                format!("not a SignalingToken: {e}")
            };
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::LoginTokenWrong,
                why,
            ));
        }
    };
    let who = match ask(&state, &headers, app_id, AdminRequest::Authorize).await? {
        AdminResponse::Authorized { account } => account,
        other => return Err(unexpected(&other)),
    };
    info!(by = %who, "reload requested through the admin API");
    let report = state.reloader.reload().await.map_err(|why| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::GeneralFailed,
            why,
        )
    })?;
    Ok(axum::Json(json!({
        "apps_removed": report.apps_removed,
        "sessions_ended": report.sessions_ended,
        "apps_updated": report.apps_updated,
    })))
}

/// The JSON of an answer (the shapes `/openapi.json` documents).
fn render(r: AdminResponse) -> Value {
    match r {
        AdminResponse::Authorized { account } => json!({ "account": account }),
        AdminResponse::Accounts(page) => json!({ "accounts": page.items, "next": page.next }),
        AdminResponse::Account(a) => {
            let attributes: serde_json::Map<String, Value> = (a.attributes.into_iter())
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            json!({
                "account": a.account,
                "uid": a.uid,
                "online": a.online,
                "connected": a.connected,
                "session_id": a.session_id.map(|s| s.to_string()),
                "privileged": a.privileged,
                "channels": a.channels,
                "unacked_events": a.unacked_events,
                "attributes": attributes,
            })
        }
        AdminResponse::Kicked => json!({ "code": ErrorCode::LogoutKicked.code() }),
        AdminResponse::Channels(page) => {
            let items: Vec<Value> = (page.items.into_iter())
                .map(|c| json!({ "channel": c.channel, "members": c.members }))
                .collect();
            json!({ "channels": items, "next": page.next })
        }
        AdminResponse::Channel(c) => json!({
            "channel": c.channel,
            "members": c.members,
            "attributes": c.attributes,
        }),
        AdminResponse::Sent(s) => json!({
            // A string: JavaScript numbers cannot hold every 64-bit id.
            "server_msg_id": s.server_msg_id.to_string(),
            "online": s.online,
            "recipients": s.recipients,
        }),
        AdminResponse::Token { token, expires_at } => {
            json!({ "token": token, "expires_at": expires_at })
        }
        // The broker loop waits for the answer itself; none reaches the listener.
        AdminResponse::Waiting { id } => json!({ "waiting": id.to_string() }),
    }
}

/// Runs `request` for `app` and renders the answer.
async fn answer(
    state: &AdminState,
    headers: &HeaderMap,
    app: String,
    request: AdminRequest,
) -> ApiResult {
    Ok(axum::Json(render(ask(state, headers, app, request).await?)))
}

async fn accounts(
    State(state): State<AdminState>,
    Path(app): Path<String>,
    headers: HeaderMap,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult {
    let Query(q) = query?;
    answer(&state, &headers, app, AdminRequest::Accounts(q.into())).await
}

async fn account(
    State(state): State<AdminState>,
    Path((app, account)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    answer(&state, &headers, app, AdminRequest::Account { account }).await
}

async fn kick(
    State(state): State<AdminState>,
    Path((app, account)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    let request = AdminRequest::Kick {
        account: account.clone(),
    };
    let mut out = answer(&state, &headers, app.clone(), request).await?;
    info!(%app, %account, "kicked through the admin API");
    out.0["kicked"] = Value::String(account);
    Ok(out)
}

async fn send(
    State(state): State<AdminState>,
    Path((app, to)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<axum::Json<MessageBody>, JsonRejection>,
) -> ApiResult {
    let text = body?.0.text;
    answer(
        &state,
        &headers,
        app,
        AdminRequest::SendMessage { to, text },
    )
    .await
}

async fn channels(
    State(state): State<AdminState>,
    Path(app): Path<String>,
    headers: HeaderMap,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult {
    let Query(q) = query?;
    answer(&state, &headers, app, AdminRequest::Channels(q.into())).await
}

async fn channel(
    State(state): State<AdminState>,
    Path((app, channel)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    answer(&state, &headers, app, AdminRequest::Channel { channel }).await
}

async fn channel_send(
    State(state): State<AdminState>,
    Path((app, channel)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<axum::Json<MessageBody>, JsonRejection>,
) -> ApiResult {
    let text = body?.0.text;
    let request = AdminRequest::SendChannelMessage { channel, text };
    answer(&state, &headers, app, request).await
}

async fn mint(
    State(state): State<AdminState>,
    Path(app): Path<String>,
    headers: HeaderMap,
    body: Result<axum::Json<TokenBody>, JsonRejection>,
) -> ApiResult {
    let axum::Json(body) = body?;
    let request = AdminRequest::MintToken {
        account: body.account,
        expire_in: body.expire_in,
        server: body.server,
    };
    answer(&state, &headers, app, request).await
}

/// The operator listener bound at `Server::bind`, not yet serving.
#[derive(Debug)]
pub(crate) struct Bound {
    pub(crate) listener: tokio::net::TcpListener,
    pub(crate) addr: SocketAddr,
}

impl Bound {
    pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot listen on the admin address http://{addr}: {e}"),
            )
        })?;
        let addr = listener.local_addr()?;
        Ok(Self { listener, addr })
    }
}
