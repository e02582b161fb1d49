//! The one error type of the request path, and the one place it is mapped to an HTTP status and
//! an OpenAI error `type`/`code`. Before the response starts it becomes a JSON error body; once SSE
//! headers are out the same envelope is sent in band.

use poem::http::StatusCode;

/// Why codex failed a turn, read from its message (`../shared/codex-cli.md` 3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// HTTP 429 from the model provider, or a ChatGPT plan's usage limit.
    RateLimited,
    /// `insufficient_quota` from the provider.
    QuotaExceeded,
    /// The prompt does not fit the model's context window.
    ContextLength,
    /// codex could not authenticate with its provider (not logged in, bad key).
    Unauthenticated,
    /// Anything else codex reported, or codex ending without a result.
    Upstream,
}

impl FailureKind {
    /// Classifies codex's own message text.
    pub fn classify(message: &str) -> Self {
        let lower = message.to_lowercase();
        if lower.contains("context window") || lower.contains("context_length_exceeded") {
            FailureKind::ContextLength
        } else if lower.contains("quota exceeded") || lower.contains("insufficient_quota") {
            FailureKind::QuotaExceeded
        } else if lower.contains("status: 429")
            || lower.contains("429 too many requests")
            || lower.contains("usage limit")
            || lower.contains("rate limit")
            || lower.contains("too many requests")
        {
            FailureKind::RateLimited
        } else if lower.contains("401 unauthorized") || lower.contains("not logged in") {
            FailureKind::Unauthenticated
        } else {
            FailureKind::Upstream
        }
    }
}

/// What `Retry-After` says when every codex slot is busy: long enough for a short answer to
/// finish, short enough that the SDKs' automatic retries stay useful.
pub const RETRY_AFTER_SECS: u64 = 5;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// The request cannot be served as sent; the message says what to change.
    #[error("{message}")]
    InvalidRequest {
        message: String,
        param: Option<String>,
    },
    #[error("Incorrect API key provided. Send `Authorization: Bearer <key>` with one of the keys in API_KEYS.")]
    InvalidApiKey,
    #[error("The model `{0}` does not exist. GET /v1/models lists the models this server offers.")]
    ModelNotFound(String),
    /// codex cannot be started at all (missing binary, not executable).
    #[error("{0}")]
    CodexUnavailable(String),
    /// codex ran and failed the turn, or ended without finishing it. `reset_in`: seconds until
    /// a spent plan can be used again, when codex reported its limits.
    #[error("{message}")]
    CodexFailed {
        kind: FailureKind,
        message: String,
        reset_in: Option<u64>,
    },
    /// Every codex slot stayed busy for the whole queue timeout.
    #[error("All {slots} codex slots stayed busy for {waited_secs} s (MAX_CONCURRENCY, QUEUE_TIMEOUT_SECS). Retry in a few seconds.")]
    Overloaded { slots: usize, waited_secs: u64 },
    /// codex ran past a deadline and was stopped.
    #[error("{0}")]
    Timeout(String),
    /// The prompt is larger than `MAX_PROMPT_TOKENS`; refused before codex starts.
    #[error("The conversation is more than {limit} tokens (counting stopped at {tokens}), this server's limit (MAX_PROMPT_TOKENS). Shorten it or start a new conversation.")]
    PromptTooLong { tokens: u64, limit: u64 },
    #[error("The request body is larger than this server's limit of {limit} bytes (MAX_BODY_BYTES). Send a smaller request.")]
    PayloadTooLarge { limit: usize },
    /// The body did not arrive within `BODY_TIMEOUT_SECS`.
    #[error("The request body did not arrive within {secs} s (BODY_TIMEOUT_SECS).")]
    BodyTimeout { secs: u64 },
    /// The server is stopping and ended the request before codex finished.
    #[error("The server is shutting down and stopped this request before codex finished. Retry in a moment.")]
    ShuttingDown,
    /// The client closed its connection before the answer was ready.
    #[error("The client closed the connection before the answer was ready.")]
    ClientGone,
    /// An error with a status chosen by the HTTP layer (unknown route, unsupported media type).
    #[error("{message}")]
    Http { status: StatusCode, message: String },
}

impl ProxyError {
    pub fn invalid(message: impl Into<String>, param: impl Into<Option<&'static str>>) -> Self {
        ProxyError::InvalidRequest {
            message: message.into(),
            param: param.into().map(str::to_owned),
        }
    }

    pub fn codex_failed(message: impl Into<String>) -> Self {
        let message = message.into();
        ProxyError::CodexFailed {
            kind: FailureKind::classify(&message),
            message,
            reset_in: None,
        }
    }

    /// A rate-limit failure learns when the plan resets, from the limits codex last reported,
    /// unless its own message already says.
    pub fn with_plan_reset(self, reset_in: Option<u64>) -> Self {
        match self {
            ProxyError::CodexFailed {
                kind: FailureKind::RateLimited,
                message,
                reset_in: None,
            } => ProxyError::CodexFailed {
                kind: FailureKind::RateLimited,
                message,
                reset_in,
            },
            other => other,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
            ProxyError::InvalidApiKey => StatusCode::UNAUTHORIZED,
            ProxyError::ModelNotFound(_) => StatusCode::NOT_FOUND,
            ProxyError::CodexUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::CodexFailed { kind, .. } => match kind {
                FailureKind::RateLimited | FailureKind::QuotaExceeded => {
                    StatusCode::TOO_MANY_REQUESTS
                }
                FailureKind::ContextLength => StatusCode::BAD_REQUEST,
                FailureKind::Unauthenticated | FailureKind::Upstream => StatusCode::BAD_GATEWAY,
            },
            ProxyError::Overloaded { .. } => StatusCode::TOO_MANY_REQUESTS,
            ProxyError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::PromptTooLong { .. } => StatusCode::BAD_REQUEST,
            ProxyError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ProxyError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            // nginx's "client closed request": nobody reads it, but logs say what happened.
            ProxyError::ClientGone => StatusCode::from_u16(499).expect("499 is a valid status"),
            ProxyError::Http { status, .. } => *status,
        }
    }

