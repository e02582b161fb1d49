//! [`ProxyError`] at the HTTP edge: its JSON response, and its place in the OpenAPI spec.

use poem::{http::StatusCode, IntoResponse, Response};
use poem_openapi::{
    registry::{MetaMediaType, MetaResponse, MetaResponses, Registry},
    types::Type,
    ApiResponse,
};

use super::response::ErrorEnvelope;
use crate::error::ProxyError;

/// The error half of every handler's result.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ApiError(#[from] pub ProxyError);

impl poem::error::ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        self.0.status()
    }

    fn as_response(&self) -> Response {
        error_response(&self.0)
    }
}

/// The response for an error before any body was sent.
pub fn error_response(err: &ProxyError) -> Response {
    let body = serde_json::to_string(&poem_openapi::types::ToJSON::to_json(&ErrorEnvelope::from(
        err,
    )))
    .unwrap_or_else(|_| String::from("{}"));
    let mut response = body
        .with_content_type("application/json")
        .with_status(err.status())
        .into_response();
    if let Some(secs) = err.retry_after() {
        response
            .headers_mut()
            .insert(poem::http::header::RETRY_AFTER, secs.into());
    }
    response
}

/// The methods each path answers, for the `Allow` header of a 405.
const ALLOWED_METHODS: &[(&str, &str)] = &[
    ("/v1/chat/completions", "POST"),
    ("/v1/completions", "POST"),
    ("/v1/responses", "POST"),
    ("/v1/responses/", "GET, DELETE"),
    ("/v1/models", "GET"),
    ("/v1/models/", "GET"),
    ("/health", "GET"),
    ("/metrics", "GET"),
    ("/openapi.json", "GET"),
];

/// Turns any error of the HTTP stack (bad JSON, wrong media type, unknown route) into the
/// OpenAI shape, so a client never gets a plain-text error.
pub fn normalize(err: poem::Error, path: &str) -> Response {
    if err.is::<ApiError>() {
        return err.into_response();
    }
    if err.status() == StatusCode::METHOD_NOT_ALLOWED {
        let mut response = error_response(&ProxyError::Http {
            status: StatusCode::METHOD_NOT_ALLOWED,
            message: "Method not allowed for this path; see /docs for the API.".to_owned(),
        });
        // `/v1/models/` stands for every `/v1/models/{id}`.
        let allowed = |p: &str| p == path || (p.ends_with('/') && path.starts_with(p));
        if let Some((_, allow)) = ALLOWED_METHODS.iter().find(|(p, _)| allowed(p)) {
            response.headers_mut().insert(
                poem::http::header::ALLOW,
                poem::http::HeaderValue::from_static(allow),
            );
        }
        return response;
    }
    let status = err.status();
    let message = match status {
        StatusCode::NOT_FOUND => {
            "Unknown path. This server serves POST /v1/chat/completions, POST /v1/responses, GET and DELETE /v1/responses/{id}, POST /v1/completions, GET /v1/models, GET /v1/models/{id}, GET /health, GET /metrics, MCP at /mcp and the docs at /docs.".to_owned()
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            "The request body is too large (MAX_BODY_BYTES). Send a smaller request.".to_owned()
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            "The body must be JSON: send the header `Content-Type: application/json`.".to_owned()
        }
        StatusCode::BAD_REQUEST => {
            let detail = err.to_string();
            let detail = detail.strip_prefix("parse request payload error: ").unwrap_or(&detail);
            format!("Invalid request body: {detail}. The request schema is at /docs.")
        }
        _ => err.to_string(),
    };
    error_response(&ProxyError::Http { status, message })
}

const DOCUMENTED: &[(u16, &str)] = &[
    (400, "The request is invalid (the message says what to change), or the prompt exceeds codex's context window (`context_length_exceeded`)."),
    (401, "Missing or wrong API key (`invalid_api_key`)."),
    (404, "The model is not listed by /v1/models (`model_not_found`)."),
    (413, "The body is larger than MAX_BODY_BYTES (`request_too_large`)."),
    (415, "The body is not sent as `application/json`."),
    (429, "Every codex slot stayed busy for QUEUE_TIMEOUT_SECS (`rate_limit_exceeded`, with `Retry-After`), or codex hit its provider's rate or usage limit (`rate_limit_exceeded`, `insufficient_quota`)."),
    (502, "codex failed the turn (`codex_error`, `codex_unauthenticated`)."),
    (503, "codex cannot be started (`codex_unavailable`); /health says why."),
    (504, "codex ran past CODEX_TIMEOUT_SECS or was silent for CODEX_IDLE_TIMEOUT_SECS (`timeout`)."),
];

impl ApiResponse for ApiError {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: DOCUMENTED
                .iter()
                .map(|(status, description)| MetaResponse {
                    description,
                    status: Some(*status),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: "application/json; charset=utf-8",
                        schema: ErrorEnvelope::schema_ref(),
                    }],
                    headers: vec![],
                })
                .collect(),
        }
    }

    fn register(registry: &mut Registry) {
        ErrorEnvelope::register(registry);
    }
}
