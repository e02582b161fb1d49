//! The HTTP API: one `OpenApi` impl per area, their wire types, and the routes that serve them
//! with the docs.

pub mod auth;
pub mod chat;
pub mod error;
pub mod health;
pub mod models;
pub mod request;
pub mod response;
pub mod sse;

use std::sync::Arc;

use poem::{Endpoint, EndpointExt, Response, Route};
use poem_openapi::{OpenApiService, Tags};

use crate::{codex::exec::SharedBackend, config::Config};

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

/// The whole application: API, docs, and error normalisation.
pub fn routes(state: Arc<AppState>) -> impl Endpoint<Output = Response> {
    let keys = auth::ApiKeys(Arc::new(state.config.api_keys.clone()));
    let api = service(state);
    let spec = api.spec_endpoint();
    let docs = api.swagger_ui();
    let redoc = api.redoc();
    Route::new()
        .nest("/docs", docs)
        .nest("/redoc", redoc)
        .at("/openapi.json", spec)
        .nest("/", api)
        .data(keys)
        .catch_all_error(|err| async move { error::normalize(err) })
}
