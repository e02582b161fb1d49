//! `POST /v1/completions`, the legacy text completions that llama-index's `OpenAILike` and older
//! clients call: the prompt is one user turn, the answer its text, streamed or not, through the
//! same run as chat completions.

use std::sync::Arc;

use futures_util::{Stream, StreamExt};
use poem::web::RemoteAddr;
use poem_openapi::{
    payload::Json,
    types::{Example, ParseFromJSON},
    ApiResponse, Object, OpenApi, ResponseContent,
};
use tracing::Span;

use super::{
    auth::Authorized,
    chat::{stop_sequences, unix_now},
    error::ApiError,
    request::{JsonString, Stop, StreamOptions},
    request_id::InSpan,
    response::Usage,
    run,
    sse::{self, EventStream},
    ApiTags, AppState,
};
use crate::{
    codex::Turn,
    conversation::{Conversation, Item, Part},
    error::ProxyError,
    metrics::RequestOutcome,
    prompt,
    translate::{Delta, Options},
};

pub struct CompletionsApi {
    pub state: Arc<AppState>,
}

#[derive(Debug, Clone, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct CompletionRequest {
    /// A model id from `GET /v1/models`.
    pub model: String,
    /// The text to continue: a string, or an array of one string.
    pub prompt: serde_json::Value,
    #[oai(nullable)]
    pub stream: Option<bool>,
    #[oai(nullable)]
    pub stream_options: Option<StreamOptions>,
    /// How many choices to generate; only 1 is supported.
    #[oai(nullable)]
    pub n: Option<u32>,
    /// Up to 4 sequences; the text ends before the first of them.
    #[oai(nullable)]
    pub stop: Option<Stop>,
    /// Accepted for compatibility; codex does not cap its answer length.
    #[oai(nullable)]
    pub max_tokens: Option<u64>,
    /// Accepted for compatibility; codex does not expose sampling parameters.
    #[oai(nullable)]
    pub temperature: Option<f64>,
    /// Accepted for compatibility; codex does not expose sampling parameters.
    #[oai(nullable)]
    pub top_p: Option<f64>,
    /// An end-user id, logged with the request.
    #[oai(nullable)]
    pub user: Option<JsonString>,
}

/// The example `/docs` fills in: a request that works as it stands (the one generated from the
/// schema sent `"model": "string"`, `"n": 0` and `"stop": {}`, and failed).
impl Example for CompletionRequest {
    fn example() -> Self {
        let example = serde_json::json!({
            "model": "codex-local",
            "prompt": "Say hello in one short sentence.",
        });
        CompletionRequest::parse_from_json(Some(example)).expect("the example is a request")
    }
}

#[derive(Debug, Clone, Object)]
pub struct TextCompletion {
    /// `cmpl-` followed by a random id.
    pub id: String,
    /// Always `text_completion`.
    pub object: String,
    pub created: i64,
    pub model: String,
    pub choices: Vec<TextChoice>,
    #[oai(skip_serializing_if_is_none)]
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone, Object)]
pub struct TextChoice {
    pub text: String,
    pub index: u32,
    /// Always null: codex reports no log probabilities.
    pub logprobs: Option<serde_json::Value>,
    /// `stop`, or null on a streamed piece.
    pub finish_reason: Option<String>,
}

#[derive(ResponseContent)]
pub enum CompletionBody {
    Json(Json<TextCompletion>),
    Stream(EventStream<TextCompletion>),
}

#[derive(ApiResponse)]
pub enum CompletionResponse {
    /// A `text_completion` object, or with `stream: true` a stream of them (each with a piece of
    /// the text) ending with `data: [DONE]`.
    #[oai(status = 200)]
    Ok(CompletionBody),
}

#[OpenApi(tag = "ApiTags::Chat")]
impl CompletionsApi {
    /// Create a text completion (legacy)
    ///
    /// Runs codex on the prompt as one user message. Works like OpenAI's legacy endpoint.
    #[oai(
        path = "/v1/completions",
        method = "post",
        operation_id = "createCompletion"
    )]
    async fn create(
        &self,
        auth: Authorized,
        /// OpenWebUI's id of the conversation: its turns stay on one codex account.
        #[oai(name = "X-OpenWebUI-Chat-Id")]
        chat_id: poem_openapi::param::Header<Option<String>>,
        remote: &RemoteAddr,
        body: Json<CompletionRequest>,
    ) -> Result<CompletionResponse, ApiError> {
        let caller = run::Caller::new(&auth, chat_id.0);
        let model = body.0.model.clone();
        run::answered(&self.state, &model, async |outcome| {
            self.answer(remote, caller, body.0, outcome).await
        })
        .await
    }
}

