//! The HTTP API: one `OpenApi` impl per area, their wire types, and the routes that serve them
//! with the docs.

pub mod auth;
pub mod chat;
pub mod completions;
pub mod conversation;
pub mod error;
pub mod explain;
pub mod health;
pub mod mcp;
pub mod models;
pub mod request;
pub mod request_id;
pub mod response;
pub mod responses;
mod run;
pub mod sse;

use std::sync::Arc;

use bytes::Bytes;
use poem::{
    http::{header::CONTENT_LENGTH, StatusCode},
    Endpoint, EndpointExt, IntoResponse, Request, Response, Route,
};
use poem_openapi::{OpenApiService, Tags};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    accounts::Accounts, codex::SharedBackend, config::Config, connection::ConnectionRegistry,
    error::ProxyError, metrics::Metrics,
};

/// What every handler shares.
pub struct AppState {
    pub config: Config,
    /// The codex logins turns run on; what they share (models, how turns are taken) is asked
    /// of [`AppState::backend`].
    pub accounts: Arc<Accounts>,
    /// One permit per codex run allowed at once (`MAX_CONCURRENCY`).
    pub slots: Arc<Semaphore>,
    /// One permit per prompt being counted at once: one per core, so counting never takes
    /// every core from the rest of the server.
    pub counting: Semaphore,
    /// Open connections, to notice a client leaving mid-request.
    pub connections: Arc<ConnectionRegistry>,
    pub metrics: Arc<Metrics>,
    /// Cancelled when the server stops for good: every running request then ends with an
    /// error its client can read.
    pub stop_runs: CancellationToken,
    /// Cancelled when the server starts to stop: streams that never end on their own (MCP
    /// sessions) close then, rather than hold the shutdown for its whole grace.
    pub draining: CancellationToken,
    /// Unix seconds; reported as the models' `created`.
    pub started_at: i64,
    /// codex's login as found at start-up, for `/health`.
    pub login: crate::codex::app_server::SharedLogin,
    /// When `/health` last asked codex again for a login it did not have.
    pub login_rechecked: std::sync::Mutex<std::time::Instant>,
}

impl AppState {
    pub fn new(
        config: Config,
        accounts: Arc<Accounts>,
        connections: Arc<ConnectionRegistry>,
        metrics: Arc<Metrics>,
        stop_runs: CancellationToken,
        draining: CancellationToken,
        login: crate::codex::app_server::SharedLogin,
    ) -> Self {
        AppState {
            draining,
            login,
            login_rechecked: std::sync::Mutex::new(std::time::Instant::now()),
            stop_runs,
            slots: Arc::new(Semaphore::new(config.limits.max_concurrency)),
            counting: Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| n.get().div_ceil(2)),
            ),
            config,
            accounts,
            connections,
            metrics,
            started_at: chat::unix_now(),
        }
    }
}

impl AppState {
    /// The first account's backend: every account runs the same codex the same way, so the
    /// models it offers and how it takes a turn are asked of this one.
    pub fn backend(&self) -> &SharedBackend {
        &self.accounts.first().backend
    }
}

#[derive(Tags)]
pub enum ApiTags {
    /// OpenAI-compatible chat completions, answered by codex
    Chat,
    /// The model ids clients may ask for
    Models,
    /// Liveness and codex availability
    Health,
}

const DESCRIPTION: &str = "The local OpenAI `codex` CLI as an OpenAI-compatible API. \
Point any OpenAI client at `/v1`. When the server has `API_KEYS` set, every `/v1` request needs \
`Authorization: Bearer <key>`; `/health` and the docs stay open.";

pub fn service(
    state: Arc<AppState>,
) -> OpenApiService<
    (
        chat::ChatApi,
        completions::CompletionsApi,
        responses::ResponsesApi,
        models::ModelsApi,
        health::HealthApi,
    ),
    (),
> {
    OpenApiService::new(
        (
            chat::ChatApi {
                state: state.clone(),
            },
            completions::CompletionsApi {
                state: state.clone(),
            },
            responses::ResponsesApi::new(state.clone()),
            models::ModelsApi {
                state: state.clone(),
            },
            health::HealthApi { state },
        ),
        "codex-openai-proxy",
        env!("CARGO_PKG_VERSION"),
    )
    .description(DESCRIPTION)
}

