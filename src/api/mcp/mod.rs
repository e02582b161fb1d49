//! `/mcp`: codex as a tool for other agents (Claude Code, Cursor, the MCP SDKs), over MCP's
//! streamable HTTP, behind the same API keys as `/v1`. The protocol is rmcp's, the official
//! Rust SDK; this module only mounts it in the server and supplies the tools.

pub mod threads;
mod tools;

use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use http_body_util::BodyExt;
use poem::{http, Endpoint, Request, Response};
use rmcp::transport::streamable_http_server::{
    session::local::LocalSessionManager, StreamableHttpServerConfig, StreamableHttpService,
};

use super::AppState;
use threads::Threads;
use tools::CodexTools;

/// The path the endpoint is served at.
pub const PATH: &str = "/mcp";

/// How long an MCP session may stay unused before it is closed (a client opens a new one), on
/// top of the longest turn: rmcp counts a session whose call is still running as unused.
const SESSION_IDLE: Duration = Duration::from_secs(300);

/// The most MCP sessions open at once: each holds a task and buffers until it closes or idles
/// out, so a client opening session after session is refused past it.
pub const MAX_SESSIONS: usize = 128;

/// How often expired threads are let go when no call comes to notice them.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

type Body = http_body_util::combinators::BoxBody<bytes::Bytes, std::io::Error>;

/// rmcp's streamable HTTP service as a poem endpoint: the request and the response are handed
/// over as they are, the response body streaming (its SSE events go out as they come).
pub struct McpEndpoint {
    service: StreamableHttpService<CodexTools, LocalSessionManager>,
    sessions: Arc<LocalSessionManager>,
}

impl McpEndpoint {
    pub fn new(state: Arc<AppState>) -> Self {
        let limits = &state.config.limits;
        let threads = Arc::new(Mutex::new(Threads::new(
            limits.mcp_threads,
            limits.mcp_thread_idle,
        )));
        sweep(Arc::downgrade(&state), Arc::downgrade(&threads));
        let mut sessions = LocalSessionManager::default();
        sessions.session_config.keep_alive = Some(SESSION_IDLE + limits.codex_timeout);
        let sessions = Arc::new(sessions);
        let config = StreamableHttpServerConfig::default()
            .with_sse_keep_alive(Some(state.config.keepalive))
            // The key check guards the endpoint; a host check would refuse every name but
            // localhost, and this server is reached by many (a container's, an ingress's).
            .with_allowed_hosts(Vec::<String>::new())
            .with_cancellation_token(state.draining.child_token());
        let service = StreamableHttpService::new(
            {
                let state = state.clone();
                move || Ok(CodexTools::new(state.clone(), threads.clone()))
            },
            sessions.clone(),
            config,
        );
        McpEndpoint { service, sessions }
    }
}

impl Endpoint for McpEndpoint {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let opens_session =
            req.method() == http::Method::POST && !req.headers().contains_key("mcp-session-id");
        if opens_session && self.sessions.sessions.read().await.len() >= MAX_SESSIONS {
            tracing::warn!(
                sessions = MAX_SESSIONS,
                "refusing a new MCP session: too many are open"
            );
            return Ok(refused(&crate::error::ProxyError::Http {
                status: http::StatusCode::SERVICE_UNAVAILABLE,
                message: format!(
                    "{MAX_SESSIONS} MCP sessions are open, this server's limit: close one (DELETE /mcp) or retry once an idle one has expired."
                ),
            }));
        }
        let ends_session = req.method() == http::Method::DELETE;
        let req: http::Request<Body> = req.into();
        let (mut parts, body) = self.service.handle(req).await.into_parts();
        // A closed session is a 204: rmcp says 202, which the SDKs log as a failed close.
        if ends_session && parts.status == http::StatusCode::ACCEPTED {
            parts.status = http::StatusCode::NO_CONTENT;
        }
        let body: Body = body.map_err(|never: Infallible| match never {}).boxed();
        Ok(http::Response::from_parts(parts, body).into())
    }
}

/// A refused request (a wrong key) as MCP clients read it: a JSON-RPC error, with OpenAI's
/// error object as its data, and the HTTP status the error has everywhere else.
pub fn refused(err: &crate::error::ProxyError) -> Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {
            "code": -32001,
            "message": err.message(),
            "data": {"type": err.error_type(), "code": err.code()},
        },
    });
    let mut response = Response::builder()
        .status(err.status())
        .content_type("application/json")
        .body(body.to_string());
    if err.status() == http::StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

/// Lets expired threads go every [`SWEEP_EVERY`] until the server is dropped.
fn sweep(state: std::sync::Weak<AppState>, threads: std::sync::Weak<Mutex<Threads>>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        loop {
            tick.tick().await;
            let (Some(state), Some(threads)) = (state.upgrade(), threads.upgrade()) else {
                return;
            };
            let gone = threads
                .lock()
                .expect("mcp threads lock")
                .expire(Instant::now());
            tools::let_go(&state, gone);
        }
    });
}