    /// Seconds a client should wait before retrying, sent as `Retry-After`: a few for busy
    /// slots, and for a plan's usage limit until the reset codex's message names, or else the
    /// one its reported limits say.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ProxyError::Overloaded { .. } => Some(RETRY_AFTER_SECS),
            ProxyError::CodexFailed {
                kind: FailureKind::RateLimited,
                message,
                reset_in,
            } => crate::reset_time::seconds_until_reset(message, std::time::SystemTime::now())
                .or(*reset_in),
            _ => None,
        }
    }

    /// OpenAI's `error.type`.
    pub fn error_type(&self) -> &'static str {
        match self.status() {
            StatusCode::UNAUTHORIZED => "authentication_error",
            StatusCode::NOT_FOUND => "invalid_request_error",
            StatusCode::TOO_MANY_REQUESTS => match self {
                ProxyError::CodexFailed {
                    kind: FailureKind::QuotaExceeded,
                    ..
                } => "insufficient_quota",
                _ => "rate_limit_error",
            },
            status if status.is_client_error() => "invalid_request_error",
            _ => "api_error",
        }
    }

    /// OpenAI's `error.code`, the field clients branch on.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            ProxyError::InvalidRequest { .. } => None,
            ProxyError::InvalidApiKey => Some("invalid_api_key"),
            ProxyError::ModelNotFound(_) => Some("model_not_found"),
            ProxyError::CodexUnavailable(_) => Some("codex_unavailable"),
            ProxyError::CodexFailed { kind, .. } => Some(match kind {
                FailureKind::RateLimited => "rate_limit_exceeded",
                FailureKind::QuotaExceeded => "insufficient_quota",
                FailureKind::ContextLength => "context_length_exceeded",
                FailureKind::Unauthenticated => "codex_unauthenticated",
                FailureKind::Upstream => "codex_error",
            }),
            ProxyError::Overloaded { .. } => Some("rate_limit_exceeded"),
            ProxyError::Timeout(_) => Some("timeout"),
            ProxyError::PromptTooLong { .. } => Some("context_length_exceeded"),
            ProxyError::PayloadTooLarge { .. } => Some("request_too_large"),
            ProxyError::BodyTimeout { .. } => Some("request_timeout"),
            ProxyError::ShuttingDown => Some("server_shutting_down"),
            ProxyError::ClientGone | ProxyError::Http { .. } => None,
        }
    }

    pub fn param(&self) -> Option<&str> {
        match self {
            ProxyError::InvalidRequest { param, .. } => param.as_deref(),
            ProxyError::ModelNotFound(_) => Some("model"),
            ProxyError::PromptTooLong { .. } => Some("messages"),
            _ => None,
        }
    }

    /// The message a user reads; codex's authentication failures get the fix appended.
    pub fn message(&self) -> String {
        match self {
            ProxyError::CodexFailed { kind: FailureKind::Unauthenticated, message, .. } => format!(
                "codex could not authenticate with its model provider: {message}. Log codex in on the server (`codex login`) or set CODEX_API_KEY."
            ),
            other => other.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codex_failure_texts_map_to_openai_statuses_and_codes() {
        let cases = [
            ("exceeded retry limit, last status: 429 Too Many Requests", 429, "rate_limit_exceeded"),
            ("You've hit your usage limit. Upgrade to Pro", 429, "rate_limit_exceeded"),
            ("Quota exceeded. Check your plan and billing details.", 429, "insufficient_quota"),
            (
                "Codex ran out of room in the model's context window. Start a new thread or clear earlier history before retrying.",
                400,
                "context_length_exceeded",
            ),
            (
                "unexpected status 401 Unauthorized: Incorrect API key provided: sk-mock., url: http://127.0.0.1:1/v1/responses",
                502,
                "codex_unauthenticated",
            ),
            ("We\u{2019}re currently experiencing high demand, which may cause temporary errors.", 502, "codex_error"),
            ("stream disconnected before completion: stream closed before response.completed", 502, "codex_error"),
            // A provider's message that merely holds the digits is not a rate limit.
            ("The model `gpt-429` does not exist or you do not have access to it.", 502, "codex_error"),
        ];
        for (message, status, code) in cases {
            let err = ProxyError::codex_failed(message);
            assert_eq!(err.status().as_u16(), status, "{message}");
            assert_eq!(err.code(), Some(code), "{message}");
            assert!(err.message().contains(message));
        }
    }

    #[test]
    fn a_usage_limit_says_when_to_retry() {
        let err = ProxyError::codex_failed("You've hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), or try again in 3 days 2 hours 5 minutes.");
        assert_eq!(err.retry_after(), Some(3 * 86_400 + 2 * 3600 + 5 * 60));
        let err =
            ProxyError::codex_failed("exceeded retry limit, last status: 429 Too Many Requests");
        assert_eq!(err.status().as_u16(), 429);
        assert_eq!(err.retry_after(), None);
        // Without a time in the message, the reset codex's limits reported.
        assert_eq!(
            err.clone().with_plan_reset(Some(600)).retry_after(),
            Some(600)
        );
        let said = ProxyError::codex_failed("You've hit your usage limit. Try again in 5 minutes.");
        assert_eq!(said.with_plan_reset(Some(600)).retry_after(), Some(300));
        let other = ProxyError::codex_failed("boom").with_plan_reset(Some(600));
        assert_eq!(other.retry_after(), None);
    }
}
