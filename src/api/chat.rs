//! `POST /v1/chat/completions`: the request becomes a [`Turn`] and its options, the shared run
//! (`run.rs`) turns codex's events into deltas, and the deltas are either streamed as SSE
//! chunks or folded into one JSON reply.

use std::sync::Arc;

use futures_util::{Stream, StreamExt};
use poem::web::RemoteAddr;
use poem_openapi::{param::Header, payload::Json, ApiResponse, OpenApi, ResponseContent};
use tracing::Span;

use super::{
    auth::Authorized,
    conversation,
    error::ApiError,
    request::{
        ChatCompletionRequest, ChatMessage, ContentPart, JsonString, MessageContent, Role, Stop,
    },
    request_id::InSpan,
    response::{AssistantMessage, ChatCompletion, Choice, FunctionCallOut, ToolCallOut, Usage},
    run,
    sse::{self, ChunkHeader, ChunkStream},
    ApiTags, AppState,
};
use crate::{
    codex::Turn,
    config::REASONING_EFFORTS,
    conversation::Part,
    error::ProxyError,
    metrics::RequestOutcome,
    prompt,
    structured::ResponseFormat,
    tools::schema::SchemaBudget,
    translate::{Delta, Options},
};

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
        let mut outcome = run::counted(&self.state, &body.0.model);
        let caller = run::Caller {
            account: auth.account,
            chat_id: chat_id.0,
        };
        let result = self.answer(remote, caller, body.0, &mut outcome).await;
        if let Err(err) = &result {
            run::refused(&mut outcome, err.0.status().as_u16());
        }
        result
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

/// `stop` as a list: at most 4 non-empty sequences, as OpenAI allows.
pub(super) fn stop_sequences(stop: Option<&Stop>) -> Result<Vec<String>, ProxyError> {
    let sequences = match stop {
        None => Vec::new(),
        Some(Stop::One(one)) => vec![one.0.clone()],
        Some(Stop::Many(many)) => many.iter().map(|s| s.0.clone()).collect(),
    };
    if sequences.len() > 4 || sequences.iter().any(String::is_empty) {
        return Err(ProxyError::invalid(
            "`stop` takes up to 4 non-empty strings.",
            "stop",
        ));
    }
    Ok(sequences)
}

/// `reasoning_effort`, checked against [`REASONING_EFFORTS`].
pub(super) fn requested_effort(effort: Option<&str>) -> Result<Option<String>, ProxyError> {
    match effort {
        None => Ok(None),
        Some(effort) if REASONING_EFFORTS.contains(&effort) => Ok(Some(effort.to_owned())),
        Some(other) => Err(ProxyError::invalid(
            format!(
                "`reasoning_effort` {other:?} is not one of {}.",
                REASONING_EFFORTS.join(", ")
            ),
            "reasoning_effort",
        )),
    }
}

/// OpenWebUI's background tasks (titles, tags, follow-ups) arrive as a user message that
/// starts with `### Task:`.
fn is_background_task(messages: &[ChatMessage]) -> bool {
    let last_user = messages.iter().rev().find(|m| m.role == Role::User);
    let text = match last_user.and_then(|m| m.content.as_ref()) {
        Some(MessageContent::Text(text)) => text.as_str(),
        Some(MessageContent::Parts(parts)) => match parts.first() {
            Some(ContentPart::Text(part)) => part.text.as_str(),
            _ => "",
        },
        None => "",
    };
    text.trim_start().starts_with("### Task:")
}

/// How many image parts the conversation holds, counted before any is decoded.
fn image_parts(messages: &[ChatMessage]) -> usize {
    messages
        .iter()
        .filter_map(|m| match &m.content {
            Some(MessageContent::Parts(parts)) => Some(parts),
            _ => None,
        })
        .flatten()
        .filter(|part| matches!(part, ContentPart::ImageUrl(_)))
        .count()
}

/// What the request asks for, checked before codex starts.
struct Plan {
    /// The conversation as the exec prompt: what the request's size is checked by, and what
    /// usage is estimated from when codex reports none.
    transcript: Arc<str>,
    turn: Turn,
    options: Options,
    stream: bool,
    include_usage: bool,
}