/// The whole application: API, docs, and error normalisation.
pub fn routes(state: Arc<AppState>) -> impl Endpoint<Output = Response> {
    let keys = auth::ApiKeys(Arc::new(state.config.api_keys.clone()));
    let body = BodyLimits {
        max_bytes: state.config.limits.max_body_bytes,
        timeout: state.config.limits.body_timeout,
    };
    let metrics = state.metrics.clone();
    let cors = cors(&state.config.cors_origins);
    let mcp = mcp::McpEndpoint::new(state.clone());
    let api = service(state);
    let spec = api.spec_endpoint();
    let docs = api.swagger_ui();
    let redoc = api.redoc();
    Route::new()
        .nest("/docs", docs)
        .nest("/redoc", redoc)
        .at("/openapi.json", spec)
        .at(mcp::PATH, mcp)
        .nest("/", api)
        .data(keys.clone())
        .around(move |ep, req| {
            let (keys, metrics) = (keys.clone(), metrics.clone());
            async move {
                let id = request_id::request_id(&req);
                let span = request_id::span(&req, &id);
                let (method, path) = (req.method().clone(), req.uri().path().to_owned());
                let started = std::time::Instant::now();
                let mut response = handle(ep, req, &keys, body, &metrics)
                    .instrument(span.clone())
                    .await;
                // The access log: every request, refused ones included, once its answer's
                // head is ready (a stream goes on after it).
                span.in_scope(|| {
                    tracing::info!(
                        %method,
                        path = %path,
                        status = response.status().as_u16(),
                        ms = started.elapsed().as_millis() as u64,
                        "request"
                    )
                });
                response
                    .headers_mut()
                    .insert(request_id::HEADER, request_id::header_value(&id));
                Ok(response)
            }
        })
        // Outermost: a preflight carries no key, and is answered before the key is asked for.
        .with_if(cors.is_some(), cors.unwrap_or_default())
}

/// CORS for `origins` (`*`: any origin), `None` when there are none: then no CORS header is
/// ever sent and a preflight is a 405 as before.
fn cors(origins: &[String]) -> Option<poem::middleware::Cors> {
    if origins.is_empty() {
        return None;
    }
    let cors = poem::middleware::Cors::new()
        // Any request header: the SDKs send headers of their own (`x-stainless-*`, ...).
        .allow_methods([poem::http::Method::GET, poem::http::Method::POST])
        .expose_header(request_id::HEADER)
        .max_age(600);
    if origins.iter().any(|origin| origin == "*") {
        return Some(cors);
    }
    Some(cors.allow_origins(origins.iter().map(String::as_str)))
}

/// The routes whose requests carry a body.
const BODY_ROUTES: &[&str] = &[
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/responses",
    mcp::PATH,
];

/// How much body a request may send, and how fast.
#[derive(Debug, Clone, Copy)]
struct BodyLimits {
    max_bytes: usize,
    timeout: std::time::Duration,
}

/// One request through the API, inside its span: the key (before any of the body is read, so
/// a client without one cannot make the server hold its upload), the body limits, the
/// endpoint, error shaping.
async fn handle<E: Endpoint>(
    ep: std::sync::Arc<E>,
    req: Request,
    keys: &auth::ApiKeys,
    limits: BodyLimits,
    metrics: &crate::metrics::Metrics,
) -> Response {
    let mut req = req;
    let path = req.uri().path().to_owned();
    if path.starts_with("/v1/") {
        if let Err(err) = keys.check_request(&req) {
            return error::error_response(&err);
        }
    }
    if path == mcp::PATH {
        // Before any MCP message is read; the tools learn the key, its account and the client
        // from the request.
        match keys.check_request(&req) {
            Ok(authorized) => {
                let remote = req.remote_addr().clone();
                req.extensions_mut().insert(authorized);
                req.extensions_mut().insert(remote);
            }
            Err(err) => return mcp::refused(&err),
        }
    }
    // Only the routes that take a body have theirs read: anything else could make the server
    // hold an upload for nothing.
    let takes_body =
        req.method() == poem::http::Method::POST && BODY_ROUTES.contains(&path.as_str());
    let (req, body) = if takes_body {
        match read_body(req, limits).await {
            Ok(read) => read,
            Err(err) => return error::error_response(&err),
        }
    } else {
        (req, Bytes::new())
    };
    match ep.call(req).await {
        Ok(response) => response.into_response(),
        Err(err) if err.status() == StatusCode::BAD_REQUEST && !err.is::<error::ApiError>() => {
            match explain::explain(&path, &body) {
                Some(precise) => error::error_response(&precise),
                None => error::normalize(err, &path),
            }
        }
        Err(err) => {
            if err.is::<poem::error::NotFoundError>() {
                metrics.unknown_path();
            }
            error::normalize(err, &path)
        }
    }
}

/// Reads the body, refusing one over `MAX_BODY_BYTES` with a 413 by its declared length or, when
/// none is declared, as soon as that much has arrived, and one that takes longer than
/// `BODY_TIMEOUT_SECS` with a 408. The bytes are kept so that a body that does not parse can be
/// explained.
async fn read_body(mut req: Request, limits: BodyLimits) -> Result<(Request, Bytes), ProxyError> {
    let limit = limits.max_bytes;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(ProxyError::PayloadTooLarge { limit });
    }
    let read = tokio::time::timeout(limits.timeout, req.take_body().into_bytes_limit(limit));
    let bytes = read
        .await
        .map_err(|_| ProxyError::BodyTimeout {
            secs: limits.timeout.as_secs(),
        })?
        .map_err(|err| match err {
            poem::error::ReadBodyError::PayloadTooLarge => ProxyError::PayloadTooLarge { limit },
            other => {
                ProxyError::invalid(format!("The request body could not be read: {other}"), None)
            }
        })?;
    req.set_body(bytes.clone());
    Ok((req, bytes))
}
