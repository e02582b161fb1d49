//! `POST /v1/chat/completions`: the request becomes a [`Plan`] (its turn and options, `plan.rs`),
//! the shared run (`run.rs`) turns codex's events into deltas, and the deltas are either
//! streamed as SSE chunks (`sse.rs`) or folded into one JSON reply (`fold.rs`).

mod fold;
mod plan;

use std::sync::Arc;

use futures_util::StreamExt;
use poem::web::RemoteAddr;
use poem_openapi::{param::Header, payload::Json, ApiResponse, OpenApi, ResponseContent};
use tracing::Span;

use super::{
    auth::Authorized,
    error::ApiError,
    request::{ChatCompletionRequest, JsonString},
    request_id::InSpan,
    response::ChatCompletion,
    run,
    sse::{self, ChunkHeader, ChunkStream},
    ApiTags, AppState,
};
use crate::metrics::RequestOutcome;
use fold::fold;
use plan::Plan;
pub(super) use plan::{requested_effort, stop_sequences};

pub struct ChatApi {
    pub state: Arc<AppState>,
}

#[derive(ResponseContent)]
pub enum ChatBody {
    Json(Json<ChatCompletion>),
    Stream(ChunkStream),
}

#[derive(ApiResponse)]
pub enum ChatResponse {
    /// The answer: a `chat.completion` object, or with `stream: true` a stream of
    /// `chat.completion.chunk` events ending with `data: [DONE]`. A failure after the stream
    /// started arrives in band as `data: {"error": {...}}` before `[DONE]`.
    #[oai(status = 200)]
    Ok(ChatBody),
}

#[OpenApi(tag = "ApiTags::Chat")]
impl ChatApi {
    /// Create a chat completion
    ///
    /// Runs codex on the conversation. Works like OpenAI's endpoint of the same name.
    #[oai(
        path = "/v1/chat/completions",
        method = "post",
        operation_id = "createChatCompletion"
    )]
    async fn create(
        &self,
        auth: Authorized,
        /// OpenWebUI's id of the conversation: its turns stay on one codex account.
        #[oai(name = "X-OpenWebUI-Chat-Id")]
        chat_id: Header<Option<String>>,
        remote: &RemoteAddr,
        body: Json<ChatCompletionRequest>,
    ) -> Result<ChatResponse, ApiError> {
        let caller = run::Caller::new(&auth, chat_id.0);
        let model = body.0.model.clone();
        run::answered(&self.state, &model, async |outcome| {
            self.answer(remote, caller, body.0, outcome).await
        })
        .await
    }
}

impl ChatApi {
    async fn answer(
        &self,
        remote: &RemoteAddr,
        caller: run::Caller,
        request: ChatCompletionRequest,
        outcome: &mut Option<RequestOutcome>,
    ) -> Result<ChatResponse, ApiError> {
        let state = &self.state;
        let plan = Plan::from_request(state, &request)?;
        tracing::info!(model = %request.model, stream = plan.stream, messages = request.messages.len(), user = request.user.as_ref().map_or("", JsonString::as_str), "chat completion");
        let deltas = run::start(
            state,
            remote,
            caller,
            plan.turn,
            plan.transcript,
            plan.options,
            outcome,
        )
        .await?;
        let header = ChunkHeader {
            id: completion_id(),
            created: unix_now(),
            model: request.model,
            include_usage: plan.include_usage,
        };
        if plan.stream {
            // The reply streams out after this handler returns; it keeps the request's span.
            let body = InSpan::new(
                sse::render(header, deltas, state.config.keepalive).boxed(),
                Span::current(),
            )
            .boxed();
            Ok(ChatResponse::Ok(ChatBody::Stream(ChunkStream::new(body))))
        } else {
            Ok(ChatResponse::Ok(ChatBody::Json(Json(
                fold(header, deltas).await?,
            ))))
        }
    }
}
fn completion_id() -> String {
    crate::ids::random_id("chatcmpl-")
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