impl CompletionsApi {
    async fn answer(
        &self,
        remote: &RemoteAddr,
        caller: run::Caller,
        request: CompletionRequest,
        outcome: &mut Option<RequestOutcome>,
    ) -> Result<CompletionResponse, ApiError> {
        let state = &self.state;
        if request.n.is_some_and(|n| n != 1) {
            return Err(ProxyError::invalid(
                "`n` must be 1: this server generates one choice per request.",
                "n",
            )
            .into());
        }
        let text = match request.prompt {
            serde_json::Value::String(text) => text,
            serde_json::Value::Array(texts) if texts.len() == 1 && texts[0].is_string() => {
                texts[0].as_str().unwrap_or_default().to_owned()
            }
            _ => {
                return Err(ProxyError::invalid(
                    "`prompt` takes one string (or an array of one string) here: send one request per prompt; token arrays are not supported.",
                    "prompt",
                )
                .into())
            }
        };
        if text.trim().is_empty() {
            return Err(ProxyError::invalid("`prompt` is empty.", "prompt").into());
        }
        let choice = state
            .config
            .resolve_model(&request.model, &state.backend().models())
            .ok_or_else(|| ProxyError::ModelNotFound(request.model.clone()))?;
        let conversation = Conversation {
            items: vec![Item::User {
                parts: vec![Part::Text(text)],
            }],
        };
        let transcript: Arc<str> = Arc::from(prompt::transcript(&conversation, None));
        let turn = Turn::new(
            conversation,
            None,
            &crate::structured::ResponseFormat::Text,
            choice.model,
            choice.effort,
        );
        let options = Options {
            stop: stop_sequences(request.stop.as_ref())?,
            // Reasoning has no place in a text completion.
            reasoning_output: crate::translate::ReasoningOutput::None,
            native_tools: state.backend().takes_items(),
            ..Options::default()
        };
        let stream = request.stream.unwrap_or(false);
        tracing::info!(model = %request.model, stream, user = request.user.as_ref().map_or("", JsonString::as_str), "text completion");
        let deltas = run::start(state, remote, caller, turn, transcript, options, outcome).await?;
        let header = Header {
            id: crate::ids::random_id("cmpl-"),
            created: unix_now(),
            model: request.model,
        };
        if stream {
            let include_usage = request
                .stream_options
                .and_then(|o| o.include_usage)
                .unwrap_or(false);
            let body = InSpan::new(
                render(header, include_usage, deltas, state.config.keepalive).boxed(),
                Span::current(),
            )
            .boxed();
            Ok(CompletionResponse::Ok(CompletionBody::Stream(
                EventStream::new(body),
            )))
        } else {
            Ok(CompletionResponse::Ok(CompletionBody::Json(Json(
                fold(header, deltas).await?,
            ))))
        }
    }
}

/// What every event of one reply shares.
struct Header {
    id: String,
    created: i64,
    model: String,
}

impl Header {
    fn completion(&self, text: String, finish_reason: Option<&str>) -> TextCompletion {
        TextCompletion {
            id: self.id.clone(),
            object: "text_completion".into(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![TextChoice {
                text,
                index: 0,
                logprobs: None,
                finish_reason: finish_reason.map(str::to_owned),
            }],
            usage: None,
        }
    }
}

fn render(
    header: Header,
    include_usage: bool,
    deltas: impl Stream<Item = Delta> + Send + 'static,
    keepalive: std::time::Duration,
) -> impl Stream<Item = bytes::Bytes> + Send + 'static {
    sse::events(None, deltas, keepalive, true, move |delta| match delta {
        Delta::Content(text) => vec![sse::event(&header.completion(text, None))],
        Delta::Finish { reason, usage } => {
            let mut last = header.completion(String::new(), Some(reason.as_str()));
            if include_usage {
                last.usage = Some(Usage::from(usage));
            }
            vec![sse::event(&last)]
        }
        Delta::Failed(err) => vec![sse::failure(&err)],
        Delta::Reasoning(_) | Delta::ToolCall(_) | Delta::Ran { .. } => Vec::new(),
    })
}

/// Non-streaming is the fold of streaming.
async fn fold(
    header: Header,
    deltas: impl Stream<Item = Delta>,
) -> Result<TextCompletion, ProxyError> {
    let mut deltas = std::pin::pin!(deltas);
    let mut text = String::new();
    while let Some(delta) = deltas.next().await {
        match delta {
            Delta::Content(piece) => text.push_str(&piece),
            Delta::Failed(err) => return Err(err),
            Delta::Finish { reason, usage } => {
                let mut completion = header.completion(text, Some(reason.as_str()));
                completion.usage = Some(Usage::from(usage));
                return Ok(completion);
            }
            Delta::Reasoning(_) | Delta::ToolCall(_) | Delta::Ran { .. } => {}
        }
    }
    Err(ProxyError::codex_failed(
        "codex output ended without a result",
    ))
}