impl Plan {
    fn from_request(state: &AppState, request: &ChatCompletionRequest) -> Result<Self, ProxyError> {
        if request.n.is_some_and(|n| n != 1) {
            return Err(ProxyError::invalid(
                "`n` must be 1: this server generates one choice per request. Send several requests for several answers.",
                "n",
            ));
        }
        let choice = state
            .config
            .resolve_model(&request.model, &state.backend().models())
            .ok_or_else(|| ProxyError::ModelNotFound(request.model.clone()))?;
        // The request's own effort wins, then the model id's, then the task routing's.
        let task = is_background_task(&request.messages);
        let routed = |setting: &Option<String>| if task { setting.clone() } else { None };
        let model = routed(&state.config.task_model).or(choice.model);
        let effort = requested_effort(request.reasoning_effort.as_deref())?
            .or(choice.effort)
            .or(routed(&state.config.task_reasoning_effort));
        let tools = conversation::tools(
            request.tools.as_deref(),
            request.tool_choice.as_ref(),
            request.parallel_tool_calls,
            SchemaBudget {
                max_nodes: state.config.limits.max_tool_schema_nodes,
                max_steps: state.config.limits.max_tool_check_steps,
            },
        )?;
        let format = ResponseFormat::from_request(request.response_format.as_ref())?;
        let images = image_parts(&request.messages);
        let max_images = state.config.limits.max_images;
        if images > max_images {
            return Err(ProxyError::invalid(
                format!("The conversation has {images} images, more than this server's limit of {max_images} (MAX_IMAGES)."),
                "messages",
            ));
        }
        let conversation = conversation::conversation(&request.messages)?;
        let images = conversation
            .items
            .iter()
            .flat_map(|item| item.parts())
            .any(|part| matches!(part, Part::Image(_)));
        // Measured as the exec prompt, whichever way the backend takes it.
        let transcript = prompt::transcript(&conversation, tools.as_deref());
        if transcript.trim().is_empty() && !images {
            return Err(ProxyError::invalid(
                "The conversation has no text for codex to answer: give the user message some content.",
                "messages",
            ));
        }
        Ok(Plan {
            transcript: Arc::from(transcript),
            turn: Turn::new(conversation, tools.clone(), &format, model, effort),
            options: Options {
                tools,
                native_tools: state.backend().takes_items(),
                report_commands: false,
                reasoning_output: state.config.reasoning_output,
                stop: stop_sequences(request.stop.as_ref())?,
                json: format.wants_json(),
            },
            stream: request.stream.unwrap_or(false),
            include_usage: request
                .stream_options
                .as_ref()
                .and_then(|o| o.include_usage)
                .unwrap_or(false),
        })
    }
}

/// Non-streaming is the fold of streaming: the same deltas, collected.
async fn fold(
    header: ChunkHeader,
    deltas: impl Stream<Item = Delta>,
) -> Result<ChatCompletion, ProxyError> {
    let mut deltas = std::pin::pin!(deltas);
    let mut content = String::new();
    let mut reasoning: Option<String> = None;
    let mut tool_calls = Vec::new();
    while let Some(delta) = deltas.next().await {
        match delta {
            Delta::Content(text) => content.push_str(&text),
            Delta::Ran { .. } => {}
            Delta::ToolCall(call) => tool_calls.push(ToolCallOut {
                id: call.id,
                kind: "function".into(),
                function: FunctionCallOut {
                    name: call.name,
                    arguments: call.arguments,
                },
            }),
            Delta::Reasoning(text) => reasoning.get_or_insert_with(String::new).push_str(&text),
            Delta::Failed(err) => return Err(err),
            Delta::Finish { reason, usage } => {
                return Ok(ChatCompletion {
                    id: header.id,
                    object: "chat.completion".into(),
                    created: header.created,
                    model: header.model,
                    choices: vec![Choice {
                        index: 0,
                        message: AssistantMessage {
                            role: "assistant".into(),
                            // OpenAI's shape: null content when the answer is nothing but calls.
                            content: (!content.is_empty() || tool_calls.is_empty())
                                .then_some(content),
                            reasoning_content: reasoning,
                            tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
                        },
                        finish_reason: reason.as_str().into(),
                    }],
                    usage: Usage::from(usage),
                });
            }
        }
    }
    Err(ProxyError::codex_failed(
        "codex output ended without a result",
    ))
}

fn completion_id() -> String {
    crate::ids::random_id("chatcmpl-")
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
