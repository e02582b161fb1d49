//! The HTTP API: one `OpenApi` impl per area, their wire types, and the routes that serve them
//! with the docs.

pub mod chat;
pub mod error;
pub mod health;
pub mod models;
pub mod request;
pub mod response;
pub mod sse;

use std::sync::Arc;

use poem::{
    http::header::AUTHORIZATION, Endpoint, EndpointExt, IntoResponse, Request, Response, Route,
};
use poem_openapi::{OpenApiService, Tags};
use subtle::ConstantTimeEq;

use crate::{codex::exec::SharedBackend, config::Config, error::ProxyError};

/// What every handler shares.
pub struct AppState {
    pub config: Config,
    pub backend: SharedBackend,
    /// Unix seconds; reported as the models' `created`.
    pub started_at: i64,
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
) -> OpenApiService<(chat::ChatApi, models::ModelsApi, health::HealthApi), ()> {
    OpenApiService::new(
        (
            chat::ChatApi {
                state: state.clone(),
            },
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

/// The whole application: API, docs, auth and error normalisation.
pub fn routes(state: Arc<AppState>) -> impl Endpoint<Output = Response> {
    let keys = Arc::new(state.config.api_keys.clone());
    let api = service(state);
    let spec = api.spec_endpoint();
    let docs = api.swagger_ui();
    let redoc = api.redoc();
    Route::new()
        .nest("/docs", docs)
        .nest("/redoc", redoc)
        .at("/openapi.json", spec)
        .nest("/", api)
        .around(move |ep, req| {
            let keys = keys.clone();
            async move {
                if let Err(err) = check_api_key(&keys, &req) {
                    return Ok(error::error_response(&err));
                }
                ep.call(req).await.map(IntoResponse::into_response)
            }
        })
        .catch_all_error(|err| async move { error::normalize(err) })
}

/// `/v1` requires one of `API_KEYS` as a Bearer token, compared in constant time; with no keys
/// configured the API is open. `/health` and the docs never need a key.
fn check_api_key(keys: &[String], req: &Request) -> Result<(), ProxyError> {
    if keys.is_empty() || !req.uri().path().starts_with("/v1/") {
        return Ok(());
    }
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        })
        .map(str::trim)
        .unwrap_or("");
    let matched = keys.iter().fold(subtle::Choice::from(0), |found, key| {
        found | key.as_bytes().ct_eq(presented.as_bytes())
    });
    if presented.is_empty() || !bool::from(matched) {
        return Err(ProxyError::InvalidApiKey);
    }
    Ok(())
}
